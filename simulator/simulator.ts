/**
 * The Cloud API simulator's state and behaviour: numbers, portfolios, templates, recipients, limits,
 * webhooks. The HTTP layer (server.ts) only parses requests and calls in here.
 */
import type { TemplateComponentParameters } from '../engine/channels/types.ts';
import {
  checkSendParameters,
  type MetaTemplateDefinition,
  TEMPLATE_LIMITS,
  validateTemplateDefinition,
} from '../engine/templates/validation.ts';
import { SimClock } from './clock.ts';
import { type SimError, statusError } from './errors.ts';
import { GroundTruthLog, type SimLogEntry, type SimLogRecord } from './log.ts';

export type { SimLogEntry } from './log.ts';

import {
  DEFAULT_RECIPIENT_RATES,
  type RecipientProfile,
  type RecipientRates,
  recipientProfile,
} from './recipients.ts';
import { type Rng, rngFor, tokenFor } from './rng.ts';
import { type WebhookOptions, WebhookSender } from './webhooks.ts';

export const TIER_LIMITS = {
  TIER_250: 250,
  TIER_2K: 2_000,
  TIER_10K: 10_000,
  TIER_100K: 100_000,
  TIER_UNLIMITED: Number.POSITIVE_INFINITY,
} as const;
export type Tier = keyof typeof TIER_LIMITS;
const TIER_ORDER = Object.keys(TIER_LIMITS) as Tier[];
export type Quality = 'GREEN' | 'YELLOW' | 'RED';

const DAY = 24 * 3_600_000;

export interface NumberConfig {
  id: string;
  displayPhoneNumber: string;
  wabaId: string;
  portfolioId: string;
  /** Messages per second; 80 by default, up to 1,000. */
  throughputMps: number;
  /** Shared with the WhatsApp Business app: 20 per second. */
  sharedWithBusinessApp: boolean;
}

export interface SimulatorOptions {
  seed: string;
  /** Where webhooks go; without it they are only logged. */
  webhookUrl?: string;
  /** Signs webhooks (X-Hub-Signature-256). */
  appSecret: string;
  /** When set, sends must carry this bearer token (else 190). */
  accessToken?: string;
  /** Numbers known up front; unknown phone-number ids are created on first use with the defaults. */
  numbers?: Partial<NumberConfig>[];
  defaultWabaId?: string;
  defaultPortfolioId?: string;
  /** Default messages per second for new numbers (80). */
  throughputMps?: number;
  /** Starting tier of every portfolio (TIER_250). */
  tier?: Tier;
  /** Pair rate: one message per this many ms to one user (6,000), bursts up to `pairBurst` (45). */
  pairIntervalMs?: number;
  pairBurst?: number;
  /** Marketing templates one user may get in 24 h before 131049 (from all businesses in reality). */
  marketingPerUserPerDay?: number;
  recipientRates?: RecipientRates;
  /** Template review: delay (60 s) and the share rejected at random (on top of the content rules). */
  reviewDelayMs?: number;
  reviewRejectRate?: number;
  /** Templates that exist and are approved from the start. */
  templates?: (MetaTemplateDefinition & { wabaId?: string; status?: string })[];
  /** When false, templates unknown to the simulator are accepted without parameter checks. */
  strictTemplates?: boolean;
  /** Quality: share of negative signals (STOP, blocks, opt-outs, over-tier sends) in 24 h for YELLOW and RED. */
  qualityYellowAt?: number;
  qualityRedAt?: number;
  /** Fewest sends in 24 h before the share is judged. */
  qualityMinSample?: number;
  /** Management calls (templates) per hour per account (200). */
  managementCallsPerHour?: number;
  /** Ground-truth log entries kept (oldest dropped beyond it); counts stay exact. */
  maxLogEntries?: number;
  webhooks?: Partial<WebhookOptions>;
  clock?: { manual?: boolean; speed?: number; start?: number | Date };
}

interface NumberState extends NumberConfig {
  quality: Quality;
  restrictedCode?: 368 | 131031;
  upgradingUntil?: number;
  /** Send times of the last `throughputMps` accepted messages (a ring). */
  ring: number[];
  ringIndex: number;
  /** Sliding 24 h of sends and negative signals, for quality. */
  sends24h: number[];
  negatives24h: number[];
  blocked: Set<string>;
}

interface PortfolioState {
  id: string;
  tier: Tier;
  /** Last business-initiated send per user, and the order they came in, for the rolling 24 h count. */
  lastSent: Map<string, number>;
  queue: { phone: string; at: number }[];
  upgradeScheduled: boolean;
}

interface PairState {
  nextFree: number;
  burstStart: number;
  burstCount: number;
}

interface UserState {
  stoppedMarketing: boolean;
  /** Last inbound per phone-number id: opens the 24 h customer-service window. */
  lastInbound: Map<string, number>;
  blockedBusinesses: Set<string>;
  marketing24h: number[];
}

export interface SimTemplate {
  id: string;
  wabaId: string;
  name: string;
  language: string;
  category: string;
  status: string;
  rejectedReason: string;
  definition: MetaTemplateDefinition;
  createdAt: number;
}

export interface Fault {
  code: number;
  /** How many sends it applies to (default 1). */
  count?: number;
  phoneNumberId?: string;
  to?: string;
  /** Answer after this many real ms (a hang beyond the client's timeout is a timeout). */
  delayMs?: number;
  details?: string;
}

export type SendResult =
  | { ok: true; wamid: string; input: string; waId: string }
  | { ok: false; error: SimError; delayMs?: number };

const PROMOTIONAL = /\b(\d+\s?% off|discount|sale|offer|deal|coupon|buy now|limited time)\b/i;
const SCAM = /\b(lottery|you have won|guaranteed returns|crypto giveaway|wire transfer)\b/i;
const NAMES = [
  'Asha',
  'Ravi',
  'Maria',
  'João',
  'Li',
  'Fatima',
  'Sam',
  'Ngozi',
  'Ahmed',
  'Priya',
  'Lucas',
  'Ana',
];

export class Simulator {
  readonly options: Required<
    Omit<SimulatorOptions, 'webhookUrl' | 'accessToken' | 'numbers' | 'templates' | 'webhooks' | 'clock'>
  > &
    Pick<SimulatorOptions, 'webhookUrl' | 'accessToken'>;
  readonly clock: SimClock;
  /** Ground truth as a ring of columns (log.ts): cheap to append, entries built on read. */
  readonly groundTruth: GroundTruthLog;
  readonly counts: Record<string, number> = {};
  readonly webhooks: WebhookSender;
  private readonly numbers = new Map<string, NumberState>();
  private readonly portfolios = new Map<string, PortfolioState>();
  private readonly pairs = new Map<string, PairState>();
  private readonly users = new Map<string, UserState>();
  private readonly profiles = new Map<string, RecipientProfile>();
  private readonly pairSeq = new Map<string, number>();
  readonly templates = new Map<string, SimTemplate>();
  private templateSeq = 0;
  private readonly faults: Fault[] = [];
  private readonly managementCalls = new Map<string, number[]>();
  private traceSeq = 0;

  constructor(options: SimulatorOptions) {
    this.options = {
      seed: options.seed,
      appSecret: options.appSecret,
      webhookUrl: options.webhookUrl,
      accessToken: options.accessToken,
      defaultWabaId: options.defaultWabaId ?? '100000000000001',
      defaultPortfolioId: options.defaultPortfolioId ?? '200000000000001',
      throughputMps: options.throughputMps ?? 80,
      tier: options.tier ?? 'TIER_250',
      pairIntervalMs: options.pairIntervalMs ?? 6_000,
      pairBurst: options.pairBurst ?? 45,
      marketingPerUserPerDay: options.marketingPerUserPerDay ?? 10,
      recipientRates: options.recipientRates ?? DEFAULT_RECIPIENT_RATES,
      reviewDelayMs: options.reviewDelayMs ?? 60_000,
      reviewRejectRate: options.reviewRejectRate ?? 0,
      strictTemplates: options.strictTemplates ?? true,
      qualityYellowAt: options.qualityYellowAt ?? 0.03,
      qualityRedAt: options.qualityRedAt ?? 0.08,
      qualityMinSample: options.qualityMinSample ?? 100,
      managementCallsPerHour: options.managementCallsPerHour ?? 200,
      maxLogEntries: options.maxLogEntries ?? 200_000,
    };
    this.groundTruth = new GroundTruthLog(this.options.maxLogEntries);
    if (this.options.throughputMps < 1 || this.options.throughputMps > 1000)
      throw new Error('throughputMps must be between 1 and 1000');
    const start = options.clock?.start;
    this.clock = new SimClock({
      manual: options.clock?.manual,
      speed: options.clock?.speed,
      start: start instanceof Date ? start.getTime() : start,
    });
    this.webhooks = new WebhookSender(this, {
      url: options.webhookUrl,
      appSecret: options.appSecret,
      ...options.webhooks,
    });
    for (const number of options.numbers ?? []) this.number(number.id ?? '100000000000101', number);
    for (const template of options.templates ?? []) {
      const wabaId = template.wabaId ?? this.options.defaultWabaId;
      const { wabaId: _w, status, ...definition } = template;
      const created = this.storeTemplate(wabaId, definition);
      created.status = status ?? 'APPROVED';
    }
  }

  now(): number {
    return this.clock.now();
  }

  record(entry: SimLogRecord): void {
    const counts = this.counts;
    counts[entry.kind] = (counts[entry.kind] ?? 0) + 1;
    if (entry.code !== undefined && entry.kind === 'send_rejected') {
      const key = `rejected_${entry.code}`;
      counts[key] = (counts[key] ?? 0) + 1;
    }
    if (entry.kind === 'status' && entry.status) {
      const key = `status_${entry.status}`;
      counts[key] = (counts[key] ?? 0) + 1;
    }
    this.groundTruth.append(this.now(), entry);
    if (this.groundTruth.dropped) counts.log_dropped = this.groundTruth.dropped;
  }

  /** Ground truth: every entry kept, oldest first (built on read, cached until the next entry). */
  get log(): SimLogEntry[] {
    return this.groundTruth.all();
  }

  /** Entries from seq `since` on, of one kind when given, without building the others. */
  logSince(since = 0, kind?: string | null): SimLogEntry[] {
    return this.groundTruth.select(since, kind);
  }

  get logLength(): number {
    return this.groundTruth.size;
  }

  traceId(): string {
    return `A${tokenFor(this.options.seed, 22, 'trace', this.traceSeq++)}`;
  }

  profile(phone: string): RecipientProfile {
    let profile = this.profiles.get(phone);
    if (!profile) {
      profile = recipientProfile(this.options.seed, phone, this.options.recipientRates);
      this.profiles.set(phone, profile);
    }
    return profile;
  }

  private user(phone: string): UserState {
    let user = this.users.get(phone);
    if (!user) {
      user = {
        stoppedMarketing: this.profile(phone).stoppedMarketing,
        lastInbound: new Map(),
        blockedBusinesses: new Set(),
        marketing24h: [],
      };
      this.users.set(phone, user);
    }
    return user;
  }

  /** The number with this id, created with the defaults on first use. */
  number(id: string, config: Partial<NumberConfig> = {}): NumberState {
    let state = this.numbers.get(id);
    if (!state) {
      const shared = config.sharedWithBusinessApp ?? false;
      const mps = config.throughputMps ?? (shared ? 20 : this.options.throughputMps);
      if (mps < 1 || mps > 1000) throw new Error('throughputMps must be between 1 and 1000');
      state = {
        id,
        displayPhoneNumber:
          config.displayPhoneNumber ?? `1555${id.replace(/\D/g, '').slice(-7).padStart(7, '0')}`,
        wabaId: config.wabaId ?? this.options.defaultWabaId,
        portfolioId: config.portfolioId ?? this.options.defaultPortfolioId,
        throughputMps: mps,
        sharedWithBusinessApp: shared,
        quality: 'GREEN',
        ring: new Array(mps).fill(Number.NEGATIVE_INFINITY),
        ringIndex: 0,
        sends24h: [],
        negatives24h: [],
        blocked: new Set(),
      };
      this.numbers.set(id, state);
      this.portfolio(state.portfolioId);
    }
    return state;
  }

  numberState(id: string) {
    const n = this.numbers.get(id);
    if (!n) return undefined;
    const portfolio = this.portfolio(n.portfolioId);
    return {
      id: n.id,
      displayPhoneNumber: n.displayPhoneNumber,
      wabaId: n.wabaId,
      portfolioId: n.portfolioId,
      throughputMps: n.throughputMps,
      quality: n.quality,
      tier: portfolio.tier,
      uniqueUsers24h: this.uniqueUsers(portfolio),
      restricted: n.restrictedCode ?? null,
    };
  }

  private portfolio(id: string): PortfolioState {
    let state = this.portfolios.get(id);
    if (!state) {
      state = { id, tier: this.options.tier, lastSent: new Map(), queue: [], upgradeScheduled: false };
      this.portfolios.set(id, state);
    }
    return state;
  }

  private uniqueUsers(portfolio: PortfolioState): number {
    const cutoff = this.now() - DAY;
    while (portfolio.queue.length && portfolio.queue[0]!.at <= cutoff) {
      const { phone, at } = portfolio.queue.shift()!;
      if (portfolio.lastSent.get(phone) === at) portfolio.lastSent.delete(phone);
    }
    return portfolio.lastSent.size;
  }

  // ---------------------------------------------------------------- admin controls (tests, CLI)

  injectFault(fault: Fault): void {
    this.faults.push({ count: 1, ...fault });
  }

  restrictNumber(id: string, code: 368 | 131031 | null): void {
    const n = this.number(id);
    n.restrictedCode = code ?? undefined;
  }

  setTier(portfolioId: string, tier: Tier): void {
    this.portfolio(portfolioId).tier = tier;
  }

  /** A user writes to the business (opens the 24 h window). */
  inbound(phoneNumberId: string, from: string, text: string, contextId?: string): string {
    const phone = from.startsWith('+') ? from : `+${from}`;
    const n = this.number(phoneNumberId);
    this.user(phone).lastInbound.set(n.id, this.now());
    this.countThroughput(n);
    const id = `wamid.${Buffer.from(tokenFor(this.options.seed, 24, 'in', n.id, phone, this.groundTruth.recorded)).toString('base64url')}`;
    this.record({ kind: 'inbound', phoneNumberId: n.id, to: phone, wamid: id, detail: { text, contextId } });
    this.webhooks.inboundMessage(
      n,
      phone,
      id,
      { type: 'text', text: { body: text } },
      contextId,
      this.profileName(phone),
    );
    if (/^\s*(stop|unsubscribe|parar|cancelar|alto)\s*$/i.test(text)) this.optOut(n, phone, 'stop_reply');
    return id;
  }

  setTemplateStatus(
    id: string,
    status: string,
    reason = 'NONE',
    otherInfo?: string,
  ): SimTemplate | undefined {
    const template = this.templates.get(id);
    if (!template) return undefined;
    template.status = status;
    template.rejectedReason = status === 'REJECTED' ? reason : template.rejectedReason;
    this.record({ kind: 'template_status', status, detail: { id, name: template.name, reason } });
    this.webhooks.templateStatus(template, status, reason, otherInfo);
    return template;
  }

  // ---------------------------------------------------------------- sending

  private takeFault(phoneNumberId: string, to: string): Fault | undefined {
    const index = this.faults.findIndex(
      (f) =>
        (!f.phoneNumberId || f.phoneNumberId === phoneNumberId) && (!f.to || f.to.replace(/^\+/, '') === to),
    );
    if (index < 0) return undefined;
    const fault = this.faults[index]!;
    fault.count = (fault.count ?? 1) - 1;
    if (fault.count <= 0) this.faults.splice(index, 1);
    return fault;
  }

  private countThroughput(n: NumberState): void {
    n.ring[n.ringIndex] = this.now();
    n.ringIndex = (n.ringIndex + 1) % n.ring.length;
  }

  private overThroughput(n: NumberState): boolean {
    // The oldest of the last `mps` sends is inside the last second: one more would exceed the rate.
    return n.ring[n.ringIndex]! > this.now() - 1000;
  }

  private pairCheck(key: string): PairState | 'over' {
    const now = this.now();
    const pair = this.pairs.get(key) ?? {
      nextFree: now,
      burstStart: Number.NEGATIVE_INFINITY,
      burstCount: 0,
    };
    const inBurst = now - pair.burstStart < this.options.pairIntervalMs;
    if (inBurst) {
      if (pair.burstCount >= this.options.pairBurst) return 'over';
    } else if (pair.nextFree > now) return 'over';
    return pair;
  }

  private pairConsume(key: string, pair: PairState): void {
    const now = this.now();
    if (!(now - pair.burstStart < this.options.pairIntervalMs)) {
      pair.burstStart = now;
      pair.burstCount = 0;
    }
    pair.burstCount++;
    // Each message borrows one interval of future quota: a burst of 20 means about 2 minutes' wait.
    pair.nextFree = Math.max(pair.nextFree, now) + this.options.pairIntervalMs;
    this.pairs.set(key, pair);
  }

  private reject(phoneNumberId: string, to: string, error: SimError, body?: unknown): SendResult {
    this.record({
      kind: 'send_rejected',
      phoneNumberId,
      to: to ? `+${to}` : undefined,
      code: error.code,
      sendId: (body as { biz_opaque_callback_data?: string } | undefined)?.biz_opaque_callback_data,
      detail: error.details,
    });
    return { ok: false, error };
  }

  /** POST /{version}/{phone-number-id}/messages */
  send(phoneNumberId: string, body: Record<string, unknown>, token: string | undefined): SendResult {
    const to = String(body.to ?? '').replace(/^\+/, '');
    if (this.options.accessToken && token !== this.options.accessToken)
      return this.reject(phoneNumberId, to, {
        code: 190,
        details: 'The access token could not be decrypted',
      });
    const fault = this.takeFault(phoneNumberId, to);
    if (fault) {
      const result = this.reject(
        phoneNumberId,
        to,
        { code: fault.code, details: fault.details ?? 'injected fault' },
        body,
      );
      return { ...result, delayMs: fault.delayMs } as SendResult;
    }
    const n = this.number(phoneNumberId);
    if (n.restrictedCode)
      return this.reject(
        phoneNumberId,
        to,
        { code: n.restrictedCode, details: 'The account is restricted' },
        body,
      );
    if (n.upgradingUntil && this.now() < n.upgradingUntil)
      return this.reject(
        phoneNumberId,
        to,
        { code: 131057, details: 'Throughput upgrade in progress' },
        body,
      );
    if (this.overThroughput(n))
      return this.reject(
        phoneNumberId,
        to,
        {
          code: 130429,
          details: 'Cloud API message throughput has been reached.',
        },
        body,
      );
    if (body.messaging_product !== 'whatsapp')
      return this.reject(
        phoneNumberId,
        to,
        { code: 100, details: 'messaging_product must be whatsapp' },
        body,
      );
    if (!/^[1-9][0-9]{6,14}$/.test(to))
      return this.reject(phoneNumberId, to, { code: 100, details: 'Invalid parameter: to' }, body);
    const type = String(body.type ?? 'text');
    if (!['template', 'text', 'image', 'video', 'document', 'audio', 'interactive'].includes(type))
      return this.reject(
        phoneNumberId,
        to,
        { code: 131051, details: `Message type ${type} is not supported` },
        body,
      );
    const phone = `+${to}`;
    const profile = this.profile(phone);
    const user = this.user(phone);
    if (n.blocked.has(phone))
      return this.reject(
        phoneNumberId,
        to,
        { code: 130403, details: 'The business blocked this user' },
        body,
      );
    const undeliverable = !profile.onWhatsApp || user.blockedBusinesses.has(n.id);
    if (undeliverable && profile.failsAtSend)
      return this.reject(phoneNumberId, to, { code: 131026, details: 'Message undeliverable' }, body);
    let template: SimTemplate | undefined;
    let category = 'service';
    if (type === 'template') {
      const t = (body.template ?? {}) as {
        name?: string;
        language?: { code?: string };
        components?: unknown;
      };
      template = this.findTemplate(n.wabaId, String(t.name ?? ''), String(t.language?.code ?? ''));
      if (!template) {
        if (this.options.strictTemplates)
          return this.reject(
            phoneNumberId,
            to,
            {
              code: 132001,
              details: `template name (${t.name}) does not exist in ${t.language?.code}`,
            },
            body,
          );
        category = 'marketing';
      } else {
        if (template.status === 'PAUSED')
          return this.reject(phoneNumberId, to, { code: 132015, details: 'Template is paused' }, body);
        if (template.status === 'DISABLED')
          return this.reject(phoneNumberId, to, { code: 132016, details: 'Template is disabled' }, body);
        if (template.status !== 'APPROVED')
          return this.reject(
            phoneNumberId,
            to,
            { code: 132001, details: `template status is ${template.status}` },
            body,
          );
        const problem = checkSendParameters(
          template.definition,
          t.components as TemplateComponentParameters[],
        );
        if (problem)
          return this.reject(phoneNumberId, to, { code: problem.code, details: problem.details }, body);
        category = template.category.toLowerCase();
      }
    } else {
      const lastInbound = user.lastInbound.get(n.id);
      if (lastInbound === undefined || this.now() - lastInbound > DAY)
        return this.reject(
          phoneNumberId,
          to,
          {
            code: 131047,
            details:
              'Message failed to send because more than 24 hours have passed since the customer last replied',
          },
          body,
        );
    }
    if (category === 'marketing') {
      if (n.quality === 'RED')
        return this.reject(phoneNumberId, to, { code: 131048, details: 'Spam rate limit hit' }, body);
      if (user.stoppedMarketing && profile.failsAtSend)
        return this.reject(
          phoneNumberId,
          to,
          { code: 131050, details: 'User stopped marketing messages' },
          body,
        );
      const cutoff = this.now() - DAY;
      user.marketing24h = user.marketing24h.filter((t) => t > cutoff);
      if (user.marketing24h.length >= this.options.marketingPerUserPerDay)
        return this.reject(phoneNumberId, to, { code: 131049, details: 'Per-user marketing limit' }, body);
    }
    const pairKey = `${n.id}:${to}`;
    const pair = this.pairCheck(pairKey);
    if (pair === 'over')
      return this.reject(
        phoneNumberId,
        to,
        {
          code: 131056,
          details:
            'Message failed to send because there were too many messages sent from this phone number to the same phone number in a short period of time',
        },
        body,
      );
    // Accepted.
    this.pairConsume(pairKey, pair);
    this.countThroughput(n);
    const seq = (this.pairSeq.get(pairKey) ?? 0) + 1;
    this.pairSeq.set(pairKey, seq);
    const wamid = `wamid.${Buffer.from(`${n.displayPhoneNumber}:${to}:${tokenFor(this.options.seed, 20, 'wamid', n.id, to, seq)}`).toString('base64url')}`;
    const sendId =
      typeof body.biz_opaque_callback_data === 'string' ? body.biz_opaque_callback_data : undefined;
    if (category === 'marketing') user.marketing24h.push(this.now());
    const windowOpen = (user.lastInbound.get(n.id) ?? Number.NEGATIVE_INFINITY) > this.now() - DAY;
    if (type === 'template' && !windowOpen) this.countBusinessInitiated(n, phone);
    this.record({
      kind: 'send_accepted',
      phoneNumberId: n.id,
      to: phone,
      wamid,
      sendId,
      detail: { type, template: template?.name, category },
    });
    this.lifecycle(
      n,
      phone,
      wamid,
      sendId,
      category,
      template,
      rngFor(this.options.seed, 'msg', n.id, to, seq),
      undeliverable,
    );
    return { ok: true, wamid, input: String(body.to), waId: to };
  }

  findTemplate(wabaId: string, name: string, language: string): SimTemplate | undefined {
    for (const t of this.templates.values())
      if (t.wabaId === wabaId && t.name === name && t.language === language) return t;
    return undefined;
  }

  private countBusinessInitiated(n: NumberState, phone: string): void {
    const portfolio = this.portfolio(n.portfolioId);
    const users = this.uniqueUsers(portfolio);
    const isNew = !portfolio.lastSent.has(phone);
    if (isNew && users >= TIER_LIMITS[portfolio.tier]) {
      // No error code for this [3P]: the send goes, and the number's quality pays for it.
      this.record({
        kind: 'over_tier',
        phoneNumberId: n.id,
        to: phone,
        detail: { tier: portfolio.tier, users },
      });
      n.negatives24h.push(this.now());
    }
    const now = this.now();
    portfolio.lastSent.set(phone, now);
    portfolio.queue.push({ phone, at: now });
    n.sends24h.push(now);
    this.evaluateQuality(n);
    this.maybeUpgradeTier(n, portfolio);
  }

  private maybeUpgradeTier(n: NumberState, portfolio: PortfolioState): void {
    const users = portfolio.lastSent.size;
    if (portfolio.tier === 'TIER_UNLIMITED') {
      if (users >= 100_000 && n.quality !== 'RED' && n.throughputMps < 1000 && !n.upgradingUntil) {
        n.upgradingUntil = this.now() + 60_000;
        this.clock.after(60_000, () => {
          n.throughputMps = 1000;
          n.ring = new Array(1000).fill(Number.NEGATIVE_INFINITY);
          n.ringIndex = 0;
          n.upgradingUntil = undefined;
          this.record({ kind: 'throughput_upgraded', phoneNumberId: n.id, detail: { mps: 1000 } });
        });
      }
      return;
    }
    if (portfolio.upgradeScheduled || n.quality !== 'GREEN' || users < TIER_LIMITS[portfolio.tier] / 2)
      return;
    portfolio.upgradeScheduled = true;
    // High quality and half the limit used: one tier up within 6 hours.
    this.clock.after(6 * 3_600_000, () => {
      portfolio.upgradeScheduled = false;
      if (n.quality !== 'GREEN') return;
      const next = TIER_ORDER[TIER_ORDER.indexOf(portfolio.tier) + 1];
      if (!next) return;
      portfolio.tier = next;
      this.record({ kind: 'tier_changed', phoneNumberId: n.id, detail: { tier: next, event: 'UPGRADE' } });
      for (const number of this.numbers.values())
        if (number.portfolioId === portfolio.id) this.webhooks.quality(number, 'UPGRADE', next);
    });
  }

  private evaluateQuality(n: NumberState): void {
    const cutoff = this.now() - DAY;
    while (n.sends24h.length && n.sends24h[0]! <= cutoff) n.sends24h.shift();
    while (n.negatives24h.length && n.negatives24h[0]! <= cutoff) n.negatives24h.shift();
    const share = n.negatives24h.length / Math.max(this.options.qualityMinSample, n.sends24h.length);
    const before = n.quality;
    let after: Quality = before;
    if (share >= this.options.qualityRedAt) after = 'RED';
    else if (share >= this.options.qualityYellowAt) after = before === 'RED' ? 'RED' : 'YELLOW';
    else if (share < this.options.qualityYellowAt / 2) after = 'GREEN';
    if (after === before) return;
    n.quality = after;
    const portfolio = this.portfolio(n.portfolioId);
    // Meta names RED "FLAGGED" and recovery "UNFLAGGED"; it names no event for Medium, so the
    // simulator sends "YELLOW" there (see simulator/README.md). A tier lost to RED adds a DOWNGRADE.
    const event = after === 'GREEN' ? 'UNFLAGGED' : after === 'YELLOW' ? 'YELLOW' : 'FLAGGED';
    let downgraded = false;
    if (after === 'RED') {
      const lower = TIER_ORDER[Math.max(0, TIER_ORDER.indexOf(portfolio.tier) - 1)]!;
      if (lower !== portfolio.tier) {
        portfolio.tier = lower;
        downgraded = true;
      }
    }
    this.record({
      kind: 'quality_changed',
      phoneNumberId: n.id,
      detail: { from: before, to: after, event, tier: portfolio.tier, share },
    });
    this.webhooks.quality(n, event, portfolio.tier);
    if (downgraded) this.webhooks.quality(n, 'DOWNGRADE', portfolio.tier);
  }

  private optOut(n: NumberState, phone: string, how: string): void {
    const user = this.user(phone);
    if (!user.stoppedMarketing)
      this.record({ kind: 'opt_out', phoneNumberId: n.id, to: phone, detail: { how } });
    user.stoppedMarketing = true;
    n.negatives24h.push(this.now());
    this.evaluateQuality(n);
  }

  private profileName(phone: string): string {
    return rngFor(this.options.seed, 'name', phone).pick(NAMES);
  }

  /** Schedules what happens to an accepted message: sent, delivered or failed, read, reply, STOP, block. */
  private lifecycle(
    n: NumberState,
    phone: string,
    wamid: string,
    sendId: string | undefined,
    category: string,
    template: SimTemplate | undefined,
    rng: Rng,
    undeliverable: boolean,
  ): void {
    const profile = this.profile(phone);
    const user = this.user(phone);
    const start = this.now();
    const pricing = { billable: category !== 'service', pricing_model: 'PMP', type: 'regular', category };
    const status = (at: number, name: string, extra: Record<string, unknown> = {}) =>
      this.clock.at(at, () => {
        this.record({
          kind: 'status',
          phoneNumberId: n.id,
          to: phone,
          wamid,
          sendId,
          status: name,
          code: (extra.errors as { code: number }[] | undefined)?.[0]?.code,
        });
        return this.webhooks.status(n, {
          id: wamid,
          status: name,
          timestamp: String(Math.floor(this.now() / 1000)),
          recipient_id: phone.slice(1),
          ...(sendId ? { biz_opaque_callback_data: sendId } : {}),
          ...extra,
        });
      });
    const sentAt = start + 100 + rng.int(0, 900);
    if (undeliverable) {
      status(sentAt + rng.int(500, 5_000), 'failed', {
        errors: [statusError(131026, 'Message undeliverable')],
      });
      return;
    }
    if (category === 'marketing' && user.stoppedMarketing) {
      status(sentAt + rng.int(500, 5_000), 'failed', {
        errors: [statusError(131050, 'User stopped marketing messages')],
      });
      return;
    }
    status(sentAt, 'sent', { pricing });
    const deliveredAt = sentAt + Math.round(profile.deliveryDelayMs * (0.5 + rng.float()));
    // Whether it is read within 24 h depends on the local hour it arrived at: the send-time truth.
    const local = localTime(deliveredAt, profile.timezone);
    const readChance = profile.readProbabilityAt(local.hour, local.weekday);
    const read = rng.chance(readChance);
    const readAt = read
      ? deliveredAt + Math.min(23 * 3_600_000, Math.round(rng.exponential(20 * 60_000)))
      : undefined;
    // A message read at once sometimes never gets "delivered".
    const skipDelivered = readAt !== undefined && readAt - deliveredAt < 2_000 && rng.chance(0.5);
    if (!skipDelivered)
      status(deliveredAt, 'delivered', readAt === undefined || rng.chance(0.5) ? { pricing } : {});
    if (readAt === undefined) return;
    status(readAt, 'read', skipDelivered ? { pricing } : {});
    const reactAt = readAt + Math.round(rng.exponential(5 * 60_000));
    if (rng.chance(profile.stopProbability)) {
      if (rng.chance(0.3)) {
        // An opt-out made inside WhatsApp: user_preferences, no message.
        this.clock.at(reactAt, () => {
          this.optOut(n, phone, 'user_preferences');
          return this.webhooks.userPreference(n, phone, this.profileName(phone), 'stop');
        });
      } else
        this.clock.at(reactAt, () => {
          this.user(phone).lastInbound.set(n.id, this.now());
          const id = `${wamid}.stop`;
          this.record({
            kind: 'inbound',
            phoneNumberId: n.id,
            to: phone,
            wamid: id,
            detail: { text: 'STOP', contextId: wamid },
          });
          this.optOut(n, phone, 'stop_reply');
          return this.webhooks.inboundMessage(
            n,
            phone,
            id,
            { type: 'text', text: { body: 'STOP' } },
            wamid,
            this.profileName(phone),
          );
        });
      return;
    }
    if (rng.chance(profile.blockProbability)) {
      this.clock.at(reactAt, () => {
        this.user(phone).blockedBusinesses.add(n.id);
        n.negatives24h.push(this.now());
        this.record({ kind: 'user_blocked_business', phoneNumberId: n.id, to: phone, wamid });
        this.evaluateQuality(n);
      });
      return;
    }
    if (rng.chance(profile.replyProbability)) {
      const quickReplies = templateQuickReplies(template);
      const button = quickReplies.length && rng.chance(0.6) ? rng.pick(quickReplies) : undefined;
      const text = rng.pick([
        'Thanks!',
        'ok',
        'How much?',
        'Yes please',
        'Can you call me?',
        'When will it arrive?',
      ]);
      this.clock.at(reactAt, () => {
        this.user(phone).lastInbound.set(n.id, this.now());
        this.countThroughput(n);
        const id = `${wamid}.reply`;
        this.record({
          kind: 'inbound',
          phoneNumberId: n.id,
          to: phone,
          wamid: id,
          detail: { text: button ?? text, contextId: wamid },
        });
        const message = button
          ? { type: 'button', button: { payload: button, text: button } }
          : { type: 'text', text: { body: text } };
        return this.webhooks.inboundMessage(n, phone, id, message, wamid, this.profileName(phone));
      });
    }
  }

  // ---------------------------------------------------------------- templates

  /** Meta's app call limit on management endpoints: 200 per hour per account by default. */
  managementCall(wabaId: string): SimError | null {
    const cutoff = this.now() - 3_600_000;
    const calls = (this.managementCalls.get(wabaId) ?? []).filter((t) => t > cutoff);
    if (calls.length >= this.options.managementCallsPerHour) {
      this.managementCalls.set(wabaId, calls);
      return { code: 4, details: 'Application request limit reached' };
    }
    calls.push(this.now());
    this.managementCalls.set(wabaId, calls);
    return null;
  }

  private storeTemplate(wabaId: string, definition: MetaTemplateDefinition): SimTemplate {
    const id = String(900000000000000 + ++this.templateSeq);
    const template: SimTemplate = {
      id,
      wabaId,
      name: definition.name,
      language: definition.language,
      category: definition.category,
      status: 'PENDING',
      rejectedReason: 'NONE',
      definition,
      createdAt: this.now(),
    };
    this.templates.set(id, template);
    return template;
  }

  /** POST /{version}/{waba-id}/message_templates */
  createTemplate(
    wabaId: string,
    definition: MetaTemplateDefinition,
  ): { ok: true; template: SimTemplate } | { ok: false; error: SimError } {
    const issues = validateTemplateDefinition(definition);
    if (issues.length) {
      this.record({ kind: 'template_invalid', detail: { name: definition?.name, issues } });
      return {
        ok: false,
        error: {
          code: 100,
          subcode: 2388299,
          userMessage: issues.map((i) => `${i.path}: ${i.message}`).join('; '),
          details: JSON.stringify(issues),
        },
      };
    }
    if (this.findTemplate(wabaId, definition.name, definition.language))
      return {
        ok: false,
        error: {
          code: 100,
          subcode: 2388024,
          userMessage: 'Content in this language already exists',
          details: 'duplicate name and language',
        },
      };
    if (
      [...this.templates.values()].filter((t) => t.wabaId === wabaId).length >=
      TEMPLATE_LIMITS.templatesPerAccount
    )
      return {
        ok: false,
        error: {
          code: 100,
          subcode: 2388025,
          userMessage: 'Template limit reached',
          details: 'at most 250 templates per account',
        },
      };
    const template = this.storeTemplate(wabaId, definition);
    this.record({
      kind: 'template_created',
      detail: { id: template.id, name: template.name, language: template.language },
    });
    this.clock.after(this.options.reviewDelayMs, () => this.review(template));
    return { ok: true, template };
  }

  private review(template: SimTemplate) {
    if (!this.templates.has(template.id) || template.status !== 'PENDING') return;
    const text = template.definition.components
      .map((c) => ('text' in c && typeof c.text === 'string' ? c.text : ''))
      .join(' ');
    let reason = 'NONE';
    if (SCAM.test(text)) reason = 'SCAM';
    else if (template.category !== 'MARKETING' && PROMOTIONAL.test(text)) reason = 'INCORRECT_CATEGORY';
    else if (
      rngFor(this.options.seed, 'review', template.name, template.language).chance(
        this.options.reviewRejectRate,
      )
    )
      reason = 'INVALID_FORMAT';
    return this.setTemplateStatus(template.id, reason === 'NONE' ? 'APPROVED' : 'REJECTED', reason);
  }

  listTemplates(wabaId: string, filter: { name?: string; status?: string }): SimTemplate[] {
    return [...this.templates.values()].filter(
      (t) =>
        t.wabaId === wabaId &&
        (!filter.name || t.name === filter.name) &&
        (!filter.status || t.status === filter.status),
    );
  }

  deleteTemplates(wabaId: string, name: string, id?: string): number {
    let deleted = 0;
    for (const t of [...this.templates.values()])
      if (t.wabaId === wabaId && t.name === name && (!id || t.id === id)) {
        this.templates.delete(t.id);
        this.record({ kind: 'template_deleted', detail: { id: t.id, name } });
        deleted++;
      }
    return deleted;
  }

  blockUsers(phoneNumberId: string, users: string[]): string[] {
    const n = this.number(phoneNumberId);
    return users.map((u) => {
      const phone = u.startsWith('+') ? u : `+${u}`;
      n.blocked.add(phone);
      this.record({ kind: 'business_blocked_user', phoneNumberId, to: phone });
      return phone;
    });
  }
}

function templateQuickReplies(template: SimTemplate | undefined): string[] {
  const buttons = template?.definition.components.find((c) => c.type === 'BUTTONS');
  return buttons && buttons.type === 'BUTTONS'
    ? buttons.buttons.filter((b) => b.type === 'QUICK_REPLY').map((b) => b.text)
    : [];
}

const formatters = new Map<string, Intl.DateTimeFormat>();
const WEEKDAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];

/** Local hour (0-23) and weekday (0 = Sunday) of an instant in a zone. */
const localHours = new Map<string, { hour: number; weekday: number }>();

export function localTime(at: number, timezone: string): { hour: number; weekday: number } {
  // Every zone's offset is a whole number of quarter hours, so the answer is constant per quarter hour.
  const key = `${timezone}\u0000${Math.floor(at / 900_000)}`;
  const cached = localHours.get(key);
  if (cached) return cached;
  if (localHours.size > 100_000) localHours.clear();
  const computed = computeLocalTime(at, timezone);
  localHours.set(key, computed);
  return computed;
}

function computeLocalTime(at: number, timezone: string): { hour: number; weekday: number } {
  let format = formatters.get(timezone);
  if (!format) {
    format = new Intl.DateTimeFormat('en-US', {
      timeZone: timezone,
      hour: 'numeric',
      hourCycle: 'h23',
      weekday: 'short',
    });
    formatters.set(timezone, format);
  }
  let hour = 0;
  let weekday = 0;
  for (const part of format.formatToParts(at)) {
    if (part.type === 'hour') hour = Number(part.value) % 24;
    if (part.type === 'weekday') weekday = WEEKDAYS.indexOf(part.value);
  }
  return { hour, weekday };
}
