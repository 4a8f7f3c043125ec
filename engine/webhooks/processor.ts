import type { WebhookEvent } from '../channels/types.ts';
import { parseWhatsAppWebhook } from '../channels/whatsapp/index.ts';
import { repairMessageRollup } from '../metrics/rollup.ts';
import type { Runtime } from '../runtime.ts';
import { type ApplyReport, applyWebhookEvents, type WebhookSource } from './apply.ts';
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
  /** Payloads per batch (each may carry many events). */
  batchSize?: number;
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
}

export const defaultRetryDelayMs = (attempts: number) =>
  Math.min(60_000, 500 * 2 ** Math.max(0, attempts - 1));

/**
 * Drains the inbox in batches: lease a batch (a short transaction, SKIP LOCKED so several workers
 * share the work), parse, write to ClickHouse, then mark the rows processed. A failed write leaves
 * the rows unprocessed with a backoff; since every write is idempotent, a retry never double counts.
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
  const batchSize = options.batchSize ?? 200;
  const retryDelay = options.retryDelayMs ?? defaultRetryDelayMs;
  while (options.maxBatches === undefined || report.batches < options.maxBatches) {
    const rows = await claimBatch(runtime, batchSize, options.leaseSeconds ?? 120);
    if (!rows.length) break;
    report.batches++;
    const parsed: { source: WebhookSource; events: WebhookEvent[]; id: string }[] = [];
    const dead: { id: string; error: string }[] = [];
    for (const row of rows) {
      try {
        const events = (options.parse ?? defaultWebhookParser)(row.channel, Buffer.from(row.body));
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
      for (const item of parsed.length > 1 ? parsed : []) {
        try {
          add(await applyWebhookEvents(runtime, [item], effects));
          done.push(item);
        } catch {
          failing.push(rows.find((r) => r.id === item.id)!);
        }
      }
      if (parsed.length <= 1) failing.push(...rows.filter((r) => parsed.some((p) => p.id === r.id)));
      await release(runtime, failing, retryDelay, message);
      await markDone(runtime, done, dead);
      report.payloads += done.length + dead.length;
      report.dead += dead.length;
      report.failed = true;
      report.error = message;
      break;
    }
    await markDone(runtime, parsed, dead);
    report.payloads += rows.length;
    report.dead += dead.length;
    if (dead.length) runtime.log.warn({ dead }, 'unreadable webhook payloads kept as dead letters');
  }
  return report;
}

async function claimBatch(runtime: Runtime, limit: number, leaseSeconds: number): Promise<InboxRow[]> {
  const { rows } = await runtime.pg.query<InboxRow>(
    `UPDATE webhook_inbox SET claimed_until = now() + make_interval(secs => $2), attempts = attempts + 1
      WHERE id IN (
        SELECT id FROM webhook_inbox
         WHERE processed_at IS NULL AND (claimed_until IS NULL OR claimed_until < now())
         ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)
      RETURNING id, workspace_id, sender_id, channel, body, attempts`,
    [limit, leaseSeconds],
  );
  return rows.sort((a, b) => Number(a.id) - Number(b.id));
}

async function release(
  runtime: Runtime,
  rows: InboxRow[],
  retryDelay: (attempts: number) => number,
  error: string,
): Promise<void> {
  if (!rows.length) return;
  const delayMs = retryDelay(Math.max(...rows.map((r) => r.attempts)));
  await runtime.pg.query(
    `UPDATE webhook_inbox SET claimed_until = now() + make_interval(secs => $2), last_error = $3
      WHERE id = ANY($1::bigint[])`,
    [rows.map((r) => r.id), delayMs / 1000, error.slice(0, 1000)],
  );
}

async function markDone(
  runtime: Runtime,
  parsed: { id: string; events: WebhookEvent[] }[],
  dead: { id: string; error: string }[],
): Promise<void> {
  if (parsed.length) {
    await runtime.pg.query(
      `UPDATE webhook_inbox AS w SET processed_at = now(), outcome = 'ok', events = v.events, last_error = NULL
         FROM unnest($1::bigint[], $2::int[]) AS v(id, events) WHERE w.id = v.id`,
      [parsed.map((p) => p.id), parsed.map((p) => p.events.length)],
    );
  }
  for (const item of dead) {
    await runtime.pg.query(
      `UPDATE webhook_inbox SET processed_at = now(), outcome = 'dead', last_error = $2 WHERE id = $1`,
      [item.id, item.error.slice(0, 1000)],
    );
  }
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
