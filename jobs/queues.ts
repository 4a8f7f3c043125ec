import { stoQueues } from '../engine/sto/jobs.ts';
import { webhookQueues } from '../engine/webhooks/jobs.ts';
import type { QueueDefinition } from './boss.ts';

/** Every queue Chorus runs; features register theirs here. */
export const queues: QueueDefinition[] = [...webhookQueues, ...(stoQueues as QueueDefinition[])];
