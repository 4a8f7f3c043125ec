/**
 * Webhooks as Meta sends them: signed (X-Hub-Signature-256), a little late, sometimes late by a lot,
 * sometimes twice, sometimes out of order, and retried with backoff until a 200 (up to 7 days).
 */
import { createHmac } from 'node:crypto';
import { rngFor } from './rng.ts';
import type { SimTemplate, Simulator } from './simulator.ts';

export interface WebhookOptions {
  url?: string;
  appSecret: string;
  /** Usual delay before a webhook is posted. */
  baseLatencyMs: number;
  /** Share posted late, and the mean extra delay of those. */
  lateRate: number;
  lateMeanMs: number;
  /** Share posted twice. */
  duplicateRate: number;
  /** Share held back by up to reorderWindowMs, so a later event may overtake it. */
  outOfOrderRate: number;
  reorderWindowMs: number;
  /** Delays between attempts after a non-200; the total stays within 7 days. */
  retryDelaysMs: number[];
  timeoutMs: number;
  /** Posts in flight at once; the rest wait their turn (like Meta, it never opens a connection per event). */
  maxInFlight: number;
}

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

export const DEFAULT_WEBHOOK_OPTIONS: Omit<WebhookOptions, 'appSecret'> = {
  baseLatencyMs: 50,
  lateRate: 0.02,
  lateMeanMs: 30_000,
  duplicateRate: 0.01,
  outOfOrderRate: 0.02,
  reorderWindowMs: 5_000,
  retryDelaysMs: [
    5_000,
    30_000,
    2 * MINUTE,
    10 * MINUTE,
    HOUR,
    3 * HOUR,
    6 * HOUR,
    12 * HOUR,
    24 * HOUR,
    48 * HOUR,
    72 * HOUR,
  ],
  timeoutMs: 10_000,
  maxInFlight: 64,
};

interface NumberInfo {
  id: string;
  displayPhoneNumber: string;
  wabaId: string;
}

export class WebhookSender {
  readonly options: WebhookOptions;
  private readonly sim: Simulator;
  private seq = 0;

  constructor(sim: Simulator, options: Partial<WebhookOptions> & { appSecret: string }) {
    this.sim = sim;
    this.options = { ...DEFAULT_WEBHOOK_OPTIONS, ...options };
  }

  status(n: NumberInfo, status: Record<string, unknown>): void {
    this.emit(n.wabaId, 'messages', {
      messaging_product: 'whatsapp',
      metadata: { display_phone_number: n.displayPhoneNumber, phone_number_id: n.id },
      statuses: [status],
    });
  }

  inboundMessage(
    n: NumberInfo,
    phone: string,
    id: string,
    message: Record<string, unknown>,
    contextId: string | undefined,
    name: string,
  ): void {
    const from = phone.replace(/^\+/, '');
    this.emit(n.wabaId, 'messages', {
      messaging_product: 'whatsapp',
      metadata: { display_phone_number: n.displayPhoneNumber, phone_number_id: n.id },
      contacts: [{ profile: { name }, wa_id: from }],
      messages: [
        {
          from,
          id,
          timestamp: String(Math.floor(this.sim.now() / 1000)),
          ...(contextId ? { context: { from: n.displayPhoneNumber, id: contextId } } : {}),
          ...message,
        },
      ],
    });
  }

  userPreference(n: NumberInfo, phone: string, name: string, value: 'stop' | 'resume'): void {
    const waId = phone.replace(/^\+/, '');
    this.emit(n.wabaId, 'user_preferences', {
      messaging_product: 'whatsapp',
      metadata: { display_phone_number: n.displayPhoneNumber, phone_number_id: n.id },
      contacts: [{ profile: { name }, wa_id: waId }],
      user_preferences: [
        {
          wa_id: waId,
          detail:
            value === 'stop'
              ? 'User requested to stop marketing messages'
              : 'User requested to resume marketing messages',
          category: 'marketing_messages',
          value,
          timestamp: Math.floor(this.sim.now() / 1000),
        },
      ],
    });
  }

  templateStatus(template: SimTemplate, event: string, reason: string, otherInfo?: string): void {
    this.emit(template.wabaId, 'message_template_status_update', {
      event,
      message_template_id: Number(template.id),
      message_template_name: template.name,
      message_template_language: template.language,
      message_template_category: template.category,
      reason,
      ...(otherInfo ? { other_info: { title: otherInfo, description: '' } } : {}),
    });
  }

  quality(n: NumberInfo, event: string, tier: string): void {
    const limits: Record<string, number> = {
      TIER_250: 250,
      TIER_2K: 2000,
      TIER_10K: 10000,
      TIER_100K: 100000,
    };
    this.emit(n.wabaId, 'phone_number_quality_update', {
      display_phone_number: n.displayPhoneNumber,
      event,
      current_limit: tier,
      ...(limits[tier] ? { max_daily_conversations_per_business: limits[tier] } : {}),
    });
  }

  private emit(wabaId: string, field: string, value: Record<string, unknown>): void {
    const payload = {
      object: 'whatsapp_business_account',
      entry: [{ id: wabaId, changes: [{ value, field }] }],
    };
    const key = this.seq++;
    const rng = rngFor(this.sim.options.seed, 'webhook', key);
    const o = this.options;
    let delay = o.baseLatencyMs;
    if (rng.chance(o.lateRate)) delay += Math.round(rng.exponential(o.lateMeanMs));
    if (rng.chance(o.outOfOrderRate)) delay += rng.int(0, o.reorderWindowMs);
    // The body as posted, kept as one string: exact ground truth, and cheap for the GC to hold.
    const body = JSON.stringify(payload);
    this.sim.record({ kind: 'webhook_emitted', detail: { key, field, body } });
    if (!this.options.url) return;
    this.sim.clock.after(delay, () => this.post(key, field, body, 0, false));
    if (rng.chance(o.duplicateRate))
      this.sim.clock.after(delay + rng.int(0, o.reorderWindowMs), () => this.post(key, field, body, 0, true));
  }

  private inFlight = 0;
  private readonly waitingPosts: (() => void)[] = [];

  /**
   * Posts now, or once one of the `maxInFlight` posts in flight ends: a burst queues, never floods
   * sockets. Resolves when this post is done (the clock's `advance` waits for it).
   */
  private post(key: number, field: string, body: string, attempt: number, duplicate: boolean): Promise<void> {
    return new Promise<void>((done) => {
      const start = () => {
        this.inFlight++;
        void this.deliver(key, field, body, attempt, duplicate).finally(() => {
          this.inFlight--;
          this.waitingPosts.shift()?.();
          done();
        });
      };
      if (this.inFlight < this.options.maxInFlight) start();
      else this.waitingPosts.push(start);
    });
  }

  private async deliver(
    key: number,
    field: string,
    body: string,
    attempt: number,
    duplicate: boolean,
  ): Promise<void> {
    if (!this.options.url) return;
    let status = 0;
    try {
      const response = await fetch(this.options.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'x-hub-signature-256': `sha256=${createHmac('sha256', this.options.appSecret).update(body).digest('hex')}`,
        },
        body,
        signal: AbortSignal.timeout(this.options.timeoutMs),
      });
      status = response.status;
      await response.arrayBuffer().catch(() => undefined);
    } catch {
      status = 0;
    }
    if (status === 200) {
      this.sim.record({ kind: 'webhook_delivered', detail: { key, field, attempt, duplicate } });
      return;
    }
    const wait = this.options.retryDelaysMs[attempt];
    if (wait === undefined) {
      this.sim.record({ kind: 'webhook_dropped', detail: { key, field, attempt, status } });
      return;
    }
    this.sim.record({ kind: 'webhook_failed', detail: { key, field, attempt, status, retryInMs: wait } });
    this.sim.clock.after(wait, () => this.post(key, field, body, attempt + 1, duplicate));
  }
}
