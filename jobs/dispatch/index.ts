/**
 * Campaign dispatch on pg-boss. The ledger (campaign_sends) is the truth; a job only tells whichever
 * worker process is free to claim a batch of a campaign's due sends. A pump in every worker process
 * keeps a bounded number of due sends enqueued per running campaign (one `dispatch_batches` row per
 * batch out; a batch whose job died stops counting after the stale timeout), resolves in-doubt sends
 * and writes settled sends to ClickHouse. Duplicate jobs are harmless: a claim is a row lock plus a
 * state check.
 */
import { hostname } from 'node:os';
import type { PgBoss } from 'pg-boss';
import {
  DEFAULTS,
  type DispatchOptions,
  forgetBatches,
  maybeComplete,
  processSends,
  reconcileSending,
  reportSends,
  type SenderRow,
} from '../../engine/campaigns/dispatch.ts';
import { transition } from '../../engine/campaigns/model.ts';
import type { ChannelAdapter } from '../../engine/channels/types.ts';
import { whatsappAdapterForSender } from '../../engine/channels/whatsapp/index.ts';
import { newId } from '../../engine/ids.ts';
import type { Runtime } from '../../engine/runtime.ts';
import type { Sql } from '../../engine/stores/postgres.ts';
import { pruneShares } from '../../engine/throttle/index.ts';
import type { QueueDefinition } from '../boss.ts';
import { HEARTBEAT_MS, heartbeat, pruneWorkers, retireWorker, routeSenders } from './affinity.ts';

export const DISPATCH_QUEUE = 'campaign-dispatch';
const QUEUE_OPTIONS = { retryLimit: 3, expireInSeconds: 120, notify: true };
/** Dispatch queues worked in this process, with the id of their first pg-boss worker. */
const localQueues = new Map<string, string>();

/** A batch: up to `count` due sends of the campaign, claimed by the worker that takes the job. */
export interface DispatchJob {
  campaignId: string;
  batchId: string;
  count: number;
}

export interface PumpOptions {
  /** Fastest sender one worker process sends alone (messages/s); see affinity.ts. */
  processMps?: number;
  /** Seconds of sending kept enqueued per campaign. */
  aheadSeconds?: number;
  /** A batch not claimed after this long no longer counts as enqueued (its job may have died). */
  staleMs?: number;
}

/** Sends per job: about half a second of the sender's rate, within bounds. */
export function batchSize(rate: number): number {
  return Math.max(10, Math.min(250, Math.round(rate / 2)));
}

/**
 * One pump pass over every scheduled or running campaign: start scheduled ones whose first send is
 * due, and enqueue due sends as jobs, at most `aheadSeconds` of sending per campaign.
 */
export async function pump(
  runtime: Runtime,
  boss: PgBoss,
  options: PumpOptions & { clockOffsetMs?: number } = {},
): Promise<number> {
  const now = new Date(Date.now() + (options.clockOffsetMs ?? 0));
  const staleMs = options.staleMs ?? 20_000;
  const { rows: campaigns } = await runtime.pg.query<{
    id: string;
    workspace_id: string;
    state: string;
    sender_id: string | null;
    throughput_mps: number;
  }>(
    `SELECT c.id, c.workspace_id, c.state, c.sender_id, coalesce(s.throughput_mps, 80) AS throughput_mps
       FROM campaigns c LEFT JOIN senders s ON s.id = c.sender_id
      WHERE c.state IN ('scheduled', 'running')`,
  );
  let enqueued = 0;
  // Routed before anything is enqueued: handing an orphaned sender to a new owner offers its
  // enqueued sends again.
  const rates = new Map<string, number>();
  for (const c of campaigns) if (c.sender_id) rates.set(c.sender_id, Number(c.throughput_mps));
  const routes = await routeSenders(
    runtime.pg,
    [...rates].map(([senderId, rate]) => ({ senderId, rate })),
    options.processMps,
  );
  // Each queue's jobs, per campaign, inserted interleaved below: campaigns launched together start
  // together instead of the first one's batches filling every worker.
  const perQueue = new Map<string, { data: DispatchJob }[][]>();
  for (const campaign of campaigns) {
    if (campaign.state === 'scheduled') {
      const { rows } = await runtime.pg.query<{ due: boolean }>(
        `SELECT EXISTS (SELECT 1 FROM campaign_sends WHERE campaign_id = $1 AND state = 'queued' AND not_before <= $2) AS due`,
        [campaign.id, now],
      );
      if (!rows[0]?.due) continue;
      await transition(runtime.pg, campaign.workspace_id, campaign.id, 'start', 'system').catch(() => {});
    }
    const rate = Number(campaign.throughput_mps);
    const size = batchSize(rate);
    const budget = Math.max(size * 2, Math.ceil(rate * (options.aheadSeconds ?? 2)));
    const outstanding = async (sql: Sql) =>
      Number(
        (
          await sql.query<{ n: string }>(
            `SELECT coalesce(sum(size), 0) AS n FROM dispatch_batches WHERE campaign_id = $1
               AND enqueued_at > clock_timestamp() - make_interval(secs => $2::float8 / 1000)`,
            [campaign.id, staleMs],
          )
        ).rows[0]?.n ?? 0,
      );
    // Most passes find no whole batch of room (three pumps, every 200 ms): they skip the locked
    // transaction. Batches are out, so the campaign is not complete either. Counted again below.
    if (budget - (await outstanding(runtime.pg)) < size) continue;
    const batches = await runtime.pg.transaction(async (tx) => {
      // Pumps of several processes take turns per campaign, so each counts what the others just
      // enqueued instead of all enqueuing the whole budget.
      await tx.query("SELECT pg_advisory_xact_lock(hashtext('chorus.pump.' || $1))", [campaign.id]);
      const out = await outstanding(tx);
      // Whole batches only: pumps in three processes every 200 ms otherwise top up ~70 sends a pass
      // at 1,000/s, and every batch costs a dozen statements whatever its size (the campaign's tail,
      // fewer than a batch, still goes: once the others are claimed the whole budget is free).
      const room = Math.floor((budget - out) / size) * size;
      if (room <= 0) return [];
      // Due sends not yet covered by a batch out (a bounded look at the due index).
      const { rows } = await tx.query<{ n: string }>(
        `SELECT count(*) AS n FROM (SELECT 1 FROM campaign_sends
            WHERE campaign_id = $1 AND state = 'queued' AND not_before <= $2 LIMIT $3) due`,
        [campaign.id, now, out + room],
      );
      const n = Math.min(room, Number(rows[0]?.n ?? 0) - out);
      if (n <= 0) return [];
      const sizes: number[] = [];
      for (let left = n; left > 0; left -= size) sizes.push(Math.min(size, left));
      const ids = sizes.map(() => newId('b', 12));
      await tx.query(
        `INSERT INTO dispatch_batches (batch_id, campaign_id, size, enqueued_at)
         SELECT unnest($1::text[]), $2, unnest($3::int[]), clock_timestamp()`,
        [ids, campaign.id, sizes],
      );
      return ids.map((batchId, i) => ({ batchId, count: sizes[i]! }));
    });
    if (batches.length === 0) {
      if (campaign.state === 'running') await maybeComplete(runtime, campaign);
      continue;
    }
    const jobs = batches.map((b) => ({ data: { campaignId: campaign.id, ...b } satisfies DispatchJob }));
    const queue = (campaign.sender_id && routes.get(campaign.sender_id)) || DISPATCH_QUEUE;
    if (!perQueue.has(queue)) perQueue.set(queue, []);
    perQueue.get(queue)!.push(jobs);
    enqueued += batches.reduce((sum, b) => sum + b.count, 0);
  }
  for (const [queue, perCampaign] of perQueue) {
    const interleaved = [];
    for (let round = 0; perCampaign.some((jobs) => round < jobs.length); round++)
      for (const jobs of perCampaign) if (round < jobs.length) interleaved.push(jobs[round]!);
    await boss.insert(queue, interleaved);
    // A worker of this process on that queue fetches now instead of at its next poll.
    const local = localQueues.get(queue);
    if (local) boss.notifyWorker(local);
  }
  return enqueued;
}

/** How often a dispatcher looks for in-doubt sends whose lease ran out (ms). */
const RECONCILE_MS = 1_000;
/** How often a dispatcher on PGlite vacuums and analyzes the ledger (ms). */
const EMBEDDED_VACUUM_MS = 10_000;

export interface DispatcherHandle {
  options: DispatchOptions;
  /** Runs one pump and reconcile pass now (launch calls it for a fast first send). */
  kick(): Promise<void>;
  stop(): Promise<void>;
}

let adapterFactory: DispatchOptions['adapterFor'] | undefined;
const adapters = new Map<string, { key: string; adapter: ChannelAdapter }>();

/** WhatsApp senders get the Cloud API adapter, one per sender, rebuilt when its settings change. */
export function defaultAdapterFor(sender: SenderRow): ChannelAdapter {
  if (sender.channel !== 'whatsapp') throw new Error(`no adapter for channel ${sender.channel}`);
  const key = [sender.base_url, sender.api_version, sender.phone_number_id, sender.access_token].join('|');
  const cached = adapters.get(sender.id);
  if (cached?.key === key) return cached.adapter;
  const adapter = whatsappAdapterForSender(sender);
  adapters.set(sender.id, { key, adapter });
  return adapter;
}
/** The channel modules register how a sender becomes an adapter. */
export function registerAdapterFactory(factory: DispatchOptions['adapterFor']): void {
  adapterFactory = factory;
}

/**
 * Starts dispatch in this process: the job handler and the pump loop. Any number of processes may
 * run it against the same Postgres.
 */
export async function startDispatcher(
  runtime: Runtime,
  boss: PgBoss,
  options: Partial<DispatchOptions> &
    PumpOptions & {
      pumpIntervalMs?: number;
      localConcurrency?: number;
      /** False: pump only, no job handler (an API process in front of separate worker processes). */
      work?: boolean;
    } = {},
): Promise<DispatcherHandle> {
  const adapterFor = options.adapterFor ?? adapterFactory ?? defaultAdapterFor;
  const dispatch: DispatchOptions = {
    ...options,
    workerId: options.workerId ?? `${hostname()}:${process.pid}:${newId('w', 6)}`,
    adapterFor,
  };
  const shared = await boss.getQueue(DISPATCH_QUEUE);
  if (!shared) await boss.createQueue(DISPATCH_QUEUE, QUEUE_OPTIONS as never);
  else if (!(shared as { notify?: boolean }).notify)
    await boss.updateQueue(DISPATCH_QUEUE, { notify: true } as never).catch(() => {});
  const work = options.work ?? true;
  // A worker's own queue: the pump routes the senders this process owns to it (affinity.ts).
  const ownQueue = `${DISPATCH_QUEUE}.${newId('w', 12)}`;
  let beat: ReturnType<typeof setInterval> | undefined;
  let sharedWorker: string | undefined;
  /** Batches this process is working on. */
  const inFlight = new Set<Promise<void>>();
  if (work) {
    await boss.createQueue(ownQueue, QUEUE_OPTIONS as never);
    // A job mostly waits for its slots (no connection held), so many run at once per process: a few
    // pollers each fetch several jobs and run them side by side (32 pollers fetching one job each
    // asked the database for work 64 times a second while idle).
    // A job is only a hint (the ledger is the truth: a lost job's sends are offered again), so it is
    // completed as soon as its batch has a slot here, and the batch runs on. A batch waiting for its
    // sender's backlog or its slots then never holds up a poller, and a sender launched later gets
    // its first batch at once instead of behind every earlier sender's waiting ones.
    const concurrency = options.localConcurrency ?? 128;
    const pollers = 4;
    const handler = async (jobs: { data: DispatchJob }[]) => {
      for (const job of jobs) {
        while (inFlight.size >= concurrency) await Promise.race(inFlight);
        const { campaignId, batchId, count } = job.data;
        const run: Promise<void> = processSends(runtime, campaignId, { batchId, count }, dispatch)
          .then(
            () => {},
            async (error) => {
              runtime.log.error({ err: error, campaign: campaignId }, 'dispatch batch failed');
              // Its sends are offered again at the next pump pass rather than after the stale timeout.
              await forgetBatches(runtime.pg, [batchId]).catch(() => {});
            },
          )
          .finally(() => inFlight.delete(run));
        inFlight.add(run);
      }
    };
    const workOptions = {
      batchSize: 8,
      localConcurrency: pollers,
      pollingIntervalSeconds: 0.5,
      // NOTIFY (PostgreSQL) or a local wake-up (below) brings new jobs at once; polling is a backstop.
      notifyPollingIntervalSeconds: 2,
    } as never;
    sharedWorker = await boss.work<DispatchJob>(DISPATCH_QUEUE, workOptions, handler);
    const ownWorker = await boss.work<DispatchJob>(ownQueue, workOptions, handler);
    localQueues.set(DISPATCH_QUEUE, sharedWorker);
    localQueues.set(ownQueue, ownWorker);
    await heartbeat(runtime.pg, dispatch.workerId, ownQueue);
    let beating = false;
    beat = setInterval(async () => {
      if (beating) return;
      beating = true;
      await heartbeat(runtime.pg, dispatch.workerId, ownQueue)
        .catch((error) => runtime.log.warn({ err: error }, 'dispatch heartbeat failed'))
        .finally(() => {
          beating = false;
        });
    }, HEARTBEAT_MS);
    beat.unref();
  }
  let running: Promise<void> | undefined;
  /** A kick came while a pass ran: another pass follows it at once (the kick's campaign may be new to it). */
  let kicked = false;
  let stopped = false;
  let prunedAt = 0;
  let vacuumedAt = 0;
  let reconciledAt = 0;
  const onePass = async () => {
    try {
      if (Date.now() - prunedAt > 60_000) {
        prunedAt = Date.now();
        await pruneShares(runtime.pg);
        await runtime.pg.query(
          "DELETE FROM dispatch_batches WHERE enqueued_at < clock_timestamp() - interval '10 minutes'",
        );
        for (const queue of await pruneWorkers(runtime.pg)) await boss.deleteQueue(queue).catch(() => {});
      }
      if (runtime.pg.mode === 'embedded' && Date.now() - vacuumedAt > EMBEDDED_VACUUM_MS) {
        // PGlite has no autovacuum: without this the ledger's dead row versions and index entries
        // (two updates per send) pile up, and the planner, with no statistics, scans them all.
        vacuumedAt = Date.now();
        await runtime.pg.exec('VACUUM ANALYZE campaign_sends, throttle_contacts, dispatch_batches');
      }
      // In-doubt sends wait out a lease (30 s) first, so looking once a second is soon enough.
      if (Date.now() - reconciledAt >= RECONCILE_MS) {
        reconciledAt = Date.now();
        await reconcileSending(runtime, dispatch);
      }
      await pump(runtime, boss, { ...options, clockOffsetMs: dispatch.clockOffsetMs });
      const { rows } = await runtime.pg.query<{ campaign_id: string }>(
        `SELECT DISTINCT campaign_id FROM campaign_sends WHERE reported = false AND state IN ('accepted', 'failed') LIMIT 20`,
      );
      for (const row of rows) await reportSends(runtime, row.campaign_id);
    } catch (error) {
      if (!stopped) runtime.log.error({ err: error }, 'dispatch pump failed');
    }
  };
  const pass = (kick = false): Promise<void> => {
    if (stopped) return Promise.resolve();
    if (running) {
      if (kick) kicked = true;
      return running;
    }
    running = (async () => {
      do {
        kicked = false;
        await onePass();
      } while (kicked && !stopped);
    })().finally(() => {
      running = undefined;
    });
    return running;
  };
  const timer = setInterval(() => void pass(), options.pumpIntervalMs ?? 500);
  await pass();
  const handle: DispatcherHandle = {
    options: dispatch,
    kick: () => pass(true),
    async stop() {
      stopped = true;
      localDispatchers.delete(handle);
      clearInterval(timer);
      clearInterval(beat);
      if (work) {
        localQueues.delete(ownQueue);
        if (localQueues.get(DISPATCH_QUEUE) === sharedWorker) localQueues.delete(DISPATCH_QUEUE);
        await boss.offWork(DISPATCH_QUEUE);
        await boss.offWork(ownQueue);
      }
      await running;
      await Promise.all(inFlight);
      if (work) {
        // Its senders go to other workers at once, with what was enqueued to it.
        await retireWorker(runtime.pg, dispatch.workerId).catch(() => {});
        await boss.deleteQueue(ownQueue).catch(() => {});
      }
    },
  };
  localDispatchers.add(handle);
  return handle;
}

const localDispatchers = new Set<DispatcherHandle>();
/** After a launch: a dispatcher in this process pumps at once, so the first send does not wait a tick. */
export async function kickLocalDispatchers(): Promise<void> {
  await Promise.all([...localDispatchers].map((d) => d.kick()));
}

export const dispatchQueue: QueueDefinition = {
  name: DISPATCH_QUEUE,
  options: QUEUE_OPTIONS,
};

export { DEFAULTS };
