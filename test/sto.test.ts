import fc from 'fast-check';
import { DateTime } from 'luxon';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { planSendTimes, stoChooser, stoChooserWithFallback } from '../engine/sto/chooser.ts';
import { fitSendTime, latestFit, offsetTransitions } from '../engine/sto/fit.ts';
import { STO_FIT_QUEUE, stoQueues } from '../engine/sto/jobs.ts';
import { kappaFromMoments, momentSums } from '../engine/sto/priors.ts';
import { beta, seededRandom } from '../engine/sto/random.ts';
import { setStoSettings } from '../engine/sto/settings.ts';
import { candidatesFor, isQuiet, SendTimeInputError, validateSendTimeInput } from '../engine/sto/slots.ts';
import { createWorkspace } from '../engine/workspaces.ts';
import { openTestRuntime, postgresTargets, type TestRuntime } from './helpers/runtime.ts';

const hour = 3_600_000;

describe('slots and windows', () => {
  it('quiet hours wrap past midnight', () => {
    const quiet = { start: 21, end: 9 };
    expect([20, 21, 23, 0, 8, 9].map((h) => isQuiet(h, quiet))).toEqual([
      false,
      true,
      true,
      true,
      true,
      false,
    ]);
    expect([12, 13, 14].map((h) => isQuiet(h, { start: 13, end: 14 }))).toEqual([false, true, false]);
  });

  it('candidates start at the window start, then every local hour, skipping quiet hours', () => {
    const window = { start: new Date('2026-06-01T03:40:00Z'), end: new Date('2026-06-01T10:00:00Z') };
    // Kolkata is UTC+5:30: 09:10 local, then 10:00 ... 15:00 local; quiet until 11
    const candidates = candidatesFor('Asia/Kolkata', window, { start: 21, end: 11 });
    expect(candidates.map((c) => c.hour)).toEqual([11, 12, 13, 14, 15]);
    expect(candidates[0]!.at.toISOString()).toBe('2026-06-01T05:30:00.000Z');
    expect(candidates.every((c) => c.slot === c.hour)).toBe(true); // a Monday
  });

  it('candidates keep to the window and out of quiet hours, in any zone, across DST changes', () => {
    const zones = ['America/New_York', 'Europe/London', 'Asia/Kolkata', 'Australia/Lord_Howe', 'UTC'];
    fc.assert(
      fc.property(
        fc.constantFrom(...zones),
        fc.integer({ min: Date.UTC(2026, 0, 1), max: Date.UTC(2026, 11, 1) }),
        fc.integer({ min: 1, max: 24 * 7 }),
        fc.integer({ min: 0, max: 23 }),
        fc.integer({ min: 0, max: 23 }),
        (zone, start, hours, qs, qe) => {
          fc.pre(qs !== qe);
          const window = { start: new Date(start), end: new Date(start + hours * hour) };
          const quiet = { start: qs, end: qe };
          const candidates = candidatesFor(zone, window, quiet);
          for (const c of candidates) {
            expect(c.at.getTime()).toBeGreaterThanOrEqual(window.start.getTime());
            expect(c.at.getTime()).toBeLessThan(window.end.getTime());
            const local = DateTime.fromJSDate(c.at, { zone });
            expect(local.hour).toBe(c.hour);
            expect(isQuiet(c.hour, quiet)).toBe(false);
          }
          // no two candidates in the same local hour of the same day
          const keys = candidates.map((c) =>
            DateTime.fromJSDate(c.at, { zone }).toFormat('yyyy-MM-dd HH ZZ'),
          );
          expect(new Set(keys).size).toBe(keys.length);
        },
      ),
      { numRuns: 200 },
    );
  });

  it.each([
    [
      'a window under an hour',
      { start: new Date(0), end: new Date(59 * 60_000) },
      undefined,
      'window_too_short',
    ],
    ['an empty window', { start: new Date(hour), end: new Date(hour) }, undefined, 'invalid_window'],
    ['a reversed window', { start: new Date(2 * hour), end: new Date(0) }, undefined, 'invalid_window'],
    [
      'a window of 40 days',
      { start: new Date(0), end: new Date(40 * 24 * hour) },
      undefined,
      'window_too_long',
    ],
    [
      'quiet hours out of range',
      { start: new Date(0), end: new Date(5 * hour) },
      { start: 25, end: 3 },
      'invalid_quiet_hours',
    ],
    [
      'quiet hours of zero length',
      { start: new Date(0), end: new Date(5 * hour) },
      { start: 3, end: 3 },
      'invalid_quiet_hours',
    ],
  ])('rejects %s', (_label, window, quiet, code) => {
    expect(() => validateSendTimeInput(window, quiet)).toThrow(SendTimeInputError);
    try {
      validateSendTimeInput(window, quiet);
    } catch (error) {
      expect((error as SendTimeInputError).code).toBe(code);
    }
  });

  it('zone offsets change at the DST instant', () => {
    const t = offsetTransitions(
      'America/New_York',
      new Date('2026-03-01T00:00:00Z'),
      new Date('2026-04-01T00:00:00Z'),
    );
    expect(t.map((r) => r.offset_seconds)).toEqual([-5 * 3600, -4 * 3600]);
    expect(t[1]!.valid_from).toBe('2026-03-08 07:00:00.000');
    expect(offsetTransitions('Asia/Kolkata', new Date('2026-03-01'), new Date('2026-09-01'))).toHaveLength(1);
  });
});

describe('method-of-moments prior strength', () => {
  it.each([5, 20, 100])('recovers kappa = %d from simulated beta-binomial units', (kappa) => {
    const random = seededRandom(`mom${kappa}`);
    const mu = 0.3;
    const units = Array.from({ length: 20_000 }, () => {
      const p = beta(random, kappa * mu, kappa * (1 - mu));
      const n = 1 + Math.floor(random() * 12);
      let k = 0;
      for (let i = 0; i < n; i++) if (random() < p) k++;
      return { n, k, mu };
    });
    const fitted = kappaFromMoments(momentSums(units), -1);
    expect(fitted).toBeGreaterThan(kappa * 0.8);
    expect(fitted).toBeLessThan(kappa * 1.25);
  });

  it('falls back when there is nothing to fit and caps a homogeneous population', () => {
    expect(kappaFromMoments(momentSums([]), 7)).toBe(7);
    const same = Array.from({ length: 1000 }, (_, i) => ({ n: 10, k: 3 + (i % 2 ? 0 : 0), mu: 0.3 }));
    expect(kappaFromMoments(momentSums(same), 7)).toBe(100_000);
  });
});

describe.each(postgresTargets)('fit and chooser on $name', ({ url }) => {
  let runtime: TestRuntime;
  let ws: string;
  const until = new Date('2026-06-30T00:00:00Z');
  const day = 24 * hour;
  let seq = 0;
  const sends: Record<string, unknown>[] = [];
  const statuses: Record<string, unknown>[] = [];
  const events: Record<string, unknown>[] = [];
  const send = (contact: string, zone: string, country: string, at: Date, readAfterMs?: number) => {
    const id = `s${seq++}`;
    sends.push({
      workspace_id: ws,
      send_id: id,
      contact_id: contact,
      country,
      timezone: zone,
      provider_message_id: `wamid.${id}`,
      outcome: 'accepted',
      sent_at: at.toISOString(),
    });
    if (readAfterMs !== undefined)
      statuses.push({
        workspace_id: ws,
        provider_message_id: `wamid.${id}`,
        status: 'read',
        ts: new Date(at.getTime() + readAfterMs).toISOString(),
      });
  };

  beforeAll(async () => {
    runtime = await openTestRuntime({ postgresUrl: url });
    ws = (await createWorkspace(runtime.pg, { name: 'STO', timezone: 'Europe/London' })).id;
    await setStoSettings(runtime.pg, ws, { engagementEvents: ['app_open'] });
    // A (Kolkata, UTC+5:30): read every send at 10:00 local, never at 16:00 local; weekdays in June 2026
    for (const d of [1, 2, 3, 4, 5, 8, 9, 10, 11, 12]) {
      send('A', 'Asia/Kolkata', 'IN', new Date(Date.UTC(2026, 5, d, 4, 30)), 3_600_000);
      send('A', 'Asia/Kolkata', 'IN', new Date(Date.UTC(2026, 5, d, 10, 30)));
    }
    // a read 30 h after its send is no engagement; a send in the last day before `until` is not counted
    send('A', 'Asia/Kolkata', 'IN', new Date(Date.UTC(2026, 5, 15, 4, 30)), 30 * 3_600_000);
    send('A', 'Asia/Kolkata', 'IN', new Date(until.getTime() - 2 * hour), 60_000);
    // B (New York, UTC-4 in June): no statuses, but opens the app two hours after the 18:00 sends
    for (const d of [6, 7, 13, 14]) {
      const at = new Date(Date.UTC(2026, 5, d, 22, 0)); // 18:00 local on weekend days
      send('B', 'America/New_York', 'US', at);
      events.push({
        workspace_id: ws,
        name: 'app_open',
        contact_id: 'B',
        ts: new Date(at.getTime() + 2 * hour).toISOString(),
        event_id: `e${d}`,
        properties: '{}',
      });
      events.push({
        workspace_id: ws,
        name: 'purchase',
        contact_id: 'B',
        ts: new Date(at.getTime() + 3 * hour).toISOString(),
        event_id: `p${d}`,
        properties: '{}',
      });
      send('B', 'America/New_York', 'US', new Date(Date.UTC(2026, 5, d, 13, 0)));
    }
    // C: a send without a zone falls back to the workspace's (London, UTC+1 in June)
    send('C', '', 'GB', new Date(Date.UTC(2026, 5, 3, 8, 0)), 60_000);
    // a send of another workspace never counts
    sends.push({ ...sends[0]!, workspace_id: 'ws_other', send_id: 'other' });
    // a duplicate row of the same send (ReplacingMergeTree before a merge) counts once
    sends.push({ ...sends[0]! });
    await runtime.ch.insert('sends', sends);
    await runtime.ch.insert('message_statuses', statuses);
    await runtime.ch.insert('events', events);
  });
  afterAll(async () => runtime?.close());

  it('fits features per contact and local slot, engaged within 24 h only', async () => {
    const fit = await fitSendTime(runtime, ws, { until });
    expect(fit.contacts).toBe(3);
    const rows = await runtime.ch.rows<{
      contact_id: string;
      slot: number;
      sends: number;
      engaged: number;
      last_engaged_hour: number;
      timezone: string;
      country: string;
    }>(
      `SELECT contact_id, slot, sends, engaged, last_engaged_hour, timezone, country
       FROM ${runtime.ch.database}.sto_contact_slots WHERE fit_id = {fit:String} ORDER BY contact_id, slot`,
      { fit: fit.fitId },
    );
    expect(
      rows.map((r) => [
        r.contact_id,
        Number(r.slot),
        Number(r.sends),
        Number(r.engaged),
        Number(r.last_engaged_hour),
        r.timezone,
        r.country,
      ]),
    ).toEqual([
      ['A', 10, 11, 10, 11, 'Asia/Kolkata', 'IN'], // 10 reads within the hour (read at 11:00 local), one read too late
      ['A', 16, 10, 0, -1, 'Asia/Kolkata', 'IN'],
      ['B', 24 + 9, 4, 0, -1, 'America/New_York', 'US'], // 09:00 local on weekends, nothing
      ['B', 24 + 18, 4, 4, 20, 'America/New_York', 'US'], // app_open 2 h later, at 20:00 local
      ['C', 9, 1, 1, 9, 'Europe/London', 'GB'], // 08:00Z is 09:00 in London in June; no zone: the workspace's
    ]);
    const record = await latestFit(runtime, ws);
    expect(record?.id).toBe(fit.fitId);
    expect(Number(record?.sends)).toBe(30);
    expect(Number(record?.engaged)).toBe(15);
  });

  it('chooses the hour the contact engages at, inside the window and out of quiet hours', async () => {
    const window = { start: new Date('2026-07-01T00:00:00Z'), end: new Date('2026-07-02T00:00:00Z') }; // a Wednesday
    const result = await planSendTimes(
      runtime,
      {
        workspaceId: ws,
        window,
        contacts: [
          { id: 'A', timezone: 'Asia/Kolkata' },
          { id: 'newcomer', timezone: 'Asia/Kolkata' },
          { id: 'lost', timezone: 'Mars/Olympus_Mons' },
          { id: 'nozone', timezone: null },
        ],
        quietHours: { start: 21, end: 8 },
        explorationShare: 0,
      },
      { confidence: true },
    );
    const [a, newcomer, lost, nozone] = result.details;
    expect(a!.localHour).toBe(10);
    expect(a!.plan!.at.toISOString()).toBe('2026-07-01T04:30:00.000Z');
    expect(a!.plan!.propensity).toBe(1);
    expect(a!.source).toBe('contact');
    expect(a!.runnerUp!.localHour).not.toBe(10);
    expect(a!.confidence).toBeGreaterThan(0.5);
    // no history: the cohort (Kolkata) prior, which also likes 10:00
    expect(newcomer!.source).toBe('cohort');
    expect(newcomer!.localHour).toBe(10);
    expect(newcomer!.history).toEqual({ sends: 0, engaged: 0 });
    // an unknown zone: the workspace's zone, said so
    expect(lost!.timezone).toBe('Europe/London');
    expect(lost!.timezoneSource).toBe('workspace');
    expect(nozone!.timezoneSource).toBe('workspace');
    for (const d of result.details) {
      expect(d.plan!.at.getTime()).toBeGreaterThanOrEqual(window.start.getTime());
      expect(d.plan!.at.getTime()).toBeLessThan(window.end.getTime());
      expect(isQuiet(d.localHour!, { start: 21, end: 8 })).toBe(false);
    }
  });

  it('skips contacts whose window lies wholly in their quiet hours, and says why', async () => {
    // 23:00-01:00 UTC is 04:30-06:30 in Kolkata (quiet) but 19:00-21:00 in New York (allowed)
    const result = await planSendTimes(runtime, {
      workspaceId: ws,
      window: { start: new Date('2026-07-01T23:00:00Z'), end: new Date('2026-07-02T01:00:00Z') },
      contacts: [
        { id: 'A', timezone: 'Asia/Kolkata' },
        { id: 'B', timezone: 'America/New_York' },
      ],
      quietHours: { start: 21, end: 8 },
    });
    expect(result.skipped).toEqual([{ contactId: 'A', reason: 'quiet_hours' }]);
    expect(result.plans.map((p) => p.contactId)).toEqual(['B']);
  });

  it('explores the configured share at uniform hours, logs propensities, and is reproducible', async () => {
    const contacts = Array.from({ length: 2000 }, (_, i) => ({ id: `x${i}`, timezone: 'Asia/Kolkata' }));
    const request = {
      workspaceId: ws,
      window: { start: new Date('2026-07-01T00:00:00Z'), end: new Date('2026-07-02T00:00:00Z') },
      contacts,
      quietHours: { start: 22, end: 8 },
      explorationShare: 0.2,
      seed: 'plan-1',
    };
    const plans = await stoChooser(runtime).choose(request);
    const explored = plans.filter((p) => p.exploration);
    expect(explored.length).toBeGreaterThan(320);
    expect(explored.length).toBeLessThan(480);
    // 14 allowed hours: exploitation has 0.8 + 0.2/14, an explored other hour 0.2/14
    const hours = new Set(explored.map((p) => p.at.getTime()));
    expect(hours.size).toBe(14);
    for (const p of plans) {
      const greedy = p.at.toISOString() === '2026-07-01T04:30:00.000Z';
      expect(p.propensity).toBeCloseTo(greedy ? 0.8 + 0.2 / 14 : 0.2 / 14, 10);
    }
    expect(await stoChooser(runtime).choose(request)).toEqual(plans);
    const other = await stoChooser(runtime).choose({ ...request, seed: 'plan-2' });
    expect(other).not.toEqual(plans);
  });

  it('rejects bad requests with clear errors', async () => {
    const base = { workspaceId: ws, contacts: [{ id: 'A', timezone: 'Asia/Kolkata' }] };
    await expect(
      planSendTimes(runtime, { ...base, window: { start: new Date(0), end: new Date(30 * 60_000) } }),
    ).rejects.toMatchObject({ code: 'window_too_short' });
    await expect(
      planSendTimes(runtime, {
        ...base,
        window: { start: new Date(0), end: new Date(day) },
        explorationShare: 2,
      }),
    ).rejects.toMatchObject({ code: 'invalid_exploration_share' });
  });

  it('a workspace without any fit still plans: the earliest allowed hour', async () => {
    const empty = (await createWorkspace(runtime.pg, { name: 'Empty', timezone: 'UTC' })).id;
    const result = await planSendTimes(runtime, {
      workspaceId: empty,
      window: { start: new Date('2026-07-01T00:00:00Z'), end: new Date('2026-07-01T12:00:00Z') },
      contacts: [{ id: 'z', timezone: 'UTC' }],
      quietHours: { start: 22, end: 9 },
      explorationShare: 0,
    });
    expect(result.details[0]!.source).toBe('global');
    expect(result.plans[0]!.at.toISOString()).toBe('2026-07-01T09:00:00.000Z');
  });

  it('the sto-fit job refits one workspace, or every workspace that sends', async () => {
    const queue = stoQueues.find((q) => q.name === STO_FIT_QUEUE)!;
    const before = await latestFit(runtime, ws);
    const rowsOf = async (fitId: string) =>
      Number(
        (
          await runtime.ch.rows<{ n: string }>(
            `SELECT count() AS n FROM ${runtime.ch.database}.sto_contact_slots WHERE fit_id = {fitId:String}`,
            { fitId },
          )
        )[0]!.n,
      );
    expect(await rowsOf(before!.id)).toBe(5);
    await queue.handler!(runtime, undefined as never, [{ id: 'j1', data: { workspaceId: ws } }]);
    const after = await latestFit(runtime, ws);
    expect(after!.id).not.toBe(before!.id);
    const silent = (await createWorkspace(runtime.pg, { name: 'Silent' })).id;
    // the nightly run: fits use the real clock, so only `ws` (sends in 2026) qualifies, not `silent`
    await queue.handler!(runtime, undefined as never, [{ id: 'j2', data: {} }]);
    expect((await latestFit(runtime, ws))!.id).not.toBe(after!.id);
    expect(await latestFit(runtime, silent)).toBeUndefined();
    // at most two serving fits are kept; older ones' partitions are dropped
    const { rows } = await runtime.pg.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM sto_fits WHERE workspace_id = $1 AND purpose = 'serve' AND dropped_at IS NULL`,
      [ws],
    );
    expect(rows[0]!.n).toBe(2);
    expect(await rowsOf(before!.id)).toBe(0); // the oldest of three, dropped
  });

  it('with a fallback: the fallback until the first fit, the model after', async () => {
    const fallback = {
      choose: async (r: { contacts: { id: string }[]; window: { start: Date } }) =>
        r.contacts.map((c) => ({ contactId: c.id, at: r.window.start, exploration: false, propensity: 1 })),
    };
    const request = {
      window: { start: new Date('2026-07-01T00:00:00Z'), end: new Date('2026-07-02T00:00:00Z') },
      contacts: [{ id: 'A', timezone: 'Asia/Kolkata' }],
      quietHours: { start: 21, end: 8 },
      explorationShare: 0,
    };
    const fresh = (await createWorkspace(runtime.pg, { name: 'Fresh' })).id;
    const before = await stoChooserWithFallback(runtime, fallback).choose({ ...request, workspaceId: fresh });
    expect(before[0]!.at.toISOString()).toBe('2026-07-01T00:00:00.000Z');
    const after = await stoChooserWithFallback(runtime, fallback).choose({ ...request, workspaceId: ws });
    expect(after[0]!.at.toISOString()).not.toBe('2026-07-01T00:00:00.000Z');
  });

  it('a fit of an empty history succeeds with neutral priors', async () => {
    const empty = (await createWorkspace(runtime.pg, { name: 'Empty2' })).id;
    const fit = await fitSendTime(runtime, empty, { until });
    expect(fit.contacts).toBe(0);
    expect(fit.kappaContact).toBeGreaterThan(0);
  });
});
