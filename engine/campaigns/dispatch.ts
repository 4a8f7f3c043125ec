/**
 * Dispatch: turns queued ledger rows into provider sends under every throttle, exactly once.
 * See README.md in this folder for the guarantee and the one window where the provider's side is
 * unknown.
 */

import type { ChannelAdapter, OutboundMessage, RenderedContent, SendOutcome } from '../channels/types.ts';
import { GroupCommit } from '../group-commit.ts';
import type { Runtime } from '../runtime.ts';
import type { PostgresStore, Sql } from '../stores/postgres.ts';
import {
  gate,
  PAIR_INTERVAL_MS,
  penalize,
  recordContactSends,
  refreshShare,
  releaseShare,
  reserveSlots,
  type SenderLimits,
} from '../throttle/index.ts';
import { PROVIDER_WINDOW_MS, pacerFor, SKIPPED } from '../throttle/pacer.ts';
import { transition } from './model.ts';
import { type Campaign, CampaignError, type CampaignSettings } from './types.ts';

export interface SenderRow extends SenderLimits {
  workspace_id: string;
  channel: string;
  name: string;
  base_url: string;
  api_version: string;
  phone_number_id: string | null;
  access_token: string | null;
  app_secret: string | null;
  quality: string;
  status: string;
  status_reason: string | null;
}

/** Tells, for sends whose request may have left before a crash, whether the provider took them. */
export interface ProviderLookup {
  lookup(
    runtime: Runtime,
    rows: { send_id: string; sender_id: string; phone: string; lease_until: Date }[],
  ): Promise<Map<string, { found: true; providerMessageId: string } | { found: false; definitive: boolean }>>;
}

export interface DispatchOptions {
  /** Names this process in leases. */
  workerId: string;
  adapterFor: (sender: SenderRow) => ChannelAdapter;
  /** How long a claimed send stays owned by its worker past its slot (ms). */
  leaseMs?: number;
  /** Every provider request is aborted after this (ms); must be well under leaseMs. */
  requestTimeoutMs?: number;
  /** Share of the sender's configured rate actually used, to absorb jitter. */
  headroom?: number;
  /** Shifts the policy clock (quiet hours, pair rate, caps) for tests; slots use the real clock. */
  clockOffsetMs?: number;
  /** Attempts before a retryable send is given up as failed. */
  maxAttempts?: number;
  /** How in-doubt sends are resolved after a crash (default: status webhooks in ClickHouse). */
  lookup?: ProviderLookup;
  /** Where a send's outcome is observed (tests, progress rate). */
  onOutcome?: (sendId: string, outcome: SendOutcome) => void;
}

export const DEFAULTS = {
  leaseMs: 30_000,
  requestTimeoutMs: 10_000,
  headroom: Number(process.env.CHORUS_DISPATCH_HEADROOM ?? 0.99),
  maxAttempts: 6,
  /** Without a status for this long after its lease, an in-doubt send is taken as never sent. */
  webhookHoldMs: 15 * 60_000,
};

/** After a 130429, this process sends nothing to that sender for this long (the window drains). */
const THROUGHPUT_HOLD_MS = 250;

/** How often a worker with sends for a sender renews its share and learns how many share it. */
const SHARE_REFRESH_MS = 200;
/** A share is given back this long after the worker's last send for the sender was answered. */
const SHARE_LINGER_MS = PROVIDER_WINDOW_MS + 100;

const shares = new Map<string, { share: number }>();

/**
 * While this process has sends for a sender, its share of the sender's limit is renewed and its
 * pacer follows the number of workers sharing it (another joining halves it before the newcomer
 * starts). Once nothing of its own has been in the provider's window for a second, it is given back.
 */
function keepShare(runtime: Runtime, sender: SenderRow, workerId: string, share: number): void {
  const known = shares.get(sender.id);
  if (known) {
    known.share = share;
    pacerFor(sender.id, sender.throughput_mps, share);
    return;
  }
  const entry = { share };
  shares.set(sender.id, entry);
  let busy = false;
  let released = false;
  let idleSince: number | undefined;
  const timer = setInterval(async () => {
    if (busy) return;
    const pacer = pacerFor(sender.id, sender.throughput_mps, entry.share);
    if (pacer.idle) {
      idleSince ??= performance.now();
      if (released || performance.now() - idleSince < SHARE_LINGER_MS) return;
      busy = true;
      // Only if no claim renewed it meanwhile: then the share is still needed.
      released = await releaseShare(runtime.pg, sender.id, workerId, SHARE_LINGER_MS - 100).catch(
        () => false,
      );
      if (released) entry.share = 1;
      busy = false;
      return;
    }
    idleSince = undefined;
    released = false;
    busy = true;
    try {
      entry.share = await refreshShare(runtime.pg, sender.id, workerId);
      pacerFor(sender.id, sender.throughput_mps, entry.share);
    } catch (error) {
      runtime.log.warn({ err: error, sender: sender.id }, 'sender share not refreshed');
    } finally {
      busy = false;
    }
  }, SHARE_REFRESH_MS);
  timer.unref();
}

/** Marks a claimed send given back unsent (the campaign stopped running meanwhile). */
const RELEASED: SendOutcome = { class: 'retry', errorTitle: 'released' };

const stateCache = new Map<string, { state: string; at: number; pending?: Promise<string> }>();
/** The campaign's state, read at most every 200 ms per process (sends check it before each request). */
async function currentState(runtime: Runtime, campaignId: string): Promise<string> {
  const cached = stateCache.get(campaignId);
  if (cached && performance.now() - cached.at < 200) return cached.state;
  if (cached?.pending) return cached.pending;
  const pending = runtime.pg
    .query<{ state: string }>('SELECT state FROM campaigns WHERE id = $1', [campaignId])
    .then((r) => {
      const state = r.rows[0]?.state ?? 'missing';
      stateCache.set(campaignId, { state, at: performance.now() });
      return state;
    });
  stateCache.set(campaignId, { state: cached?.state ?? 'running', at: cached?.at ?? 0, pending });
  return pending;
}

const policyNow = (options: DispatchOptions) => new Date(Date.now() + (options.clockOffsetMs ?? 0));

interface Context {
  campaign: Campaign;
  sender: SenderRow;
  purpose: string;
  category: string;
  templateName: string;
  timezone: string;
}

export async function loadSender(sql: Sql, senderId: string): Promise<SenderRow | undefined> {
  const { rows } = await sql.query<SenderRow>('SELECT * FROM senders WHERE id = $1', [senderId]);
  return rows[0];
}

async function loadContext(sql: Sql, campaignId: string): Promise<Context | undefined> {
  const { rows } = await sql.query<Campaign & { ws_timezone: string }>(
    `SELECT c.*, w.timezone AS ws_timezone FROM campaigns c JOIN workspaces w ON w.id = c.workspace_id
     WHERE c.id = $1`,
    [campaignId],
  );
  const campaign = rows[0];
  if (!campaign?.sender_id) return undefined;
  const sender = await loadSender(sql, campaign.sender_id);
  if (!sender) return undefined;
  const content = campaign.content;
  const category = 'template' in content ? (content.template.category ?? 'MARKETING') : 'UTILITY';
  return {
    campaign: { ...campaign, settings: campaign.settings as CampaignSettings },
    sender,
    purpose: category.toLowerCase(),
    category,
    templateName: 'template' in content ? content.template.name : '',
    timezone: campaign.ws_timezone,
  };
}

interface Claimed {
  send_id: string;
  contact_id: string;
  phone: string;
  country: string;
  timezone: string;
  rendered: RenderedContent;
  attempts: number;
  exploration: boolean;
  propensity: number;
  delayMs: number;
}

export interface BatchReport {
  sent: number;
  held: number;
  skipped: number;
  stopped?: string;
}

/** One job's batch: up to `count` due sends of the campaign; `batchId` is its `dispatch_batches` row. */
export interface BatchClaim {
  batchId?: string;
  count: number;
}

/** Batches that will not be claimed: their sends no longer count as enqueued, so the pump offers them again. */
export async function forgetBatches(sql: Sql, batchIds: string[]): Promise<void> {
  if (batchIds.length)
    await sql.query('DELETE FROM dispatch_batches WHERE batch_id = ANY($1::text[])', [batchIds]);
}

/**
 * Claims and sends up to `batch.count` due, still-queued sends of the campaign (one job's batch).
 * Safe with any number of workers on the same campaign: claims are row-locked (SKIP LOCKED) and
 * conditional on the ledger state.
 */
export async function processSends(
  runtime: Runtime,
  campaignId: string,
  batch: BatchClaim,
  options: DispatchOptions,
): Promise<BatchReport> {
  const report: BatchReport = { sent: 0, held: 0, skipped: 0 };
  const ctx = await loadContext(runtime.pg, campaignId);
  const forget = () => forgetBatches(runtime.pg, batch.batchId ? [batch.batchId] : []);
  if (!ctx) {
    await forget();
    return { ...report, stopped: 'missing campaign or sender' };
  }
  if (ctx.campaign.state !== 'running') {
    await forget();
    return { ...report, stopped: ctx.campaign.state };
  }
  if (ctx.sender.quality === 'RED' || ctx.sender.status !== 'active') {
    await forget();
    const reason =
      ctx.sender.quality === 'RED'
        ? `sender ${ctx.sender.name} quality is RED`
        : `sender ${ctx.sender.name} is ${ctx.sender.status}${ctx.sender.status_reason ? `: ${ctx.sender.status_reason}` : ''}`;
    await autoPause(runtime, ctx.campaign, reason);
    return { ...report, stopped: reason };
  }
  const leaseMs = options.leaseMs ?? DEFAULTS.leaseMs;
  const rate = Math.max(0.1, ctx.sender.throughput_mps * (options.headroom ?? DEFAULTS.headroom));
  // Claim no more than this process can send soon: a CPU-starved worker leaves work to others
  // instead of reserving slots it would reach late.
  const backlogLimit = Math.max(100, ctx.sender.throughput_mps * 2);
  const shareNow = () => shares.get(ctx.sender.id)?.share ?? 1;
  while (pacerFor(ctx.sender.id, ctx.sender.throughput_mps, shareNow()).backlog > backlogLimit)
    await new Promise((resolve) => setTimeout(resolve, 50));
  const now = policyNow(options);

  let claimedShare = 0;
  let claimedRows = 0;
  let joinHoldMs = 0;
  const claimed = await runtime.pg.transaction(async (tx) => {
    // The batch stops counting as enqueued in the transaction that claims its sends.
    const { rows } = await tx.query<Omit<Claimed, 'delayMs'>>(
      `WITH claimed_batch AS (DELETE FROM dispatch_batches WHERE batch_id = $4)
       SELECT send_id, contact_id, phone, country, timezone, rendered, attempts, exploration, propensity
         FROM campaign_sends
        WHERE campaign_id = $1 AND state = 'queued' AND not_before <= $2
        ORDER BY not_before LIMIT $3 FOR UPDATE SKIP LOCKED`,
      [campaignId, now, batch.count, batch.batchId ?? ''],
      { name: 'dispatch-claim' },
    );
    const policy = {
      workspaceId: ctx.campaign.workspace_id,
      channel: ctx.campaign.channel,
      purpose: ctx.purpose,
      quietHours: ctx.campaign.settings.quiet_hours ?? null,
      frequencyCap: ctx.campaign.settings.frequency_cap ?? null,
      defaultTimezone: ctx.timezone,
      now,
    };
    const decision = await gate(tx, ctx.sender, rows, policy);
    const { delays, share, holdMs } = await reserveSlots(
      tx,
      ctx.sender.id,
      options.workerId,
      decision.send.length,
      rate,
    );
    if (decision.send.length) {
      claimedShare = share;
      joinHoldMs = holdMs;
    }
    // The pair rate counts from when each message actually goes: its slot, not the claim. A contact
    // another campaign sent to since the gate read it is not recorded: held for the pair rate (its
    // slot goes unused; the tier and warm-up counted it, erring on the safe side).
    const recorded = await recordContactSends(
      tx,
      policy,
      decision.send.map((s, i) => [s.contact_id, delays[i]!]),
    );
    const sends: { send_id: string; delay: number }[] = [];
    decision.send.forEach((s, i) => {
      if (recorded.has(s.contact_id)) sends.push({ send_id: s.send_id, delay: delays[i]! });
      else
        decision.hold.push({
          send_id: s.send_id,
          until: new Date(now.getTime() + PAIR_INTERVAL_MS),
          reason: 'pair_rate',
        });
    });
    if (decision.skip.length)
      await tx.query(
        `UPDATE campaign_sends c SET state = 'skipped', skip_reason = u.reason, final_at = now(), updated_at = now()
           FROM unnest($1::text[], $2::text[]) AS u(id, reason) WHERE c.send_id = u.id`,
        [decision.skip.map((s) => s.send_id), decision.skip.map((s) => s.reason)],
      );
    if (decision.hold.length)
      await tx.query(
        `UPDATE campaign_sends c SET not_before = u.until, skip_reason = u.reason, updated_at = now()
           FROM unnest($1::text[], $2::timestamptz[], $3::text[]) AS u(id, until, reason) WHERE c.send_id = u.id`,
        [
          decision.hold.map((h) => h.send_id),
          decision.hold.map((h) => h.until),
          decision.hold.map((h) => h.reason),
        ],
      );
    if (sends.length)
      await tx.query(
        // No join with unnest(...): see the outcome update in recordOutcomes.
        `UPDATE campaign_sends c SET state = 'sending', attempts = attempts + 1, sending_at = now(), lease_owner = $3,
             lease_until = clock_timestamp()
               + make_interval(secs => (($2::float8[])[array_position($1::text[], c.send_id)] + $4) / 1000),
             skip_reason = NULL, updated_at = now()
           WHERE c.send_id = ANY($1::text[])`,
        [sends.map((s) => s.send_id), sends.map((s) => s.delay), options.workerId, leaseMs],
        { name: 'dispatch-mark-sending' },
      );
    claimedRows = rows.length;
    report.held = decision.hold.length;
    report.skipped = decision.skip.length;
    const byId = new Map(rows.map((r) => [r.send_id, r]));
    return sends.map((s) => ({ ...byId.get(s.send_id)!, delayMs: s.delay }));
  });
  if (claimed.length === 0) {
    await maybeComplete(runtime, ctx.campaign);
    return report;
  }

  const adapter = options.adapterFor(ctx.sender);
  const requestTimeoutMs = options.requestTimeoutMs ?? DEFAULTS.requestTimeoutMs;
  const pacer = pacerFor(ctx.sender.id, ctx.sender.throughput_mps, claimedShare);
  keepShare(runtime, ctx.sender, options.workerId, claimedShare);
  // Joining workers already sending for this sender: they shrink their shares before this one starts.
  if (joinHoldMs) pacer.holdFor(joinHoldMs);
  const start = performance.now();
  const outcomes = await Promise.all(
    claimed.map(async (row): Promise<SendOutcome | undefined> => {
      let lost = false;
      let stopped = false;
      const result = await pacer.schedule(
        start + row.delayMs,
        async () => {
          // A request may only start while its lease outlives the request: the reconciler relies on it.
          if (performance.now() - start > row.delayMs + leaseMs - requestTimeoutMs - 1_000) {
            lost = true;
            return false;
          }
          // A pause or cancel takes effect before the next request, not after the batch.
          stopped = (await currentState(runtime, campaignId)) !== 'running';
          return !stopped;
        },
        async () => {
          const message: OutboundMessage = { sendId: row.send_id, to: row.phone, content: row.rendered };
          try {
            const outcome = await adapter.send(message, {
              timeoutMs: requestTimeoutMs,
              attempt: row.attempts - 1,
            });
            // Over the provider's limit: the next sends of this process wait for the window to drain.
            if (outcome.slowDown) pacer.holdFor(THROUGHPUT_HOLD_MS);
            return outcome;
          } catch (error) {
            // Adapters classify everything; a throw leaves the send in doubt, for the reconciler.
            return { class: 'retry', errorTitle: `in doubt: ${String(error)}` } satisfies SendOutcome;
          }
        },
      );
      // Never fired (stopped, or too late for its lease): no request left, so it is simply given back.
      if (result === SKIPPED) return lost || stopped ? RELEASED : undefined;
      options.onOutcome?.(row.send_id, result);
      return result;
    }),
  );
  const stop = await recordOutcomes(runtime, ctx, claimed, outcomes, options, claimedRows < batch.count);
  report.sent = outcomes.filter((o) => o?.class === 'accepted').length;
  if (stop) report.stopped = stop;
  return report;
}

async function recordOutcomes(
  runtime: Runtime,
  ctx: Context,
  rows: Claimed[],
  outcomes: (SendOutcome | undefined)[],
  options: DispatchOptions,
  /** The claim found fewer due sends than the batch asked for: the campaign may be done. */
  drained: boolean,
): Promise<string | undefined> {
  const maxAttempts = options.maxAttempts ?? DEFAULTS.maxAttempts;
  const ids: string[] = [];
  const states: string[] = [];
  const providerIds: (string | null)[] = [];
  const codes: (number | null)[] = [];
  const titles: (string | null)[] = [];
  const notBefore: (Date | null)[] = [];
  const now = policyNow(options);
  let stopReason: string | undefined;
  let stopSender = false;
  let slowDown = false;
  const optOuts: string[] = [];
  const released: string[] = [];
  const inDoubt: string[] = [];
  rows.forEach((row, i) => {
    const outcome = outcomes[i];
    if (!outcome) return; // lease lost before the request: left for the reconciler
    // No answer (timeout, connection lost): the provider may have taken it. Left in "sending" for
    // the reconciler, which asks the provider before anything is sent again.
    if (outcome.class === 'retry' && !outcome.errorCode && outcome !== RELEASED && !outcome.httpStatus) {
      inDoubt.push(row.send_id);
      return;
    }
    if (outcome === RELEASED) {
      released.push(row.send_id);
      return;
    }
    let state: string;
    let after: Date | null = null;
    switch (outcome.class) {
      case 'accepted':
        state = 'accepted';
        break;
      case 'retry':
        if (outcome.slowDown) slowDown = true;
        state = row.attempts >= maxAttempts ? 'failed' : 'queued';
        after = new Date(now.getTime() + (outcome.retryAfterMs ?? 1_000));
        break;
      case 'retry_after_24h':
        state = row.attempts >= maxAttempts ? 'failed' : 'queued';
        after = outcome.notBefore ?? new Date(now.getTime() + 86_400_000);
        break;
      case 'never':
        state = 'failed';
        if (outcome.optOut) optOuts.push(row.contact_id);
        break;
      case 'stop_template':
        state = 'failed';
        stopReason ??= `template ${ctx.templateName} cannot be sent (error ${outcome.errorCode ?? '?'}: ${outcome.errorTitle ?? ''})`;
        break;
      case 'pause_campaign':
      case 'stop_sender':
        // Not sent: kept for after a resume.
        state = 'queued';
        after = now;
        stopReason ??= `provider error ${outcome.errorCode ?? '?'} (${outcome.errorTitle ?? outcome.class})`;
        if (outcome.class === 'stop_sender') stopSender = true;
        break;
    }
    ids.push(row.send_id);
    states.push(state);
    providerIds.push(outcome.providerMessageId ?? null);
    codes.push(outcome.errorCode ?? null);
    titles.push(outcome.errorTitle ?? null);
    notBefore.push(after);
  });
  // Settled sends go to ClickHouse first, so the ledger update can mark them reported in the same
  // statement; a crash in between leaves them `sending` for the reconciler, then `reported = false`
  // for the pump's sweep (the table dedupes by key, so a send written twice is harmless).
  const reported = await reportBatch(runtime, ctx, rows, outcomes, ids, states);
  if (ids.length)
    // No join: each row's values are picked from the arrays by its position. Joined to
    // `unnest(...)`, the planner (which takes the ledger's `sending` rows to be few) made the rows
    // in flight the outer side of a nested loop and rescanned the whole batch for each of them:
    // two thirds of PostgreSQL's time at 1,000/s.
    await runtime.pg.query(
      `UPDATE campaign_sends c
          SET (state, provider_message_id, error_code, error_title, not_before, final_at, reported) = (
                SELECT u.state, coalesce(u.pid, c.provider_message_id), u.code, u.title, coalesce(u.nb, c.not_before),
                       CASE WHEN u.state IN ('accepted', 'failed') THEN now() END,
                       CASE WHEN $8 AND u.state IN ('accepted', 'failed') THEN true ELSE c.reported END
                  FROM (SELECT ($2::text[])[i] AS state, ($3::text[])[i] AS pid, ($4::int[])[i] AS code,
                               ($5::text[])[i] AS title, ($6::timestamptz[])[i] AS nb
                          FROM array_position($1::text[], c.send_id) AS i) u),
              lease_owner = NULL, lease_until = NULL, updated_at = now()
        WHERE c.send_id = ANY($1::text[]) AND c.state = 'sending' AND c.lease_owner = $7`,
      [ids, states, providerIds, codes, titles, notBefore, options.workerId, reported],
    );
  if (released.length)
    await runtime.pg.query(
      `UPDATE campaign_sends SET state = 'queued', attempts = attempts - 1, lease_owner = NULL,
           lease_until = NULL, updated_at = now()
        WHERE send_id = ANY($1::text[]) AND state = 'sending' AND lease_owner = $2`,
      [released, options.workerId],
    );
  if (inDoubt.length) {
    // Expire the lease now (the request is over), so the reconciler can ask the provider at once.
    await runtime.pg.query(
      `UPDATE campaign_sends SET lease_until = clock_timestamp(), updated_at = now()
        WHERE send_id = ANY($1::text[]) AND state = 'sending' AND lease_owner = $2`,
      [inDoubt, options.workerId],
    );
    runtime.log.warn(
      { campaign: ctx.campaign.id, count: inDoubt.length },
      'sends in doubt, left for reconciliation',
    );
  }
  // A cancel that landed while this batch was out: what it gave back or must retry is skipped too.
  // The state is read after this batch's updates committed: a cancel committing later skips them
  // itself. (The update alone, run for every batch, cost more than the batch's own ledger update.)
  const { rows: latest } = await runtime.pg.query<{ state: string }>(
    'SELECT state FROM campaigns WHERE id = $1',
    [ctx.campaign.id],
  );
  if (latest[0]?.state === 'cancelled')
    await runtime.pg.query(
      `UPDATE campaign_sends s SET state = 'skipped', skip_reason = 'cancelled', final_at = now(), updated_at = now()
      FROM campaigns c WHERE c.id = s.campaign_id AND c.id = $1 AND c.state = 'cancelled' AND s.state = 'queued'`,
      [ctx.campaign.id],
    );
  if (optOuts.length) await recordOptOuts(runtime.pg, ctx, optOuts);
  if (slowDown) await penalize(runtime.pg, ctx.sender.id, 1_000);
  if (stopSender)
    await runtime.pg.query(
      "UPDATE senders SET status = 'stopped', status_reason = $2, updated_at = now() WHERE id = $1",
      [ctx.sender.id, stopReason],
    );
  if (!stopReason && (states.includes('failed') || !failureWindowFull.get(ctx.campaign.id)))
    stopReason = await failureRateBreached(runtime.pg, ctx.campaign);
  if (stopReason) {
    await autoPause(runtime, ctx.campaign, stopReason);
    return stopReason;
  }
  // A batch that got all it asked for leaves the last word to the pump, which completes the
  // campaign at its next pass once nothing is queued or in flight (one query less per batch).
  if (drained) await maybeComplete(runtime, ctx.campaign);
  return undefined;
}

/**
 * Writes this batch's settled sends (accepted or failed) to ClickHouse `sends` from what the worker
 * holds, with no read back of the ledger. False when ClickHouse refused: the rows then stay
 * `reported = false` for the pump's `reportSends`.
 */
async function reportBatch(
  runtime: Runtime,
  ctx: Context,
  rows: Claimed[],
  outcomes: (SendOutcome | undefined)[],
  ids: string[],
  states: string[],
): Promise<boolean> {
  const index = new Map(rows.map((row, i) => [row.send_id, i]));
  const { campaign } = ctx;
  const content = campaign.content;
  const templateName = 'template' in content ? content.template.name : '';
  const templateCategory = 'template' in content ? (content.template.category ?? 'MARKETING') : '';
  const sentAt = new Date().toISOString();
  const out = [];
  for (let k = 0; k < ids.length; k++) {
    const state = states[k];
    if (state !== 'accepted' && state !== 'failed') continue;
    const i = index.get(ids[k]!)!;
    const row = rows[i]!;
    const outcome = outcomes[i];
    out.push({
      workspace_id: campaign.workspace_id,
      send_id: row.send_id,
      campaign_id: campaign.id,
      campaign_name: campaign.name,
      template_name: templateName,
      template_category: templateCategory,
      channel: campaign.channel,
      sender_id: ctx.sender.id,
      contact_id: row.contact_id,
      phone: row.phone,
      country: row.country,
      timezone: row.timezone,
      provider_message_id: outcome?.providerMessageId ?? '',
      outcome: state,
      error_code: outcome?.errorCode ?? 0,
      sent_at: sentAt,
      exploration: row.exploration ? 1 : 0,
      propensity: row.propensity,
    });
  }
  if (out.length === 0) return false;
  try {
    await sendsWriter(runtime).submit(out);
    return true;
  } catch (error) {
    runtime.log.warn(
      { err: error, campaign: campaign.id },
      'sends not written to ClickHouse; the pump retries',
    );
    return false;
  }
}

type SendRow = Record<string, string | number | boolean | null>;
/** How long a batch's settled sends wait for others to share their ClickHouse insert (ms, server mode). */
const SENDS_LINGER_MS = 1_000;
const sendsWriters = new WeakMap<Runtime, GroupCommit<SendRow[], true>>();
/**
 * Batches settling while a `sends` insert runs join the next one: each insert costs ClickHouse a part
 * per table and view (~20 ms of CPU in chdb whatever its size), so one per batch bounded a worker.
 */
function sendsWriter(runtime: Runtime): GroupCommit<SendRow[], true> {
  let writer = sendsWriters.get(runtime);
  if (!writer) {
    writer = new GroupCommit(
      async (groups: SendRow[][]) => {
        await runtime.ch.insert('sends', groups.flat());
        return groups.map(() => true as const);
      },
      // With a PostgreSQL server, a second of settled batches per insert: each insert also makes
      // ClickHouse create (and later merge) part files, which was over half of a worker's CPU at one
      // insert per batch (perf). Not on PGlite: there the one process's four senders fell from
      // 3,015/s to 1,763/s with it (A/B, BENCHMARKS.md), though it spent less CPU per message.
      {
        weight: (rows) => rows.length,
        maxWeight: 20_000,
        lingerMs: runtime.pg.mode === 'server' ? SENDS_LINGER_MS : 0,
      },
    );
    sendsWriters.set(runtime, writer);
  }
  return writer;
}

/** The provider said the person stopped these messages (131050): the opt-out is recorded as consent. */
async function recordOptOuts(sql: PostgresStore, ctx: Context, contactIds: string[]): Promise<void> {
  await sql.transaction(async (tx) => {
    for (const contactId of contactIds) {
      const { rows } = await tx.query<{ id: string }>(
        `INSERT INTO consent_records (workspace_id, contact_id, channel, purpose, status, source, actor, recorded_at)
         VALUES ($1, $2, $3, $4, 'opted_out', 'provider_error', 'system', now()) RETURNING id`,
        [ctx.campaign.workspace_id, contactId, ctx.campaign.channel, ctx.purpose],
      );
      await tx.query(
        `INSERT INTO consent_current (workspace_id, contact_id, channel, purpose, status, recorded_at, record_id)
         VALUES ($1, $2, $3, $4, 'opted_out', now(), $5)
         ON CONFLICT (workspace_id, contact_id, channel, purpose)
         DO UPDATE SET status = 'opted_out', recorded_at = now(), record_id = EXCLUDED.record_id`,
        [ctx.campaign.workspace_id, contactId, ctx.campaign.channel, ctx.purpose, rows[0]!.id],
      );
    }
  });
}

/**
 * Campaigns whose failure window, at this process's last look, already held `min_attempts` settled
 * sends. A batch without a failure then cannot raise the share over the threshold (the failures in
 * the window can only leave it, and its size no longer crosses `min_attempts`), so only batches with
 * a failure look again; a process recording failures looks after its own update, so it sees every
 * batch committed before. The rule is still evaluated per batch, but a query is spent only where
 * the answer can change.
 */
const failureWindowFull = new Map<string, boolean>();

async function failureRateBreached(sql: Sql, campaign: Campaign): Promise<string | undefined> {
  const rule = campaign.settings.auto_pause;
  if (!rule) return undefined;
  const { rows } = await sql.query<{ n: string; failed: string }>(
    `SELECT count(*) AS n, count(*) FILTER (WHERE state = 'failed') AS failed FROM (
       SELECT state FROM campaign_sends WHERE campaign_id = $1 AND final_at IS NOT NULL
       ORDER BY final_at DESC LIMIT $2) recent`,
    [campaign.id, rule.window],
  );
  const n = Number(rows[0]?.n ?? 0);
  const failed = Number(rows[0]?.failed ?? 0);
  if (failureWindowFull.size > 10_000) failureWindowFull.clear();
  failureWindowFull.set(campaign.id, n >= rule.min_attempts);
  if (n >= rule.min_attempts && failed / n > rule.failure_rate)
    return `failure rate ${((100 * failed) / n).toFixed(1)}% over the last ${n} sends exceeds ${(100 * rule.failure_rate).toFixed(1)}%`;
  return undefined;
}

export async function autoPause(runtime: Runtime, campaign: Campaign, reason: string): Promise<void> {
  try {
    await transition(runtime.pg, campaign.workspace_id, campaign.id, 'pause', 'system:auto-pause', {
      reason,
    });
    runtime.log.warn({ campaign: campaign.id, reason }, 'campaign auto-paused');
  } catch (error) {
    if (!(error instanceof CampaignError)) throw error; // already paused or finished
  }
}

/** A running campaign with nothing queued or in flight is complete. */
export async function maybeComplete(
  runtime: Runtime,
  campaign: Pick<Campaign, 'id' | 'workspace_id'>,
): Promise<boolean> {
  const { rows } = await runtime.pg.query<{ open: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM campaign_sends WHERE campaign_id = $1 AND state IN ('queued', 'sending')) AS open`,
    [campaign.id],
  );
  if (rows[0]?.open) return false;
  await reportSends(runtime, campaign.id);
  try {
    await transition(runtime.pg, campaign.workspace_id, campaign.id, 'complete', 'system');
    return true;
  } catch (error) {
    if (error instanceof CampaignError) return false;
    throw error;
  }
}

/** Appends settled sends to ClickHouse `sends`; re-running is harmless (the table dedupes by key). */
export async function reportSends(runtime: Runtime, campaignId: string): Promise<number> {
  const { rows } = await runtime.pg.query<{
    send_id: string;
    workspace_id: string;
    contact_id: string;
    phone: string;
    country: string;
    timezone: string;
    provider_message_id: string | null;
    state: string;
    error_code: number | null;
    final_at: Date;
    exploration: boolean;
    propensity: number;
    campaign_name: string;
    content: Campaign['content'];
    sender_id: string;
    channel: string;
  }>(
    `SELECT s.send_id, s.workspace_id, s.contact_id, s.phone, s.country, s.timezone, s.provider_message_id,
            s.state, s.error_code, s.final_at, s.exploration, s.propensity,
            c.name AS campaign_name, c.content, c.sender_id, c.channel
       FROM campaign_sends s JOIN campaigns c ON c.id = s.campaign_id
      WHERE s.campaign_id = $1 AND s.reported = false AND s.state IN ('accepted', 'failed')
      LIMIT 5000`,
    [campaignId],
  );
  if (rows.length === 0) return 0;
  await runtime.ch.insert(
    'sends',
    rows.map((r) => ({
      workspace_id: r.workspace_id,
      send_id: r.send_id,
      campaign_id: campaignId,
      campaign_name: r.campaign_name,
      template_name: 'template' in r.content ? r.content.template.name : '',
      template_category: 'template' in r.content ? (r.content.template.category ?? 'MARKETING') : '',
      channel: r.channel,
      sender_id: r.sender_id,
      contact_id: r.contact_id,
      phone: r.phone,
      country: r.country,
      timezone: r.timezone,
      provider_message_id: r.provider_message_id ?? '',
      outcome: r.state === 'failed' ? 'failed' : 'accepted',
      error_code: r.error_code ?? 0,
      sent_at: new Date(r.final_at).toISOString(),
      exploration: r.exploration ? 1 : 0,
      propensity: r.propensity,
    })),
  );
  await runtime.pg.query('UPDATE campaign_sends SET reported = true WHERE send_id = ANY($1::text[])', [
    rows.map((r) => r.send_id),
  ]);
  return rows.length;
}

/** Status webhooks (written to ClickHouse by the webhook pipeline) keyed by our send id. */
export const webhookLookup = (holdMs = DEFAULTS.webhookHoldMs): ProviderLookup => ({
  async lookup(runtime, rows) {
    const found = await runtime.ch.rows<{ send_id: string; provider_message_id: string }>(
      `SELECT send_id, any(provider_message_id) AS provider_message_id FROM ${runtime.ch.database}.message_statuses
        WHERE send_id IN {ids:Array(String)} GROUP BY send_id`,
      { ids: rows.map((r) => r.send_id) },
    );
    const byId = new Map(found.map((f) => [f.send_id, f.provider_message_id]));
    const result = new Map<
      string,
      { found: true; providerMessageId: string } | { found: false; definitive: boolean }
    >();
    for (const row of rows) {
      const pid = byId.get(row.send_id);
      result.set(
        row.send_id,
        pid
          ? { found: true, providerMessageId: pid }
          : { found: false, definitive: Date.now() - new Date(row.lease_until).getTime() > holdMs },
      );
    }
    return result;
  },
});

/**
 * Resolves sends left in "sending" by a worker that died (its lease ran out): the provider is asked
 * whether it took each one; taken ones become accepted, certainly-absent ones are queued again, and
 * the rest stay in doubt until the lookup can tell.
 */
export async function reconcileSending(
  runtime: Runtime,
  options: DispatchOptions,
): Promise<{ accepted: number; requeued: number; pending: number }> {
  const { rows } = await runtime.pg.query<{
    send_id: string;
    sender_id: string;
    phone: string;
    lease_until: Date;
    campaign_id: string;
  }>(
    `SELECT s.send_id, c.sender_id, s.phone, s.lease_until, s.campaign_id
       FROM campaign_sends s JOIN campaigns c ON c.id = s.campaign_id
      WHERE s.state = 'sending' AND s.lease_until < clock_timestamp() LIMIT 2000`,
  );
  const result = { accepted: 0, requeued: 0, pending: 0 };
  if (rows.length === 0) return result;
  const lookup = options.lookup ?? webhookLookup();
  const answers = await lookup.lookup(runtime, rows);
  const accepted: [string, string][] = [];
  const requeue: string[] = [];
  for (const row of rows) {
    const answer = answers.get(row.send_id);
    if (answer?.found) accepted.push([row.send_id, answer.providerMessageId]);
    else if (answer && !answer.found && answer.definitive) requeue.push(row.send_id);
    else result.pending++;
  }
  if (accepted.length)
    await runtime.pg.query(
      `UPDATE campaign_sends c SET state = 'accepted', provider_message_id = u.pid, final_at = now(),
           lease_owner = NULL, lease_until = NULL, updated_at = now()
         FROM unnest($1::text[], $2::text[]) AS u(id, pid)
        WHERE c.send_id = u.id AND c.state = 'sending' AND c.lease_until < clock_timestamp()`,
      [accepted.map((a) => a[0]), accepted.map((a) => a[1])],
    );
  if (requeue.length)
    await runtime.pg.query(
      `UPDATE campaign_sends SET state = 'queued', lease_owner = NULL, lease_until = NULL, updated_at = now()
        WHERE send_id = ANY($1::text[]) AND state = 'sending' AND lease_until < clock_timestamp()`,
      [requeue],
    );
  if (requeue.length)
    // A campaign cancelled while these were in doubt skips them: nothing else would (its batches are over).
    await runtime.pg.query(
      `UPDATE campaign_sends s SET state = 'skipped', skip_reason = 'cancelled', final_at = now(), updated_at = now()
        FROM campaigns c WHERE c.id = s.campaign_id AND c.state = 'cancelled'
          AND s.send_id = ANY($1::text[]) AND s.state = 'queued'`,
      [requeue],
    );
  result.accepted = accepted.length;
  result.requeued = requeue.length;
  if (accepted.length || requeue.length) runtime.log.info({ ...result }, 'reconciled in-doubt sends');
  return result;
}

/**
 * Asks a provider that exposes its ground truth (the Cloud API simulator's /_sim/log) which sends it
 * accepted. Once a lease has run out the request is over, so an absent send is certainly not sent.
 */
export const groundTruthLookup = (baseUrl: string): ProviderLookup => ({
  async lookup(_runtime, rows) {
    const response = await fetch(`${baseUrl.replace(/\/+$/, '')}/_sim/log?kind=send_accepted`);
    if (!response.ok) throw new Error(`ground truth unavailable: HTTP ${response.status}`);
    const { entries } = (await response.json()) as { entries: { sendId?: string; wamid?: string }[] };
    const accepted = new Map(entries.filter((e) => e.sendId).map((e) => [e.sendId!, e.wamid ?? '']));
    return new Map(
      rows.map((row) => {
        const wamid = accepted.get(row.send_id);
        return [
          row.send_id,
          wamid !== undefined
            ? { found: true as const, providerMessageId: wamid }
            : { found: false as const, definitive: true },
        ];
      }),
    );
  },
});
