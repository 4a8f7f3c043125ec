import type { WebhookEvent } from '../channels/types.ts';
import type { Runtime } from '../runtime.ts';
import { defaultInboundEffects, type InboundEffects } from './effects.ts';
import { matchOptOutKeyword, messagingSettings } from './settings.ts';

/** Where a batch of events came from: the sender whose webhook URL received them. */
export interface WebhookSource {
  workspaceId: string;
  senderId: string;
}

export type StatusEvent = Extract<WebhookEvent, { kind: 'status' }>;
export type MessageEvent = Extract<WebhookEvent, { kind: 'message' }>;

export interface ApplyReport {
  statuses: number;
  messages: number;
  replies: number;
  optOuts: number;
  templateUpdates: number;
  qualityUpdates: number;
  unknown: number;
}

/** The opt-out a 131050 failure means: the user stopped marketing messages. */
const STOPPED_MARKETING = 131050;
export const MESSAGE_RECEIVED_EVENT = 'whatsapp_message_received';
const KNOWN_STATUSES = new Set(['sent', 'delivered', 'read', 'failed', 'played']);

/** The provider's time, or now when it sent none we can read (the report is still worth keeping). */
function when(date: Date): Date {
  return Number.isNaN(date.getTime()) || date.getTime() <= 0 ? new Date() : date;
}

function isKnownStatus(event: WebhookEvent): event is StatusEvent {
  return event.kind === 'status' && Boolean(event.providerMessageId) && KNOWN_STATUSES.has(event.status);
}

/** A message_statuses row; duplicates of (workspace, message, status) collapse in the table and views. */
export function statusRow(workspaceId: string, event: StatusEvent): Record<string, unknown> {
  const error = event.errors?.[0];
  return {
    workspace_id: workspaceId,
    provider_message_id: event.providerMessageId,
    send_id: event.sendId ?? '',
    status: event.status,
    ts: when(event.timestamp).toISOString(),
    recipient: event.recipient ?? '',
    error_code: error?.code ?? 0,
    error_title: (error?.title ?? error?.message ?? '').slice(0, 500),
    pricing_category: event.pricing?.category ?? '',
    billable: event.pricing?.billable ? 1 : 0,
  };
}

/**
 * Writes a batch of normalized events: statuses to ClickHouse first (the bulk), then inbound
 * messages, opt-outs and account updates. Every write is idempotent, so a batch that fails half
 * way is simply applied again.
 */
export async function applyWebhookEvents(
  runtime: Runtime,
  batches: { source: WebhookSource; events: WebhookEvent[] }[],
  effects: InboundEffects = defaultInboundEffects,
): Promise<ApplyReport> {
  const report: ApplyReport = {
    statuses: 0,
    messages: 0,
    replies: 0,
    optOuts: 0,
    templateUpdates: 0,
    qualityUpdates: 0,
    unknown: 0,
  };
  const statusRows: Record<string, unknown>[] = [];
  for (const { source, events } of batches) {
    for (const event of events) {
      if (isKnownStatus(event)) statusRows.push(statusRow(source.workspaceId, event));
    }
  }
  await runtime.ch.insert('message_statuses', statusRows);
  report.statuses = statusRows.length;

  for (const { source, events } of batches) {
    const settings = await messagingSettings(runtime, source.workspaceId);
    const eventRows: Record<string, unknown>[] = [];
    const replyRows: Record<string, unknown>[] = [];
    for (const event of events) {
      switch (event.kind) {
        case 'status': {
          if (!isKnownStatus(event)) {
            report.unknown++;
            break;
          }
          if (event.status === 'failed' && event.errors?.some((e) => e.code === STOPPED_MARKETING)) {
            await effects.optOut(runtime, source, {
              phone: event.recipient,
              reason: 'failure_131050',
              proof: `${event.providerMessageId}:failed:131050`,
              at: when(event.timestamp),
            });
            report.optOuts++;
          }
          break;
        }
        case 'message': {
          if (!event.providerMessageId || !event.from) {
            report.unknown++;
            break;
          }
          report.messages++;
          const at = when(event.timestamp);
          const contactId = await effects.contactForPhone(runtime, source, event.from, event.profileName);
          eventRows.push({
            workspace_id: source.workspaceId,
            name: MESSAGE_RECEIVED_EVENT,
            contact_id: contactId,
            ts: at.toISOString(),
            event_id: event.providerMessageId,
            properties: JSON.stringify({
              type: event.type,
              text: event.text ?? null,
              payload: event.payload ?? null,
              context_message_id: event.contextMessageId ?? null,
              sender_id: source.senderId,
              profile_name: event.profileName ?? null,
            }),
          });
          const repliedTo =
            event.contextMessageId ??
            (await effects.latestSendTo(runtime, source, contactId, at, settings.replyWindowHours));
          if (repliedTo) {
            replyRows.push({
              workspace_id: source.workspaceId,
              provider_message_id: repliedTo,
              status: 'replied',
              ts: at.toISOString(),
              recipient: event.from,
            });
            report.replies++;
          }
          const keyword =
            matchOptOutKeyword(event.payload ?? '', settings.optOutKeywords) ??
            matchOptOutKeyword(event.text ?? '', settings.optOutKeywords);
          if (keyword) {
            await effects.optOut(runtime, source, {
              phone: event.from,
              contactId,
              reason: `keyword:${keyword}`,
              proof: `${event.providerMessageId}:${keyword}`,
              at,
              confirmation: settings.optOutConfirmation,
            });
            report.optOuts++;
          }
          break;
        }
        case 'user_preference': {
          await effects.preference(runtime, source, event);
          report.optOuts++;
          break;
        }
        case 'template_status':
          await effects.templateStatus(runtime, source, event);
          report.templateUpdates++;
          break;
        case 'quality':
          await effects.quality(runtime, source, event);
          report.qualityUpdates++;
          break;
        default:
          report.unknown++;
      }
    }
    await runtime.ch.insert('events', eventRows);
    await runtime.ch.insert('message_statuses', replyRows);
  }
  return report;
}
