import type { WebhookEvent } from '../channels/types.ts';
import type { Runtime } from '../runtime.ts';
import { tsv } from '../stores/clickhouse.ts';
import { defaultInboundEffects, type InboundEffects } from './effects.ts';
import { type MessagingSettings, matchOptOutKeyword, messagingSettings } from './settings.ts';

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

/** The message_statuses columns a status row fills, in the order of `statusLine`. */
export const STATUS_COLUMNS = [
  'workspace_id',
  'provider_message_id',
  'send_id',
  'status',
  'ts',
  'recipient',
  'error_code',
  'error_title',
  'pricing_category',
  'billable',
] as const;

// Statuses in a batch mostly share a handful of provider timestamps (whole seconds), so the last
// formatted one is kept: toISOString was the worker's costliest JavaScript call per status.
let lastTime = Number.NaN;
let lastTimeText = '';

/** A DateTime64(3) as ClickHouse reads it in TabSeparated: `YYYY-MM-DD hh:mm:ss.sss` (UTC). */
function chTime(date: Date): string {
  const ms = date.getTime();
  if (ms !== lastTime) {
    const iso = date.toISOString();
    lastTime = ms;
    lastTimeText = `${iso.slice(0, 10)} ${iso.slice(11, 23)}`;
  }
  return lastTimeText;
}

/**
 * A message_statuses row as one TabSeparated line (STATUS_COLUMNS); duplicates of (workspace, message,
 * status) collapse in the table and views. TabSeparated is the cheapest format for us to build and
 * for ClickHouse to parse, and a single-status payload is mostly this row.
 */
export function statusLine(workspaceId: string, event: StatusEvent): string {
  const error = event.errors?.[0];
  const code = error?.code;
  return `${tsv(workspaceId)}\t${tsv(event.providerMessageId)}\t${tsv(event.sendId ?? '')}\t${event.status}\t${chTime(
    when(event.timestamp),
  )}\t${tsv(event.recipient ?? '')}\t${Number.isInteger(code) && code! >= 0 && code! <= 0xffffffff ? code : 0}\t${tsv(
    (error?.title ?? error?.message ?? '').slice(0, 500),
  )}\t${tsv(event.pricing?.category ?? '')}\t${event.pricing?.billable ? 1 : 0}\n`;
}

/**
 * Writes a batch of normalized events: statuses to ClickHouse first (the bulk, one insert for the
 * whole batch), then inbound messages, opt-outs and account updates. Every write is idempotent, so a
 * batch that fails half way is simply applied again.
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
  let statusBody = '';
  let others = false;
  for (const { source, events } of batches) {
    for (const event of events) {
      if (isKnownStatus(event)) {
        statusBody += statusLine(source.workspaceId, event);
        report.statuses++;
        if (event.status === 'failed') others = true;
      } else others = true;
    }
  }
  await runtime.ch.insertTsv('message_statuses', STATUS_COLUMNS, statusBody);
  // The common batch is statuses only (delivered, read): nothing more to do.
  if (!others) return report;

  // Settings are read once per workspace and batch, and only when a message needs them.
  const settingsByWorkspace = new Map<string, Promise<MessagingSettings>>();
  const settingsFor = (workspaceId: string) => {
    let settings = settingsByWorkspace.get(workspaceId);
    if (!settings) {
      settings = messagingSettings(runtime, workspaceId);
      settingsByWorkspace.set(workspaceId, settings);
    }
    return settings;
  };
  const eventRows: Record<string, unknown>[] = [];
  const replyRows: Record<string, unknown>[] = [];
  for (const { source, events } of batches) {
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
          const settings = await settingsFor(source.workspaceId);
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
  }
  await runtime.ch.insert('events', eventRows);
  await runtime.ch.insert('message_statuses', replyRows);
  return report;
}
