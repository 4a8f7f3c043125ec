import type { QueueDefinition } from '../../jobs/boss.ts';
import { runInboxLoop } from './index.ts';
import { processInbox } from './processor.ts';

/**
 * The inbox is its own queue: every worker process polls it (leases with SKIP LOCKED, so several
 * share it) and the API wakes the loop of its own process when it stores a payload. The pg-boss
 * queue lets an operator force a drain (`webhooks-inbox`).
 */
export const webhookQueues: QueueDefinition[] = [
  {
    name: 'webhooks-inbox',
    handler: async (runtime) => {
      await processInbox(runtime);
    },
    onStart: (runtime, boss) => {
      const loop = runInboxLoop(runtime, { pollMs: Number(process.env.CHORUS_WEBHOOK_POLL_MS ?? 250) });
      boss.on('stopped', () => void loop.stop());
    },
  },
];
