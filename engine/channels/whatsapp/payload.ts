import type { OutboundMessage } from '../types.ts';

/** The Cloud API request body for one message; our send id rides along as biz_opaque_callback_data. */
export function buildMessagePayload(message: OutboundMessage): Record<string, unknown> {
  const base = {
    messaging_product: 'whatsapp',
    recipient_type: 'individual',
    to: message.to.replace(/^\+/, ''),
    biz_opaque_callback_data: message.sendId,
  };
  const content = message.content;
  switch (content.type) {
    case 'template':
      return {
        ...base,
        type: 'template',
        template: {
          name: content.name,
          language: { code: content.language },
          ...(content.components.length ? { components: content.components } : {}),
        },
      };
    case 'text':
      return {
        ...base,
        type: 'text',
        text: { body: content.body, preview_url: content.previewUrl ?? false },
      };
    case 'media':
      return {
        ...base,
        type: content.mediaType,
        [content.mediaType]: {
          link: content.link,
          ...(content.caption && content.mediaType !== 'audio' ? { caption: content.caption } : {}),
        },
      };
    case 'buttons':
      return {
        ...base,
        type: 'interactive',
        interactive: {
          type: 'button',
          ...(content.header ? { header: { type: 'text', text: content.header } } : {}),
          body: { text: content.body },
          ...(content.footer ? { footer: { text: content.footer } } : {}),
          action: {
            buttons: content.buttons.map((b) => ({ type: 'reply', reply: { id: b.id, title: b.title } })),
          },
        },
      };
  }
}
