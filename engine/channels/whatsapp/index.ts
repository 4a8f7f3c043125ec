import type { SenderWithSecrets } from '../../senders.ts';
import { WhatsAppAdapter, type WhatsAppAdapterConfig } from './adapter.ts';

export { WhatsAppAdapter, type WhatsAppAdapterConfig } from './adapter.ts';
export {
  backoffMs,
  classifyWhatsAppError,
  DEFAULT_BACKOFF,
  pairRateBackoffMs,
  WHATSAPP_ERROR_CLASSES,
} from './classify.ts';
export { buildMessagePayload } from './payload.ts';
export {
  parseWhatsAppWebhook,
  SIGNATURE_HEADER,
  signWebhook,
  verifyWebhookSignature,
  WebhookParseError,
} from './webhooks.ts';

/** The adapter for one sender row (engine/senders.ts `getSender`/`getSenderByPhoneNumberId`). */
export function whatsappAdapterForSender(
  sender: Pick<
    SenderWithSecrets,
    'base_url' | 'api_version' | 'phone_number_id' | 'access_token' | 'app_secret'
  >,
  options: Partial<WhatsAppAdapterConfig> = {},
): WhatsAppAdapter {
  if (!sender.phone_number_id) throw new Error('this sender has no phone_number_id');
  return new WhatsAppAdapter({
    baseUrl: sender.base_url,
    apiVersion: sender.api_version,
    phoneNumberId: sender.phone_number_id,
    accessToken: sender.access_token ?? '',
    appSecret: sender.app_secret ?? '',
    ...options,
  });
}
