/**
 * Every error code of the facts page's table, mapped to what a sender does. Build on `code`, never on
 * titles (Meta's advice). Codes not listed fall back on the HTTP status: 429 and 5xx retry, the rest never.
 */
import type { OutcomeClass, ProviderError, SendOutcome } from '../types.ts';

export interface BackoffPolicy {
  /** First retry delay; doubles per attempt. */
  baseMs: number;
  /** Largest delay. */
  maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { baseMs: 1_000, maxMs: 5 * 60_000 };
export const DAY_MS = 24 * 3_600_000;

type Rule = { class: OutcomeClass; optOut?: boolean; slowDown?: boolean; pairRate?: boolean };

/** The facts page's table. Exported so a deployment can read it (and tests can walk it). */
export const WHATSAPP_ERROR_CLASSES: Readonly<Record<number, Rule>> = {
  130429: { class: 'retry', slowDown: true }, // throughput reached
  131056: { class: 'retry', pairRate: true }, // pair rate to one user: 4^X s
  4: { class: 'retry' }, // app call rate
  80007: { class: 'retry' }, // account call rate
  131057: { class: 'retry' }, // throughput upgrade in progress
  1: { class: 'retry' }, // server error
  2: { class: 'retry' }, // downtime
  131000: { class: 'retry' }, // unknown
  131016: { class: 'retry' }, // service unavailable
  131049: { class: 'retry_after_24h' }, // per-user marketing limit
  131050: { class: 'never', optOut: true }, // user stopped marketing
  131026: { class: 'never' }, // undeliverable
  131047: { class: 'never' }, // outside the 24 h window: send a template
  130403: { class: 'never' }, // business blocked the user
  131048: { class: 'pause_campaign' }, // spam rate limit: quality problem
  131064: { class: 'stop_template' }, // limit imposed for template miscategorisation
  368: { class: 'stop_sender' }, // account restricted
  131031: { class: 'stop_sender' }, // account disabled or locked
  190: { class: 'stop_sender' }, // access token invalid or expired: nothing on this sender can go out
  131051: { class: 'never' }, // unsupported message type
  132000: { class: 'never' }, // parameter count mismatch
  132001: { class: 'never' }, // template missing in that language or not approved
  132005: { class: 'never' }, // translated text too long
  132007: { class: 'never' }, // policy violation
  132012: { class: 'never' }, // parameter format mismatch
  132015: { class: 'stop_template' }, // template paused for low quality
  132016: { class: 'stop_template' }, // template disabled
};

export interface ClassifyOptions {
  backoff?: BackoffPolicy;
  now?: () => number;
  /** A Retry-After the provider sent, in ms; honoured when longer than the backoff. */
  retryAfterMs?: number;
  /** Per-deployment changes to the table (codes the facts page marks uncertain). */
  overrides?: Record<number, Rule>;
}

export function backoffMs(attempt: number, policy: BackoffPolicy = DEFAULT_BACKOFF): number {
  return Math.min(policy.maxMs, policy.baseMs * 2 ** Math.max(0, attempt));
}

/** Meta's advice for 131056: wait 4^X seconds, X = 0, 1, 2, ... */
export function pairRateBackoffMs(attempt: number): number {
  return 1_000 * 4 ** Math.max(0, Math.min(attempt, 8));
}

export function classifyWhatsAppError(
  error: ProviderError,
  attempt: number,
  options: ClassifyOptions = {},
): SendOutcome {
  const now = options.now ?? Date.now;
  const rule: Rule = options.overrides?.[error.code] ??
    WHATSAPP_ERROR_CLASSES[error.code] ?? {
      class:
        error.httpStatus === undefined || error.httpStatus === 429 || error.httpStatus >= 500
          ? 'retry'
          : 'never',
    };
  const outcome: SendOutcome = {
    class: rule.class,
    errorCode: error.code,
    errorTitle: error.title,
    errorDetails: error.details,
    httpStatus: error.httpStatus,
  };
  if (rule.class === 'retry') {
    const wait = rule.pairRate ? pairRateBackoffMs(attempt) : backoffMs(attempt, options.backoff);
    outcome.retryAfterMs = Math.max(wait, options.retryAfterMs ?? 0);
    outcome.notBefore = new Date(now() + outcome.retryAfterMs);
  }
  if (rule.class === 'retry_after_24h') outcome.notBefore = new Date(now() + DAY_MS);
  if (rule.optOut) outcome.optOut = true;
  if (rule.slowDown) outcome.slowDown = true;
  return outcome;
}
