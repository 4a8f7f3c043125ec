import type { WebhookEvent } from '../channels/types.ts';
import { parseWhatsAppWebhook } from '../channels/whatsapp/index.ts';
import { repairMessageRollup } from '../metrics/rollup.ts';
import type { Runtime } from '../runtime.ts';
import type { Sql } from '../stores/postgres.ts';
import { type ApplyReport, applyWebhookEvents, type WebhookSource } from './apply.ts';
import { trackBatch } from './batches-in-flight.ts';
import { defaultInboundEffects, type InboundEffects } from './effects.ts';

/** Turns one stored payload into normalized events; throws when the body cannot be read. */
export type WebhookParser = (channel: string, rawBody: Buffer) => WebhookEvent[];

/** Reads a stored payload with its channel's adapter. */
export const defaultWebhookParser: WebhookParser = (channel, rawBody) => {
  if (channel === 'whatsapp') return parseWhatsAppWebhook(rawBody);
  throw new Error(`no webhook parser for channel ${channel}`);
};

export interface ProcessOptions {
  parse?: WebhookParser;
  /** Most payloads per batch (each may carry many events); a deep inbox is drained in batches this big. */
  batchSize?: number;
  /** Most body bytes per batch (at least one payload is taken, however big). */
  batchBytes?: number;
  /** Stop after this many batches (default: until the inbox is empty). */
  maxBatches?: number;
  /** How long a claimed batch is leased before another worker may take it over. */
  leaseSeconds?: number;
  /** Delay before retrying a batch whose writes failed, by attempt number. */
  retryDelayMs?: (attempts: number) => number;
  effects?: InboundEffects;
}

export interface ProcessReport extends ApplyReport {
  batches: number;
  payloads: number;
  dead: number;
  /** A batch failed to write and was released for a later retry. */
  failed: boolean;
  error?: string;
}

interface InboxRow {
  id: string;
  workspace_id: string;
  sender_id: string;
  channel: string;
  body: Uint8Array;
  attempts: number;
  /** How many leasable rows the lease found, before the byte budget cut them. */
  candidates: number | string;
  /** Phones (digits) erased while this payload waited: their events are dropped. */
  erased_phones: string[] | null;
}

export const defaultRetryDelayMs = (attempts: number) =>
  Math.min(60_000, 500 * 2 ** Math.max(0, attempts - 1));

export const DEFAULT_BATCH_SIZE = 5000;
// Embedded (PGlite, chdb and the API in one process), a batch's writes hold the one event loop and
// PGlite's one connection while requests wait, so batches stay small there.
export const DEFAULT_EMBEDDED_BATCH_SIZE = 500;
export const DEFAULT_EMBEDDED_BATCH_BYTES = 1024 * 1024;
export const DEFAULT_BATCH_BYTES = 4 * 1024 * 1024;

/**
 * Drains the inbox in batches: lease a batch (SKIP LOCKED, so several workers share the work), parse,
 * write to ClickHouse, then mark the rows processed. A failed write leaves the rows unprocessed with a
 * backoff; since every write is idempotent, a retry never double counts.
 *
 * Batches are large (up to `batchSize` payloads and `batchBytes` of bodies): each ClickHouse insert
 * costs a part per table and materialized view whatever its size, so thousands of single-status
 * payloads per insert cost a fraction of hundreds.
 */
export async function processInbox(runtime: Runtime, options: ProcessOptions = {}): Promise<ProcessReport> {
  const report: ProcessReport = {
    batches: 0,
    payloads: 0,
    dead: 0,
    failed: false,
    statuses: 0,
    messages: 0,
    replies: 0,
    optOuts: 0,
    templateUpdates: 0,
    qualityUpdates: 0,
    unknown: 0,
  };
  const lease = {
    limit:
      options.batchSize ?? (runtime.pg.mode === 'server' ? DEFAULT_BATCH_SIZE : DEFAULT_EMBEDDED_BATCH_SIZE),
    bytes:
      options.batchBytes ??
      (runtime.pg.mode === 'server' ? DEFAULT_BATCH_BYTES : DEFAULT_EMBEDDED_BATCH_BYTES),
    seconds: options.leaseSeconds ?? 120,
  };
  while (options.maxBatches === undefined || report.batches < options.maxBatches) {
    const more = await trackBatch(
      runtime,
      withLeasedBatch(runtime, lease, (rows, sql) => processBatch(runtime, rows, sql, options, report)),
    );
    if (!more) break;
  }
  return report;
}

/** Processes one leased batch; false when the batch failed and processing should stop for now. */
async function processBatch(
  runtime: Runtime,
  rows: InboxRow[],
  sql: Sql,
  options: ProcessOptions,
  report: ProcessReport,
): Promise<boolean> {
  report.batches++;
  const retryDelay = options.retryDelayMs ?? defaultRetryDelayMs;
  const parse = options.parse ?? defaultWebhookParser;
  const parsed: { source: WebhookSource; events: WebhookEvent[]; id: string }[] = [];
  const dead: { id: string; error: string }[] = [];
  for (const row of rows) {
    try {
      let events = parse(row.channel, Buffer.from(row.body.buffer, row.body.byteOffset, row.body.byteLength));
      if (row.erased_phones?.length) events = withoutPhones(events, new Set(row.erased_phones));
      parsed.push({
        id: row.id,
        source: { workspaceId: row.workspace_id, senderId: row.sender_id },
        events,
      });
    } catch (error) {
      dead.push({ id: row.id, error: error instanceof Error ? error.message : String(error) });
    }
  }
  const effects = options.effects ?? defaultInboundEffects;
  const add = (applied: ApplyReport) => {
    for (const key of Object.keys(applied) as (keyof ApplyReport)[]) report[key] += applied[key];
  };
  try {
    add(await applyWebhookEvents(runtime, parsed, effects));
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    runtime.log.warn({ err: error, payloads: rows.length }, 'webhook batch failed');
    // One payload the stores refuse must not hold the others back: try each alone; whatever still
    // fails stays pending with a backoff (an outage fails them all, and they all wait for it).
    const done: typeof parsed = [];
    const failing: InboxRow[] = [];
    const byId = new Map(rows.map((r) => [r.id, r]));
    if (parsed.length > 1) {
      for (const item of parsed) {
        try {
          add(await applyWebhookEvents(runtime, [item], effects));
          done.push(item);
        } catch {
          failing.push(byId.get(item.id)!);
        }
      }
    } else failing.push(...parsed.map((p) => byId.get(p.id)!));
    await release(sql, failing, retryDelay, message);
    await markDone(sql, done, dead);
    report.payloads += done.length + dead.length;
    report.dead += dead.length;
    report.failed = true;
    report.error = message;
    return false;
  }
  await markDone(sql, parsed, dead);
  report.payloads += rows.length;
  report.dead += dead.length;
  if (dead.length) runtime.log.warn({ dead }, 'unreadable webhook payloads kept as dead letters');
  return true;
}

/** A payload's events without those about the given phones (digits, with or without the +). */
function withoutPhones(events: WebhookEvent[], phones: Set<string>): WebhookEvent[] {
  const erased = (phone: string) => phones.has(phone.replace(/^\+/, ''));
  return events.filter((event) => {
    if (event.kind === 'status' || event.kind === 'user_preference') return !erased(event.recipient);
    if (event.kind === 'message') return !erased(event.from);
    return true;
  });
}

interface Lease {
  limit: number;
  bytes: number;
  seconds: number;
}

// The oldest pending payloads not leased (or whose lease or backoff ran out), locked so that other
// workers skip them, cut to the byte budget: the rows past it stay locked only until this batch
// ends and are taken by the next one.
const LEASABLE = `
  WITH candidates AS (
    SELECT id, octet_length(body) AS bytes FROM webhook_inbox
     WHERE processed_at IS NULL AND (claimed_until IS NULL OR claimed_until < now())
     ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED
  ), leased AS (
    SELECT id, candidates FROM (
      SELECT id, sum(bytes) OVER (ORDER BY id) - bytes AS before, count(*) OVER () AS candidates FROM candidates
    ) AS c
     WHERE before < $2
  )`;

/**
 * Leases a batch and runs fn on it. Resolves with whether to lease again at once: fn succeeded and the
 * batch was full (more may be waiting); a short batch means the inbox was drained, which spares the
 * empty lease that would otherwise end every cycle.
 *
 * On a PostgreSQL server the batch is held by row locks in one transaction (one statement to lease,
 * one to mark done, one row version per payload): if the worker dies, its connection ends and the
 * locks with it. PGlite has a single connection, so a transaction held across the ClickHouse write
 * would stall the endpoint's inserts; there the batch is leased by `claimed_until` instead.
 */
async function withLeasedBatch(
  runtime: Runtime,
  lease: Lease,
  fn: (rows: InboxRow[], sql: Sql) => Promise<boolean>,
): Promise<boolean> {
  if (runtime.pg.mode === 'server') {
    return runtime.pg.transaction(async (tx) => {
      const { rows } = await tx.query<InboxRow>(
        `${LEASABLE}
         SELECT w.id, w.workspace_id, w.sender_id, w.channel, w.body, w.attempts + 1 AS attempts,
                leased.candidates, w.erased_phones
           FROM webhook_inbox AS w JOIN leased USING (id) ORDER BY w.id`,
        [lease.limit, lease.bytes],
      );
      if (!rows.length) return false;
      const ok = await fn(rows, { query: (text, params) => tx.query(text, params) });
      return ok && mayHaveMore(rows, lease);
    });
  }
  const { rows } = await runtime.pg.query<InboxRow>(
    `${LEASABLE}
     UPDATE webhook_inbox AS w SET claimed_until = now() + make_interval(secs => $3), attempts = w.attempts + 1
       FROM leased WHERE w.id = leased.id
     RETURNING w.id, w.workspace_id, w.sender_id, w.channel, w.body, w.attempts, leased.candidates,
               w.erased_phones`,
    [lease.limit, lease.bytes, lease.seconds],
  );
  if (!rows.length) return false;
  rows.sort((a, b) => Number(a.id) - Number(b.id));
  const ok = await fn(rows, runtime.pg);
  return ok && mayHaveMore(rows, lease);
}

/** A batch cut short by the byte budget, or as big as the limit, may have left rows behind. */
function mayHaveMore(rows: InboxRow[], lease: Lease): boolean {
  const candidates = Number(rows[0]!.candidates);
  return candidates > rows.length || candidates >= lease.limit;
}

/** Puts failed rows back with a backoff; `attempts` counts this failed try. */
async function release(
  sql: Sql,
  rows: InboxRow[],
  retryDelay: (attempts: number) => number,
  error: string,
): Promise<void> {
  if (!rows.length) return;
  const delayMs = retryDelay(Math.max(...rows.map((r) => r.attempts)));
  await sql.query(
    `UPDATE webhook_inbox AS w SET claimed_until = now() + make_interval(secs => $3), last_error = $4,
            attempts = v.attempts
       FROM unnest($1::bigint[], $2::int[]) AS v(id, attempts) WHERE w.id = v.id AND w.id = ANY($1::bigint[])`,
    [rows.map((r) => r.id), rows.map((r) => r.attempts), delayMs / 1000, error.slice(0, 1000)],
  );
}

/**
 * Marks a batch processed in one statement: applied rows 'ok', unreadable ones 'dead'. The `= ANY`
 * lets PostgreSQL find the rows by primary key: joined to the unnest alone, it hashed a scan of the
 * whole inbox for every batch (7 days of payloads in production).
 */
async function markDone(
  sql: Sql,
  parsed: { id: string; events: WebhookEvent[] }[],
  dead: { id: string; error: string }[],
): Promise<void> {
  if (!parsed.length && !dead.length) return;
  const ids = [...parsed.map((p) => p.id), ...dead.map((d) => d.id)];
  const events = [...parsed.map((p) => p.events.length), ...dead.map(() => null)];
  const errors = [...parsed.map(() => null), ...dead.map((d) => d.error.slice(0, 1000))];
  await sql.query(
    `UPDATE webhook_inbox AS w
        SET processed_at = now(), outcome = CASE WHEN v.error IS NULL THEN 'ok' ELSE 'dead' END,
            events = v.events, last_error = v.error,
            -- a payload naming an erased person is emptied once handled, as the erase does to handled ones
            body = CASE WHEN w.erased_phones IS NULL THEN w.body ELSE '\\x7b7d'::bytea END,
            erased_phones = NULL
       FROM unnest($1::bigint[], $2::int[], $3::text[]) AS v(id, events, error)
      WHERE w.id = v.id AND w.id = ANY($1::bigint[])`,
    [ids, events, errors],
  );
}

/** Deletes processed payloads older than the retention (dead letters are kept). */
export async function pruneInbox(runtime: Runtime, retentionDays = 7): Promise<number> {
  const { rowCount } = await runtime.pg.query(
    `DELETE FROM webhook_inbox WHERE processed_at < now() - make_interval(days => $1) AND outcome = 'ok'`,
    [retentionDays],
  );
  return rowCount;
}

export interface InboxLoop {
  /** Process now instead of at the next poll. */
  kick(): void;
  stop(): Promise<void>;
}

/** Polls the inbox and processes it; one loop per worker process, several processes may share an inbox. */
export function startInboxLoop(runtime: Runtime, options: ProcessOptions & { pollMs?: number }): InboxLoop {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let wake: (() => void) | undefined;
  let prunedAt = 0;
  let repairedAt = Date.now();
  const run = async () => {
    while (!stopped) {
      if (Date.now() - prunedAt > 3_600_000) {
        prunedAt = Date.now();
        await pruneInbox(runtime).catch((error) => runtime.log.warn({ err: error }, 'inbox prune failed'));
      }
      if (Date.now() - repairedAt > 60_000) {
        repairedAt = Date.now();
        await repairMessageRollup(runtime).catch((error) =>
          runtime.log.warn({ err: error }, 'message rollup repair failed'),
        );
      }
      try {
        const report = await processInbox(runtime, { ...options, maxBatches: 50 });
        if (report.payloads) runtime.log.debug({ report }, 'webhooks processed');
        if (report.batches === 50 && !report.failed) continue;
      } catch (error) {
        runtime.log.error({ err: error }, 'webhook processing failed');
      }
      await new Promise<void>((resolve) => {
        wake = resolve;
        timer = setTimeout(resolve, options.pollMs ?? 500);
      });
    }
  };
  running = run();
  return {
    kick() {
      if (timer) clearTimeout(timer);
      wake?.();
    },
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      wake?.();
      await running;
    },
  };
}
