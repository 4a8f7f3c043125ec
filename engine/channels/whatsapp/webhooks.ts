/** Verifying and parsing Cloud API webhooks (shapes from the facts page). */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { WebhookEvent } from '../types.ts';

export const SIGNATURE_HEADER = 'x-hub-signature-256';

export function signWebhook(rawBody: Buffer | string, appSecret: string): string {
  return `sha256=${createHmac('sha256', appSecret).update(rawBody).digest('hex')}`;
}

function header(headers: Record<string, string | string[] | undefined>, name: string): string | undefined {
  // node:http lowercases header names, so the direct lookup is the common case.
  const direct = headers[name];
  if (direct !== undefined) return Array.isArray(direct) ? direct[0] : direct;
  for (const [key, value] of Object.entries(headers))
    if (key.toLowerCase() === name) return Array.isArray(value) ? value[0] : value;
  return undefined;
}

/** HMAC-SHA256 of the raw bytes with the app secret, compared in constant time. */
export function verifyWebhookSignature(
  rawBody: Buffer,
  headers: Record<string, string | string[] | undefined>,
  appSecret: string,
): boolean {
  const given = header(headers, SIGNATURE_HEADER);
  if (!given || !appSecret) return false;
  const expected = Buffer.from(signWebhook(rawBody, appSecret));
  const actual = Buffer.from(given.trim().toLowerCase());
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

export class WebhookParseError extends Error {}

type Json = Record<string, unknown>;
const obj = (v: unknown): Json => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : {});
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const str = (v: unknown): string | undefined =>
  typeof v === 'string' ? v : typeof v === 'number' ? String(v) : undefined;
const e164 = (digits: unknown): string => {
  const s = str(digits) ?? '';
  return s.startsWith('+') || !s ? s : `+${s}`;
};
const unixTime = (v: unknown): Date => new Date(Number(str(v) ?? 0) * 1000);

/**
 * Normalized events from one webhook body. Phone numbers come back in E.164 with '+'. `senderAddress`
 * is the phone-number id for statuses and messages, the display number for quality updates (all
 * that payload carries). Fields we do not know are kept as kind 'unknown'.
 */
export function parseWhatsAppWebhook(rawBody: Buffer | string): WebhookEvent[] {
  let body: unknown;
  try {
    body = JSON.parse(rawBody.toString());
  } catch {
    throw new WebhookParseError('webhook body is not JSON');
  }
  const root = obj(body);
  if (!Array.isArray(root.entry)) throw new WebhookParseError('webhook body has no entry list');
  const events: WebhookEvent[] = [];
  for (const entry of root.entry) {
    for (const change of arr(obj(entry).changes)) {
      const field = str(obj(change).field) ?? '';
      const value = obj(obj(change).value);
      if (field === 'messages') events.push(...messagesChange(value));
      else if (field === 'message_template_status_update')
        events.push({
          kind: 'template_status',
          event: str(value.event) ?? '',
          templateId: str(value.message_template_id) ?? '',
          templateName: str(value.message_template_name) ?? '',
          language: str(value.message_template_language),
          category: str(value.message_template_category),
          reason: str(value.reason),
          otherInfo: str(obj(value.other_info).title),
        });
      else if (field === 'phone_number_quality_update')
        events.push({
          kind: 'quality',
          senderAddress: str(value.display_phone_number) ?? '',
          event: str(value.event) ?? '',
          currentLimit: str(value.current_limit),
          maxDailyConversationsPerBusiness:
            value.max_daily_conversations_per_business === undefined
              ? undefined
              : Number(value.max_daily_conversations_per_business),
        });
      else if (field === 'user_preferences')
        for (const preference of arr(value.user_preferences)) {
          const p = obj(preference);
          events.push({
            kind: 'user_preference',
            recipient: e164(p.wa_id),
            category: str(p.category) ?? '',
            value: str(p.value) ?? '',
            timestamp: unixTime(p.timestamp),
          });
        }
      else events.push({ kind: 'unknown', field, value });
    }
  }
  return events;
}

function messagesChange(value: Json): WebhookEvent[] {
  const events: WebhookEvent[] = [];
  const senderAddress = str(obj(value.metadata).phone_number_id);
  const profiles = new Map(
    arr(value.contacts).map((c) => [str(obj(c).wa_id), str(obj(obj(c).profile).name)]),
  );
  for (const item of arr(value.statuses)) {
    const s = obj(item);
    const pricing = obj(s.pricing);
    events.push({
      kind: 'status',
      providerMessageId: str(s.id) ?? '',
      status: (str(s.status) ?? 'failed') as 'sent',
      timestamp: unixTime(s.timestamp),
      recipient: e164(s.recipient_id),
      sendId: str(s.biz_opaque_callback_data),
      errors: Array.isArray(s.errors)
        ? s.errors.map((e) => {
            const error = obj(e);
            return {
              code: Number(error.code),
              title: str(error.title),
              message: str(error.message),
              details: str(obj(error.error_data).details),
            };
          })
        : undefined,
      pricing: s.pricing
        ? {
            billable: typeof pricing.billable === 'boolean' ? pricing.billable : undefined,
            category: str(pricing.category),
            type: str(pricing.type),
          }
        : undefined,
      senderAddress,
    });
  }
  for (const item of arr(value.messages)) {
    const m = obj(item);
    const type = str(m.type) ?? 'unknown';
    const reply = obj(obj(m.interactive).button_reply);
    events.push({
      kind: 'message',
      providerMessageId: str(m.id) ?? '',
      from: e164(m.from),
      timestamp: unixTime(m.timestamp),
      type,
      text: str(obj(m.text).body) ?? str(obj(m.button).text) ?? str(reply.title),
      payload: str(obj(m.button).payload) ?? str(reply.id),
      contextMessageId: str(obj(m.context).id),
      profileName: profiles.get(str(m.from)),
      senderAddress,
    });
  }
  // Errors about the whole change (no statuses or messages) are kept so nothing is lost silently.
  if (!events.length) events.push({ kind: 'unknown', field: 'messages', value });
  return events;
}
