/**
 * Webhooks: provider payloads are verified and stored in the Postgres inbox (inbox.ts), processed
 * in batches (processor.ts) into ClickHouse statuses and events and into consent, template and
 * sender state (apply.ts, effects.ts).
 */
import type { Runtime } from '../runtime.ts';
import { type InboxLoop, type ProcessOptions, startInboxLoop } from './processor.ts';

export { type ApplyReport, applyWebhookEvents, MESSAGE_RECEIVED_EVENT, type WebhookSource } from './apply.ts';
export { defaultInboundEffects, type InboundEffects } from './effects.ts';
export { forgetWebhookSenders, inboxStats, storeWebhook, webhookSender } from './inbox.ts';
export {
  defaultWebhookParser,
  processInbox,
  pruneInbox,
  startInboxLoop,
  type WebhookParser,
} from './processor.ts';
export {
  DEFAULT_OPT_OUT_KEYWORDS,
  matchOptOutKeyword,
  messagingSettings,
  updateMessagingSettings,
} from './settings.ts';

const loops = new WeakMap<Runtime, InboxLoop>();

/** Runs the inbox loop in this process (the worker, or `serve` in embedded mode). */
export function runInboxLoop(runtime: Runtime, options: ProcessOptions & { pollMs?: number }): InboxLoop {
  const existing = loops.get(runtime);
  if (existing) return existing;
  const loop = startInboxLoop(runtime, options);
  loops.set(runtime, loop);
  return {
    kick: loop.kick,
    async stop() {
      loops.delete(runtime);
      await loop.stop();
    },
  };
}

/** Wakes this process's inbox loop, if it runs one (tools and tests; the endpoint lets it poll). */
export function kickInbox(runtime: Runtime): void {
  loops.get(runtime)?.kick();
}
