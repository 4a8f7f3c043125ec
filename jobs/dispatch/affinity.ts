/**
 * Sender affinity. Worker processes on one sender split its per-second limit (engine/throttle), which
 * is exact but wasteful when the job queue hands the sender's batches out unevenly: one process waits
 * at half the limit while the other has nothing. So a sender that one process can carry
 * (`processMps`) is owned by one worker process at a time: every worker has its own job queue and a
 * heartbeat in `dispatch_workers`, and the pump sends the sender's batches to its owner's queue. A
 * sender whose owner stopped beating goes to the least loaded live worker, and its enqueued sends are
 * offered again at once. Senders faster than one process go to the shared queue, where every worker
 * takes batches and the split applies. Two owners at once (a pump that read an old heartbeat, a
 * process that stalled past its heartbeat) only cost speed: the split keeps the limit.
 */
import type { Sql } from '../../engine/stores/postgres.ts';

/** A worker that has not beaten for this long is taken as gone and its senders given to others. */
export const WORKER_ALIVE_MS = 3_000;
/** How often a worker beats. */
export const HEARTBEAT_MS = 500;
/** Default fastest sender one process sends alone (messages/s); faster ones use the shared queue. */
export const PROCESS_MPS = Number(process.env.CHORUS_DISPATCH_PROCESS_MPS ?? 1_000);

export async function heartbeat(sql: Sql, workerId: string, queue: string): Promise<void> {
  await sql.query(
    `INSERT INTO dispatch_workers (worker_id, queue, seen_at) VALUES ($1, $2, clock_timestamp())
     ON CONFLICT (worker_id) DO UPDATE SET seen_at = EXCLUDED.seen_at, queue = EXCLUDED.queue`,
    [workerId, queue],
  );
}

/**
 * A worker stopping: it no longer owns anything, and the sends enqueued to it that it did not claim
 * are offered again at once (to the senders' next owners) instead of after the stale timeout.
 */
export async function retireWorker(sql: Sql, workerId: string): Promise<void> {
  await sql.query('DELETE FROM dispatch_workers WHERE worker_id = $1', [workerId]);
  const { rows } = await sql.query<{ sender_id: string }>(
    'DELETE FROM dispatch_sender_owners WHERE worker_id = $1 RETURNING sender_id',
    [workerId],
  );
  await reofferSenders(
    sql,
    rows.map((r) => r.sender_id),
  );
}

/** Batches out for these senders' campaigns stop counting: their sends are offered again. */
async function reofferSenders(sql: Sql, senderIds: string[]): Promise<void> {
  if (senderIds.length === 0) return;
  await sql.query(
    `DELETE FROM dispatch_batches b USING campaigns c
      WHERE c.id = b.campaign_id AND c.sender_id = ANY($1::text[])`,
    [senderIds],
  );
}

export interface SenderLoad {
  senderId: string;
  /** The sender's configured messages per second. */
  rate: number;
}

/**
 * Where each sender's batches go: the job queue of the worker process owning it, or undefined for
 * the shared queue (the sender is faster than one process, or no worker has a queue of its own).
 * `senders` are those with running campaigns: a live worker's load is the rate of those it owns.
 */
export async function routeSenders(
  store: Sql & { transaction<T>(fn: (tx: Sql) => Promise<T>): Promise<T> },
  senders: SenderLoad[],
  processMps = PROCESS_MPS,
): Promise<Map<string, string | undefined>> {
  const routes = new Map<string, string | undefined>();
  const owned = senders.filter((s) => s.rate <= processMps);
  for (const s of senders) routes.set(s.senderId, undefined);
  if (owned.length === 0) return routes;
  const read = async (sql: Sql) => {
    const { rows: workers } = await sql.query<{ worker_id: string; queue: string }>(
      `SELECT worker_id, queue FROM dispatch_workers
        WHERE seen_at > clock_timestamp() - make_interval(secs => $1::float8 / 1000) ORDER BY worker_id`,
      [WORKER_ALIVE_MS],
    );
    const { rows: owners } = await sql.query<{ sender_id: string; worker_id: string }>(
      'SELECT sender_id, worker_id FROM dispatch_sender_owners WHERE sender_id = ANY($1::text[])',
      [owned.map((s) => s.senderId)],
    );
    const queues = new Map(workers.map((w) => [w.worker_id, w.queue]));
    const ownerOf = new Map(
      owners.filter((o) => queues.has(o.worker_id)).map((o) => [o.sender_id, o.worker_id]),
    );
    return { queues, ownerOf };
  };
  let { queues, ownerOf } = await read(store);
  if (queues.size === 0) return routes;
  if (owned.some((s) => !ownerOf.has(s.senderId))) {
    // Assigned under one lock, so pumps in several processes never split new senders unevenly.
    ({ queues, ownerOf } = await store.transaction(async (tx) => {
      await tx.query("SELECT pg_advisory_xact_lock(hashtext('chorus.dispatch.owners'))");
      const current = await read(tx);
      const load = new Map([...current.queues.keys()].map((w) => [w, 0]));
      for (const s of owned) {
        const owner = current.ownerOf.get(s.senderId);
        if (owner) load.set(owner, load.get(owner)! + s.rate);
      }
      const orphans = owned
        .filter((s) => !current.ownerOf.has(s.senderId))
        .sort((a, b) => b.rate - a.rate || a.senderId.localeCompare(b.senderId));
      if (orphans.length === 0) return current;
      for (const s of orphans) {
        let best = '';
        for (const [worker, l] of load) if (!best || l < load.get(best)!) best = worker;
        load.set(best, load.get(best)! + s.rate);
        current.ownerOf.set(s.senderId, best);
      }
      await tx.query(
        `INSERT INTO dispatch_sender_owners (sender_id, worker_id, since)
         SELECT unnest($1::text[]), unnest($2::text[]), clock_timestamp()
         ON CONFLICT (sender_id) DO UPDATE SET worker_id = EXCLUDED.worker_id, since = EXCLUDED.since`,
        [orphans.map((s) => s.senderId), orphans.map((s) => current.ownerOf.get(s.senderId)!)],
      );
      // What was enqueued to a gone owner's queue waits there for no one: offer it to the new one.
      await reofferSenders(
        tx,
        orphans.map((s) => s.senderId),
      );
      return current;
    }));
  }
  for (const s of owned) routes.set(s.senderId, queues.get(ownerOf.get(s.senderId)!));
  return routes;
}

/** Workers gone for an hour: their rows and queues go (a queue's jobs are stale by then). */
export async function pruneWorkers(sql: Sql): Promise<string[]> {
  const { rows } = await sql.query<{ queue: string }>(
    "DELETE FROM dispatch_workers WHERE seen_at < clock_timestamp() - interval '1 hour' RETURNING queue",
  );
  await sql.query(
    'DELETE FROM dispatch_sender_owners o WHERE NOT EXISTS (SELECT 1 FROM dispatch_workers w WHERE w.worker_id = o.worker_id)',
  );
  return rows.map((r) => r.queue);
}
