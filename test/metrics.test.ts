import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  campaignCost,
  campaignMetrics,
  failuresByCode,
  funnel,
  metricsBreakdown,
  newcombeDifference,
  putRate,
  repairMessageRollup,
  setCampaignGoal,
  timeToRead,
  wilson,
} from '../engine/metrics/index.ts';
import { insertSends } from './helpers/analytics-fixtures.ts';
import { openTestApi, type TestApi } from './helpers/runtime.ts';

const T = Date.UTC(2026, 10, 1, 10, 0, 0);
const at = (seconds: number) => new Date(T + seconds * 1000).toISOString();

describe('metric definitions on a hand-built fixture', () => {
  let api: TestApi;
  let ws: string;

  beforeAll(async () => {
    api = await openTestApi();
    ws = api.workspace.id;
    const { runtime } = api;
    const sendA = (n: number, extra: Record<string, unknown> = {}) => ({
      send_id: `a${n}`,
      campaign_id: 'cmp_a',
      contact_id: `c${n}`,
      provider_message_id: `wamid.a${n}`,
      sent_at: at(0),
      ...extra,
    });
    await insertSends(runtime, ws, [
      sendA(1),
      sendA(2),
      sendA(3),
      sendA(4),
      sendA(5),
      sendA(6),
      sendA(7, { outcome: 'failed', error_code: 131026, provider_message_id: '' }),
      sendA(8),
      sendA(9, { country: 'US' }),
      sendA(10, { country: 'US' }),
      {
        send_id: 'b3',
        campaign_id: 'cmp_b',
        campaign_name: 'Campaign B',
        template_name: 'welcome',
        sender_id: 'snd_other',
        contact_id: 'c3',
        provider_message_id: 'wamid.b3',
        sent_at: at(1200),
      },
    ] as never);
    // A send written twice (a dispatch retry) is one send.
    await insertSends(runtime, ws, [sendA(1)] as never);
    const status = (id: string, s: string, seconds: number, extra: Record<string, unknown> = {}) => ({
      workspace_id: ws,
      provider_message_id: `wamid.${id}`,
      status: s,
      ts: at(seconds),
      ...extra,
    });
    await runtime.ch.insert('message_statuses', [
      status('a1', 'sent', 1),
      status('a1', 'delivered', 5),
      status('a1', 'read', 60),
      status('a2', 'delivered', 5),
      status('a2', 'read', 600),
      status('a2', 'replied', 700),
      status('a3', 'delivered', 5),
      status('a4', 'read', 30),
      status('a4', 'delivered', 40), // late "delivered" after "read": still read
      status('a5', 'delivered', 5),
      status('a5', 'failed', 9, { error_code: 131026 }), // failure after delivery: failed
      status('a6', 'failed', 3, { error_code: 131050 }),
      status('a8', 'sent', 1),
      status('a9', 'delivered', 5, { pricing_category: 'marketing', billable: 0 }), // free: not charged
      status('a10', 'read', 7200),
      status('a10', 'read', 7200), // duplicate report
      status('b3', 'delivered', 1205),
    ]);
    await setCampaignGoal(runtime, ws, 'cmp_a', {
      event: 'purchase',
      windowSeconds: 3600,
      revenueProperty: 'amount',
    });
    await setCampaignGoal(runtime, ws, 'cmp_b', {
      event: 'purchase',
      windowSeconds: 7200,
      revenueProperty: 'amount',
    });
    const purchase = (id: string, contact: string, seconds: number, amount: number) => ({
      workspace_id: ws,
      name: 'purchase',
      contact_id: contact,
      ts: at(seconds),
      event_id: id,
      properties: JSON.stringify({ amount }),
    });
    await runtime.ch.insert('events', [
      purchase('e1', 'c1', 1800, 100),
      purchase('e1', 'c1', 1800, 100), // the same event twice
      purchase('e2', 'c1', 3600, 50), // exactly at the end of the window: counts
      purchase('e3', 'c2', 3601, 999), // one second late: no credit
      purchase('e4', 'c3', 1500, 70), // campaign B touched c3 last: B's
      purchase('e5', 'c4', -1, 999), // before the send: no credit
      purchase('e6', 'c8', 0, 10), // at the very send instant: counts
      purchase('h1', 'h1', 100, 5),
      purchase('h2', 'h2', 4000, 5), // held out, but outside the window
      purchase('h3', 'h3', 200, 5),
    ]);
    await runtime.ch.insert('campaign_audience', [
      ...Array.from({ length: 10 }, (_, i) => ({
        workspace_id: ws,
        campaign_id: 'cmp_a',
        contact_id: `c${i + 1}`,
        holdout: 0,
        launched_at: at(0),
      })),
      ...Array.from({ length: 10 }, (_, i) => ({
        workspace_id: ws,
        campaign_id: 'cmp_a',
        contact_id: `h${i + 1}`,
        holdout: 1,
        excluded_reason: 'holdout',
        launched_at: at(0),
      })),
    ]);
    // A workspace price for India from the campaign's day, and one not yet valid.
    await putRate(runtime, ws, {
      category: 'MARKETING',
      country: 'IN',
      price: 0.02,
      valid_from: '2026-11-01',
      source: 'test',
    });
    await putRate(runtime, ws, {
      category: 'MARKETING',
      country: 'IN',
      price: 0.5,
      valid_from: '2026-12-01',
      source: 'test',
    });
  });
  afterAll(async () => api?.close());

  it('counts the funnel by final state and computes each rate from its own denominator', async () => {
    const m = await campaignMetrics(api.runtime, ws, 'cmp_a');
    expect(m).toMatchObject({ attempted: 10, sent: 9, delivered: 6, read: 4, replied: 1, failed: 3 });
    expect(m.delivery_rate).toBeCloseTo(6 / 9, 12);
    expect(m.read_rate).toBeCloseTo(4 / 6, 12);
    expect(m.reply_rate).toBeCloseTo(1 / 6, 12);
    expect(m.failure_rate).toBeCloseTo(3 / 10, 12);
    expect(m.failures_by_code).toEqual([
      { error_code: 131026, failed: 2 },
      { error_code: 131050, failed: 1 },
    ]);
  });

  it('measures time to read from the send', async () => {
    const { time_to_read: ttr } = await campaignMetrics(api.runtime, ws, 'cmp_a');
    expect(ttr.read).toBe(4);
    expect(ttr.mean_seconds).toBeCloseTo((60 + 600 + 30 + 7200) / 4, 9);
    expect(ttr.buckets).toEqual([
      { label: '<1m', count: 1 },
      { label: '1-5m', count: 1 },
      { label: '5-15m', count: 1 },
      { label: '15-60m', count: 0 },
      { label: '1-6h', count: 1 },
      { label: '6-24h', count: 0 },
      { label: '>=24h', count: 0 },
    ]);
    expect(ttr.p50_seconds).toBeGreaterThanOrEqual(60);
    expect(ttr.p50_seconds).toBeLessThanOrEqual(600);
  });

  it('credits conversions by last touch within the window, edges included', async () => {
    const a = await campaignMetrics(api.runtime, ws, 'cmp_a');
    expect(a.conversions).toEqual({ conversions: 3, converters: 2, revenue: 160 });
    expect(a.conversion_rate).toBeCloseTo(2 / 9, 12);
    const b = await campaignMetrics(api.runtime, ws, 'cmp_b');
    expect(b.conversions).toEqual({ conversions: 1, converters: 1, revenue: 70 });
  });

  it('prices delivered messages by the dated rate table, skipping free ones, and derives ROI', async () => {
    const m = await campaignMetrics(api.runtime, ws, 'cmp_a');
    // c1..c4 in India at the workspace's 0.02 from 1 Nov; c10 in the US at the shipped 0.025; c9 free.
    expect(m.cost.billable_messages).toBe(5);
    expect(m.cost.unpriced_messages).toBe(0);
    expect(m.cost.amount).toBeCloseTo(4 * 0.02 + 0.025, 9);
    expect(m.cost.currency).toBe('USD');
    expect(m.roi).toBeCloseTo((160 - 0.105) / 0.105, 6);
  });

  it('reports holdout lift with a Newcombe interval', async () => {
    const { holdout } = await campaignMetrics(api.runtime, ws, 'cmp_a');
    // Treated converters within [launch, launch + 1 h]: c1, c3, c8; held out: h1, h3.
    expect(holdout?.treated).toEqual({ contacts: 10, converted: 3, rate: 0.3 });
    expect(holdout?.holdout).toEqual({ contacts: 10, converted: 2, rate: 0.2 });
    expect(holdout?.lift).toBeCloseTo(0.1, 12);
    const ci = newcombeDifference(3, 10, 2, 10);
    expect(holdout?.ci_low).toBeCloseTo(ci.low, 12);
    expect(holdout?.ci_high).toBeCloseTo(ci.high, 12);
    expect(holdout?.relative_lift).toBeCloseTo(0.5, 12);
  });

  it('Newcombe and Wilson intervals match the published examples', () => {
    // Newcombe (1998), Statistics in Medicine 17:873, method 10.
    const a = newcombeDifference(56, 70, 48, 80);
    expect(a.low).toBeCloseTo(0.0524, 4);
    expect(a.high).toBeCloseTo(0.3339, 4);
    const b = newcombeDifference(9, 10, 3, 10);
    expect(b.low).toBeCloseTo(0.1705, 4);
    expect(b.high).toBeCloseTo(0.809, 3);
    // Wilson (1927) score interval for 81/263 (Newcombe 1998a example): 0.2553 to 0.3662.
    const w = wilson(81, 263);
    expect(w.low).toBeCloseTo(0.2553, 4);
    expect(w.high).toBeCloseTo(0.3662, 4);
  });

  it('breaks the funnel down by country, template, sender, day and hour, consistently with the total', async () => {
    const byCountry = await metricsBreakdown(api.runtime, ws, 'country', { campaignId: 'cmp_a' });
    expect(byCountry.map((r) => [r.key, r.attempted, r.sent, r.delivered, r.read, r.failed])).toEqual([
      ['IN', 8, 7, 4, 3, 3],
      ['US', 2, 2, 2, 1, 0],
    ]);
    const byHour = await metricsBreakdown(api.runtime, ws, 'hour', { timezone: 'Asia/Kolkata' });
    expect(byHour.map((r) => [r.key, r.attempted])).toEqual([['2026-11-01T15:00', 11]]);
    const byDay = await metricsBreakdown(api.runtime, ws, 'day', {});
    const total = await funnel(api.runtime, ws, {});
    expect(byDay.reduce((n, r) => n + r.delivered, 0)).toBe(total.delivered);
    const byCampaign = await metricsBreakdown(api.runtime, ws, 'campaign');
    expect(byCampaign.map((r) => [r.key, r.label, r.sent])).toEqual([
      ['cmp_a', 'Campaign 1', 9],
      ['cmp_b', 'Campaign B', 1],
    ]);
    const byTemplate = await metricsBreakdown(api.runtime, ws, 'template');
    expect(byTemplate.map((r) => [r.key, r.attempted, r.sent, r.delivered])).toEqual([
      ['promo', 10, 9, 6],
      ['welcome', 1, 1, 1],
    ]);
    const bySender = await metricsBreakdown(api.runtime, ws, 'sender', { campaignId: 'cmp_b' });
    expect(bySender.map((r) => [r.key, r.attempted, r.delivered])).toEqual([['snd_other', 1, 1]]);
    const window = await funnel(api.runtime, ws, { from: at(1), to: at(7200) });
    expect(window.attempted).toBe(1);
  });

  it('the views data teams query, the single-pass report and the standalone functions agree', async () => {
    const db = api.runtime.ch.database;
    for (const campaignId of ['cmp_a', 'cmp_b']) {
      const report = await campaignMetrics(api.runtime, ws, campaignId);
      const [view] = await api.runtime.ch.rows<Record<string, string>>(
        `SELECT sum(attempted) AS attempted, sum(sent) AS sent, sum(delivered) AS delivered, sum(read) AS read,
                sum(replied) AS replied, sum(failed) AS failed
           FROM ${db}.message_funnel WHERE workspace_id = {ws:String} AND campaign_id = {c:String}`,
        { ws, c: campaignId },
      );
      const standalone = await funnel(api.runtime, ws, { campaignId });
      for (const key of ['attempted', 'sent', 'delivered', 'read', 'replied', 'failed'] as const) {
        expect(Number(view![key])).toBe(report[key]);
        expect(standalone[key]).toBe(report[key]);
      }
      expect(await failuresByCode(api.runtime, ws, { campaignId })).toEqual(report.failures_by_code);
      expect(await timeToRead(api.runtime, ws, { campaignId })).toEqual(report.time_to_read);
      expect(await campaignCost(api.runtime, ws, { campaignId })).toEqual(report.cost);
      const [conversions] = await api.runtime.ch.rows<{ n: string; revenue: number }>(
        `SELECT count() AS n, sum(revenue) AS revenue FROM ${db}.conversions WHERE workspace_id = {ws:String} AND campaign_id = {c:String}`,
        { ws, c: campaignId },
      );
      expect(Number(conversions!.n)).toBe(report.conversions?.conversions);
      expect(Number(conversions!.revenue)).toBe(report.conversions?.revenue);
    }
  });

  it('campaign_sends (over the rollup) gives each send the state message_state (over raw statuses) gives it', async () => {
    const db = api.runtime.ch.database;
    const columns =
      'send_id, outcome, final_status, error_code, delivered_at, read_at, replied_at, seconds_to_read, is_billable';
    const fromRollup = await api.runtime.ch.rows(
      `SELECT ${columns} FROM ${db}.campaign_sends WHERE workspace_id = {ws:String} ORDER BY send_id`,
      { ws },
    );
    const fromStatuses = await api.runtime.ch.rows(
      `SELECT ${columns} FROM (
         SELECT s.send_id AS send_id, s.outcome AS outcome,
           if(s.outcome = 'accepted', m.final_status, 'failed') AS final_status,
           if(s.outcome = 'failed', s.error_code, if(m.is_failed = 1, m.failure_code, 0)) AS error_code,
           m.delivered_at AS delivered_at, m.read_at AS read_at, m.replied_at AS replied_at,
           if(m.read_at IS NULL, NULL, greatest(0, dateDiff('second', s.sent_at, m.read_at))) AS seconds_to_read,
           toUInt8(m.is_billable = 1 OR m.provider_message_id = '') AS is_billable
         FROM (SELECT send_id, CAST(outcome AS String) AS outcome, error_code, sent_at, provider_message_id, workspace_id
                 FROM ${db}.sends FINAL WHERE workspace_id = {ws:String}) AS s
         LEFT JOIN ${db}.message_state AS m
           ON m.workspace_id = s.workspace_id AND m.provider_message_id = s.provider_message_id
         SETTINGS join_use_nulls = 0)
       ORDER BY send_id`,
      { ws },
    );
    expect(fromRollup.length).toBe(11);
    expect(fromRollup).toEqual(fromStatuses);
  });

  it('serves the same figures over HTTP as JSON and CSV', async () => {
    const json = await api.app.inject({ url: '/v1/metrics/campaigns/cmp_a', headers: api.auth });
    expect(json.statusCode).toBe(200);
    expect(json.json()).toEqual(JSON.parse(JSON.stringify(await campaignMetrics(api.runtime, ws, 'cmp_a'))));
    const csv = await api.app.inject({
      url: '/v1/metrics/breakdown?by=country&campaign_id=cmp_a&format=csv',
      headers: api.auth,
    });
    expect(csv.statusCode).toBe(200);
    expect(csv.headers['content-type']).toContain('text/csv');
    const lines = csv.body.trim().split('\r\n');
    expect(lines[0]).toBe(
      'key,label,attempted,sent,delivered,read,replied,failed,delivery_rate,read_rate,reply_rate,failure_rate',
    );
    expect(lines[1]!.startsWith('IN,IN,8,7,4,3,1,3,')).toBe(true);
    const bad = await api.app.inject({ url: '/v1/metrics/breakdown?by=planet', headers: api.auth });
    expect(bad.statusCode).toBe(400);
    const badZone = await api.app.inject({
      url: '/v1/metrics/breakdown?by=day&timezone=Mars/Base',
      headers: api.auth,
    });
    expect(badZone.statusCode).toBe(400);
    const other = await api.app.inject({ url: '/v1/metrics/campaigns/cmp_a' });
    expect(other.statusCode).toBe(401);
  });

  it('edits the rate table over HTTP', async () => {
    const created = await api.app.inject({
      method: 'POST',
      url: '/v1/message-rates',
      headers: api.auth,
      payload: {
        category: 'UTILITY',
        country: 'BR',
        price: 0.009,
        valid_from: '2027-01-01',
        source: 'Meta rate card Jan 2027',
      },
    });
    expect(created.statusCode).toBe(201);
    const list = await api.app.inject({ url: '/v1/message-rates', headers: api.auth });
    expect(list.json().rates.some((r: { id: string }) => r.id === created.json().id)).toBe(true);
    expect(
      list.json().rates.some((r: { workspace_id: null; source: string }) => r.workspace_id === null),
    ).toBe(true);
    const bad = await api.app.inject({
      method: 'POST',
      url: '/v1/message-rates',
      headers: api.auth,
      payload: { category: 'PROMO', country: 'India', price: -1, valid_from: 'soon', source: '' },
    });
    expect(bad.statusCode).toBe(400);
    const paths = bad.json().errors.map((e: { path: string }) => e.path);
    expect(paths).toEqual(expect.arrayContaining(['/body/category', '/body/country', '/body/price']));
    const removed = await api.app.inject({
      method: 'DELETE',
      url: `/v1/message-rates/${created.json().id}`,
      headers: api.auth,
    });
    expect(removed.statusCode).toBe(204);
    const again = await api.app.inject({
      method: 'DELETE',
      url: `/v1/message-rates/${created.json().id}`,
      headers: api.auth,
    });
    expect(again.statusCode).toBe(404);
  });

  // Last: it adds a send and a conversion to the workspace the tests above count.
  it("reads revenue from the property a campaign's goal names, set and changed through the API", async () => {
    const call = (method: 'POST' | 'PATCH', url: string, payload: object) =>
      api.app.inject({ method, url, headers: api.auth, payload });
    const created = await call('POST', '/v1/campaigns', {
      name: 'goal with amount',
      audience: { type: 'all' },
      content: { template: { name: 'promo', language: 'en_US' } },
      goal: { event: 'purchase', window_hours: 1, revenue_property: 'amount' },
    });
    expect(created.statusCode).toBe(201);
    const id = created.json().id as string;
    await insertSends(api.runtime, ws, [
      {
        send_id: 'g1',
        campaign_id: id,
        contact_id: 'goal_c1',
        provider_message_id: 'wamid.g1',
        sent_at: at(90_000),
      },
    ] as never);
    await api.runtime.ch.insert('events', [
      {
        workspace_id: ws,
        name: 'purchase',
        contact_id: 'goal_c1',
        ts: at(90_060),
        event_id: 'goal_e1',
        properties: JSON.stringify({ amount: 42, revenue: 7 }),
      },
    ]);
    expect((await campaignMetrics(api.runtime, ws, id)).conversions).toEqual({
      conversions: 1,
      converters: 1,
      revenue: 42,
    });
    const patched = await call('PATCH', `/v1/campaigns/${id}`, {
      goal: { event: 'purchase', window_hours: 1 },
    });
    expect(patched.statusCode).toBe(200);
    expect((await campaignMetrics(api.runtime, ws, id)).conversions?.revenue).toBe(7);
    const bad = await call('PATCH', `/v1/campaigns/${id}`, {
      goal: { event: 'purchase', window_hours: 1, revenue_property: '' },
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().errors[0].path).toContain('/body/goal');
  });
});

describe('pre-aggregated message state (message_rollup)', () => {
  let api: TestApi;
  let ws: string;
  beforeAll(async () => {
    api = await openTestApi();
    ws = api.workspace.id;
  });
  afterAll(async () => api?.close());

  const unmatched = async () =>
    Number(
      (
        await api.runtime.ch.rows<{ n: number }>(
          `SELECT count() AS n FROM ${api.runtime.ch.database}.message_rollup_unmatched FINAL WHERE workspace_id = {ws:String}`,
          { ws },
        )
      )[0]!.n,
    );
  const status = (id: string, s: string, seconds: number) => ({
    workspace_id: ws,
    provider_message_id: id,
    status: s,
    ts: at(seconds),
  });

  it('keeps statuses of unknown messages aside, and counts them once their send is stored', async () => {
    await api.runtime.ch.insert('message_statuses', [
      status('wamid.early1', 'delivered', 5),
      status('wamid.early1', 'read', 50),
      status('wamid.early2', 'failed', 5),
    ]);
    expect(await unmatched()).toBe(2);
    expect((await funnel(api.runtime, ws, { campaignId: 'cmp_early' })).attempted).toBe(0);
    await insertSends(api.runtime, ws, [
      {
        send_id: 'e1',
        campaign_id: 'cmp_early',
        contact_id: 'c1',
        provider_message_id: 'wamid.early1',
        sent_at: at(0),
      },
      {
        send_id: 'e2',
        campaign_id: 'cmp_early',
        contact_id: 'c2',
        provider_message_id: 'wamid.early2',
        sent_at: at(0),
      },
    ]);
    const expected = { attempted: 2, sent: 2, delivered: 1, read: 1, failed: 1 };
    const counts = async () => {
      const f = await funnel(api.runtime, ws, { campaignId: 'cmp_early' });
      return { attempted: f.attempted, sent: f.sent, delivered: f.delivered, read: f.read, failed: f.failed };
    };
    expect(await counts()).toEqual(expected);
    expect(await repairMessageRollup(api.runtime)).toBe(2);
    expect(await unmatched()).toBe(0);
    expect(await counts()).toEqual(expected);
  });

  it('a status and its send stored at the same moment (neither view sees the other) still count, and repair files them', async () => {
    // The race, reproduced: the send's views ran before the status was stored, and the status's
    // views before the send was, so the status sits only in the unmatched set.
    await insertSends(api.runtime, ws, [
      {
        send_id: 'r1',
        campaign_id: 'cmp_race',
        contact_id: 'c9',
        provider_message_id: 'wamid.race',
        sent_at: at(0),
      },
    ]);
    await api.runtime.ch.insert('message_rollup_unmatched', [
      {
        workspace_id: ws,
        provider_message_id: 'wamid.race',
        message_key: (
          await api.runtime.ch.rows<{ k: string }>("SELECT toString(cityHash64('wamid.race')) AS k")
        )[0]!.k,
        has_delivered: 1,
        delivered_at: at(3),
        stored_at: Math.floor(Date.now() / 1000), // kept a day from now (the table's TTL)
      },
    ]);
    expect((await funnel(api.runtime, ws, { campaignId: 'cmp_race' })).delivered).toBe(1);
    expect(await repairMessageRollup(api.runtime)).toBe(1);
    expect(await unmatched()).toBe(0);
    const after = await funnel(api.runtime, ws, { campaignId: 'cmp_race' });
    expect({ sent: after.sent, delivered: after.delivered, failed: after.failed }).toEqual({
      sent: 1,
      delivered: 1,
      failed: 0,
    });
  });
});
