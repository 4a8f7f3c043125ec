import { signWebhook } from '../../engine/channels/whatsapp/index.ts';
import type { Runtime } from '../../engine/runtime.ts';

export const APP_SECRET = 'test-app-secret';
export const VERIFY_TOKEN = 'test-verify-token';

/** A WhatsApp sender with webhook credentials (until the senders module is in main). */
export async function createTestSender(
  runtime: Runtime,
  workspaceId: string,
  id = 'snd_test',
): Promise<string> {
  await runtime.pg.query(
    `INSERT INTO senders (id, workspace_id, name, phone_number_id, display_phone_number, portfolio_id, app_secret, verify_token)
     VALUES ($1, $2, $1, $3, '15550001111', 'pf_1', $4, $5)`,
    [id, workspaceId, `pn_${id}`, APP_SECRET, VERIFY_TOKEN],
  );
  return id;
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
