import type { QueueDefinition } from '../../jobs/boss.ts';
import { fitAllWorkspaces, fitSendTime } from './fit.ts';

export const STO_FIT_QUEUE = 'sto-fit';
/** Nightly by default (UTC); CHORUS_STO_FIT_CRON overrides, e.g. '0 * * * *' for hourly. */
export const STO_FIT_CRON = process.env.CHORUS_STO_FIT_CRON ?? '17 3 * * *';

/**
 * `sto-fit`: a job with `{ workspaceId }` refits that workspace; a job without one (the schedule)
 * refits every workspace that has sent anything. One fit at a time per worker: a fit is a few large
 * ClickHouse queries, not something to run side by side.
 */
export const stoQueues: QueueDefinition<{ workspaceId?: string }>[] = [
  {
    name: STO_FIT_QUEUE,
    options: { policy: 'singleton', retryLimit: 2, retryDelay: 300, expireInSeconds: 3600 },
    work: { batchSize: 1, pollingIntervalSeconds: 5 },
    handler: async (runtime, _boss, jobs) => {
      for (const job of jobs) {
        if (job.data.workspaceId) await fitSendTime(runtime, job.data.workspaceId);
        else await fitAllWorkspaces(runtime);
      }
    },
    onStart: async (_runtime, boss) => {
      await boss.schedule(STO_FIT_QUEUE, STO_FIT_CRON, {}, { tz: 'UTC' });
    },
  },
];
