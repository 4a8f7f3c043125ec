import type { QueueDefinition } from '../../jobs/boss.ts';
import { runInboxLoop } from './index.ts';
import { processInbox } from './processor.ts';

/**
 * The inbox is its own queue: every worker process polls it (leases with SKIP LOCKED, so several
 * share it) every CHORUS_WEBHOOK_POLL_MS (500 ms), so a storm is processed in large batches. The pg-boss
 * queue lets an operator force a drain (`webhooks-inbox`).
 */
export const webhookQueues: QueueDefinition[] = [
  {
    name: 'webhooks-inbox',
    handler: async (runtime) => {
      await processInbox(runtime);
    },
    onStart: (runtime, boss) => {
      const loop = runInboxLoop(runtime, { pollMs: Number(process.env.CHORUS_WEBHOOK_POLL_MS ?? 500) });
      boss.on('stopped', () => void loop.stop());
    },
  },
];
