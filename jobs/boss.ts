import { PgBoss } from 'pg-boss';
import type { Runtime } from '../engine/runtime.ts';

/** A queue and what works it; each feature adds its queues to `queues` in jobs/queues.ts. */
export interface QueueDefinition<T extends object = object> {
  name: string;
  options?: Record<string, unknown>;
  work?: { batchSize?: number; pollingIntervalSeconds?: number; localConcurrency?: number };
  handler?: (runtime: Runtime, boss: PgBoss, jobs: { id: string; data: T }[]) => Promise<void>;
  /** Runs once when a worker process starts (e.g. a polling loop); stop it on boss 'stopped'. */
  onStart?: (runtime: Runtime, boss: PgBoss) => Promise<void> | void;
}

export async function startBoss(runtime: Runtime): Promise<PgBoss> {
  // LISTEN/NOTIFY on a server: workers of queues created with `notify` (dispatch) get new jobs at
  // once instead of at their next poll. PGlite has no second session to listen on.
  const boss = new PgBoss({
    ...runtime.pg.bossOptions(),
    migrate: true,
    useListenNotify: runtime.pg.mode === 'server',
  } as ConstructorParameters<typeof PgBoss>[0]);
  boss.on('error', (error) => runtime.log.error({ err: error }, 'pg-boss error'));
  await boss.start();
  return boss;
}

export async function ensureQueues(boss: PgBoss, queues: readonly QueueDefinition[]): Promise<void> {
  for (const queue of queues) {
    if (!(await boss.getQueue(queue.name))) await boss.createQueue(queue.name, queue.options as never);
  }
}

/** Starts workers for every queue that has a handler. */
export async function startWorkers(
  runtime: Runtime,
  boss: PgBoss,
  queues: readonly QueueDefinition[],
): Promise<void> {
  await ensureQueues(boss, queues);
  for (const queue of queues) {
    const handler = queue.handler;
    if (!handler) continue;
    await boss.work<object>(
      queue.name,
      {
        batchSize: queue.work?.batchSize ?? 1,
        pollingIntervalSeconds: queue.work?.pollingIntervalSeconds ?? 0.5,
        localConcurrency: queue.work?.localConcurrency ?? 1,
      },
      async (jobs) => handler(runtime, boss, jobs),
    );
  }
  for (const queue of queues) await queue.onStart?.(runtime, boss);
  runtime.log.info({ queues: queues.filter((q) => q.handler).map((q) => q.name) }, 'workers started');
}
