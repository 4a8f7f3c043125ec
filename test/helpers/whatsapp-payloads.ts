/** Hand-built WhatsApp Cloud API webhook payloads, in the shapes of /work/shared/whatsapp-cloud-api.md. */

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
