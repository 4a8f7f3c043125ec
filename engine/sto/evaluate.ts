import type { Runtime } from '../runtime.ts';
import { DEFAULT_UCB_WEIGHT } from './chooser.ts';
import { dropFit, engagedSendsQuery, type FitResult, fitSendTime, getFit } from './fit.ts';
import {
  type ContactHistory,
  expectedRate,
  loadHistories,
  loadModel,
  posteriorFor,
  type SendTimeModel,
  ucbScore,
} from './model.ts';
import { seededRandom } from './random.ts';
import { getStoSettings } from './settings.ts';
import { HOURS, hourOfSlot, isQuiet, type QuietHours, slotOf } from './slots.ts';

/**
 * Offline evaluation of the send-time model against baselines, from logged randomized sends.
 *
 * Temporal split: the model is fitted on history before `split` and judged on sends after it. Each
 * test send is a context (contact, local day) with an action (its local hour), a logged propensity
 * and a reward (engaged within 24 h). A policy picks one hour among the allowed hours of that day;
 * the evaluation assumes the logged send was drawn among those same hours (true for exploration
 * sends of a day-long window; the propensity comes from the log either way).
 *  - replay: mean reward of the exploration sends whose hour the policy would have picked
 *  - IPS: (1/n) sum r * 1[a = pi(x)] / p ; SNIPS: the same, divided by the mean weight
 * Intervals: percentile bootstrap over contacts (sends of one contact are not independent).
 */
export const POLICIES = ['model', 'random', 'global_best', 'last_active', 'modal'] as const;
export type PolicyName = (typeof POLICIES)[number];

export interface Estimate {
  estimate: number | null;
  ci: [number, number] | null;
}

export interface PolicyReport {
  policy: PolicyName;
  replay: { estimate: number | null; matched: number };
  ips: Estimate;
  snips: Estimate;
}

export interface EvaluationReport {
  workspace_id: string;
  split_at: string;
  until: string;
  train: { since: string; contacts: number; sends: number; engaged: number };
  test: { sends: number; exploration_sends: number; contacts: number; engaged_rate: number };
  allowed_hours: number[];
  policies: PolicyReport[];
  /** SNIPS lift of the model over each baseline: model / baseline - 1. */
  lifts: { baseline: PolicyName; lift: number | null; ci: [number, number] | null }[];
  bootstrap: number;
  confidence: number;
}

/** A policy picks a slot among the allowed ones, or null for 'uniformly at random'. */
export type Policy = (contactId: string, allowed: number[]) => number | null;

export function buildPolicies(
  model: SendTimeModel,
  histories: Map<string, ContactHistory>,
  fallbackCohort: (contactId: string) => { timezone: string; country: string | null },
  ucbWeight = DEFAULT_UCB_WEIGHT,
): Record<PolicyName, Policy> {
  const globalPosterior = posteriorFor(model, undefined, { timezone: '', country: '' });
  const best = (allowed: number[], score: (slot: number) => number) => {
    let top = allowed[0]!;
    for (const slot of allowed) if (score(slot) > score(top)) top = slot;
    return top;
  };
  const globalBest = (allowed: number[]) => best(allowed, (s) => expectedRate(globalPosterior, s));
  // the allowed slot nearest (circularly, by hour) to a wanted hour
  const nearest = (allowed: number[], hour: number) =>
    best(allowed, (s) => {
      const d = Math.abs(hourOfSlot(s) - hour) % HOURS;
      return -Math.min(d, HOURS - d);
    });
  const posteriors = new Map<string, ReturnType<typeof posteriorFor>>();
  return {
    model: (id, allowed) => {
      let p = posteriors.get(id);
      if (!p) {
        p = posteriorFor(model, histories.get(id), fallbackCohort(id));
        posteriors.set(id, p);
      }
      const posterior = p;
      return best(allowed, (s) => ucbScore(posterior, s, ucbWeight));
    },
    random: () => null,
    global_best: (_id, allowed) => globalBest(allowed),
    last_active: (id, allowed) => {
      const h = histories.get(id);
      return h && h.lastActiveHour >= 0 ? nearest(allowed, h.lastActiveHour) : globalBest(allowed);
    },
    modal: (id, allowed) => {
      const h = histories.get(id);
      if (!h || h.k.every((k) => k === 0)) return globalBest(allowed);
      const modalHour = h.k.reduce((top, k, hour) => (k > h.k[top]! ? hour : top), 0);
      return nearest(allowed, modalHour);
    },
  };
}

export interface LoggedSend {
  contactId: string;
  slot: number;
  engaged: boolean;
  exploration: boolean;
  propensity: number;
}

/** The allowed slots of a day of the same kind (weekday or weekend) as `slot`. */
export function allowedSlotsLike(slot: number, quiet: QuietHours | null): number[] {
  const weekend = slot >= HOURS;
  return Array.from({ length: HOURS }, (_, h) => h)
    .filter((h) => !isQuiet(h, quiet))
    .map((h) => slotOf(weekend, h));
}

interface ContactSums {
  n: number;
  ipsSum: number[];
  weightSum: number[];
}

/** Replay, IPS and SNIPS per policy with bootstrap intervals over contacts, and SNIPS lifts. */
export function offPolicyEstimates(
  sends: LoggedSend[],
  policies: Record<PolicyName, Policy>,
  quiet: QuietHours | null,
  options: { bootstrap?: number; confidence?: number; seed?: string } = {},
): Pick<EvaluationReport, 'policies' | 'lifts' | 'bootstrap' | 'confidence'> & {
  choices: (number | null)[][];
} {
  const names = POLICIES;
  const bootstrap = options.bootstrap ?? 500;
  const confidence = options.confidence ?? 0.95;
  const byContact = new Map<string, ContactSums>();
  const replay = names.map(() => ({ matched: 0, reward: 0 }));
  const choices: (number | null)[][] = [];
  for (const send of sends) {
    if (!(send.propensity > 0 && send.propensity <= 1)) continue;
    const allowed = allowedSlotsLike(send.slot, quiet);
    if (!allowed.includes(send.slot)) continue; // logged outside the hours a policy may pick
    let sums = byContact.get(send.contactId);
    if (!sums) {
      sums = { n: 0, ipsSum: names.map(() => 0), weightSum: names.map(() => 0) };
      byContact.set(send.contactId, sums);
    }
    sums.n++;
    const reward = send.engaged ? 1 : 0;
    const picked = names.map((name) => policies[name](send.contactId, allowed));
    choices.push(picked);
    picked.forEach((slot, i) => {
      // probability that policy i takes the logged action
      const pi = slot === null ? 1 / allowed.length : slot === send.slot ? 1 : 0;
      sums.ipsSum[i]! += (reward * pi) / send.propensity;
      sums.weightSum[i]! += pi / send.propensity;
      if (send.exploration) {
        // replay needs a uniform logger: a uniform policy matches with probability 1/|allowed|
        replay[i]!.matched += pi;
        replay[i]!.reward += reward * pi;
      }
    });
  }
  const contacts = [...byContact.values()];
  const point = (weights: number[] | null) => {
    let n = 0;
    const ips = names.map(() => 0);
    const w = names.map(() => 0);
    contacts.forEach((c, j) => {
      const m = weights ? weights[j]! : 1;
      if (m === 0) return;
      n += m * c.n;
      for (let i = 0; i < names.length; i++) {
        ips[i]! += m * c.ipsSum[i]!;
        w[i]! += m * c.weightSum[i]!;
      }
    });
    return {
      ips: ips.map((s) => (n > 0 ? s / n : Number.NaN)),
      snips: ips.map((s, i) => (w[i]! > 0 ? s / w[i]! : Number.NaN)),
    };
  };
  const base = point(null);
  const random = seededRandom(`bootstrap:${options.seed ?? 'sto'}`);
  const draws = {
    ips: names.map(() => [] as number[]),
    snips: names.map(() => [] as number[]),
    lift: names.map(() => [] as number[]),
  };
  for (let b = 0; b < bootstrap && contacts.length > 0; b++) {
    // Poisson(1) weights per contact: the bootstrap of a large sample, without a resampling pass
    const weights = contacts.map(() => poisson1(random));
    const r = point(weights);
    names.forEach((_, i) => {
      if (Number.isFinite(r.ips[i]!)) draws.ips[i]!.push(r.ips[i]!);
      if (Number.isFinite(r.snips[i]!)) draws.snips[i]!.push(r.snips[i]!);
      if (Number.isFinite(r.snips[i]!) && r.snips[i]! > 0 && Number.isFinite(r.snips[0]!))
        draws.lift[i]!.push(r.snips[0]! / r.snips[i]! - 1);
    });
  }
  const alpha = (1 - confidence) / 2;
  const interval = (xs: number[]): [number, number] | null =>
    xs.length < 20 ? null : [quantile(xs, alpha), quantile(xs, 1 - alpha)];
  const finite = (x: number) => (Number.isFinite(x) ? x : null);
  return {
    policies: names.map((policy, i) => ({
      policy,
      replay: {
        estimate: replay[i]!.matched > 0 ? replay[i]!.reward / replay[i]!.matched : null,
        matched: Math.round(replay[i]!.matched),
      },
      ips: { estimate: finite(base.ips[i]!), ci: interval(draws.ips[i]!) },
      snips: { estimate: finite(base.snips[i]!), ci: interval(draws.snips[i]!) },
    })),
    lifts: names.slice(1).map((baseline, j) => {
      const i = j + 1;
      const lift = base.snips[i]! > 0 ? base.snips[0]! / base.snips[i]! - 1 : Number.NaN;
      return { baseline, lift: finite(lift), ci: interval(draws.lift[i]!) };
    }),
    bootstrap,
    confidence,
    choices,
  };
}

function poisson1(random: () => number): number {
  const limit = Math.exp(-1);
  let k = 0;
  let p = random();
  while (p > limit) {
    k++;
    p *= random();
  }
  return k;
}

function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

export interface EvaluateOptions {
  /** End of the evaluated history; default now. */
  until?: Date;
  /** Days at the end held out as the test period. */
  testDays?: number;
  lookbackDays?: number;
  quietHours?: QuietHours | null;
  bootstrap?: number;
  ucbWeight?: number;
  seed?: string;
  /** Keep the per-send policy choices (the population test scores them against the truth). */
  keepChoices?: boolean;
}

export interface TestSendRow {
  contact_id: string;
  tz: string;
  country: string;
  slot: number;
  local_hour: number;
  /** 0 = Sunday ... 6 = Saturday, local. */
  local_weekday: number;
  engaged: number;
  exploration: number;
  propensity: number;
}

export async function evaluateSendTime(
  runtime: Runtime,
  workspaceId: string,
  options: EvaluateOptions = {},
): Promise<
  EvaluationReport & { choices?: { send: TestSendRow; slots: (number | null)[] }[]; fit: FitResult }
> {
  const settings = await getStoSettings(runtime.pg, workspaceId);
  const until = options.until ?? new Date();
  const testDays = options.testDays ?? 14;
  const split = new Date(until.getTime() - testDays * 86_400_000);
  const quiet = options.quietHours === undefined ? settings.quietHours : options.quietHours;
  const fit = await fitSendTime(runtime, workspaceId, {
    until: split,
    lookbackDays: options.lookbackDays,
    purpose: 'evaluate',
  });
  try {
    const fitRecord = await getFit(runtime, fit.fitId);
    const model = await loadModel(runtime, fitRecord);
    const query = await engagedSendsQuery(runtime.ch, {
      workspaceId,
      since: split,
      cutoff: new Date(until.getTime() - 86_400_000),
      until,
      events: settings.engagementEvents,
      defaultTimezone: (
        await runtime.pg.query<{ timezone: string }>('SELECT timezone FROM workspaces WHERE id = $1', [
          workspaceId,
        ])
      ).rows[0]!.timezone,
      randomizedOnly: true,
    });
    const rows = await runtime.ch.rows<TestSendRow>(
      `SELECT contact_id, tz, country, slot, toHour(local_at) AS local_hour, toDayOfWeek(local_at) % 7 AS local_weekday,
         toUInt8(engaged) AS engaged, exploration, propensity
       FROM (${query.sql}) ORDER BY contact_id, sent_at
       SETTINGS join_use_nulls = 1, do_not_merge_across_partitions_select_final = 1`,
      query.params,
    );
    const sendRows = rows.map((r) => ({
      ...r,
      slot: Number(r.slot),
      local_hour: Number(r.local_hour),
      local_weekday: Number(r.local_weekday),
    }));
    const contactIds = [...new Set(sendRows.map((r) => r.contact_id))];
    const histories = await loadHistories(runtime, fitRecord, contactIds);
    const cohortOf = new Map(sendRows.map((r) => [r.contact_id, { timezone: r.tz, country: r.country }]));
    const policies = buildPolicies(
      model,
      histories,
      (id) => cohortOf.get(id) ?? { timezone: '', country: null },
      options.ucbWeight,
    );
    const logged: LoggedSend[] = sendRows.map((r) => ({
      contactId: r.contact_id,
      slot: r.slot,
      engaged: Number(r.engaged) === 1,
      exploration: Number(r.exploration) === 1,
      propensity: Number(r.propensity),
    }));
    const estimates = offPolicyEstimates(logged, policies, quiet, {
      bootstrap: options.bootstrap,
      seed: options.seed,
    });
    const usable = sendRows.filter(
      (r) => allowedSlotsLike(r.slot, quiet).includes(r.slot) && r.propensity > 0 && r.propensity <= 1,
    );
    const report: EvaluationReport & {
      choices?: { send: TestSendRow; slots: (number | null)[] }[];
      fit: FitResult;
    } = {
      workspace_id: workspaceId,
      split_at: split.toISOString(),
      until: until.toISOString(),
      train: {
        since: fit.since.toISOString(),
        contacts: fit.contacts,
        sends: fit.sends,
        engaged: fit.engaged,
      },
      test: {
        sends: usable.length,
        exploration_sends: usable.filter((r) => Number(r.exploration) === 1).length,
        contacts: new Set(usable.map((r) => r.contact_id)).size,
        engaged_rate: usable.length
          ? usable.filter((r) => Number(r.engaged) === 1).length / usable.length
          : 0,
      },
      allowed_hours: Array.from({ length: HOURS }, (_, h) => h).filter((h) => !isQuiet(h, quiet)),
      policies: estimates.policies,
      lifts: estimates.lifts,
      bootstrap: estimates.bootstrap,
      confidence: estimates.confidence,
      fit,
    };
    if (options.keepChoices)
      report.choices = usable.map((send, i) => ({ send, slots: estimates.choices[i]! }));
    return report;
  } finally {
    await dropFit(runtime, fit.fitId);
  }
}

const pct = (x: number | null) => (x === null ? '—' : `${(x * 100).toFixed(1)}%`);
const ci = (x: [number, number] | null) => (x ? `[${pct(x[0])}, ${pct(x[1])}]` : '—');

/** The report as a plain-text table. */
export function formatEvaluation(report: EvaluationReport): string {
  const lines = [
    `send-time evaluation: train before ${report.split_at} (${report.train.contacts} contacts, ${report.train.sends} sends), test until ${report.until}`,
    `test: ${report.test.sends} randomized sends (${report.test.exploration_sends} exploration) of ${report.test.contacts} contacts, logged engagement ${pct(report.test.engaged_rate)}`,
    '',
    `${'policy'.padEnd(13)}${'replay'.padStart(9)}${'matched'.padStart(9)}${'IPS'.padStart(9)}  ${'IPS CI'.padEnd(18)}${'SNIPS'.padStart(8)}  SNIPS CI`,
  ];
  for (const p of report.policies) {
    lines.push(
      `${p.policy.padEnd(13)}${pct(p.replay.estimate).padStart(9)}${String(p.replay.matched).padStart(9)}${pct(p.ips.estimate).padStart(9)}  ${ci(p.ips.ci).padEnd(18)}${pct(p.snips.estimate).padStart(8)}  ${ci(p.snips.ci)}`,
    );
  }
  lines.push(
    '',
    `lift of the model (SNIPS, ${Math.round(report.confidence * 100)}% bootstrap CI over contacts, ${report.bootstrap} resamples):`,
  );
  for (const l of report.lifts)
    lines.push(`  vs ${l.baseline.padEnd(12)} ${pct(l.lift).padStart(8)}  ${ci(l.ci)}`);
  return lines.join('\n');
}

/** Keeps a report for dashboards (GET /v1/send-time/evaluation); the per-send choices are not kept. */
export async function saveEvaluation(runtime: Runtime, report: EvaluationReport): Promise<void> {
  const {
    workspace_id,
    split_at,
    until,
    train,
    test,
    allowed_hours,
    policies,
    lifts,
    bootstrap,
    confidence,
  } = report;
  await runtime.pg.query('INSERT INTO sto_evaluations (workspace_id, report) VALUES ($1, $2)', [
    workspace_id,
    JSON.stringify({
      workspace_id,
      split_at,
      until,
      train,
      test,
      allowed_hours,
      policies,
      lifts,
      bootstrap,
      confidence,
    }),
  ]);
}

export async function latestEvaluation(
  runtime: Runtime,
  workspaceId: string,
): Promise<(EvaluationReport & { created_at: string }) | undefined> {
  const { rows } = await runtime.pg.query<{ report: EvaluationReport; created_at: Date }>(
    'SELECT report, created_at FROM sto_evaluations WHERE workspace_id = $1 ORDER BY created_at DESC, id DESC LIMIT 1',
    [workspaceId],
  );
  const row = rows[0];
  if (!row) return undefined;
  const report = typeof row.report === 'string' ? (JSON.parse(row.report) as EvaluationReport) : row.report;
  return { ...report, created_at: new Date(row.created_at).toISOString() };
}
