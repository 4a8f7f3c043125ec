import { signWebhook } from '../../engine/channels/whatsapp/index.ts';
import type { Runtime } from '../../engine/runtime.ts';
import { createSender } from '../../engine/senders.ts';

export const APP_SECRET = 'test-app-secret';
export const VERIFY_TOKEN = 'test-verify-token';

/** A WhatsApp sender with webhook credentials; its id is returned. */
export async function createTestSender(
  runtime: Runtime,
  workspaceId: string,
  name = 'test',
  provider?: { baseUrl: string; accessToken: string },
): Promise<string> {
  const sender = await createSender(runtime.pg, workspaceId, {
    name,
    phone_number_id: `pn_${name}`,
    display_phone_number: '15550001111',
    portfolio_id: 'pf_1',
    app_secret: APP_SECRET,
    verify_token: VERIFY_TOKEN,
    ...(provider ? { base_url: provider.baseUrl, access_token: provider.accessToken } : {}),
  });
  return sender.id;
}

export interface SendFixture {
  send_id: string;
  campaign_id?: string;
  contact_id: string;
  provider_message_id?: string;
  outcome?: 'accepted' | 'failed';
  error_code?: number;
  sent_at: string;
  template_name?: string;
  template_category?: string;
  sender_id?: string;
  country?: string;
  phone?: string;
}

export async function insertSends(
  runtime: Runtime,
  workspaceId: string,
  sends: SendFixture[],
): Promise<void> {
  await runtime.ch.insert(
    'sends',
    sends.map((s) => ({
      workspace_id: workspaceId,
      campaign_id: 'cmp_1',
      campaign_name: 'Campaign 1',
      outcome: 'accepted',
      template_name: 'promo',
      template_category: 'MARKETING',
      sender_id: 'snd_test',
      country: 'IN',
      ...s,
    })),
  );
}

export function signed(body: string | Buffer, secret = APP_SECRET) {
  return { 'content-type': 'application/json', 'x-hub-signature-256': signWebhook(body, secret) };
}
