// The simulator against the facts page: payload shapes, signatures, limits at the stated rates,
// webhook delivery faults, template review, quality, the read model, and reproducibility.
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulatorProcess } from '../bench/sim-process.ts';
import { parseWhatsAppWebhook, verifyWebhookSignature } from '../engine/channels/whatsapp/index.ts';
import { recipientProfile } from '../simulator/recipients.ts';
import { type RunningSimulator, type StartSimulatorOptions, startSimulator } from '../simulator/server.ts';
import { localTime } from '../simulator/simulator.ts';

const SECRET = 'sim-secret';
const START = Date.parse('2026-03-02T10:00:00Z');
const HOUR = 3_600_000;

interface Received {
  raw: Buffer;
  signature: string | undefined;
  body: { entry: { changes: { field: string; value: Record<string, unknown> }[] }[] };
}

/** A webhook receiver that records what it gets and can fail the first N posts. */
async function receiver(failFirst = 0) {
  const received: Received[] = [];
  let failures = failFirst;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (failures > 0) {
        failures--;
        res.writeHead(500).end();
        return;
      }
      const raw = Buffer.concat(chunks);
      received.push({
        raw,
        signature: req.headers['x-hub-signature-256'] as string,
        body: JSON.parse(raw.toString()),
      });
      res.writeHead(200).end('ok');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/webhook`,
    received,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

const templates: StartSimulatorOptions['templates'] = [
  {
    name: 'order_update',
    language: 'en_US',
    category: 'UTILITY',
    components: [
      { type: 'BODY', text: 'Hello {{1}}, your order is on its way.', example: { body_text: [['Asha']] } },
      {
        type: 'BUTTONS',
        buttons: [
          { type: 'QUICK_REPLY', text: 'Yes' },
          { type: 'QUICK_REPLY', text: 'No' },
        ],
      },
    ],
  },
  {
    name: 'promo',
    language: 'en_US',
    category: 'MARKETING',
    components: [
      { type: 'BODY', text: 'Hi {{1}}, new arrivals are in.', example: { body_text: [['Asha']] } },
    ],
  },
];

const sendBody = (to: string, sendId: string, name = 'order_update') => ({
  messaging_product: 'whatsapp',
  to: to.replace('+', ''),
  type: 'template',
  biz_opaque_callback_data: sendId,
  template: {
    name,
    language: { code: 'en_US' },
    components: [{ type: 'body', parameters: [{ type: 'text', text: 'Asha' }] }],
  },
});

async function post(sim: RunningSimulator, path: string, body: unknown) {
  const response = await fetch(`${sim.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: 'Bearer t' },
    body: JSON.stringify(body),
  });
  // biome-ignore lint/suspicious/noExplicitAny: test reads nested response fields freely
  return { status: response.status, json: (await response.json()) as Record<string, any> };
}

const phones = (count: number, from = 0) =>
  Array.from({ length: count }, (_, i) => `+9198${String(20_000_000 + from + i)}`);

/** Every key path of a JSON value, arrays collapsed, with the value's type. */
function shape(value: unknown, path = ''): Map<string, string> {
  const out = new Map<string, string>();
  if (Array.isArray(value)) {
    out.set(path, 'array');
    for (const item of value) for (const [k, v] of shape(item, `${path}[]`)) out.set(k, v);
  } else if (value && typeof value === 'object') {
    out.set(path, 'object');
    for (const [key, item] of Object.entries(value))
      for (const [k, v] of shape(item, `${path}.${key}`)) out.set(k, v);
  } else out.set(path, typeof value);
  return out;
}
const fixtureShape = (name: string) =>
  shape(JSON.parse(readFileSync(new URL(`./fixtures/whatsapp/${name}.json`, import.meta.url), 'utf8')));

describe('simulator webhooks', () => {
  let sim: RunningSimulator;
  let hook: Awaited<ReturnType<typeof receiver>>;
  const sent = new Map<string, string>();

  beforeAll(async () => {
    hook = await receiver();
    sim = await startSimulator({
      seed: 'shapes',
      appSecret: SECRET,
      webhookUrl: hook.url,
      templates,
      clock: { manual: true, start: START },
      recipientRates: { notOnWhatsApp: 0.2, stoppedMarketing: 0.1 },
      webhooks: { lateRate: 0, duplicateRate: 0, outOfOrderRate: 0 },
    });
    // 400 sends spread over ten hours, so reads, replies and STOPs happen.
    for (const [i, to] of phones(400).entries()) {
      const r = await post(
        sim,
        '/v23.0/1000/messages',
        sendBody(to, `send_${i}`, i % 2 ? 'promo' : 'order_update'),
      );
      if (r.status === 200) sent.set(r.json.messages[0].id, `send_${i}`);
      if (i % 40 === 39) await sim.advance(HOUR);
    }
    await sim.advance(30 * HOUR);
  });
  afterAll(async () => {
    await sim?.close();
    await hook?.close();
  });

  it('answers a send with the facts page success shape', async () => {
    const rates = { notOnWhatsApp: 0.2, stoppedMarketing: 0.1 };
    const to = phones(50, 90_000).find((p) => recipientProfile('shapes', p, rates).onWhatsApp)!;
    const r = await post(sim, '/v23.0/1000/messages', sendBody(to, 'x'));
    expect(r.status).toBe(200);
    expect(r.json).toEqual({
      messaging_product: 'whatsapp',
      contacts: [{ input: to.slice(1), wa_id: to.slice(1) }],
      messages: [{ id: expect.stringMatching(/^wamid\./), message_status: 'accepted' }],
    });
  });

  it('answers an error with the facts page error shape', async () => {
    const r = await post(sim, '/v23.0/1000/messages', { ...sendBody('+919812345679', 'y'), type: 'sticker' });
    expect(r.status).toBe(400);
    expect(r.json).toEqual({
      error: {
        message: expect.stringContaining('(#131051)'),
        type: 'OAuthException',
        code: 131051,
        error_data: { messaging_product: 'whatsapp', details: expect.any(String) },
        fbtrace_id: expect.any(String),
      },
    });
  });

  it('signs every webhook with X-Hub-Signature-256 over the raw bytes', () => {
    expect(hook.received.length).toBeGreaterThan(100);
    for (const r of hook.received) {
      expect(verifyWebhookSignature(r.raw, { 'x-hub-signature-256': r.signature }, SECRET)).toBe(true);
      expect(verifyWebhookSignature(r.raw, { 'x-hub-signature-256': r.signature }, 'wrong')).toBe(false);
    }
  });

  it('status, reply and opt-out payloads use only fields of the facts page shapes', () => {
    const byKind = new Map<string, Map<string, string>>();
    for (const r of hook.received) {
      const change = r.body.entry[0]!.changes[0]!;
      const value = change.value as { statuses?: { status: string }[]; messages?: { type: string }[] };
      const kind =
        change.field === 'messages'
          ? value.statuses
            ? value.statuses[0]!.status === 'failed'
              ? 'status-failed'
              : 'status-sent'
            : value.messages![0]!.type === 'button'
              ? 'inbound-button'
              : 'inbound-reply'
          : change.field === 'user_preferences'
            ? 'user-preferences'
            : change.field;
      const merged = byKind.get(kind) ?? new Map();
      for (const [k, v] of shape(r.body)) merged.set(k, v);
      byKind.set(kind, merged);
    }
    for (const kind of ['status-sent', 'status-failed', 'inbound-reply', 'inbound-button']) {
      const simShape = byKind.get(kind);
      expect(simShape, `no ${kind} webhook seen`).toBeDefined();
      const facts = fixtureShape(kind);
      for (const [path, type] of simShape!) expect([path, facts.get(path)]).toEqual([path, type]);
    }
  });

  it('statuses carry our send id; replies carry context.id of a message we sent', () => {
    const events = hook.received.flatMap((r) => parseWhatsAppWebhook(r.raw));
    const statuses = events.filter((e) => e.kind === 'status');
    expect(statuses.length).toBeGreaterThan(100);
    for (const s of statuses) expect(s.sendId).toBe(sent.get(s.providerMessageId));
    const replies = events.filter((e) => e.kind === 'message');
    expect(replies.length).toBeGreaterThan(0);
    for (const reply of replies) expect(sent.has(reply.contextMessageId!)).toBe(true);
    const failed = statuses.filter((s) => s.status === 'failed');
    expect(failed.length).toBeGreaterThan(0);
    for (const f of failed) expect([131026, 131050]).toContain(f.errors![0]!.code);
  });

  it('the log holds the ground truth of every send and webhook', async () => {
    expect(sim.counts.send_accepted).toBe(sent.size + 1);
    expect(sim.counts.webhook_delivered).toBe(hook.received.length);
    const viaHttp = (await (await fetch(`${sim.url}/_sim/log?kind=send_accepted`)).json()) as {
      entries: unknown[];
    };
    expect(viaHttp.entries.length).toBe(sim.counts.send_accepted);
  });
});

describe('simulator opt-outs inside WhatsApp', () => {
  it('user_preferences webhooks use only fields of the facts page shape', async () => {
    const hook = await receiver();
    const sim = await startSimulator({
      seed: 'prefs',
      tier: 'TIER_100K',
      appSecret: SECRET,
      webhookUrl: hook.url,
      templates,
      clock: { manual: true, start: START },
      recipientRates: { notOnWhatsApp: 0, stoppedMarketing: 0 },
      webhooks: { lateRate: 0, duplicateRate: 0, outOfOrderRate: 0 },
      numbers: [{ id: '1500', throughputMps: 1000 }],
    });
    try {
      for (const [i, to] of phones(3000, 80_000).entries()) {
        sim.sim.send('1500', sendBody(to, `u${i}`, 'promo'), undefined);
        if (i % 900 === 899) await sim.advance(1_000);
      }
      await sim.advance(30 * HOUR);
      const preferences = hook.received.filter(
        (r) => r.body.entry[0]!.changes[0]!.field === 'user_preferences',
      );
      expect(preferences.length).toBeGreaterThan(0);
      const facts = fixtureShape('user-preferences');
      for (const r of preferences)
        for (const [path, type] of shape(r.body)) expect([path, facts.get(path)]).toEqual([path, type]);
      const events = preferences.flatMap((r) => parseWhatsAppWebhook(r.raw));
      for (const e of events) expect(e).toMatchObject({ kind: 'user_preference', value: 'stop' });
    } finally {
      await sim.close();
      await hook.close();
    }
  });
});

describe('simulator limits at the stated rates', () => {
  let sim: RunningSimulator;
  beforeAll(async () => {
    sim = await startSimulator({
      seed: 'limits',
      appSecret: SECRET,
      templates,
      clock: { manual: true, start: START },
      recipientRates: { notOnWhatsApp: 0, stoppedMarketing: 0 },
      numbers: [
        { id: '2000' },
        { id: '2001', throughputMps: 1000 },
        { id: '2002' },
        { id: '2003', portfolioId: 'pf_small' },
      ],
    });
  });
  afterAll(async () => sim?.close());

  it('80 messages per second per number by default; 130429 (HTTP 429) while over', async () => {
    const results = await Promise.all(
      phones(100).map((to, i) => post(sim, '/v23.0/2000/messages', sendBody(to, `t${i}`))),
    );
    expect(results.filter((r) => r.status === 200)).toHaveLength(80);
    const over = results.filter((r) => r.status !== 200);
    expect(over).toHaveLength(20);
    for (const r of over) expect([r.status, r.json.error.code]).toEqual([429, 130429]);
    await sim.advance(999);
    expect(
      (await post(sim, '/v23.0/2000/messages', sendBody(phones(1, 200)[0]!, 'late'))).json.error?.code,
    ).toBe(130429);
    await sim.advance(1);
    expect((await post(sim, '/v23.0/2000/messages', sendBody(phones(1, 200)[0]!, 'late'))).status).toBe(200);
  });

  it('a number configured for 1,000 per second takes 1,000', async () => {
    let accepted = 0;
    let limited = 0;
    for (const [i, to] of phones(1010, 1000).entries()) {
      const result = sim.sim.send('2001', sendBody(to, `k${i}`), undefined);
      if (result.ok) accepted++;
      else if (result.error.code === 130429) limited++;
    }
    expect([accepted, limited]).toEqual([1000, 10]);
  });

  it('a number declared over HTTP (POST /_sim/numbers/{id}) takes its own throughput', async () => {
    const declared = await post(sim, '/_sim/numbers/2100', { throughputMps: 20, portfolioId: 'pf_http' });
    expect(declared.status).toBe(200);
    expect(declared.json).toMatchObject({ id: '2100', throughputMps: 20, portfolioId: 'pf_http' });
    expect((await post(sim, '/_sim/numbers/2100', { throughputMps: 30 })).status).toBe(409);
    expect((await post(sim, '/_sim/numbers/2101', { throughputMps: 1001 })).status).toBe(400);
    const results = await Promise.all(
      phones(25, 3_000).map((to, i) => post(sim, '/v23.0/2100/messages', sendBody(to, `h${i}`))),
    );
    expect(results.filter((r) => r.status === 200)).toHaveLength(20);
    expect(results.filter((r) => r.json.error?.code === 130429)).toHaveLength(5);
  });

  it('pair rate: a burst of up to 45 borrows; a burst of 20 means about 2 minutes wait (131056)', async () => {
    const to = phones(1, 5000)[0]!;
    const send = () => sim.sim.send('2002', sendBody(to, 'p'), undefined);
    for (let i = 0; i < 20; i++) expect(send().ok).toBe(true);
    await sim.advance(6_000);
    const blocked = send();
    expect(blocked.ok ? 0 : blocked.error.code).toBe(131056);
    await sim.advance(120_000 - 6_000 - 1);
    expect(send().ok).toBe(false);
    await sim.advance(1);
    expect(send().ok).toBe(true);
    // Steady state: one per 6 s.
    await sim.advance(6_000);
    expect(send().ok).toBe(true);
    const other = phones(1, 5001)[0]!;
    expect(sim.sim.send('2002', sendBody(other, 'o'), undefined).ok).toBe(true);
    // The burst ceiling is 45 in 6 s.
    const fresh = phones(1, 5002)[0]!;
    let ok = 0;
    for (let i = 0; i < 50; i++) if (sim.sim.send('2002', sendBody(fresh, 'b'), undefined).ok) ok++;
    expect(ok).toBe(45);
  });

  it('messaging tier: unique users in a rolling 24 h; running over it drops quality with a webhook', async () => {
    const hook = await receiver();
    const tiered = await startSimulator({
      seed: 'tier',
      appSecret: SECRET,
      webhookUrl: hook.url,
      templates,
      clock: { manual: true, start: START },
      recipientRates: { notOnWhatsApp: 0, stoppedMarketing: 0 },
      webhooks: { lateRate: 0, duplicateRate: 0, outOfOrderRate: 0 },
      numbers: [{ id: '3000', throughputMps: 1000 }],
    });
    try {
      const users = phones(270, 9000);
      for (const to of users.slice(0, 250))
        expect(tiered.sim.send('3000', sendBody(to, 's'), undefined).ok).toBe(true);
      // The same users again do not count twice.
      await tiered.advance(7_000);
      for (const to of users.slice(0, 10)) tiered.sim.send('3000', sendBody(to, 's'), undefined);
      expect(tiered.sim.numberState('3000')).toMatchObject({ uniqueUsers24h: 250, quality: 'GREEN' });
      for (const to of users.slice(250)) tiered.sim.send('3000', sendBody(to, 's'), undefined);
      expect(tiered.counts.over_tier).toBe(20);
      expect(tiered.sim.numberState('3000')?.quality).not.toBe('GREEN');
      await tiered.advance(1_000);
      const quality = hook.received
        .flatMap((r) => parseWhatsAppWebhook(r.raw))
        .filter((e) => e.kind === 'quality');
      expect(quality[0]).toMatchObject({ kind: 'quality', event: 'YELLOW', currentLimit: 'TIER_250' });
      const qualityPayload = hook.received.find(
        (r) => r.body.entry[0]!.changes[0]!.field === 'phone_number_quality_update',
      )!;
      for (const [path, type] of shape(qualityPayload.body))
        expect(fixtureShape('quality').get(path)).toBe(type);
      // A day later the window has rolled: the count starts again.
      await tiered.advance(25 * HOUR);
      expect(tiered.sim.numberState('3000')?.uniqueUsers24h).toBe(0);
    } finally {
      await tiered.close();
      await hook.close();
    }
  });
});

describe('simulator portfolio tier', () => {
  it('numbers of one portfolio share its messaging tier; another portfolio counts apart', async () => {
    const sim = await startSimulator({
      seed: 'portfolio',
      appSecret: SECRET,
      templates,
      clock: { manual: true, start: START },
      recipientRates: { notOnWhatsApp: 0, stoppedMarketing: 0 },
      numbers: [
        { id: '3100', throughputMps: 1000, portfolioId: 'pf_shared' },
        { id: '3101', throughputMps: 1000, portfolioId: 'pf_shared' },
        { id: '3102', throughputMps: 1000, portfolioId: 'pf_other' },
      ],
    });
    try {
      const users = phones(300, 60_000);
      for (const to of users.slice(0, 150)) sim.sim.send('3100', sendBody(to, 'a'), undefined);
      // A user already messaged from the portfolio's other number is not new.
      for (const to of users.slice(100, 200)) sim.sim.send('3101', sendBody(to, 'b'), undefined);
      expect(sim.sim.numberState('3100')?.uniqueUsers24h).toBe(200);
      expect(sim.sim.numberState('3101')?.uniqueUsers24h).toBe(200);
      expect(sim.counts.over_tier ?? 0).toBe(0);
      for (const to of users.slice(200, 270)) sim.sim.send('3101', sendBody(to, 'c'), undefined);
      // TIER_250 is the portfolio's: 20 of those went over it, though 3101 alone messaged 170.
      expect(sim.counts.over_tier).toBe(20);
      for (const to of users.slice(0, 100)) sim.sim.send('3102', sendBody(to, 'd'), undefined);
      expect(sim.sim.numberState('3102')?.uniqueUsers24h).toBe(100);
      expect(sim.counts.over_tier).toBe(20);
    } finally {
      await sim.close();
    }
  });
});

describe('simulator quality', () => {
  it('STOP replies push quality to RED: FLAGGED, and a DOWNGRADE of the tier', async () => {
    const hook = await receiver();
    const sim = await startSimulator({
      seed: 'quality',
      appSecret: SECRET,
      webhookUrl: hook.url,
      templates,
      tier: 'TIER_2K',
      qualityMinSample: 20,
      clock: { manual: true, start: START },
      webhooks: { lateRate: 0, duplicateRate: 0, outOfOrderRate: 0 },
    });
    try {
      for (const [i, to] of phones(20, 300).entries()) sim.sim.send('1000', sendBody(to, `q${i}`), undefined);
      sim.sim.inbound('1000', phones(1, 300)[0]!, 'STOP');
      expect(sim.sim.numberState('1000')?.quality).toBe('YELLOW');
      sim.sim.inbound('1000', phones(1, 301)[0]!, 'stop');
      expect(sim.sim.numberState('1000')).toMatchObject({ quality: 'RED', tier: 'TIER_250' });
      await sim.advance(1_000);
      const events = hook.received
        .flatMap((r) => parseWhatsAppWebhook(r.raw))
        .filter((e) => e.kind === 'quality');
      expect(events.map((e) => [e.event, e.currentLimit])).toEqual([
        ['YELLOW', 'TIER_2K'],
        ['FLAGGED', 'TIER_250'],
        ['DOWNGRADE', 'TIER_250'],
      ]);
      // Marketing sends now meet the spam rate limit.
      const promo = sim.sim.send('1000', sendBody(phones(1, 400)[0]!, 'm', 'promo'), undefined);
      expect(promo.ok ? 0 : promo.error.code).toBe(131048);
    } finally {
      await sim.close();
      await hook.close();
    }
  });
});

describe('simulator webhook delivery faults', () => {
  it('retries a non-200 with backoff until it gets a 200', async () => {
    const hook = await receiver(2);
    const sim = await startSimulator({
      seed: 'retry',
      appSecret: SECRET,
      webhookUrl: hook.url,
      clock: { manual: true, start: START },
      webhooks: {
        lateRate: 0,
        duplicateRate: 0,
        outOfOrderRate: 0,
        baseLatencyMs: 0,
        retryDelaysMs: [5_000, 30_000],
      },
    });
    try {
      sim.sim.inbound('1000', '+919800000001', 'hello');
      await sim.advance(0);
      expect(sim.counts.webhook_failed).toBe(1);
      await sim.advance(5_000);
      expect(sim.counts.webhook_failed).toBe(2);
      expect(hook.received).toHaveLength(0);
      await sim.advance(30_000);
      expect(sim.counts.webhook_delivered).toBe(1);
      expect(hook.received).toHaveLength(1);
    } finally {
      await sim.close();
      await hook.close();
    }
  });

  it('keeps at most maxInFlight posts open at once; a burst waits its turn and all of it arrives', async () => {
    let open = 0;
    let most = 0;
    let delivered = 0;
    const server: Server = createServer((req, res) => {
      open++;
      most = Math.max(most, open);
      req.resume();
      req.on('end', () =>
        setTimeout(() => {
          open--;
          delivered++;
          res.writeHead(200).end('ok');
        }, 20),
      );
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const sim = await startSimulator({
      seed: 'burst',
      appSecret: SECRET,
      webhookUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}/webhook`,
      // a running clock fires the burst at once (a manual one delivers one post at a time)
      clock: { start: START },
      webhooks: { lateRate: 0, duplicateRate: 0, outOfOrderRate: 0, baseLatencyMs: 0, maxInFlight: 3 },
    });
    try {
      for (let i = 0; i < 30; i++) sim.sim.inbound('1000', `+9198000${String(i).padStart(5, '0')}`, 'hi');
      for (let waited = 0; delivered < 30 && waited < 10_000; waited += 20)
        await new Promise((r) => setTimeout(r, 20));
      expect(delivered).toBe(30);
      expect(most).toBe(3);
    } finally {
      await sim.close();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  it('posts duplicates and out of order at the configured rates', async () => {
    const hook = await receiver();
    const sim = await startSimulator({
      seed: 'chaos',
      appSecret: SECRET,
      webhookUrl: hook.url,
      templates,
      clock: { manual: true, start: START },
      webhooks: { duplicateRate: 0.3, outOfOrderRate: 0.5, reorderWindowMs: 60_000, lateRate: 0.1 },
    });
    try {
      for (const [i, to] of phones(40, 7000).entries())
        sim.sim.send('1000', sendBody(to, `c${i}`), undefined);
      await sim.advance(30 * HOUR);
      const emitted = sim.counts.webhook_emitted!;
      expect(hook.received.length).toBeGreaterThan(emitted);
      const statuses = hook.received
        .flatMap((r) => parseWhatsAppWebhook(r.raw))
        .filter((e) => e.kind === 'status');
      const ids = statuses.map((s) => `${s.providerMessageId}/${s.status}`);
      expect(new Set(ids).size).toBeLessThan(ids.length);
      // Some message's later status arrived before an earlier one.
      const rank = { sent: 0, delivered: 1, read: 2, failed: 3, played: 2 };
      const seen = new Map<string, number>();
      let inversions = 0;
      for (const s of statuses) {
        const before = seen.get(s.providerMessageId) ?? -1;
        if (rank[s.status] < before) inversions++;
        seen.set(s.providerMessageId, Math.max(before, rank[s.status]));
      }
      expect(inversions).toBeGreaterThan(0);
    } finally {
      await sim.close();
      await hook.close();
    }
  });
});

describe('simulator templates', () => {
  let sim: RunningSimulator;
  let hook: Awaited<ReturnType<typeof receiver>>;
  beforeAll(async () => {
    hook = await receiver();
    sim = await startSimulator({
      seed: 'templates',
      appSecret: SECRET,
      webhookUrl: hook.url,
      clock: { manual: true, start: START },
      reviewDelayMs: 10 * 60_000,
      webhooks: { lateRate: 0, duplicateRate: 0, outOfOrderRate: 0 },
    });
  });
  afterAll(async () => {
    await sim?.close();
    await hook?.close();
  });

  const create = (body: unknown) => post(sim, '/v23.0/waba_1/message_templates', body);

  it('creates PENDING, then approves after the review delay with a status webhook', async () => {
    const r = await create({
      name: 'shipping_notice',
      language: 'en_US',
      category: 'UTILITY',
      components: [
        { type: 'BODY', text: 'Your parcel {{1}} ships today.', example: { body_text: [['P-1']] } },
      ],
    });
    expect(r.status).toBe(200);
    expect(r.json).toEqual({ id: expect.any(String), status: 'PENDING', category: 'UTILITY' });
    await sim.advance(10 * 60_000 - 1);
    expect(hook.received).toHaveLength(0);
    await sim.advance(1_000);
    const events = hook.received.flatMap((x) => parseWhatsAppWebhook(x.raw));
    expect(events).toEqual([
      expect.objectContaining({
        kind: 'template_status',
        event: 'APPROVED',
        templateId: r.json.id,
        templateName: 'shipping_notice',
      }),
    ]);
    const fixture = fixtureShape('template-status');
    for (const [path, type] of shape(hook.received[0]!.body)) expect(fixture.get(path)).toBe(type);
    const list = await (await fetch(`${sim.url}/v23.0/waba_1/message_templates?name=shipping_notice`)).json();
    expect(list.data[0]).toMatchObject({ name: 'shipping_notice', status: 'APPROVED' });
  });

  it('rejects a promotional UTILITY template as INCORRECT_CATEGORY', async () => {
    const r = await create({
      name: 'sneaky',
      language: 'en_US',
      category: 'UTILITY',
      components: [{ type: 'BODY', text: 'Get 20% off everything this weekend.' }],
    });
    await sim.advance(11 * 60_000);
    const event = hook.received
      .flatMap((x) => parseWhatsAppWebhook(x.raw))
      .find((e) => e.kind === 'template_status' && e.templateId === r.json.id);
    expect(event).toMatchObject({ event: 'REJECTED', reason: 'INCORRECT_CATEGORY' });
  });

  it.each([
    [
      'a bad name',
      {
        name: 'Bad Name',
        language: 'en_US',
        category: 'UTILITY',
        components: [{ type: 'BODY', text: 'Hello there' }],
      },
      '/name',
    ],
    ['a missing body', { name: 'x', language: 'en_US', category: 'UTILITY', components: [] }, '/components'],
    [
      'a variable at the start',
      {
        name: 'x',
        language: 'en_US',
        category: 'UTILITY',
        components: [{ type: 'BODY', text: '{{1}} hello there', example: { body_text: [['a']] } }],
      },
      '/components/0/text',
    ],
  ])('refuses %s with code 100 and the path, storing nothing', async (_label, body, path) => {
    const before = sim.sim.templates.size;
    const r = await create(body);
    expect(r.status).toBe(400);
    expect(r.json.error.code).toBe(100);
    expect(JSON.parse(r.json.error.error_data.details).map((i: { path: string }) => i.path)).toContain(path);
    expect(sim.sim.templates.size).toBe(before);
  });

  it('refuses a duplicate name and language; deletes by name', async () => {
    const body = {
      name: 'dup',
      language: 'en_US',
      category: 'MARKETING',
      components: [{ type: 'BODY', text: 'Hello there friends' }],
    };
    expect((await create(body)).status).toBe(200);
    expect((await create(body)).json.error.error_subcode).toBe(2388024);
    const del = await fetch(`${sim.url}/v23.0/waba_1/message_templates?name=dup`, { method: 'DELETE' });
    expect(await del.json()).toEqual({ success: true });
    expect((await create(body)).status).toBe(200);
  });
});

describe('recipient model', () => {
  it('is a pure function of seed and phone', () => {
    const a = recipientProfile('s', '+919876543210');
    const b = recipientProfile('s', '+919876543210');
    expect({ ...a, readProbabilityAt: 0 }).toEqual({ ...b, readProbabilityAt: 0 });
    expect(a.timezone).toBe('Asia/Kolkata');
    expect(recipientProfile('s', '+5511987654321').timezone).toBe('America/Sao_Paulo');
    const different = phones(50).filter(
      (p) =>
        JSON.stringify(recipientProfile('s', p).preferredHours) !==
        JSON.stringify(recipientProfile('t', p).preferredHours),
    );
    expect(different.length).toBeGreaterThan(0);
  });

  it('reads peak at the preferred local hours', () => {
    for (const phone of phones(50)) {
      const p = recipientProfile('s', phone);
      const peak = p.readProbabilityAt(p.preferredHours[0]!, 2);
      const offPeak = Math.min(...Array.from({ length: 24 }, (_, h) => p.readProbabilityAt(h, 2)));
      expect(peak).toBeGreaterThan(offPeak + 0.3);
    }
  });

  it('sending at the preferred hour truly gives more reads within 24 h', async () => {
    const sim = await startSimulator({
      seed: 'reads',
      appSecret: SECRET,
      templates,
      clock: { manual: true, start: Date.parse('2026-03-03T13:30:00Z') }, // 19:00 in India
      recipientRates: { notOnWhatsApp: 0, stoppedMarketing: 0 },
      numbers: [{ id: '4000', throughputMps: 1000 }],
    });
    try {
      const evening = phones(3000, 40_000)
        .filter((p) => recipientProfile('reads', p).preferredHours.includes(19))
        .slice(0, 300);
      expect(evening.length).toBe(300);
      const wave = () =>
        new Set(
          evening
            .map((to) => sim.sim.send('4000', sendBody(to, 'r'), undefined))
            .filter((r) => r.ok)
            .map((r) => (r as { wamid: string }).wamid),
        );
      const peakWave = wave();
      await sim.advance(32 * HOUR); // 03:00 in India the next night
      expect(localTime(sim.now().getTime(), 'Asia/Kolkata').hour).toBe(3);
      const nightWave = wave();
      await sim.advance(30 * HOUR);
      const reads = (ids: Set<string>) =>
        sim.log.filter((e) => e.kind === 'status' && e.status === 'read' && ids.has(e.wamid!)).length;
      expect(reads(peakWave)).toBeGreaterThan(reads(nightWave) * 2);
    } finally {
      await sim.close();
    }
  });
});

describe('reproducibility', () => {
  async function run(seed: string) {
    const sim = await startSimulator({
      seed,
      appSecret: SECRET,
      templates,
      clock: { manual: true, start: START },
    });
    try {
      for (const [i, to] of phones(60, 100).entries()) {
        await post(sim, '/v23.0/1000/messages', sendBody(to, `r${i}`, i % 3 ? 'order_update' : 'promo'));
        if (i % 10 === 0) await sim.advance(1_000);
      }
      await sim.advance(30 * HOUR);
      return JSON.stringify(sim.log);
    } finally {
      await sim.close();
    }
  }

  it('concurrent requests do not change what happens to each message', async () => {
    async function concurrent(order: 'forward' | 'reverse') {
      const sim = await startSimulator({
        seed: 'conc',
        appSecret: SECRET,
        templates,
        clock: { manual: true, start: START },
      });
      try {
        const list = phones(40, 600);
        if (order === 'reverse') list.reverse();
        await Promise.all(list.map((to) => post(sim, '/v23.0/1000/messages', sendBody(to, `c_${to}`))));
        await sim.advance(30 * HOUR);
        return sim.log
          .filter((e) => e.kind === 'status' || e.kind === 'send_accepted' || e.kind === 'send_rejected')
          .map(
            (e) =>
              `${e.to} ${e.kind} ${e.wamid ?? e.code} ${e.status ?? ''} ${e.kind === 'status' ? e.at : ''}`,
          )
          .sort();
      } finally {
        await sim.close();
      }
    }
    const [a, b] = [await concurrent('forward'), await concurrent('reverse')];
    expect(a.length).toBeGreaterThan(80);
    expect(a).toEqual(b);
  });

  it('the same seed gives the same run; another seed another', async () => {
    const [a, b, c] = [await run('same'), await run('same'), await run('other')];
    expect(a.length).toBeGreaterThan(1000);
    expect(a).toBe(b);
    expect(a).not.toBe(c);
  });
});

describe('chorus sim', () => {
  it('starts the simulator from the CLI and answers a send', async () => {
    // the launcher the benchmarks use: `chorus sim --port 0 ...` in its own process, waiting for its URL
    const sim = await startSimulatorProcess(['--seed', 'cli', '--lenient-templates']);
    const { url } = sim;
    try {
      const to = phones(30, 70_000).find((p) => {
        const profile = recipientProfile('cli', p);
        return profile.onWhatsApp && !profile.stoppedMarketing;
      })!;
      const response = await fetch(`${url}/v23.0/42/messages`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(sendBody(to, 'cli_1', 'anything')),
      });
      expect(response.status).toBe(200);
      const counts = await (await fetch(`${url}/_sim/counts`)).json();
      expect(counts.send_accepted).toBe(1);
    } finally {
      sim.stop();
    }
  });
});
