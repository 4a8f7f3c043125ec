import type { PgBoss } from 'pg-boss';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  campaignProgress,
  cancelCampaign,
  pauseCampaign,
  resumeCampaign,
} from '../engine/campaigns/control.ts';
import { inHoldout, launchCampaign } from '../engine/campaigns/launch.ts';
import { auditLog, createCampaign, getCampaign } from '../engine/campaigns/model.ts';
import type { CampaignInput } from '../engine/campaigns/types.ts';
import { createWorkspace } from '../engine/workspaces.ts';
import { startBoss } from '../jobs/boss.ts';
import { type DispatcherHandle, startDispatcher } from '../jobs/dispatch/index.ts';
import {
  approveTemplate,
  createSender,
  phoneOf,
  recordingAdapter,
  seedContacts,
  waitFor,
} from './helpers/campaigns.ts';
import { openTestRuntime, postgresTargets, type TestRuntime } from './helpers/runtime.ts';

describe.each(postgresTargets)('campaign dispatch on $name', ({ url }) => {
  let runtime: TestRuntime;
  let boss: PgBoss;
  let dispatcher: DispatcherHandle;
  let ws: string;
  let sender: string;
  const provider = recordingAdapter({
    refuse: (m) =>
      m.to.endsWith('99999')
        ? { class: 'pause_campaign', errorCode: 131048, errorTitle: 'Spam rate limit hit' }
        : undefined,
  });

  beforeAll(async () => {
    runtime = await openTestRuntime({ postgresUrl: url });
    ws = (await createWorkspace(runtime.pg, { name: 'W' })).id;
    sender = await createSender(runtime, ws, { throughput: 200 });
    await approveTemplate(runtime, ws, 'promo');
    await approveTemplate(runtime, ws, 'pending_one', { status: 'PENDING' });
    boss = await startBoss(runtime);
    dispatcher = await startDispatcher(runtime, boss, {
      adapterFor: () => provider.adapter,
      pumpIntervalMs: 200,
    });
  });
  afterAll(async () => {
    await dispatcher?.stop();
    await boss?.stop({ graceful: false });
    await runtime?.close();
  });

  const base = (name: string, tag: string): CampaignInput => ({
    name,
    sender_id: sender,
    audience: { type: 'tags', tags: [tag] },
    content: {
      template: {
        name: 'promo',
        language: 'en_US',
        variables: { '1': { field: 'attributes.first_name', fallback: 'there' } },
      },
    },
    settings: { quiet_hours: null },
  });

  it('launches a broadcast, sends each eligible contact once, and completes', async () => {
    await seedContacts(runtime, ws, [
      ...Array.from({ length: 60 }, (_, i) => ({
        id: `a${i}`,
        phone: phoneOf(i),
        tags: ['a'],
        attributes: { first_name: `N${i}` },
      })),
      { id: 'a-out', phone: phoneOf(100), tags: ['a'], consent: { status: 'opted_out' as const } },
      { id: 'a-none', phone: phoneOf(101), tags: ['a'], consent: null },
    ]);
    const campaign = await createCampaign(
      runtime.pg,
      ws,
      { ...base('first', 'a'), holdout_percent: 10 },
      'tester',
    );
    const { review } = await launchCampaign(runtime, ws, campaign.id, 'tester');
    const ids = [...Array.from({ length: 60 }, (_, i) => `a${i}`), 'a-out', 'a-none'];
    const held = ids.filter((id) => inHoldout(campaign.id, id, 10));
    const holdouts = held.filter((id) => !id.startsWith('a-'));
    const noConsent = ['a-out', 'a-none'].filter((id) => !held.includes(id)).length;
    expect(review.audience_count).toBe(62);
    expect(review.excluded).toEqual({
      ...(held.length ? { holdout: held.length } : {}),
      ...(noConsent ? { no_consent: noConsent } : {}),
    });
    await dispatcher.kick();
    await waitFor(async () => (await getCampaign(runtime.pg, ws, campaign.id))?.state === 'completed');
    const mine = provider.sent.filter((s) => s.sendId.startsWith('snd_'));
    const phones = mine.map((s) => s.to);
    expect(new Set(phones).size).toBe(phones.length);
    expect(phones.length).toBe(60 - holdouts.length);
    const progress = await campaignProgress(runtime.pg, ws, campaign.id);
    expect(progress.counts.accepted).toBe(60 - holdouts.length);
    const audience = await runtime.ch.rows<{ n: string; h: string }>(
      `SELECT count() AS n, sum(holdout) AS h FROM ${runtime.ch.database}.campaign_audience FINAL WHERE campaign_id = {c:String}`,
      { c: campaign.id },
    );
    expect(Number(audience[0]!.n)).toBe(62);
    expect(Number(audience[0]!.h)).toBe(held.length);
    await waitFor(async () => {
      const sends = await runtime.ch.rows<{ n: string }>(
        `SELECT count() AS n FROM ${runtime.ch.database}.sends FINAL WHERE campaign_id = {c:String}`,
        { c: campaign.id },
      );
      return Number(sends[0]!.n) === 60 - holdouts.length;
    });
    const log = await auditLog(runtime.pg, ws, campaign.id);
    expect(log.map((l) => l.action)).toEqual(['create', 'launch_now', 'complete']);
  });

  it('holds frequency caps across two campaigns', async () => {
    await seedContacts(
      runtime,
      ws,
      Array.from({ length: 10 }, (_, i) => ({ id: `f${i}`, phone: phoneOf(200 + i), tags: ['f'] })),
    );
    const cap = { frequency_cap: { max: 1, days: 7 }, quiet_hours: null };
    const one = await createCampaign(runtime.pg, ws, { ...base('cap one', 'f'), settings: cap }, 'tester');
    await launchCampaign(runtime, ws, one.id, 'tester');
    await waitFor(async () => (await getCampaign(runtime.pg, ws, one.id))?.state === 'completed');
    const two = await createCampaign(runtime.pg, ws, { ...base('cap two', 'f'), settings: cap }, 'tester');
    // The second campaign's review already says every contact is capped.
    await expect(launchCampaign(runtime, ws, two.id, 'tester')).resolves.toBeTruthy();
    await waitFor(async () => (await getCampaign(runtime.pg, ws, two.id))?.state === 'completed');
    const progress = await campaignProgress(runtime.pg, ws, two.id);
    expect(progress.counts.accepted).toBe(0);
    expect(progress.skipped).toEqual({ frequency_cap: 10 });
  });

  it('refuses what would fail, leaving the campaign a draft', async () => {
    const pending = await createCampaign(
      runtime.pg,
      ws,
      { ...base('pending', 'a'), content: { template: { name: 'pending_one', language: 'en_US' } } },
      'tester',
    );
    await expect(launchCampaign(runtime, ws, pending.id, 'tester')).rejects.toThrow(/PENDING, not APPROVED/);
    const empty = await createCampaign(runtime.pg, ws, base('empty', 'nobody'), 'tester');
    await expect(launchCampaign(runtime, ws, empty.id, 'tester')).rejects.toThrow(/audience is empty/);
    const past = await createCampaign(
      runtime.pg,
      ws,
      { ...base('past', 'a'), schedule: { type: 'at', at: '2020-01-01T10:00', timezone: 'Asia/Kolkata' } },
      'tester',
    );
    await expect(launchCampaign(runtime, ws, past.id, 'tester')).rejects.toThrow(/in the past/);
    await expect(
      createCampaign(
        runtime.pg,
        ws,
        { ...base('tz', 'a'), schedule: { type: 'at', at: '2030-01-01T10:00', timezone: 'Mars/Olympus' } },
        'tester',
      ),
    ).rejects.toThrow(/invalid/);
    for (const id of [pending.id, empty.id, past.id])
      expect((await getCampaign(runtime.pg, ws, id))?.state).toBe('draft');
    const { rows } = await runtime.pg.query(
      'SELECT 1 FROM campaign_sends WHERE campaign_id = ANY($1::text[])',
      [[pending.id, empty.id, past.id]],
    );
    expect(rows).toHaveLength(0);
  });

  it('pause stops sending mid-run, resume finishes it, cancel skips the rest', async () => {
    await seedContacts(
      runtime,
      ws,
      Array.from({ length: 300 }, (_, i) => ({ id: `p${i}`, phone: phoneOf(1_000 + i), tags: ['p'] })),
    );
    await runtime.pg.query('UPDATE senders SET throughput_mps = 50 WHERE id = $1', [sender]);
    const c = await createCampaign(runtime.pg, ws, base('pausable', 'p'), 'tester');
    await launchCampaign(runtime, ws, c.id, 'tester');
    await waitFor(async () => (await campaignProgress(runtime.pg, ws, c.id)).counts.accepted >= 30);
    await pauseCampaign(runtime.pg, ws, c.id, 'tester');
    await new Promise((r) => setTimeout(r, 1_500)); // in-flight batches settle
    const atPause = (await campaignProgress(runtime.pg, ws, c.id)).counts.accepted;
    await new Promise((r) => setTimeout(r, 1_500));
    expect((await campaignProgress(runtime.pg, ws, c.id)).counts.accepted).toBe(atPause);
    expect(atPause).toBeLessThan(300);
    await resumeCampaign(runtime.pg, ws, c.id, 'tester');
    await waitFor(async () => (await campaignProgress(runtime.pg, ws, c.id)).counts.accepted > atPause);
    await cancelCampaign(runtime.pg, ws, c.id, 'tester');
    await new Promise((r) => setTimeout(r, 1_000));
    const final = await campaignProgress(runtime.pg, ws, c.id);
    expect(final.state).toBe('cancelled');
    expect(final.counts.queued).toBe(0);
    expect(final.counts.accepted + final.counts.skipped, JSON.stringify(final)).toBe(300);
    expect(final.skipped.cancelled).toBeGreaterThan(0);
    const sentTo = provider.sent.filter((s) => s.to >= phoneOf(1_000) && s.to <= phoneOf(1_299));
    expect(sentTo.length).toBe(final.counts.accepted);
    await runtime.pg.query('UPDATE senders SET throughput_mps = 200 WHERE id = $1', [sender]);
  });

  it('auto-pauses on a spam-rate error (131048) and shows the reason', async () => {
    await seedContacts(runtime, ws, [
      ...Array.from({ length: 20 }, (_, i) => ({ id: `s${i}`, phone: phoneOf(3_000 + i), tags: ['s'] })),
      { id: 's-spam', phone: '+919899999999', tags: ['s'] },
    ]);
    const c = await createCampaign(runtime.pg, ws, base('spammy', 's'), 'tester');
    await launchCampaign(runtime, ws, c.id, 'tester');
    const paused = await waitFor(async () => {
      const now = await getCampaign(runtime.pg, ws, c.id);
      return now?.state === 'paused' ? now : undefined;
    });
    expect(paused.state_reason).toMatch(/131048/);
    const { rows } = await runtime.pg.query<{ state: string }>(
      "SELECT state FROM campaign_sends WHERE campaign_id = $1 AND contact_id = 's-spam'",
      [c.id],
    );
    expect(rows[0]!.state).toBe('queued'); // not lost: sent after a resume
  });
});
