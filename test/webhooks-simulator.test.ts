// The simulator's webhook stream (late, duplicated, out of order, signed) through the real endpoint,
// inbox and processor: final counts equal the simulator's ground-truth log exactly.
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { funnel } from '../engine/metrics/index.ts';
import { inboxStats, processInbox } from '../engine/webhooks/index.ts';
import { type RunningSimulator, type StartSimulatorOptions, startSimulator } from '../simulator/server.ts';
import { APP_SECRET, createTestSender, insertSends } from './helpers/analytics-fixtures.ts';
import { openTestApi, type TestApi } from './helpers/runtime.ts';

const START = Date.parse('2026-03-02T10:00:00Z');
const HOUR = 3_600_000;
const CAMPAIGN = 'cmp_sim';

const templates: StartSimulatorOptions['templates'] = [
  {
    name: 'promo',
    language: 'en_US',
    category: 'MARKETING',
    components: [
      { type: 'BODY', text: 'Hi {{1}}, new arrivals are in.', example: { body_text: [['Asha']] } },
      {
        type: 'BUTTONS',
        buttons: [
          { type: 'QUICK_REPLY', text: 'Show me' },
          { type: 'QUICK_REPLY', text: 'STOP' },
        ],
      },
    ],
  },
];

describe('simulator stream to ground truth', () => {
  let api: TestApi;
  let sim: RunningSimulator;
  let ws: string;

  beforeAll(async () => {
    api = await openTestApi();
    ws = api.workspace.id;
    await api.app.listen({ port: 0, host: '127.0.0.1' });
    const port = (api.app.server.address() as AddressInfo).port;
    const senderId = await createTestSender(api.runtime, ws, 'sim');
    await api.runtime.pg.query(`UPDATE senders SET phone_number_id = '1000' WHERE id = $1`, [senderId]);
    sim = await startSimulator({
      seed: 'analytics-ground-truth',
      appSecret: APP_SECRET,
      webhookUrl: `http://127.0.0.1:${port}/webhooks/whatsapp/${senderId}`,
      templates,
      clock: { manual: true, start: START },
      recipientRates: { notOnWhatsApp: 0.1, stoppedMarketing: 0.1 },
      webhooks: { duplicateRate: 0.25, outOfOrderRate: 0.25, lateRate: 0.1, lateMeanMs: 20 * 60_000 },
    });
    const sends = [];
    for (let i = 0; i < 120; i++) {
      const to = `+9198${String(30_000_000 + i)}`;
      const sendId = `sim_${i}`;
      const response = await fetch(`${sim.url}/v23.0/1000/messages`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: 'Bearer t' },
        body: JSON.stringify({
          messaging_product: 'whatsapp',
          to: to.slice(1),
          type: 'template',
          biz_opaque_callback_data: sendId,
          template: {
            name: 'promo',
            language: { code: 'en_US' },
            components: [{ type: 'body', parameters: [{ type: 'text', text: 'Asha' }] }],
          },
        }),
      });
      const json = (await response.json()) as { messages?: { id: string }[]; error?: { code: number } };
      sends.push({
        send_id: sendId,
        campaign_id: CAMPAIGN,
        contact_id: `ct_sim_${i}`,
        phone: to,
        provider_message_id: json.messages?.[0]?.id ?? '',
        outcome: response.status === 200 ? ('accepted' as const) : ('failed' as const),
        error_code: json.error?.code ?? 0,
        sent_at: sim.now().toISOString(),
      });
      if (i % 20 === 19) {
        await sim.advance(HOUR);
        await sim.settle();
        await processInbox(api.runtime, { maxBatches: 2 });
      }
    }
    // Send records land after many of their statuses did: they must still join.
    await insertSends(api.runtime, ws, sends);
    // Reads come within 23 h, late webhooks and retries within a few more.
    for (let h = 0; h < 6; h++) {
      await sim.advance(6 * HOUR);
      await sim.settle();
    }
    await processInbox(api.runtime);
  });
  afterAll(async () => {
    await sim?.close();
    await api?.close();
  });

  it('the stream really was disorderly', () => {
    const delivered = sim.log.filter((e) => e.kind === 'webhook_delivered');
    expect(delivered.some((e) => (e.detail as { duplicate?: boolean }).duplicate)).toBe(true);
    expect(sim.counts.status_read).toBeGreaterThan(10);
  });

  it('every webhook was acknowledged and processed', async () => {
    expect(sim.counts.webhook_failed ?? 0).toBe(0);
    expect((await inboxStats(api.runtime, ws)).pending).toBe(0);
  });

  it('final delivered, read, failed and replied counts equal the ground truth', async () => {
    const statuses = new Map<string, Set<string>>();
    for (const e of sim.log) {
      if (e.kind !== 'status' || !e.wamid) continue;
      if (!statuses.has(e.wamid)) statuses.set(e.wamid, new Set());
      statuses.get(e.wamid)!.add(e.status!);
    }
    const repliedTo = new Set(
      sim.log
        .filter((e) => e.kind === 'inbound')
        .map((e) => (e.detail as { contextId?: string }).contextId)
        .filter(Boolean),
    );
    const accepted = sim.counts.send_accepted ?? 0;
    const rejected = sim.counts.send_rejected ?? 0;
    let delivered = 0;
    let read = 0;
    let failed = rejected;
    let replied = 0;
    for (const [wamid, set] of statuses) {
      const isRead = set.has('read') || repliedTo.has(wamid);
      if (isRead || (set.has('delivered') && !set.has('failed'))) delivered++;
      if (isRead) read++;
      if (set.has('failed') && !isRead) failed++;
      if (repliedTo.has(wamid)) replied++;
    }
    const result = await funnel(api.runtime, ws, { campaignId: CAMPAIGN });
    expect(result).toMatchObject({ attempted: 120, sent: accepted, delivered, read, failed, replied });
    expect(accepted + rejected).toBe(120);
  });

  it('every opt-out the simulator recorded, and every 131050 failure, is an opt-out in consent', async () => {
    const phones = new Set(
      sim.log
        .filter((e) => e.kind === 'opt_out' || (e.kind === 'status' && e.code === 131050))
        .map((e) => e.to!),
    );
    expect(phones.size).toBeGreaterThan(0);
    const { rows } = await api.runtime.pg.query<{ n: string }>(
      `SELECT count(*) AS n FROM consent_current WHERE workspace_id = $1 AND status = 'opted_out'`,
      [ws],
    );
    expect(Number(rows[0]!.n)).toBe(phones.size);
  });
});
