import { pauseCampaign } from '../campaigns/control.ts';
import type { WebhookEvent } from '../channels/types.ts';
import { whatsappAdapterForSender } from '../channels/whatsapp/index.ts';
import { recordConsent } from '../consent/index.ts';
import { findContactIdsByPhone, upsertContacts } from '../contacts/index.ts';
import { stableId } from '../ids.ts';
import type { Runtime } from '../runtime.ts';
import { getSender } from '../senders.ts';
import { applyTemplateStatusEvent } from '../templates/index.ts';
import { getWorkspace } from '../workspaces.ts';
import type { WebhookSource } from './apply.ts';

export interface OptOut {
  phone: string;
  contactId?: string;
  /** 'keyword:STOP', 'failure_131050', 'user_preferences' */
  reason: string;
  /** Identifies the provider report, so a replayed report records nothing new. */
  proof: string;
  at: Date;
  /** Text to send back once the opt-out is recorded (keyword opt-outs, when the workspace set one). */
  confirmation?: string | null;
}

/** What inbound processing does outside ClickHouse; one place to wire the owning modules in. */
export interface InboundEffects {
  contactForPhone(
    runtime: Runtime,
    source: WebhookSource,
    from: string,
    profileName?: string,
  ): Promise<string>;
  latestSendTo(
    runtime: Runtime,
    source: WebhookSource,
    contactId: string,
    before: Date,
    windowHours: number,
  ): Promise<string | undefined>;
  optOut(runtime: Runtime, source: WebhookSource, optOut: OptOut): Promise<void>;
  preference(
    runtime: Runtime,
    source: WebhookSource,
    event: Extract<WebhookEvent, { kind: 'user_preference' }>,
  ): Promise<void>;
  templateStatus(
    runtime: Runtime,
    source: WebhookSource,
    event: Extract<WebhookEvent, { kind: 'template_status' }>,
  ): Promise<void>;
  quality(
    runtime: Runtime,
    source: WebhookSource,
    event: Extract<WebhookEvent, { kind: 'quality' }>,
  ): Promise<void>;
}

/** A Date as ClickHouse DateTime64 text (UTC). */
export function chTime(date: Date): string {
  return date.toISOString().replace('T', ' ').replace('Z', '');
}

/** WhatsApp ids are digits without the +; contacts keep E.164 with it. */
export function e164(phone: string): string {
  const digits = phone.replace(/[^\d]/g, '');
  return digits ? `+${digits}` : '';
}

async function contactForPhone(runtime: Runtime, source: WebhookSource, from: string): Promise<string> {
  const phone = e164(from);
  const found = await findContactIdsByPhone(runtime, source.workspaceId, [phone]);
  const known = found.get(phone);
  if (known) return known;
  // A person who writes first becomes a contact; the contacts engine derives a stable id from the
  // phone, so reprocessing the same payload finds the same contact.
  const workspace = await getWorkspace(runtime.pg, source.workspaceId);
  const result = await upsertContacts(
    runtime,
    { id: source.workspaceId, default_region: workspace?.default_region ?? 'IN' },
    [{ phone, last_seen_at: new Date().toISOString() }],
    { actor: 'whatsapp_inbound' },
  );
  const id = result.ids[0];
  if (!id) throw new Error(`could not create a contact for ${phone}`);
  return id;
}

async function latestSendTo(
  runtime: Runtime,
  source: WebhookSource,
  contactId: string,
  before: Date,
  windowHours: number,
): Promise<string | undefined> {
  const rows = await runtime.ch.rows<{ provider_message_id: string }>(
    `SELECT provider_message_id FROM ${runtime.ch.database}.sends
      WHERE workspace_id = {ws:String} AND contact_id = {contact:String} AND sender_id = {sender:String}
        AND outcome = 'accepted' AND provider_message_id != ''
        AND sent_at <= {before:DateTime64(3, 'UTC')}
        AND sent_at >= {before:DateTime64(3, 'UTC')} - toIntervalHour({hours:UInt32})
      ORDER BY sent_at DESC LIMIT 1`,
    {
      ws: source.workspaceId,
      contact: contactId,
      sender: source.senderId,
      before: chTime(before),
      hours: windowHours,
    },
  );
  return rows[0]?.provider_message_id;
}

async function recordConsentOnce(
  runtime: Runtime,
  workspaceId: string,
  contactId: string,
  status: 'opted_in' | 'opted_out',
  source: string,
  proof: string,
  at: Date,
): Promise<boolean> {
  // The proof names the provider report, so a redelivered or reprocessed report records nothing new.
  const seen = await runtime.pg.query(
    'SELECT 1 FROM consent_records WHERE workspace_id = $1 AND contact_id = $2 AND proof = $3 LIMIT 1',
    [workspaceId, contactId, proof],
  );
  if (seen.rows.length) return false;
  await recordConsent(
    runtime,
    workspaceId,
    contactId,
    [
      {
        channel: 'whatsapp',
        purpose: 'marketing',
        status,
        source,
        proof,
        actor: 'contact',
        recorded_at: at.toISOString(),
      },
    ],
    { actor: 'contact' },
  );
  return true;
}

/**
 * The reply to "STOP": a free-form text, allowed because the person has just written to us (the
 * customer-service window is open). Sent once, when the opt-out is first recorded; a failure is
 * logged and not retried, since the opt-out itself is what matters.
 */
async function sendConfirmation(runtime: Runtime, source: WebhookSource, optOut: OptOut, text: string) {
  try {
    const sender = await getSender(runtime.pg, source.workspaceId, source.senderId);
    if (!sender?.phone_number_id || !sender.access_token) return;
    const outcome = await whatsappAdapterForSender(sender).send({
      sendId: stableId('optout', source.workspaceId, optOut.proof),
      to: e164(optOut.phone),
      content: { type: 'text', body: text },
    });
    runtime.log.info({ sender: source.senderId, outcome: outcome.class }, 'opt-out confirmation sent');
  } catch (error) {
    runtime.log.warn({ err: error, sender: source.senderId }, 'opt-out confirmation not sent');
  }
}

export const defaultInboundEffects: InboundEffects = {
  contactForPhone,
  latestSendTo,
  async optOut(runtime, source, optOut) {
    const contactId = optOut.contactId ?? (await contactForPhone(runtime, source, optOut.phone));
    const recorded = await recordConsentOnce(
      runtime,
      source.workspaceId,
      contactId,
      'opted_out',
      optOut.reason.startsWith('keyword') ? 'whatsapp_keyword' : `whatsapp_${optOut.reason}`,
      optOut.proof,
      optOut.at,
    );
    if (!recorded) return;
    runtime.log.info({ workspace: source.workspaceId, contactId, reason: optOut.reason }, 'opt-out');
    if (optOut.confirmation) await sendConfirmation(runtime, source, optOut, optOut.confirmation);
  },
  async preference(runtime, source, event) {
    const contactId = await contactForPhone(runtime, source, event.recipient);
    const value = event.value.toLowerCase();
    if (value !== 'stop' && value !== 'resume') return;
    await recordConsentOnce(
      runtime,
      source.workspaceId,
      contactId,
      value === 'stop' ? 'opted_out' : 'opted_in',
      'whatsapp_user_preferences',
      `user_preferences:${event.category}:${value}:${event.timestamp.toISOString()}`,
      event.timestamp,
    );
  },
  async templateStatus(runtime, source, event) {
    const applied = await applyTemplateStatusEvent(runtime, event);
    runtime.log.info(
      {
        workspace: source.workspaceId,
        template: event.templateName,
        event: event.event,
        known: Boolean(applied),
      },
      'template status',
    );
  },
  async quality(runtime, source, event) {
    const quality = qualityOf(event.event);
    const tier = TIERS.has(event.currentLimit ?? '') ? event.currentLimit : undefined;
    await runtime.pg.query(
      `UPDATE senders SET quality = COALESCE($3, quality), tier = COALESCE($4, tier), updated_at = now()
        WHERE id = $1 AND workspace_id = $2`,
      [source.senderId, source.workspaceId, quality ?? null, tier ?? null],
    );
    runtime.log.warn({ sender: source.senderId, event: event.event, quality, tier }, 'sender quality update');
    if (quality !== 'RED') return;
    // Low quality: stop adding to it. Running campaigns on this number pause until someone resumes them.
    const { rows } = await runtime.pg.query<{ id: string }>(
      `SELECT id FROM campaigns WHERE workspace_id = $1 AND sender_id = $2 AND state = 'running'`,
      [source.workspaceId, source.senderId],
    );
    for (const campaign of rows) {
      await pauseCampaign(runtime.pg, source.workspaceId, campaign.id, 'system', 'sender quality RED');
      runtime.log.warn(
        { campaign: campaign.id, sender: source.senderId },
        'campaign paused: sender quality RED',
      );
    }
  },
};

const TIERS = new Set(['TIER_250', 'TIER_2K', 'TIER_10K', 'TIER_100K', 'TIER_UNLIMITED']);

/** Meta reports quality as GREEN/YELLOW/RED, or as FLAGGED (RED) and UNFLAGGED (back to GREEN). */
export function qualityOf(event: string): 'GREEN' | 'YELLOW' | 'RED' | undefined {
  const e = event.toUpperCase();
  if (e === 'RED' || e === 'FLAGGED' || e === 'LOW') return 'RED';
  if (e === 'YELLOW' || e === 'MEDIUM') return 'YELLOW';
  if (e === 'GREEN' || e === 'UNFLAGGED' || e === 'HIGH') return 'GREEN';
  return undefined;
}
