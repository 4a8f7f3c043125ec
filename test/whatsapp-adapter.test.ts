// Adapter contract over HTTP against the simulator: every error class of the facts page, produced by
// the simulator and classified as the facts page says.
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OutboundMessage, RenderedContent } from '../engine/channels/types.ts';
import { WhatsAppAdapter } from '../engine/channels/whatsapp/adapter.ts';
import { recipientProfile } from '../simulator/recipients.ts';
import { type RunningSimulator, startSimulator } from '../simulator/server.ts';

const SEED = 'contract';
const TOKEN = 'token-abc';
const START = Date.parse('2026-03-02T10:00:00Z');

/** The facts page's table, written out again here so the test does not read the code's own table. */
const FACTS: [number, string][] = [
  [130429, 'retry'],
  [131056, 'retry'],
  [4, 'retry'],
  [80007, 'retry'],
  [131057, 'retry'],
  [1, 'retry'],
  [2, 'retry'],
  [131000, 'retry'],
  [131016, 'retry'],
  [131049, 'retry_after_24h'],
  [131050, 'never'],
  [131026, 'never'],
  [131047, 'never'],
  [130403, 'never'],
  [131048, 'pause_campaign'],
  [131064, 'stop_template'],
  [368, 'stop_sender'],
  [131031, 'stop_sender'],
  [131051, 'never'],
  [132000, 'never'],
  [132001, 'never'],
  [132005, 'never'],
  [132007, 'never'],
  [132012, 'never'],
  [132015, 'stop_template'],
  [132016, 'stop_template'],
];

const templates = [
  {
    name: 'order_update',
    language: 'en_US',
    category: 'UTILITY',
    components: [
      {
        type: 'HEADER' as const,
        format: 'IMAGE' as const,
        example: { header_handle: ['https://example.com/a.png'] },
      },
      {
        type: 'BODY' as const,
        text: 'Hello {{1}}, your order {{2}} is on its way.',
        example: { body_text: [['Asha', 'A-1']] },
      },
      { type: 'BUTTONS' as const, buttons: [{ type: 'QUICK_REPLY' as const, text: 'Stop' }] },
    ],
  },
  {
    name: 'promo',
    language: 'en_US',
    category: 'MARKETING',
    components: [
      { type: 'BODY' as const, text: 'Hi {{1}}, new arrivals are in.', example: { body_text: [['Asha']] } },
    ],
  },
];

const orderUpdate = (name = 'Asha', image = 'https://example.com/a.png'): RenderedContent => ({
  type: 'template',
  name: 'order_update',
  language: 'en_US',
  components: [
    { type: 'header', parameters: [{ type: 'image', image: { link: image } }] },
    {
      type: 'body',
      parameters: [
        { type: 'text', text: name },
        { type: 'text', text: 'A-1' },
      ],
    },
    {
      type: 'button',
      sub_type: 'quick_reply',
      index: '0',
      parameters: [{ type: 'payload', payload: 'STOP' }],
    },
  ],
});
const promo: RenderedContent = {
  type: 'template',
  name: 'promo',
  language: 'en_US',
  components: [{ type: 'body', parameters: [{ type: 'text', text: 'Asha' }] }],
};

/** A phone of the seeded population with the wanted traits. */
function findPhone(predicate: (p: ReturnType<typeof recipientProfile>) => boolean, from = 0): string {
  for (let i = from; i < from + 100_000; i++) {
    const phone = `+9198${String(10_000_000 + i)}`;
    if (predicate(recipientProfile(SEED, phone))) return phone;
  }
  throw new Error('no such phone');
}
const ordinary = (i: number) => findPhone((p) => p.onWhatsApp && !p.stoppedMarketing, i * 37);

describe('WhatsApp adapter against the simulator', () => {
  let sim: RunningSimulator;
  let adapter: WhatsAppAdapter;
  let n = 0;
  const msg = (to: string, content: RenderedContent): OutboundMessage => ({
    sendId: `send_${n++}`,
    to,
    content,
  });
  const adapterFor = (
    phoneNumberId: string,
    extra: Partial<ConstructorParameters<typeof WhatsAppAdapter>[0]> = {},
  ) =>
    new WhatsAppAdapter({
      baseUrl: sim.url,
      apiVersion: 'v23.0',
      phoneNumberId,
      accessToken: TOKEN,
      appSecret: 'secret',
      now: () => sim.now().getTime(),
      ...extra,
    });

  beforeAll(async () => {
    sim = await startSimulator({
      seed: SEED,
      appSecret: 'secret',
      accessToken: TOKEN,
      templates,
      qualityMinSample: 10,
      clock: { manual: true, start: START },
      numbers: [{ id: '1001', throughputMps: 5 }],
    });
    adapter = adapterFor('1000');
  });
  afterAll(async () => sim?.close());

  it('accepts a template send and passes our send id as biz_opaque_callback_data', async () => {
    const outcome = await adapter.send({ sendId: 'send_abc', to: ordinary(1), content: orderUpdate() });
    expect(outcome.class).toBe('accepted');
    expect(outcome.providerMessageId).toMatch(/^wamid\./);
    const entry = sim.log.find((e) => e.kind === 'send_accepted' && e.wamid === outcome.providerMessageId);
    expect(entry?.sendId).toBe('send_abc');
  });

  it('130429 while over the number throughput: retry, slow down, a not-before time', async () => {
    const slow = adapterFor('1001');
    const outcomes = [];
    for (let i = 0; i < 7; i++) outcomes.push(await slow.send(msg(ordinary(10 + i), orderUpdate())));
    expect(outcomes.slice(0, 5).every((o) => o.class === 'accepted')).toBe(true);
    const over = outcomes[5]!;
    expect(over).toMatchObject({ class: 'retry', errorCode: 130429, slowDown: true, httpStatus: 429 });
    expect(over.retryAfterMs).toBeGreaterThan(0);
    expect(over.notBefore!.getTime()).toBe(sim.now().getTime() + over.retryAfterMs!);
    await sim.advance(1_000);
    expect((await slow.send(msg(ordinary(20), orderUpdate()))).class).toBe('accepted');
  });

  it('131056 past the pair burst: retry that user after 4^X seconds; others still go', async () => {
    const to = ordinary(30);
    let outcome = await adapter.send(msg(to, orderUpdate()));
    for (let i = 1; i < 45; i++) outcome = await adapter.send(msg(to, orderUpdate()));
    expect(outcome.class).toBe('accepted');
    const over = await adapter.send(msg(to, orderUpdate()), { attempt: 2 });
    expect(over).toMatchObject({ class: 'retry', errorCode: 131056, retryAfterMs: 16_000, httpStatus: 400 });
    expect((await adapter.send(msg(ordinary(31), orderUpdate()))).class).toBe('accepted');
  });

  it('131026 for a number not on WhatsApp: never', async () => {
    const to = findPhone((p) => !p.onWhatsApp && p.failsAtSend);
    expect(await adapter.send(msg(to, orderUpdate()))).toMatchObject({ class: 'never', errorCode: 131026 });
  });

  it('131050 for a user who stopped marketing: never, and an opt-out to record', async () => {
    const to = findPhone((p) => p.onWhatsApp && p.stoppedMarketing && p.failsAtSend);
    expect(await adapter.send(msg(to, promo))).toMatchObject({
      class: 'never',
      errorCode: 131050,
      optOut: true,
    });
  });

  it('131049 past the per-user marketing limit: not before 24 h', async () => {
    const to = ordinary(40);
    for (let i = 0; i < 10; i++) expect((await adapter.send(msg(to, promo))).class).toBe('accepted');
    const capped = await adapter.send(msg(to, promo));
    expect(capped).toMatchObject({ class: 'retry_after_24h', errorCode: 131049 });
    expect(capped.notBefore!.getTime()).toBe(sim.now().getTime() + 24 * 3_600_000);
  });

  it('131047 for free text outside the 24 h window: never; inside it the text goes', async () => {
    const to = ordinary(50);
    expect(await adapter.send(msg(to, { type: 'text', body: 'hello' }))).toMatchObject({
      class: 'never',
      errorCode: 131047,
    });
    sim.sim.inbound('1000', to, 'hi there');
    expect((await adapter.send(msg(to, { type: 'text', body: 'hello' }))).class).toBe('accepted');
  });

  it('130403 after the business blocked the user: never', async () => {
    const to = ordinary(60);
    const response = await fetch(`${sim.url}/v23.0/1000/block_users`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ messaging_product: 'whatsapp', block_users: [{ user: to.slice(1) }] }),
    });
    expect(response.status).toBe(200);
    expect(await adapter.send(msg(to, orderUpdate()))).toMatchObject({ class: 'never', errorCode: 130403 });
  });

  it('template content errors: 132000, 132012, 132005, 132001: never', async () => {
    const to = ordinary(70);
    const missingParam: RenderedContent = { ...promo, components: [{ type: 'body', parameters: [] }] };
    expect(await adapter.send(msg(to, missingParam))).toMatchObject({ class: 'never', errorCode: 132000 });
    const wrongType: RenderedContent = {
      ...promo,
      components: [{ type: 'body', parameters: [{ type: 'image', image: { link: 'x' } }] }],
    };
    expect(await adapter.send(msg(to, wrongType))).toMatchObject({ class: 'never', errorCode: 132012 });
    expect(await adapter.send(msg(to, orderUpdate('A'.repeat(1100))))).toMatchObject({
      class: 'never',
      errorCode: 132005,
    });
    const missing: RenderedContent = { ...promo, name: 'no_such_template' };
    expect(await adapter.send(msg(to, missing))).toMatchObject({ class: 'never', errorCode: 132001 });
  });

  it('132015 and 132016 for a paused or disabled template: stop the template', async () => {
    const pausing = await startSimulator({
      seed: SEED,
      appSecret: 's',
      templates,
      clock: { manual: true, start: START },
    });
    try {
      const a = new WhatsAppAdapter({
        baseUrl: pausing.url,
        apiVersion: 'v23.0',
        phoneNumberId: '7',
        accessToken: 't',
        appSecret: 's',
      });
      const id = pausing.sim.findTemplate('100000000000001', 'promo', 'en_US')!.id;
      pausing.sim.setTemplateStatus(id, 'PAUSED', 'NONE', 'FIRST_PAUSE');
      expect(await a.send(msg(ordinary(80), promo))).toMatchObject({
        class: 'stop_template',
        errorCode: 132015,
      });
      pausing.sim.setTemplateStatus(id, 'DISABLED');
      expect(await a.send(msg(ordinary(80), promo))).toMatchObject({
        class: 'stop_template',
        errorCode: 132016,
      });
    } finally {
      await pausing.close();
    }
  });

  it('131048 once STOP replies turn quality RED: pause the campaign', async () => {
    const number = '1002';
    const a = adapterFor(number);
    for (let i = 0; i < 3; i++) sim.sim.inbound(number, ordinary(90 + i), 'STOP');
    expect(sim.sim.numberState(number)?.quality).toBe('RED');
    expect(await a.send(msg(ordinary(95), promo))).toMatchObject({
      class: 'pause_campaign',
      errorCode: 131048,
    });
  });

  it('368 and 131031 for a restricted account: stop the sender', async () => {
    const a = adapterFor('1003');
    sim.sim.restrictNumber('1003', 368);
    expect(await a.send(msg(ordinary(100), orderUpdate()))).toMatchObject({
      class: 'stop_sender',
      errorCode: 368,
    });
    sim.sim.restrictNumber('1003', 131031);
    expect(await a.send(msg(ordinary(100), orderUpdate()))).toMatchObject({
      class: 'stop_sender',
      errorCode: 131031,
    });
  });

  it('a wrong token: stop the sender', async () => {
    const a = adapterFor('1000', { accessToken: 'wrong' });
    expect(await a.send(msg(ordinary(110), orderUpdate()))).toMatchObject({
      class: 'stop_sender',
      errorCode: 190,
      httpStatus: 401,
    });
  });

  it.each(FACTS)('code %i from the simulator classifies as %s', async (code, expected) => {
    sim.injectFault({ code, phoneNumberId: '1000' });
    const outcome = await adapter.send(msg(ordinary(120), orderUpdate()), { attempt: 1 });
    expect(outcome.errorCode).toBe(code);
    expect(outcome.class).toBe(expected);
    if (expected === 'retry') {
      expect(outcome.retryAfterMs).toBeGreaterThan(0);
      expect(outcome.notBefore).toBeInstanceOf(Date);
    }
    if (expected === 'retry_after_24h')
      expect(outcome.notBefore!.getTime() - sim.now().getTime()).toBe(86_400_000);
    expect(outcome.optOut ?? false).toBe(code === 131050);
    expect(outcome.slowDown ?? false).toBe(code === 130429);
  });

  it('backoff grows with the attempt; 131056 follows 4^X seconds', () => {
    const waits = [0, 1, 2, 3].map(
      (attempt) => adapter.classify({ code: 131000, httpStatus: 500 }, attempt).retryAfterMs,
    );
    expect(waits).toEqual([1_000, 2_000, 4_000, 8_000]);
    const pair = [0, 1, 2].map(
      (attempt) => adapter.classify({ code: 131056, httpStatus: 400 }, attempt).retryAfterMs,
    );
    expect(pair).toEqual([1_000, 4_000, 16_000]);
  });

  it('unknown codes fall back on the HTTP status', () => {
    expect(adapter.classify({ code: 999999, httpStatus: 503 }, 0).class).toBe('retry');
    expect(adapter.classify({ code: 999999, httpStatus: 400 }, 0).class).toBe('never');
  });

  it('a timeout is a retry', async () => {
    const a = adapterFor('1000', { timeoutMs: 100 });
    sim.injectFault({ code: 131000, phoneNumberId: '1000', delayMs: 1_000 });
    expect(await a.send(msg(ordinary(130), orderUpdate()))).toMatchObject({
      class: 'retry',
      errorTitle: 'timeout',
    });
  });

  it('a refused connection is a retry', async () => {
    const port = await new Promise<number>((resolve) => {
      const s = createServer();
      s.listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const a = new WhatsAppAdapter({
      baseUrl: `http://127.0.0.1:${port}`,
      apiVersion: 'v23.0',
      phoneNumberId: '1',
      accessToken: 't',
      appSecret: 's',
    });
    const outcome = await a.send(msg(ordinary(140), orderUpdate()));
    expect(outcome.class).toBe('retry');
    expect(outcome.retryAfterMs).toBeGreaterThan(0);
  });
});
