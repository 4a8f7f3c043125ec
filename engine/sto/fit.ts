import { IANAZone } from 'luxon';
import { newId } from '../ids.ts';
import type { Runtime } from '../runtime.ts';
import type { ClickHouseStore } from '../stores/clickhouse.ts';
import { kappaFromMoments, momentSums, shrink } from './priors.ts';
import { type CohortKind, getStoSettings } from './settings.ts';
import { HOURS, hourOfSlot, isValidTimeZone, SLOTS } from './slots.ts';

export interface FitOptions {
  /** End of the history used (exclusive); default now. Evaluation passes its split time. */
  until?: Date;
  lookbackDays?: number;
  cohort?: CohortKind;
  engagementEvents?: string[];
  /** Zone for sends whose zone is missing or unknown; default the workspace's. */
  defaultTimezone?: string;
  /** 'evaluate' fits never serve and are not kept; default 'serve'. */
  purpose?: 'serve' | 'evaluate';
  onProgress?: (step: string) => void;
}

export interface FitResult {
  fitId: string;
  workspaceId: string;
  since: Date;
  until: Date;
  cohort: CohortKind;
  kappaContact: number;
  kappaCohort: number;
  contacts: number;
  sends: number;
  engaged: number;
  cohorts: number;
  seconds: number;
}

const DAY_MS = 86_400_000;
const FAR_FUTURE = '2299-12-31 00:00:00.000';

const chTime = (date: Date): string => date.toISOString().replace('T', ' ').replace('Z', '');

/** The UTC offset of a zone from `from` to `to`, as the instants it changes (hourly scan). */
export function offsetTransitions(
  zone: string,
  from: Date,
  to: Date,
): { valid_from: string; offset_seconds: number }[] {
  const iana = IANAZone.create(zone);
  const out: { valid_from: string; offset_seconds: number }[] = [];
  let last: number | undefined;
  for (let t = Math.floor(from.getTime() / 3_600_000) * 3_600_000; t <= to.getTime(); t += 3_600_000) {
    const offset = iana.offset(t) * 60;
    if (offset !== last) {
      // a change lands between two scanned hours; find its minute (zones change on whole minutes)
      let at = t;
      if (last !== undefined) {
        let lo = t - 3_600_000;
        let hi = t;
        while (hi - lo > 60_000) {
          const mid = lo + Math.floor((hi - lo) / 120_000) * 60_000;
          if (iana.offset(mid) * 60 === offset) hi = mid;
          else lo = mid;
        }
        at = hi;
      } else at = new Date(0).getTime();
      out.push({ valid_from: chTime(new Date(at)), offset_seconds: offset });
      last = offset;
    }
  }
  return out;
}

/** Writes the offsets of every valid zone used by the sends in range, so SQL can turn UTC into local time. */
async function writeOffsets(ch: ClickHouseStore, zones: string[], since: Date, until: Date): Promise<void> {
  const rows = zones.flatMap((zone) =>
    offsetTransitions(zone, new Date(since.getTime() - DAY_MS), new Date(until.getTime() + DAY_MS)).map(
      (r) => ({
        timezone: zone,
        ...r,
      }),
    ),
  );
  await ch.insert('sto_tz_offsets', rows);
}

/**
 * Fits the send-time model of one workspace: features per contact and slot in ClickHouse, cohort
 * and global priors with strengths fitted by the method of moments, recorded in sto_fits.
 */
export async function fitSendTime(
  runtime: Runtime,
  workspaceId: string,
  options: FitOptions = {},
): Promise<FitResult> {
  const started = performance.now();
  const { ch, pg } = runtime;
  const settings = await getStoSettings(pg, workspaceId);
  const { rows: wsRows } = await pg.query<{ timezone: string }>(
    'SELECT timezone FROM workspaces WHERE id = $1',
    [workspaceId],
  );
  if (!wsRows[0]) throw new Error(`unknown workspace ${workspaceId}`);
  const until = options.until ?? new Date();
  const lookbackDays = options.lookbackDays ?? settings.lookbackDays;
  const since = new Date(until.getTime() - lookbackDays * DAY_MS);
  const cohort = options.cohort ?? settings.cohort;
  const events = options.engagementEvents ?? settings.engagementEvents;
  const defaultTimezone = options.defaultTimezone ?? wsRows[0].timezone;
  const fitId = newId('stofit', 16);
  const progress = options.onProgress ?? (() => {});
  await pg.query(
    `INSERT INTO sto_fits (id, workspace_id, status, purpose, since, until, cohort, engagement_events)
     VALUES ($1, $2, 'running', $3, $4, $5, $6, $7)`,
    [fitId, workspaceId, options.purpose ?? 'serve', since, until, cohort, events],
  );
  try {
    const result = await runFit(ch, {
      workspaceId,
      fitId,
      since,
      until,
      cohort,
      events,
      defaultTimezone,
      progress,
    });
    const seconds = (performance.now() - started) / 1000;
    await pg.query(
      `UPDATE sto_fits SET status = 'succeeded', kappa_contact = $2, kappa_cohort = $3, contacts = $4, sends = $5,
         engaged = $6, finished_at = now() WHERE id = $1`,
      [fitId, result.kappaContact, result.kappaCohort, result.contacts, result.sends, result.engaged],
    );
    if ((options.purpose ?? 'serve') === 'serve') await dropOldFits(runtime, workspaceId);
    runtime.log.info({ workspaceId, fitId, seconds, ...result }, 'send-time fit done');
    return { fitId, workspaceId, since, until, cohort, ...result, seconds };
  } catch (error) {
    await pg.query(`UPDATE sto_fits SET status = 'failed', error = $2, finished_at = now() WHERE id = $1`, [
      fitId,
      error instanceof Error ? error.message : String(error),
    ]);
    throw error;
  }
}

/**
 * Per send in [since, cutoff) of a workspace: its local time and slot, and whether it was engaged
 * (read or replied, or a configured event credited to it by last touch) within 24 h and before
 * `until`. Writes the zone offsets it needs first. Run with `join_use_nulls = 1` and
 * `do_not_merge_across_partitions_select_final = 1` (a send's copies share sent_at, so its month
 * partition: FINAL need not merge across partitions, which at 30M sends is most of its cost).
 * Statuses and events join on 64-bit hashes of the message and send ids: at 30M sends the hash tables
 * on strings took twice the CPU and memory, and a collision (odds ~1e-5 at 40M ids) would only credit
 * one wrong send.
 */
export async function engagedSendsQuery(
  ch: ClickHouseStore,
  input: {
    workspaceId: string;
    since: Date;
    cutoff: Date;
    until: Date;
    events: string[];
    defaultTimezone: string;
    /** Only sends with exploration = 1 or a logged propensity below 1 (for evaluation). */
    randomizedOnly?: boolean;
  },
): Promise<{ sql: string; params: Record<string, unknown> }> {
  const db = ch.database;
  const params = {
    ws: input.workspaceId,
    since: chTime(input.since),
    cutoff: chTime(input.cutoff),
    until: chTime(input.until),
    events: input.events,
    default_tz: input.defaultTimezone,
    far: FAR_FUTURE,
  };
  const [seen] = await ch.rows<{ zones: string[]; countries: string[] }>(
    `SELECT groupUniqArray(timezone) AS zones, groupUniqArray(country) AS countries FROM ${db}.sends
     WHERE workspace_id = {ws:String} AND sent_at >= {since:DateTime64(3)} AND sent_at < {cutoff:DateTime64(3)}`,
    params,
  );
  const zones = (seen?.zones ?? []).filter(isValidTimeZone);
  const zoneCodes = [...new Set([...zones, input.defaultTimezone])];
  await writeOffsets(ch, zoneCodes, input.since, input.until);
  const events = input.events;
  // tz_code and country_code: 1-based positions in zone_codes and country_codes (0 for a country first
  // seen after the lookup), so aggregations keep two small integers instead of strings
  const sendsInRange = `SELECT send_id, contact_id, sent_at, provider_message_id, country, exploration, propensity,
           if(timezone IN {zones:Array(String)}, timezone, {default_tz:String}) AS tz,
           toUInt16(indexOf({zone_codes:Array(String)}, tz)) AS tz_code,
           toUInt16(indexOf({country_codes:Array(String)}, country)) AS country_code
         FROM ${db}.sends FINAL
         WHERE workspace_id = {ws:String} AND outcome = 'accepted'
           AND sent_at >= {since:DateTime64(3)} AND sent_at < {cutoff:DateTime64(3)}
           ${input.randomizedOnly ? 'AND (exploration = 1 OR propensity < 1)' : ''}`;
  // event engagement, last touch: each configured event credits the latest send before it (ASOF), so
  // an evening app open does not also credit that morning's send
  const eventJoin = events.length
    ? `LEFT JOIN (
         SELECT cityHash64(ls.send_id) AS send_key, min(e.ts) AS ts
         FROM (
           SELECT contact_id, ts FROM ${db}.events
           WHERE workspace_id = {ws:String} AND name IN {events:Array(String)}
             AND ts >= {since:DateTime64(3)} AND ts < {until:DateTime64(3)}
         ) AS e
         ASOF JOIN (SELECT send_id, contact_id, sent_at FROM ${db}.sends FINAL
           WHERE workspace_id = {ws:String} AND outcome = 'accepted' AND sent_at >= {since:DateTime64(3)}
             AND sent_at < {until:DateTime64(3)}) AS ls
           ON e.contact_id = ls.contact_id AND e.ts >= ls.sent_at
         GROUP BY send_key
       ) AS ev ON cityHash64(s.send_id) = ev.send_key`
    : '';
  const eventTs = events.length
    ? `ifNull(ev.ts, toDateTime64({far:String}, 3, 'UTC'))`
    : `toDateTime64({far:String}, 3, 'UTC')`;
  const sql = `
       SELECT s.send_id AS send_id, s.contact_id AS contact_id, s.sent_at AS sent_at, s.tz AS tz, s.country AS country,
         s.tz_code AS tz_code, s.country_code AS country_code,
         s.exploration AS exploration, s.propensity AS propensity,
         ifNull(o.offset_seconds, 0) AS offset,
         addSeconds(s.sent_at, offset) AS local_at,
         least(ifNull(st.first_ts, toDateTime64({far:String}, 3, 'UTC')), ${eventTs}) AS engaged_at,
         addSeconds(engaged_at, offset) AS engaged_local,
         engaged_at < s.sent_at + INTERVAL 24 HOUR AND engaged_at < {until:DateTime64(3)} AS engaged,
         toUInt8((toDayOfWeek(local_at) >= 6) * 24 + toHour(local_at)) AS slot
       FROM (${sendsInRange}) AS s
       ASOF LEFT JOIN ${db}.sto_tz_offsets AS o ON s.tz = o.timezone AND s.sent_at >= o.valid_from
       LEFT JOIN (
         SELECT cityHash64(provider_message_id) AS message_key, min(ts) AS first_ts FROM ${db}.message_statuses
         WHERE workspace_id = {ws:String} AND status IN ('read', 'replied') AND provider_message_id != ''
           AND ts >= {since:DateTime64(3)} AND ts < {until:DateTime64(3)}
         GROUP BY message_key
       ) AS st ON cityHash64(s.provider_message_id) = st.message_key
       ${eventJoin}`;
  return {
    sql,
    params: { ...params, zones, zone_codes: zoneCodes, country_codes: seen?.countries ?? [] },
  };
}

interface FitInput {
  workspaceId: string;
  fitId: string;
  since: Date;
  until: Date;
  cohort: CohortKind;
  events: string[];
  defaultTimezone: string;
  progress: (step: string) => void;
}

async function runFit(ch: ClickHouseStore, input: FitInput) {
  const { workspaceId, fitId, since, until, cohort, events, defaultTimezone, progress } = input;
  const db = ch.database;
  // a send's outcome is known 24 h later; sends in the last day before `until` are left out, not counted as misses
  const cutoff = new Date(until.getTime() - DAY_MS);
  const params = {
    ws: workspaceId,
    fit: fitId,
    since: chTime(since),
    cutoff: chTime(cutoff),
    until: chTime(until),
  };
  progress('zones');
  const features = await engagedSendsQuery(ch, {
    workspaceId,
    since,
    cutoff,
    until,
    events,
    defaultTimezone,
  });
  progress('features');
  await ch.command(
    `INSERT INTO ${db}.sto_contact_slots
       (workspace_id, fit_id, contact_id, slot, sends, engaged, timezone, country, last_sent_at, last_engaged_at, last_engaged_hour)
     SELECT {ws:String}, {fit:String}, contact_id, slot, count(), countIf(engaged),
       {zone_codes:Array(String)}[argMax(tz_code, sent_at)], {country_codes:Array(String)}[argMax(country_code, sent_at)],
       max(sent_at), if(countIf(engaged) > 0, maxIf(engaged_at, engaged), NULL),
       if(countIf(engaged) > 0, toInt8(argMaxIf(toHour(engaged_local), engaged_at, engaged)), -1)
     FROM (${features.sql})
     -- at 1M contacts, ~20M groups: their states hold small integers and times only (the zone and
     -- country as codes), and past 2 GB they spill to disk rather than exhaust a shared machine's memory
     GROUP BY contact_id, slot
     SETTINGS join_use_nulls = 1, do_not_merge_across_partitions_select_final = 1,
       max_bytes_before_external_group_by = 2147483648`,
    { ...params, ...features.params },
  );

  progress('priors');
  const cohortColumn = cohort === 'country' ? 'country' : 'timezone';
  const cells = await ch.rows<{ cohort: string; slot: number; n: string; k: string; contacts: string }>(
    `SELECT ${cohortColumn} AS cohort, slot, sum(sends) AS n, sum(engaged) AS k
     FROM ${db}.sto_contact_slots WHERE workspace_id = {ws:String} AND fit_id = {fit:String}
     GROUP BY cohort, slot`,
    params,
  );
  const priors = fitPriors(
    cells.map((c) => ({ cohort: c.cohort, slot: Number(c.slot), n: Number(c.n), k: Number(c.k) })),
  );
  await ch.insert(
    'sto_cohort_slots',
    [...priors.cohorts].flatMap(([name, p]) =>
      Array.from({ length: SLOTS }, (_, slot) => ({
        workspace_id: workspaceId,
        fit_id: fitId,
        cohort: name,
        slot,
        sends: p.n[slot],
        engaged: p.k[slot],
        slot_rate: p.slotRate[slot],
        hour_rate: p.hourRate[hourOfSlot(slot)],
      })),
    ),
  );

  progress('contact prior');
  // contacts' hour-of-day rates spread around their cohort's: the method-of-moments sums, in ClickHouse
  const [sums] = await ch.rows<{
    s: number;
    a: number;
    b: number;
    contacts: string;
    sends: string;
    engaged: string;
  }>(
    `SELECT sum(k * k / n - 2 * mu * k + mu * mu * n) AS s, sum(mu * (1 - mu)) AS a, sum(mu * (1 - mu) * (n - 1)) AS b,
       uniqExact(contact_key) AS contacts, sum(n) AS sends, sum(k) AS engaged
     FROM (
       -- keyed on the id's 64-bit hash, as the features are: the ids themselves are not needed here
       SELECT cityHash64(contact_id) AS contact_key, slot % 24 AS hour, toFloat64(sum(sends)) AS n,
         toFloat64(sum(engaged)) AS k, argMax(${cohortColumn}, last_sent_at) AS cohort
       FROM ${db}.sto_contact_slots WHERE workspace_id = {ws:String} AND fit_id = {fit:String}
       GROUP BY contact_key, hour
     ) AS u
     JOIN (
       SELECT cohort, slot AS hour, hour_rate AS mu FROM ${db}.sto_cohort_slots
       WHERE workspace_id = {ws:String} AND fit_id = {fit:String} AND slot < 24
     ) AS r ON u.cohort = r.cohort AND u.hour = r.hour`,
    params,
  );
  const kappaContact = kappaFromMoments(
    { s: Number(sums?.s ?? 0), a: Number(sums?.a ?? 0), b: Number(sums?.b ?? 0) },
    DEFAULT_KAPPA_CONTACT,
  );
  return {
    kappaContact,
    kappaCohort: priors.kappaCohort,
    contacts: Number(sums?.contacts ?? 0),
    sends: Number(sums?.sends ?? 0),
    engaged: Number(sums?.engaged ?? 0),
    cohorts: priors.cohorts.size - 1,
  };
}

/** Used when the data cannot tell (too few contacts or sends): a prior worth ten sends. */
export const DEFAULT_KAPPA_CONTACT = 10;
const DEFAULT_KAPPA_COHORT = 100;
/** Rate assumed before a workspace has any engaged send; only ranks hours when nothing else does. */
const EMPTY_RATE = 0.1;

export interface CohortPrior {
  n: number[];
  k: number[];
  /** Per slot (48): the cohort's rate, shrunk toward the global slot rate. */
  slotRate: number[];
  /** Per local hour (24, weekday and weekend pooled): shrunk toward the global hour rate. */
  hourRate: number[];
}

/**
 * Global and cohort rates per slot and per hour. The global level is shrunk toward the overall rate
 * and each cohort toward the global level, each with a strength fitted by the method of moments
 * across its units. The global prior is stored as cohort ''.
 */
export function fitPriors(cells: { cohort: string; slot: number; n: number; k: number }[]): {
  cohorts: Map<string, CohortPrior>;
  kappaCohort: number;
} {
  const byCohort = new Map<string, { n: number[]; k: number[] }>();
  const global = { n: new Array<number>(SLOTS).fill(0), k: new Array<number>(SLOTS).fill(0) };
  for (const cell of cells) {
    let c = byCohort.get(cell.cohort);
    if (!c) {
      c = { n: new Array(SLOTS).fill(0), k: new Array(SLOTS).fill(0) };
      byCohort.set(cell.cohort, c);
    }
    c.n[cell.slot]! += cell.n;
    c.k[cell.slot]! += cell.k;
    global.n[cell.slot]! += cell.n;
    global.k[cell.slot]! += cell.k;
  }
  const hourly = (x: { n: number[]; k: number[] }) => {
    const n = new Array<number>(HOURS).fill(0);
    const k = new Array<number>(HOURS).fill(0);
    for (let s = 0; s < SLOTS; s++) {
      n[hourOfSlot(s)]! += x.n[s]!;
      k[hourOfSlot(s)]! += x.k[s]!;
    }
    return { n, k };
  };
  const totalN = global.n.reduce((a, b) => a + b, 0);
  const totalK = global.k.reduce((a, b) => a + b, 0);
  const overall = totalN > 0 ? (totalK + 1) / (totalN + 2) : EMPTY_RATE;
  // global level: hours around the overall rate, then each slot (weekday or weekend) around its
  // hour, so that without evidence of a weekday/weekend difference there is none
  const gh = hourly(global);
  const kappaGlobalHour = kappaFromMoments(
    momentSums(gh.n.map((n, h) => ({ n, k: gh.k[h]!, mu: overall }))),
    DEFAULT_KAPPA_COHORT,
  );
  const globalHour = gh.n.map((n, h) => shrink(gh.k[h]!, n, overall, kappaGlobalHour));
  const kappaGlobalSlot = kappaFromMoments(
    momentSums(global.n.map((n, s) => ({ n, k: global.k[s]!, mu: globalHour[hourOfSlot(s)]! }))),
    DEFAULT_KAPPA_COHORT,
  );
  const globalSlot = global.n.map((n, s) =>
    shrink(global.k[s]!, n, globalHour[hourOfSlot(s)]!, kappaGlobalSlot),
  );
  // cohort level: a cohort's hours around the global hours, its slots around its hours times the
  // global weekday/weekend ratio
  const named = [...byCohort].filter(([name]) => name !== ''); // contacts without a cohort use the global prior
  const kappaCohort = kappaFromMoments(
    momentSums(
      named.flatMap(([, c]) => {
        const h = hourly(c);
        return h.n.map((n, hr) => ({ n, k: h.k[hr]!, mu: globalHour[hr]! }));
      }),
    ),
    DEFAULT_KAPPA_COHORT,
  );
  const cohortHours = new Map(
    named.map(([name, c]) => {
      const h = hourly(c);
      return [name, h.n.map((n, hr) => shrink(h.k[hr]!, n, globalHour[hr]!, kappaCohort))] as const;
    }),
  );
  const slotMean = (name: string, s: number) =>
    (cohortHours.get(name)![hourOfSlot(s)]! * globalSlot[s]!) / globalHour[hourOfSlot(s)]!;
  const kappaCohortSlot = kappaFromMoments(
    momentSums(
      named.flatMap(([name, c]) =>
        c.n.map((n, s) => ({ n, k: c.k[s]!, mu: Math.min(0.999, slotMean(name, s)) })),
      ),
    ),
    DEFAULT_KAPPA_COHORT,
  );
  const cohorts = new Map<string, CohortPrior>();
  cohorts.set('', { n: global.n, k: global.k, slotRate: globalSlot, hourRate: globalHour });
  for (const [name, c] of named) {
    cohorts.set(name, {
      n: c.n,
      k: c.k,
      slotRate: c.n.map((n, s) => shrink(c.k[s]!, n, slotMean(name, s), kappaCohortSlot)),
      hourRate: cohortHours.get(name)!,
    });
  }
  return { cohorts, kappaCohort };
}

/**
 * Keeps the two newest serving fits of a workspace (a reader may still be on the previous one) and
 * drops the rest whole, by partition.
 */
async function dropOldFits(runtime: Runtime, workspaceId: string): Promise<void> {
  const { rows } = await runtime.pg.query<{ id: string }>(
    `SELECT id FROM sto_fits WHERE workspace_id = $1 AND purpose = 'serve' AND status <> 'running' AND dropped_at IS NULL
     ORDER BY started_at DESC OFFSET 2`,
    [workspaceId],
  );
  for (const { id } of rows) await dropFit(runtime, id);
}

export async function dropFit(runtime: Runtime, fitId: string): Promise<void> {
  for (const table of ['sto_contact_slots', 'sto_cohort_slots']) {
    await runtime.ch.command(`ALTER TABLE ${runtime.ch.database}.${table} DROP PARTITION {id:String}`, {
      id: fitId,
    });
  }
  await runtime.pg.query('UPDATE sto_fits SET dropped_at = now() WHERE id = $1', [fitId]);
}

export interface FitRecord {
  id: string;
  workspace_id: string;
  since: Date;
  until: Date;
  cohort: CohortKind;
  kappa_contact: number;
  kappa_cohort: number;
  contacts: number;
  sends: number;
  engaged: number;
  finished_at: Date;
}

export async function latestFit(runtime: Runtime, workspaceId: string): Promise<FitRecord | undefined> {
  const { rows } = await runtime.pg.query<FitRecord>(
    `SELECT id, workspace_id, since, until, cohort, kappa_contact, kappa_cohort, contacts::float8 AS contacts,
       sends::float8 AS sends, engaged::float8 AS engaged, finished_at
     FROM sto_fits WHERE workspace_id = $1 AND purpose = 'serve' AND status = 'succeeded' AND dropped_at IS NULL
     ORDER BY finished_at DESC LIMIT 1`,
    [workspaceId],
  );
  return rows[0];
}

/** Fits every workspace that sent anything in its lookback window (the nightly job). */
export async function fitAllWorkspaces(runtime: Runtime): Promise<FitResult[]> {
  const { rows } = await runtime.pg.query<{ id: string }>('SELECT id FROM workspaces ORDER BY id');
  const active = await runtime.ch.rows<{ workspace_id: string }>(
    `SELECT DISTINCT workspace_id FROM ${runtime.ch.database}.sends WHERE sent_at >= now64(3) - INTERVAL 730 DAY`,
  );
  const sending = new Set(active.map((r) => r.workspace_id));
  const results: FitResult[] = [];
  for (const { id } of rows) {
    if (!sending.has(id)) continue;
    try {
      results.push(await fitSendTime(runtime, id));
    } catch (error) {
      // one workspace's failure (recorded in sto_fits) must not stop the others' fits
      runtime.log.error({ err: error, workspaceId: id }, 'send-time fit failed');
    }
  }
  return results;
}

export async function getFit(runtime: Runtime, fitId: string): Promise<FitRecord | undefined> {
  const { rows } = await runtime.pg.query<FitRecord>(
    `SELECT id, workspace_id, since, until, cohort, kappa_contact, kappa_cohort, contacts::float8 AS contacts,
       sends::float8 AS sends, engaged::float8 AS engaged, finished_at
     FROM sto_fits WHERE id = $1 AND status = 'succeeded' AND dropped_at IS NULL`,
    [fitId],
  );
  return rows[0];
}
