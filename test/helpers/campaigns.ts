import type { ChannelAdapter, OutboundMessage, SendOutcome } from '../../engine/channels/types.ts';
import { newId } from '../../engine/ids.ts';
import type { Runtime } from '../../engine/runtime.ts';

/** Seeds contacts straight into the stores the contacts module writes (ClickHouse rows, Postgres consent). */
export async function seedContacts(
  runtime: Runtime,
  workspaceId: string,
  contacts: {
    id: string;
    phone: string;
    timezone?: string;
    country?: string;
    tags?: string[];
    lists?: string[];
    attributes?: Record<string, string>;
    consent?: { channel?: string; purpose?: string; status: 'opted_in' | 'opted_out' } | null;
  }[],
): Promise<void> {
  const now = new Date().toISOString();
  for (let i = 0; i < contacts.length; i += 5_000) {
    const chunk = contacts.slice(i, i + 5_000);
    await runtime.ch.insert(
      'contacts',
      chunk.map((c) => ({
        workspace_id: workspaceId,
        contact_id: c.id,
        phone: c.phone,
        country: c.country ?? 'IN',
        timezone: c.timezone ?? 'Asia/Kolkata',
        attr_strings: c.attributes ?? {},
        tags: c.tags ?? [],
        lists: c.lists ?? [],
        consent: {},
        created_at: now,
        updated_at: now,
        version: 1,
      })),
    );
    const consenting = chunk.filter((c) => c.consent !== null);
    if (consenting.length === 0) continue;
    await runtime.pg.query(
      `INSERT INTO consent_current (workspace_id, contact_id, channel, purpose, status, recorded_at, record_id)
       SELECT $1, u.id, u.channel, u.purpose, u.status, now(), 0
         FROM unnest($2::text[], $3::text[], $4::text[], $5::text[]) AS u(id, channel, purpose, status)
       ON CONFLICT (workspace_id, contact_id, channel, purpose) DO UPDATE SET status = EXCLUDED.status`,
      [
        workspaceId,
        consenting.map((c) => c.id),
        consenting.map((c) => c.consent?.channel ?? 'whatsapp'),
        consenting.map((c) => c.consent?.purpose ?? 'marketing'),
        consenting.map((c) => c.consent?.status ?? 'opted_in'),
      ],
    );
  }
}

export function phoneOf(i: number): string {
  return `+9198${String(10_000_000 + i).slice(-8)}`;
}

export async function createSender(
  runtime: Runtime,
  workspaceId: string,
  options: {
    throughput?: number;
    tier?: string;
    baseUrl?: string;
    phoneNumberId?: string;
    portfolio?: string;
    warmup?: Date;
  } = {},
): Promise<string> {
  const id = newId('snd', 12);
  await runtime.pg.query(
    `INSERT INTO senders (id, workspace_id, name, base_url, phone_number_id, portfolio_id, access_token, throughput_mps, tier, warmup_started_at)
     VALUES ($1, $2, $3, $4, $5, $6, 'token', $7, $8, $9)`,
    [
      id,
      workspaceId,
      `sender ${id}`,
      options.baseUrl ?? 'http://127.0.0.1:9',
      options.phoneNumberId ?? `pn_${id}`,
      options.portfolio ?? `pf_${workspaceId}`,
      options.throughput ?? 80,
      options.tier ?? 'TIER_UNLIMITED',
      options.warmup ?? null,
    ],
  );
  return id;
}

/** A template row in the WhatsApp module's `templates` table, with the given review status. */
export async function approveTemplate(
  runtime: Runtime,
  workspaceId: string,
  name: string,
  options: { language?: string; status?: string; category?: string } = {},
): Promise<void> {
  await runtime.pg.query(
    `INSERT INTO templates (id, workspace_id, name, language, status, category, body) VALUES ($1, $2, $3, $4, $5, $6, 'Hello {{1}}')
     ON CONFLICT (workspace_id, channel, name, language) DO UPDATE SET status = EXCLUDED.status, category = EXCLUDED.category`,
    [
      newId('tpl', 12),
      workspaceId,
      name,
      options.language ?? 'en_US',
      options.status ?? 'APPROVED',
      options.category ?? 'MARKETING',
    ],
  );
}

/**
 * An in-process provider stand-in (stopgap until the simulator is in main): records every accepted
 * message and can refuse on demand.
 */
export function recordingAdapter(
  options: {
    refuse?: (message: OutboundMessage, n: number) => SendOutcome | undefined;
    latencyMs?: number;
  } = {},
) {
  const sent: { sendId: string; to: string; at: number }[] = [];
  let n = 0;
  const adapter: ChannelAdapter = {
    channel: 'whatsapp',
    async send(message) {
      if (options.latencyMs) await new Promise((r) => setTimeout(r, options.latencyMs));
      const refusal = options.refuse?.(message, n++);
      if (refusal) return refusal;
      sent.push({ sendId: message.sendId, to: message.to, at: Date.now() });
      return { class: 'accepted', providerMessageId: `wamid.${message.sendId}` };
    },
    classify: () => ({ class: 'never' }),
    verifyWebhook: () => true,
    parseWebhook: () => [],
  };
  return { adapter, sent };
}

export async function waitFor<T>(
  fn: () => Promise<T | undefined | false>,
  timeoutMs = 30_000,
  stepMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value) return value;
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, stepMs));
  }
}
