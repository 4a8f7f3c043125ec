import type { PgBoss } from 'pg-boss';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  campaignProgress,
  cancelCampaign,
  pauseCampaign,
  resumeCampaign,
} from '../engine/campaigns/control.ts';
import { groundTruthLookup } from '../engine/campaigns/dispatch.ts';
import { inHoldout, launchCampaign } from '../engine/campaigns/launch.ts';
import { auditLog, createCampaign, getCampaign } from '../engine/campaigns/model.ts';
import type { CampaignInput } from '../engine/campaigns/types.ts';
import { warmupDailyCap } from '../engine/throttle/index.ts';
import { createWorkspace } from '../engine/workspaces.ts';
import { startBoss } from '../jobs/boss.ts';
import { type DispatcherHandle, startDispatcher } from '../jobs/dispatch/index.ts';
import { type RunningSimulator, startSimulator } from '../simulator/server.ts';
import type { SimLogEntry } from '../simulator/simulator.ts';
import { createSender, phoneOf, seedContacts, waitFor } from './helpers/campaigns.ts';
import { openTestRuntime, postgresTargets, type TestRuntime } from './helpers/runtime.ts';

const PROMO = {
  name: 'promo',
  language: 'en_US',
  category: 'MARKETING',
  components: [
    { type: 'BODY' as const, text: 'Hello {{1}}, our new range is in.', example: { body_text: [['Asha']] } },
  ],
};

describe.each(postgresTargets)('campaigns against the simulator on $name', ({ url }) => {
  let runtime: TestRuntime;
  let boss: PgBoss;
  let dispatcher: DispatcherHandle;
  let sim: RunningSimulator;
  let ws: string;
  let sender: string;
  let smallSender: string;

  beforeAll(async () => {
    sim = await startSimulator({
      port: 0,
      seed: 'campaigns',
      appSecret: 'secret',
      accessToken: 'token',
      templates: [PROMO, { ...PROMO, name: 'pending_one', status: 'PENDING' }],
      tier: 'TIER_UNLIMITED',
      recipientRates: { notOnWhatsApp: 0, stoppedMarketing: 0 },
      marketingPerUserPerDay: 1_000,
      numbers: [
        { id: '1001', throughputMps: 80, portfolioId: 'pf_big' },
        { id: '1002', throughputMps: 80, portfolioId: 'pf_small' },
      ],
    });
    sim.sim.setTier('pf_small', 'TIER_250');
    runtime = await openTestRuntime({ postgresUrl: url });
    ws = (await createWorkspace(runtime.pg, { name: 'W' })).id;
    sender = await createSender(runtime, ws, {
      throughput: 80,
      baseUrl: sim.url,
      phoneNumberId: '1001',
      portfolio: 'pf_big',
    });
    smallSender = await createSender(runtime, ws, {
      throughput: 80,
      tier: 'TIER_250',
      baseUrl: sim.url,
      phoneNumberId: '1002',
      portfolio: 'pf_small',
    });
    // Template approval is asked of the provider, through the senders' business account.
    await runtime.pg.query("UPDATE senders SET waba_id = '100000000000001' WHERE workspace_id = $1", [ws]);
    boss = await startBoss(runtime);
    dispatcher = await startDispatcher(runtime, boss, {
      pumpIntervalMs: 200,
      lookup: groundTruthLookup(sim.url),
    });
  });
  afterAll(async () => {
    await dispatcher?.stop();
    await boss?.stop({ graceful: false });
    await runtime?.close();
    await sim?.close();
  });

  const base = (name: string, tag: string, overrides: Partial<CampaignInput> = {}): CampaignInput => ({
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
    settings: { quiet_hours: null, frequency_cap: null },
    ...overrides,
  });
  const accepted = (filter: (e: SimLogEntry) => boolean = () => true) =>
    sim.log.filter((e) => e.kind === 'send_accepted' && filter(e));
  const rejected = (code: number) => sim.log.filter((e) => e.kind === 'send_rejected' && e.code === code);
  const stateOf = async (id: string) => (await getCampaign(runtime.pg, ws, id))?.state;
  const ledger = async (campaignId: string) =>
    (
      await runtime.pg.query<{
        send_id: string;
        state: string;
        phone: string;
        provider_message_id: string | null;
      }>('SELECT send_id, state, phone, provider_message_id FROM campaign_sends WHERE campaign_id = $1', [
        campaignId,
      ])
    ).rows;

  it('launches a broadcast; the ledger and the ground truth agree, once per contact', async () => {
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
      base('first', 'a', { holdout_percent: 10 }),
      'tester',
    );
    const { review } = await launchCampaign(runtime, ws, campaign.id, 'tester');
    const ids = [...Array.from({ length: 60 }, (_, i) => `a${i}`), 'a-out', 'a-none'];
    const held = ids.filter((id) => inHoldout(campaign.id, id, 10));
    const noConsent = ['a-out', 'a-none'].filter((id) => !held.includes(id)).length;
    expect(review.audience_count).toBe(62);
    expect(review.excluded).toEqual({
      ...(held.length ? { holdout: held.length } : {}),
      ...(noConsent ? { no_consent: noConsent } : {}),
    });
    const expected = 60 - held.filter((id) => !id.startsWith('a-')).length;
    await waitFor(async () => (await stateOf(campaign.id)) === 'completed');
    const rows = await ledger(campaign.id);
    const truth = accepted((e) => rows.some((r) => r.send_id === e.sendId));
    expect(truth).toHaveLength(expected);
    expect(new Set(truth.map((e) => e.to)).size).toBe(expected);
    expect(rows.filter((r) => r.state === 'accepted')).toHaveLength(expected);
    for (const row of rows)
      expect(row.provider_message_id).toBe(truth.find((e) => e.sendId === row.send_id)!.wamid);
    const audience = await runtime.ch.rows<{ n: string; h: string }>(
      `SELECT count() AS n, sum(holdout) AS h FROM ${runtime.ch.database}.campaign_audience FINAL WHERE campaign_id = {c:String}`,
      { c: campaign.id },
    );
    expect(Number(audience[0]!.n)).toBe(62);
    expect(Number(audience[0]!.h)).toBe(held.length);
    await waitFor(async () => {
      const sends = await runtime.ch.rows<{ n: string }>(
        `SELECT count() AS n FROM ${runtime.ch.database}.sends FINAL WHERE campaign_id = {c:String} AND outcome = 'accepted'`,
        { c: campaign.id },
      );
      return Number(sends[0]!.n) === expected;
    });
    expect((await auditLog(runtime.pg, ws, campaign.id)).map((l) => l.action)).toEqual([
      'create',
      'launch_now',
      'complete',
    ]);
  });

  it('freezes a DSL segment audience at launch', async () => {
    await seedContacts(
      runtime,
      ws,
      Array.from({ length: 6 }, (_, i) => ({
        id: `g${i}`,
        phone: phoneOf(5_000 + i),
        tags: i < 4 ? ['seg'] : ['other'],
      })),
    );
    const campaign = await createCampaign(
      runtime.pg,
      ws,
      base('dsl', 'x', { audience: { type: 'segment', dsl: 'tagged "seg"' } }),
      'tester',
    );
    const { review } = await launchCampaign(runtime, ws, campaign.id, 'tester');
    expect(review.audience_count).toBe(4);
    await waitFor(async () => (await stateOf(campaign.id)) === 'completed');
    const snapshot = await runtime.ch.rows<{ contact_id: string }>(
      `SELECT contact_id FROM ${runtime.ch.database}.audience_snapshots WHERE snapshot_id = {s:String} ORDER BY contact_id`,
      { s: campaign.id },
    );
    expect(snapshot.map((r) => r.contact_id)).toEqual(['g0', 'g1', 'g2', 'g3']);
    const bad = await createCampaign(
      runtime.pg,
      ws,
      base('bad dsl', 'x', { audience: { type: 'segment', dsl: 'tagged' } }),
      'tester',
    );
    await expect(launchCampaign(runtime, ws, bad.id, 'tester')).rejects.toThrow(/segment cannot be resolved/);
  });

  it('sends steadily at 80 per second without a single 130429', async () => {
    await seedContacts(
      runtime,
      ws,
      Array.from({ length: 320 }, (_, i) => ({ id: `r${i}`, phone: phoneOf(10_000 + i), tags: ['r'] })),
    );
    const campaign = await createCampaign(runtime.pg, ws, base('rate', 'r'), 'tester');
    await launchCampaign(runtime, ws, campaign.id, 'tester');
    await waitFor(async () => (await stateOf(campaign.id)) === 'completed');
    expect(rejected(130429)).toHaveLength(0);
    const times = accepted((e) => e.phoneNumberId === '1001').map((e) => Date.parse(e.at));
    // Sliding one-second windows never hold more than the number's 80.
    for (let i = 80; i < times.length; i++) expect(times[i]! - times[i - 80]!).toBeGreaterThan(1000);
    expect((await campaignProgress(runtime.pg, ws, campaign.id)).counts.accepted).toBe(320);
  });

  it('honours the pair rate across campaigns (no 131056, 6 s apart)', async () => {
    await seedContacts(
      runtime,
      ws,
      Array.from({ length: 8 }, (_, i) => ({ id: `q${i}`, phone: phoneOf(20_000 + i), tags: ['q'] })),
    );
    const one = await createCampaign(runtime.pg, ws, base('pair one', 'q'), 'tester');
    const two = await createCampaign(runtime.pg, ws, base('pair two', 'q'), 'tester');
    await launchCampaign(runtime, ws, one.id, 'tester');
    await waitFor(async () => (await stateOf(one.id)) === 'completed');
    await launchCampaign(runtime, ws, two.id, 'tester');
    await waitFor(
      async () => (await campaignProgress(runtime.pg, ws, two.id)).held.pair_rate === 8,
      10_000,
      50,
    );
    await waitFor(async () => (await stateOf(two.id)) === 'completed', 20_000);
    expect(rejected(131056)).toHaveLength(0);
    for (let i = 0; i < 8; i++) {
      const at = accepted((e) => e.to === phoneOf(20_000 + i)).map((e) => Date.parse(e.at));
      expect(at).toHaveLength(2);
      expect(at[1]! - at[0]!).toBeGreaterThanOrEqual(5_900);
    }
  });

  it('never exceeds the messaging tier: the rest is held, not sent', async () => {
    await seedContacts(
      runtime,
      ws,
      Array.from({ length: 270 }, (_, i) => ({ id: `t${i}`, phone: phoneOf(30_000 + i), tags: ['t'] })),
    );
    const campaign = await createCampaign(
      runtime.pg,
      ws,
      base('tier', 't', { sender_id: smallSender }),
      'tester',
    );
    const { review } = await launchCampaign(runtime, ws, campaign.id, 'tester');
    expect(review.warnings.map((w) => w.code)).toContain('tier_too_small');
    await waitFor(async () => {
      const p = await campaignProgress(runtime.pg, ws, campaign.id);
      return p.held.tier === 20 && p.counts.accepted === 250;
    });
    const progress = await campaignProgress(runtime.pg, ws, campaign.id);
    expect(progress.counts.accepted).toBe(250);
    expect(progress.state).toBe('running');
    expect(sim.counts.over_tier ?? 0).toBe(0);
    expect(sim.sim.numberState('1002')!.uniqueUsers24h).toBe(250);
    await cancelCampaign(runtime.pg, ws, campaign.id, 'tester');
  });

  it('holds quiet hours in three time zones until each window opens', async () => {
    const zones = ['Asia/Kolkata', 'Europe/London', 'America/New_York'];
    await seedContacts(
      runtime,
      ws,
      zones.flatMap((zone, z) =>
        Array.from({ length: 3 }, (_, i) => ({
          id: `z${z}_${i}`,
          phone: phoneOf(40_000 + z * 10 + i),
          tags: ['z'],
          timezone: zone,
        })),
      ),
    );
    // Policy clock at 03:00 UTC on a winter day: 08:30 in Kolkata, 03:00 in London, 22:00 in New York.
    const at = (iso: string) => Date.parse(iso) - Date.now();
    dispatcher.options.clockOffsetMs = at('2026-01-15T03:00:00Z');
    try {
      const campaign = await createCampaign(
        runtime.pg,
        ws,
        base('quiet', 'z', { settings: { quiet_hours: { start: 21, end: 9 }, frequency_cap: null } }),
        'tester',
      );
      await launchCampaign(runtime, ws, campaign.id, 'tester', {
        now: new Date(Date.now() + dispatcher.options.clockOffsetMs),
      });
      const opens = {
        'Asia/Kolkata': '2026-01-15T03:30:00.000Z',
        'Europe/London': '2026-01-15T09:00:00.000Z',
        'America/New_York': '2026-01-15T14:00:00.000Z',
      };
      const held = async () =>
        (
          await runtime.pg.query<{ timezone: string; state: string; not_before: Date }>(
            'SELECT timezone, state, not_before FROM campaign_sends WHERE campaign_id = $1',
            [campaign.id],
          )
        ).rows;
      await waitFor(async () => (await campaignProgress(runtime.pg, ws, campaign.id)).held.quiet_hours === 9);
      for (const row of await held())
        expect(new Date(row.not_before).toISOString()).toBe(opens[row.timezone as keyof typeof opens]);
      const sentTo = (z: number) =>
        accepted((e) => e.to!.startsWith(phoneOf(40_000 + z * 10).slice(0, -1))).length;
      expect([0, 1, 2].map(sentTo)).toEqual([0, 0, 0]);
      // Kolkata's morning: only Kolkata goes.
      dispatcher.options.clockOffsetMs = at('2026-01-15T03:31:00Z');
      await waitFor(async () => sentTo(0) === 3);
      expect([sentTo(1), sentTo(2)]).toEqual([0, 0]);
      dispatcher.options.clockOffsetMs = at('2026-01-15T09:01:00Z');
      await waitFor(async () => sentTo(1) === 3);
      expect(sentTo(2)).toBe(0);
      dispatcher.options.clockOffsetMs = at('2026-01-15T14:01:00Z');
      await waitFor(async () => (await stateOf(campaign.id)) === 'completed');
      expect([0, 1, 2].map(sentTo)).toEqual([3, 3, 3]);
    } finally {
      dispatcher.options.clockOffsetMs = 0;
    }
  });

  it('holds frequency caps across two campaigns', async () => {
    await seedContacts(
      runtime,
      ws,
      Array.from({ length: 10 }, (_, i) => ({ id: `f${i}`, phone: phoneOf(50_000 + i), tags: ['f'] })),
    );
    const cap = { frequency_cap: { max: 1, days: 7 }, quiet_hours: null };
    const one = await createCampaign(runtime.pg, ws, base('cap one', 'f', { settings: cap }), 'tester');
    await launchCampaign(runtime, ws, one.id, 'tester');
    await waitFor(async () => (await stateOf(one.id)) === 'completed');
    const two = await createCampaign(runtime.pg, ws, base('cap two', 'f', { settings: cap }), 'tester');
    const { review } = await launchCampaign(runtime, ws, two.id, 'tester');
    expect(review.after_frequency_cap_count).toBe(0);
    await waitFor(async () => (await stateOf(two.id)) === 'completed');
    const progress = await campaignProgress(runtime.pg, ws, two.id);
    expect(progress.counts.accepted).toBe(0);
    expect(progress.skipped).toEqual({ frequency_cap: 10 });
    for (let i = 0; i < 10; i++) expect(accepted((e) => e.to === phoneOf(50_000 + i))).toHaveLength(1);
  });

  it('refuses what would fail, leaving the campaign a draft', async () => {
    const pending = await createCampaign(
      runtime.pg,
      ws,
      base('pending', 'a', { content: { template: { name: 'pending_one', language: 'en_US' } } }),
      'tester',
    );
    await expect(launchCampaign(runtime, ws, pending.id, 'tester')).rejects.toThrow(/PENDING, not APPROVED/);
    const empty = await createCampaign(runtime.pg, ws, base('empty', 'nobody'), 'tester');
    await expect(launchCampaign(runtime, ws, empty.id, 'tester')).rejects.toThrow(/audience is empty/);
    const past = await createCampaign(
      runtime.pg,
      ws,
      base('past', 'a', { schedule: { type: 'at', at: '2020-01-01T10:00', timezone: 'Asia/Kolkata' } }),
      'tester',
    );
    await expect(launchCampaign(runtime, ws, past.id, 'tester')).rejects.toThrow(/in the past/);
    await expect(
      createCampaign(
        runtime.pg,
        ws,
        base('tz', 'a', { schedule: { type: 'at', at: '2030-01-01T10:00', timezone: 'Mars/Olympus' } }),
        'tester',
      ),
    ).rejects.toThrow(/invalid/);
    for (const id of [pending.id, empty.id, past.id]) expect(await stateOf(id)).toBe('draft');
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
      Array.from({ length: 300 }, (_, i) => ({ id: `p${i}`, phone: phoneOf(60_000 + i), tags: ['p'] })),
    );
    const c = await createCampaign(runtime.pg, ws, base('pausable', 'p'), 'tester');
    const mine = () => accepted((e) => e.to! >= phoneOf(60_000) && e.to! <= phoneOf(60_299)).length;
    await launchCampaign(runtime, ws, c.id, 'tester');
    await waitFor(async () => mine() >= 40, 30_000, 20);
    // Mid-run progress: sends settled in the last 10 s give a rate, and the rest an ETA at that rate.
    let running = await campaignProgress(runtime.pg, ws, c.id);
    await waitFor(
      async () => {
        running = await campaignProgress(runtime.pg, ws, c.id);
        return running.counts.accepted > 0;
      },
      30_000,
      20,
    );
    expect(running.rate_per_second).toBeGreaterThan(0);
    expect(running.eta_seconds).toBe(
      Math.ceil((running.counts.queued + running.counts.sending) / running.rate_per_second),
    );
    await pauseCampaign(runtime.pg, ws, c.id, 'tester');
    // Requests already out when the pause landed settle; then nothing more goes out.
    await waitFor(async () => (await campaignProgress(runtime.pg, ws, c.id)).counts.sending === 0, 30_000);
    const atPause = mine();
    await new Promise((r) => setTimeout(r, 1_500));
    expect(mine()).toBe(atPause);
    expect(atPause).toBeLessThan(300);
    await resumeCampaign(runtime.pg, ws, c.id, 'tester');
    await waitFor(async () => mine() > atPause + 40, 30_000, 20);
    await cancelCampaign(runtime.pg, ws, c.id, 'tester');
    // Sends already out when the cancel landed settle (however slow a loaded machine makes them);
    // after that nothing more goes out.
    await waitFor(async () => {
      const { counts } = await campaignProgress(runtime.pg, ws, c.id);
      return counts.queued + counts.sending === 0;
    }, 30_000);
    const atCancel = mine();
    await new Promise((r) => setTimeout(r, 1_500));
    expect(mine()).toBe(atCancel);
    const final = await campaignProgress(runtime.pg, ws, c.id);
    expect(final.state).toBe('cancelled');
    expect(final.counts.queued + final.counts.sending).toBe(0);
    expect(final.counts.accepted).toBe(atCancel);
    expect(final.counts.accepted + final.counts.skipped).toBe(300);
    expect(final.skipped.cancelled).toBeGreaterThan(0);
    expect((await auditLog(runtime.pg, ws, c.id)).map((l) => l.action)).toEqual([
      'create',
      'launch_now',
      'pause',
      'resume',
      'cancel',
    ]);
  });

  it('auto-pauses on a quality drop: 131048 from the provider, or the sender turning RED', async () => {
    await seedContacts(
      runtime,
      ws,
      Array.from({ length: 200 }, (_, i) => ({ id: `s${i}`, phone: phoneOf(70_000 + i), tags: ['s'] })),
    );
    sim.injectFault({ code: 131048, phoneNumberId: '1001', to: phoneOf(70_050).slice(1) });
    const c = await createCampaign(runtime.pg, ws, base('spammy', 's'), 'tester');
    await launchCampaign(runtime, ws, c.id, 'tester');
    await waitFor(async () => (await stateOf(c.id)) === 'paused');
    const paused = await getCampaign(runtime.pg, ws, c.id);
    expect(paused!.state_reason).toMatch(/131048/);
    const { rows } = await runtime.pg.query<{ state: string }>(
      "SELECT state FROM campaign_sends WHERE campaign_id = $1 AND contact_id = 's50'",
      [c.id],
    );
    expect(rows[0]!.state).toBe('queued'); // not lost: sent after a resume
    // The quality webhook marks the sender RED: a resumed campaign pauses again before sending more.
    await runtime.pg.query("UPDATE senders SET quality = 'RED' WHERE id = $1", [sender]);
    await resumeCampaign(runtime.pg, ws, c.id, 'tester');
    await waitFor(async () => (await stateOf(c.id)) === 'paused');
    expect((await getCampaign(runtime.pg, ws, c.id))!.state_reason).toMatch(/quality is RED/);
    await runtime.pg.query("UPDATE senders SET quality = 'GREEN' WHERE id = $1", [sender]);
    await resumeCampaign(runtime.pg, ws, c.id, 'tester');
    await waitFor(async () => (await stateOf(c.id)) === 'completed');
    expect(accepted((e) => e.to === phoneOf(70_050))).toHaveLength(1);
  });

  it('auto-pauses when the sender is restricted (368) and on a failure rate over the set share', async () => {
    await seedContacts(
      runtime,
      ws,
      Array.from({ length: 40 }, (_, i) => ({
        id: `rx${i}`,
        phone: phoneOf(80_000 + i),
        tags: ['restricted'],
      })),
    );
    const restricted = await createCampaign(runtime.pg, ws, base('restricted', 'restricted'), 'tester');
    sim.sim.restrictNumber('1001', 368);
    try {
      await launchCampaign(runtime, ws, restricted.id, 'tester');
      await waitFor(async () => (await stateOf(restricted.id)) === 'paused');
      // Requests out when the pause landed settle (each refused too) before anything is checked.
      await waitFor(async () => (await campaignProgress(runtime.pg, ws, restricted.id)).counts.sending === 0);
      expect((await getCampaign(runtime.pg, ws, restricted.id))!.state_reason).toMatch(/368/);
      const progress = await campaignProgress(runtime.pg, ws, restricted.id);
      expect(progress.counts.accepted).toBe(0);
      expect(progress.counts.queued).toBe(40); // kept for after the restriction lifts
      await cancelCampaign(runtime.pg, ws, restricted.id, 'tester');
    } finally {
      sim.sim.restrictNumber('1001', null);
      await runtime.pg.query("UPDATE senders SET status = 'active', status_reason = NULL WHERE id = $1", [
        sender,
      ]);
    }

    // Half the audience is undeliverable: past 10 attempts, over 20% failed pauses the campaign.
    await seedContacts(
      runtime,
      ws,
      Array.from({ length: 60 }, (_, i) => ({ id: `fr${i}`, phone: phoneOf(81_000 + i), tags: ['failing'] })),
    );
    for (let i = 0; i < 30; i++) sim.injectFault({ code: 131026, to: phoneOf(81_000 + i).slice(1) });
    const failing = await createCampaign(
      runtime.pg,
      ws,
      base('failing', 'failing', {
        settings: {
          quiet_hours: null,
          frequency_cap: null,
          auto_pause: { failure_rate: 0.2, window: 20, min_attempts: 10 },
        },
      }),
      'tester',
    );
    await launchCampaign(runtime, ws, failing.id, 'tester');
    await waitFor(async () => (await stateOf(failing.id)) === 'paused');
    expect((await getCampaign(runtime.pg, ws, failing.id))!.state_reason).toMatch(
      /failure rate .* exceeds 20\.0%/,
    );
    const progress = await campaignProgress(runtime.pg, ws, failing.id);
    expect(progress.counts.failed).toBeGreaterThanOrEqual(3);
    await cancelCampaign(runtime.pg, ws, failing.id, 'tester');
  });

  it('checks consent again right before each send: an opt-out after launch is skipped, not sent', async () => {
    await seedContacts(
      runtime,
      ws,
      Array.from({ length: 6 }, (_, i) => ({ id: `o${i}`, phone: phoneOf(82_000 + i), tags: ['o'] })),
    );
    // Scheduled a few seconds ahead, so the ledger is written at launch and nothing is sent yet.
    const at = new Date(Date.now() + 4_000).toISOString();
    const campaign = await createCampaign(
      runtime.pg,
      ws,
      base('late opt-out', 'o', { schedule: { type: 'at', at, timezone: 'UTC' } }),
      'tester',
    );
    const { review } = await launchCampaign(runtime, ws, campaign.id, 'tester');
    expect(review.eligible_count).toBe(6);
    await runtime.pg.query(
      `UPDATE consent_current SET status = 'opted_out', recorded_at = now()
        WHERE workspace_id = $1 AND contact_id = 'o2' AND channel = 'whatsapp' AND purpose = 'marketing'`,
      [ws],
    );
    expect(accepted((e) => e.to! >= phoneOf(82_000) && e.to! <= phoneOf(82_005))).toHaveLength(0);
    await waitFor(async () => (await stateOf(campaign.id)) === 'completed');
    const progress = await campaignProgress(runtime.pg, ws, campaign.id);
    expect(progress.counts.accepted).toBe(5);
    expect(progress.skipped).toEqual({ no_consent: 1 });
    expect(accepted((e) => e.to === phoneOf(82_002))).toHaveLength(0);
  });

  it("holds a warming-up sender to its day's volume: the excess waits for the next UTC day", async () => {
    await seedContacts(
      runtime,
      ws,
      Array.from({ length: 10 }, (_, i) => ({ id: `w${i}`, phone: phoneOf(83_000 + i), tags: ['w'] })),
    );
    // Day 0 of the ramp, with all but 4 of the day's allowance already used.
    const today = new Date().toISOString().slice(0, 10);
    await runtime.pg.query('UPDATE senders SET warmup_started_at = now() WHERE id = $1', [sender]);
    await runtime.pg.query(
      `INSERT INTO throttle_sender_days (sender_id, day, sent) VALUES ($1, $2, $3)
       ON CONFLICT (sender_id, day) DO UPDATE SET sent = EXCLUDED.sent`,
      [sender, today, warmupDailyCap(0) - 4],
    );
    try {
      const campaign = await createCampaign(runtime.pg, ws, base('warming', 'w'), 'tester');
      const { review } = await launchCampaign(runtime, ws, campaign.id, 'tester');
      expect(review.warnings.map((w) => w.code)).toContain('warmup');
      await waitFor(async () => (await campaignProgress(runtime.pg, ws, campaign.id)).held.warmup === 6);
      const progress = await campaignProgress(runtime.pg, ws, campaign.id);
      expect(progress.counts.accepted + progress.counts.sending).toBe(4);
      expect(progress.state).toBe('running');
      const { rows } = await runtime.pg.query<{ not_before: Date }>(
        "SELECT DISTINCT not_before FROM campaign_sends WHERE campaign_id = $1 AND skip_reason = 'warmup'",
        [campaign.id],
      );
      expect(rows.map((r) => new Date(r.not_before).toISOString())).toEqual([
        new Date(Date.parse(`${today}T00:00:00Z`) + 86_400_000).toISOString(),
      ]);
      await cancelCampaign(runtime.pg, ws, campaign.id, 'tester');
    } finally {
      await runtime.pg.query('UPDATE senders SET warmup_started_at = NULL WHERE id = $1', [sender]);
      await runtime.pg.query('DELETE FROM throttle_sender_days WHERE sender_id = $1', [sender]);
    }
  });
});
