import type { Runtime } from '../runtime.ts';
import { latestFit } from './fit.ts';
import {
  type ContactHistory,
  expectedRate,
  loadHistories,
  loadModel,
  type Posterior,
  posteriorFor,
  type SendTimeModel,
  ucbScore,
} from './model.ts';
import { beta, keyedUniforms, seededRandom } from './random.ts';
import { getStoSettings } from './settings.ts';
import {
  type Candidate,
  candidatesFor,
  isValidTimeZone,
  type QuietHours,
  SendTimeInputError,
  validateSendTimeInput,
} from './slots.ts';
import type { SendTimeChooser, SendTimePlan, SendTimeRequest } from './types.ts';

/**
 * How much the choice favours hours the model knows little about: the score is the posterior mean
 * plus this many standard deviations (an upper confidence bound). Small, because the exploration
 * share already buys the data: on the simulated population weights 0 to 0.5 all reached 91% of the
 * oracle, while a large bonus prefers an untried hour next to a proven one over the proven one.
 */
export const DEFAULT_UCB_WEIGHT = 0.1;

export interface PlanOptions {
  ucbWeight?: number;
  /** Also estimate, per contact, the probability that the chosen hour is truly the best (Monte Carlo). */
  confidence?: boolean;
  /** Model and histories to use instead of the workspace's latest fit (evaluation). */
  model?: SendTimeModel;
}

export interface SendTimeDetail {
  contactId: string;
  timezone: string;
  /** 'contact' when its own zone was used; 'workspace' when it had none or an unknown one. */
  timezoneSource: 'contact' | 'workspace';
  /** Absent when no allowed hour lies in the window (all of it in the contact's quiet hours). */
  plan?: SendTimePlan;
  localHour?: number;
  expectedRate?: number;
  runnerUp?: { at: Date; localHour: number; expectedRate: number };
  confidence?: number;
  source: Posterior['source'];
  history: { sends: number; engaged: number };
  skipped?: 'quiet_hours';
}

export interface PlanResult {
  plans: SendTimePlan[];
  details: SendTimeDetail[];
  /** Contacts without a plan, and why (today only: the whole window in their quiet hours). */
  skipped: { contactId: string; reason: 'quiet_hours' }[];
}

/** Plans a send time for each contact; see SendTimeChooser for the contract. */
export async function planSendTimes(
  runtime: Runtime,
  request: SendTimeRequest,
  options: PlanOptions = {},
): Promise<PlanResult> {
  const settings = await getStoSettings(runtime.pg, request.workspaceId);
  const quiet: QuietHours | null = request.quietHours ?? settings.quietHours;
  validateSendTimeInput(request.window, quiet);
  const share = request.explorationShare ?? settings.explorationShare;
  if (!(share >= 0 && share <= 1))
    throw new SendTimeInputError('invalid_exploration_share', 'exploration_share', 'must be between 0 and 1');
  const { rows } = await runtime.pg.query<{ timezone: string }>(
    'SELECT timezone FROM workspaces WHERE id = $1',
    [request.workspaceId],
  );
  if (!rows[0]) throw new Error(`unknown workspace ${request.workspaceId}`);
  const workspaceZone = rows[0].timezone;
  const seed = request.seed ?? `${request.workspaceId}:${request.window.start.toISOString()}`;
  const fit = options.model
    ? (options.model.fit ?? undefined)
    : await latestFit(runtime, request.workspaceId);
  const model = options.model ?? (await loadModel(runtime, fit));
  const histories = await loadHistories(
    runtime,
    fit,
    request.contacts.map((c) => c.id),
  );
  const weight = options.ucbWeight ?? DEFAULT_UCB_WEIGHT;
  const candidatesByZone = new Map<string, Candidate[]>();
  const result: PlanResult = { plans: [], details: [], skipped: [] };
  for (const contact of request.contacts) {
    const known = isValidTimeZone(contact.timezone);
    const zone = known ? contact.timezone! : workspaceZone;
    let candidates = candidatesByZone.get(zone);
    if (!candidates) {
      candidates = candidatesFor(zone, request.window, quiet);
      candidatesByZone.set(zone, candidates);
    }
    const history = histories.get(contact.id);
    const posterior = posteriorFor(model, history, { timezone: zone, country: contact.country });
    const detail = chooseOne(contact.id, candidates, posterior, history, { seed, share, weight, ...options });
    detail.timezone = zone;
    detail.timezoneSource = known ? 'contact' : 'workspace';
    result.details.push(detail);
    if (detail.plan) result.plans.push(detail.plan);
    else result.skipped.push({ contactId: contact.id, reason: 'quiet_hours' });
  }
  return result;
}

function chooseOne(
  contactId: string,
  candidates: Candidate[],
  posterior: Posterior,
  history: ContactHistory | undefined,
  options: { seed: string; share: number; weight: number; confidence?: boolean },
): SendTimeDetail {
  const detail: SendTimeDetail = {
    contactId,
    timezone: '',
    timezoneSource: 'contact',
    source: posterior.source,
    history: {
      sends: history?.n.reduce((a, b) => a + b, 0) ?? 0,
      engaged: history?.k.reduce((a, b) => a + b, 0) ?? 0,
    },
  };
  if (candidates.length === 0) {
    detail.skipped = 'quiet_hours';
    return detail;
  }
  // the best candidate by score; the earliest wins a tie, and the runner-up is the best other slot
  let best = 0;
  let bestScore = -1;
  const scores = candidates.map((c) => ucbScore(posterior, c.slot, options.weight));
  for (let i = 0; i < candidates.length; i++) {
    if (scores[i]! > bestScore) {
      bestScore = scores[i]!;
      best = i;
    }
  }
  let runnerUp = -1;
  for (let i = 0; i < candidates.length; i++) {
    if (candidates[i]!.slot === candidates[best]!.slot) continue;
    if (runnerUp < 0 || scores[i]! > scores[runnerUp]!) runnerUp = i;
  }
  const [coin, pick] = keyedUniforms(options.seed, contactId);
  const exploration = coin < options.share;
  const chosen = exploration ? Math.min(candidates.length - 1, Math.floor(pick * candidates.length)) : best;
  const uniform = options.share / candidates.length;
  const propensity = uniform + (chosen === best ? 1 - options.share : 0);
  const c = candidates[chosen]!;
  detail.plan = { contactId, at: c.at, exploration, propensity };
  detail.localHour = c.hour;
  detail.expectedRate = expectedRate(posterior, c.slot);
  if (runnerUp >= 0) {
    const r = candidates[runnerUp]!;
    detail.runnerUp = { at: r.at, localHour: r.hour, expectedRate: expectedRate(posterior, r.slot) };
  }
  if (options.confidence)
    detail.confidence = probabilityBest(posterior, candidates, candidates[best]!.slot, contactId);
  return detail;
}

/** P(the chosen slot has the highest true rate among the allowed slots), from 2,000 posterior draws. */
function probabilityBest(
  posterior: Posterior,
  candidates: Candidate[],
  chosenSlot: number,
  key: string,
): number {
  const slots = [...new Set(candidates.map((c) => c.slot))];
  if (slots.length === 1) return 1;
  const random = seededRandom(`confidence:${key}`);
  const draws = 2000;
  let wins = 0;
  const hours = [...new Set(slots.map((s) => s % 24))];
  const sample = new Map<number, number>();
  for (let d = 0; d < draws; d++) {
    for (const h of hours) sample.set(h, beta(random, posterior.alpha[h]!, posterior.beta[h]!));
    let top = chosenSlot;
    let topValue = -1;
    for (const s of slots) {
      const v = sample.get(s % 24)! * posterior.slotRatio[s]!;
      if (v > topValue || (v === topValue && s === chosenSlot)) {
        topValue = v;
        top = s;
      }
    }
    if (top === chosenSlot) wins++;
  }
  return wins / draws;
}

/** The send-time model as a campaign's chooser: each contact's best allowed hour, with exploration. */
export function stoChooser(runtime: Runtime): SendTimeChooser {
  return {
    async choose(request: SendTimeRequest): Promise<SendTimePlan[]> {
      return (await planSendTimes(runtime, request)).plans;
    },
  };
}

/**
 * The model's chooser once the workspace has a fit, `fallback` (e.g. the campaigns' workspace
 * best-hour chooser) before its first fit.
 */
export function stoChooserWithFallback(runtime: Runtime, fallback: SendTimeChooser): SendTimeChooser {
  return {
    async choose(request: SendTimeRequest): Promise<SendTimePlan[]> {
      const fit = await latestFit(runtime, request.workspaceId);
      return fit ? (await planSendTimes(runtime, request)).plans : fallback.choose(request);
    },
  };
}
