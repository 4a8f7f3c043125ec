/** Hand-built WhatsApp Cloud API webhook payloads, in the shapes of /work/shared/whatsapp-cloud-api.md. */
import type { WebhookEvent } from '../../engine/channels/types.ts';

export interface StatusSpec {
  id: string;
  status: 'sent' | 'delivered' | 'read' | 'failed' | 'played';
  /** unix seconds */
  timestamp: number;
  recipient: string;
  errorCode?: number;
  pricing?: { billable: boolean; category: string };
  sendId?: string;
}

export function statusesPayload(statuses: StatusSpec[], phoneNumberId = '1000001'): Record<string, unknown> {
  return {
    object: 'whatsapp_business_account',
    entry: [
      {
        id: 'waba-1',
        changes: [
          {
            field: 'messages',
            value: {
              messaging_product: 'whatsapp',
              metadata: { display_phone_number: '15550001111', phone_number_id: phoneNumberId },
              statuses: statuses.map((s) => ({
                id: s.id,
                status: s.status,
                timestamp: String(s.timestamp),
                recipient_id: s.recipient.replace('+', ''),
                ...(s.sendId ? { biz_opaque_callback_data: s.sendId } : {}),
                ...(s.pricing
                  ? {
                      pricing: {
                        billable: s.pricing.billable,
                        pricing_model: 'PMP',
                        type: 'regular',
                        category: s.pricing.category,
                      },
                    }
                  : {}),
                ...(s.errorCode
                  ? {
                      errors: [
                        {
                          code: s.errorCode,
                          title: `error ${s.errorCode}`,
                          message: 'x',
                          error_data: { details: 'x' },
                        },
                      ],
                    }
                  : {}),
              })),
            },
          },
        ],
      },
    ],
  };
}

export interface InboundSpec {
  id: string;
  from: string;
  timestamp: number;
  text?: string;
  buttonPayload?: string;
  contextId?: string;
  name?: string;
}

export function messagesPayload(messages: InboundSpec[], phoneNumberId = '1000001'): Record<string, unknown> {
  return {
    object: 'whatsapp_business_account',
    entry: [
      {
        id: 'waba-1',
        changes: [
          {
            field: 'messages',
            value: {
              messaging_product: 'whatsapp',
              metadata: { display_phone_number: '15550001111', phone_number_id: phoneNumberId },
              contacts: messages.map((m) => ({
                profile: { name: m.name ?? 'User' },
                wa_id: m.from.replace('+', ''),
              })),
              messages: messages.map((m) => ({
                from: m.from.replace('+', ''),
                id: m.id,
                timestamp: String(m.timestamp),
                ...(m.buttonPayload
                  ? { type: 'button', button: { payload: m.buttonPayload, text: m.buttonPayload } }
                  : { type: 'text', text: { body: m.text ?? '' } }),
                ...(m.contextId ? { context: { from: '15550001111', id: m.contextId } } : {}),
              })),
            },
          },
        ],
      },
    ],
  };
}

/**
 * Until the WhatsApp adapter's parser is in main, the tests read their own payloads with this
 * minimal reader of statuses and text messages (test fixture only; production uses the adapter).
 */
export function parseTestPayload(_channel: string, raw: Buffer): WebhookEvent[] {
  const body = JSON.parse(raw.toString('utf8')) as { entry?: unknown };
  if (!Array.isArray(body.entry)) throw new Error('no entry list');
  const events: WebhookEvent[] = [];
  for (const entry of body.entry as { changes?: { field: string; value: Record<string, unknown> }[] }[]) {
    for (const change of entry.changes ?? []) {
      if (change.field !== 'messages') {
        events.push({ kind: 'unknown', field: change.field, value: change.value });
        continue;
      }
      for (const s of (change.value.statuses ?? []) as Record<string, unknown>[]) {
        const status = String(s.status);
        if (!['sent', 'delivered', 'read', 'failed', 'played'].includes(status)) {
          events.push({ kind: 'unknown', field: 'status', value: s });
          continue;
        }
        const pricing = s.pricing as { billable?: boolean; category?: string } | undefined;
        events.push({
          kind: 'status',
          providerMessageId: String(s.id),
          status: status as 'sent',
          timestamp: new Date(Number(s.timestamp) * 1000),
          recipient: `+${String(s.recipient_id)}`,
          sendId: s.biz_opaque_callback_data as string | undefined,
          errors: (s.errors as { code: number; title?: string }[] | undefined)?.map((e) => ({
            code: e.code,
            title: e.title,
          })),
          pricing: pricing ? { billable: pricing.billable, category: pricing.category } : undefined,
        });
      }
      for (const m of (change.value.messages ?? []) as Record<string, unknown>[]) {
        events.push({
          kind: 'message',
          providerMessageId: String(m.id),
          from: `+${String(m.from)}`,
          timestamp: new Date(Number(m.timestamp) * 1000),
          type: String(m.type),
          text: (m.text as { body?: string } | undefined)?.body,
          payload: (m.button as { payload?: string } | undefined)?.payload,
          contextMessageId: (m.context as { id?: string } | undefined)?.id,
        });
      }
    }
  }
  return events;
}
