import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clickhouseDataDir } from '../engine/config.ts';
import { funnel } from '../engine/metrics/index.ts';
import { openClickHouse } from '../engine/stores/clickhouse.ts';
import { inboxStats, processInbox, runInboxLoop } from '../engine/webhooks/index.ts';
import { createTestSender, insertSends, signed, VERIFY_TOKEN } from './helpers/analytics-fixtures.ts';
import { openTestApi, postgresTargets, type TestApi } from './helpers/runtime.ts';
import { type StatusSpec, statusesPayload } from './helpers/whatsapp-payloads.ts';

const T0 = Date.UTC(2026, 10, 1, 10) / 1000;

describe.each(postgresTargets)('webhooks on $name', ({ url }) => {
  let api: TestApi;
  let sender: string;
  let ws: string;
  const post = (body: string | Buffer, headers: Record<string, string> = signed(body), id = sender) =>
    api.app.inject({ method: 'POST', url: `/webhooks/whatsapp/${id}`, payload: body, headers });
  const drain = () => processInbox(api.runtime, { retryDelayMs: () => 0 });
  const statusRows = async () =>
    api.runtime.ch.rows<{ n: number }>(
      `SELECT count() AS n FROM (SELECT DISTINCT provider_message_id, status FROM ${api.runtime.ch.database}.message_statuses WHERE workspace_id = {ws:String})`,
      { ws },
    );

  beforeAll(async () => {
    api = await openTestApi({ postgresUrl: url });
    ws = api.workspace.id;
    sender = await createTestSender(api.runtime, ws);
  });
  afterAll(async () => api?.close());

  it('answers the verification challenge only with the right token', async () => {
    const ok = await api.app.inject({
      url: `/webhooks/whatsapp/${sender}?hub.mode=subscribe&hub.challenge=12345&hub.verify_token=${VERIFY_TOKEN}`,
    });
    expect(ok.statusCode).toBe(200);
    expect(ok.body).toBe('12345');
    expect(ok.headers['content-type']).toContain('text/plain');
    const wrong = await api.app.inject({
      url: `/webhooks/whatsapp/${sender}?hub.mode=subscribe&hub.challenge=12345&hub.verify_token=nope`,
    });
    expect(wrong.statusCode).toBe(403);
    const unknown = await api.app.inject({
      url: `/webhooks/whatsapp/nobody?hub.mode=subscribe&hub.challenge=1&hub.verify_token=${VERIFY_TOKEN}`,
    });
    expect(unknown.statusCode).toBe(403);
  });

  it('rejects bad, missing and foreign signatures with 401 and stores nothing', async () => {
    const body = JSON.stringify(
      statusesPayload([{ id: 'wamid.sig', status: 'sent', timestamp: T0, recipient: '+911' }]),
    );
    const before = await inboxStats(api.runtime, ws);
    expect((await post(body, signed(body, 'other-secret'))).statusCode).toBe(401);
    expect((await post(body, { 'content-type': 'application/json' })).statusCode).toBe(401);
    expect((await post(body, { ...signed(body), 'x-hub-signature-256': 'sha256=zz' })).statusCode).toBe(401);
    expect((await post(body, signed(body), 'snd_unknown')).statusCode).toBe(401);
    // The signature covers the bytes: re-serialising the same JSON differently breaks it.
    const reformatted = JSON.stringify(JSON.parse(body), null, 2);
    expect((await post(reformatted, signed(body))).statusCode).toBe(401);
    const after = await inboxStats(api.runtime, ws);
    expect(after.pending + after.processed).toBe(before.pending + before.processed);
  });

  it('a truncated body fails its signature (401); a signed non-JSON body is a 400; neither is stored', async () => {
    const body = JSON.stringify(
      statusesPayload([{ id: 'wamid.trunc', status: 'sent', timestamp: T0, recipient: '+911' }]),
    );
    const truncated = body.slice(0, body.length - 7);
    expect((await post(truncated, signed(body))).statusCode).toBe(401);
    const response = await post(truncated, signed(truncated));
    expect(response.statusCode).toBe(400);
    expect(response.json().errors[0].path).toBe('/body');
    await drain();
    expect(await statusRows()).toEqual([{ n: 0 }]);
  });

  it('acknowledges, stores once and processes a replayed payload once', async () => {
    const body = JSON.stringify(
      statusesPayload([
        { id: 'wamid.r1', status: 'sent', timestamp: T0, recipient: '+911' },
        { id: 'wamid.r1', status: 'delivered', timestamp: T0 + 5, recipient: '+911' },
      ]),
    );
    const first = await post(body);
    expect(first.statusCode).toBe(200);
    expect(first.json()).toEqual({ status: 'stored' });
    const again = await post(body);
    expect(again.statusCode).toBe(200);
    expect(again.json()).toEqual({ status: 'duplicate' });
    await drain();
    // Replayed after processing: still acknowledged, still counted once.
    expect((await post(body)).json()).toEqual({ status: 'duplicate' });
    await drain();
    const { rows } = await api.runtime.pg.query<{ n: string }>(
      `SELECT count(*) AS n FROM webhook_inbox WHERE body_sha256 = encode(sha256($1::bytea), 'hex')`,
      [Buffer.from(body)],
    );
    expect(Number(rows[0]!.n)).toBe(1);
    const statuses = await api.runtime.ch.rows<{ n: number }>(
      `SELECT count() AS n FROM ${api.runtime.ch.database}.message_statuses FINAL WHERE provider_message_id = 'wamid.r1'`,
    );
    expect(Number(statuses[0]!.n)).toBe(2);
  });

  it('accepts unknown fields, change types and statuses without losing the known ones', async () => {
    const payload = statusesPayload([
      { id: 'wamid.u1', status: 'sent', timestamp: T0, recipient: '+911' },
      { id: 'wamid.u1', status: 'weird' as 'sent', timestamp: T0 + 1, recipient: '+911' },
    ]) as { entry: { changes: unknown[]; brand_new?: unknown }[]; extra?: unknown };
    payload.extra = { nested: [1, 2, 3] };
    payload.entry[0]!.brand_new = true;
    payload.entry[0]!.changes.push({ field: 'account_review_update', value: { decision: 'APPROVED' } });
    const body = JSON.stringify(payload);
    expect((await post(body)).statusCode).toBe(200);
    const report = await drain();
    expect(report.dead).toBe(0);
    expect(report.unknown).toBe(2);
    const rows = await api.runtime.ch.rows<{ status: string }>(
      `SELECT DISTINCT status FROM ${api.runtime.ch.database}.message_statuses WHERE provider_message_id = 'wamid.u1'`,
    );
    expect(rows.map((r) => r.status)).toEqual(['sent']);
  });

  it('takes a 3 MB payload and stores every status in it', async () => {
    const statuses: StatusSpec[] = [];
    let body = '';
    for (let i = 0; ; i++) {
      statuses.push({
        id: `wamid.big.${i}`,
        status: 'delivered',
        timestamp: T0 + i,
        recipient: `+91990000${i}`,
      });
      if (i % 1000 === 999) {
        body = JSON.stringify(statusesPayload(statuses));
        if (body.length > 2.9 * 1024 * 1024) break;
      }
    }
    expect(body.length).toBeGreaterThan(2.9 * 1024 * 1024);
    expect((await post(body)).statusCode).toBe(200);
    await drain();
    const rows = await api.runtime.ch.rows<{ n: number }>(
      `SELECT uniqExact(provider_message_id) AS n FROM ${api.runtime.ch.database}.message_statuses WHERE startsWith(provider_message_id, 'wamid.big.')`,
    );
    expect(Number(rows[0]!.n)).toBe(statuses.length);
  });

  it('a shuffled, duplicated, split stream gives exactly the ground-truth funnel', async () => {
    const int = seededInts(7);
    const campaign = 'cmp_stream';
    const truth = { sent: 0, delivered: 0, read: 0, failed: 0 };
    const events: StatusSpec[] = [];
    const sends = [];
    for (let i = 0; i < 300; i++) {
      const id = `wamid.s.${i}`;
      const recipient = `+9198${String(i).padStart(8, '0')}`;
      sends.push({
        send_id: `snd_${i}`,
        campaign_id: campaign,
        contact_id: `ct_${i}`,
        provider_message_id: id,
        sent_at: new Date((T0 + i) * 1000).toISOString(),
      });
      truth.sent++;
      const t = T0 + i;
      const path = int(5);
      const add = (status: StatusSpec['status'], dt: number, errorCode?: number) =>
        events.push({ id, status, timestamp: t + dt, recipient, errorCode });
      add('sent', 1);
      if (path === 0) {
        add('delivered', 2);
        truth.delivered++;
      } else if (path === 1) {
        add('delivered', 2);
        add('read', 30);
        truth.delivered++;
        truth.read++;
      } else if (path === 2) {
        add('read', 30); // read at once: never a separate "delivered"
        truth.delivered++;
        truth.read++;
      } else if (path === 3) {
        add('delivered', 2);
        add('failed', 3, 131026); // failure reported after delivery: the message failed
        truth.failed++;
      } // path 4: only "sent"
    }
    // Half the sends are written after their statuses arrive: unknown ids are kept and join later.
    await insertSends(api.runtime, ws, sends.slice(0, 150));
    const duplicated = events.flatMap((e) => (int(3) === 0 ? [e, e] : [e]));
    for (let i = duplicated.length - 1; i > 0; i--) {
      const j = int(i + 1);
      [duplicated[i], duplicated[j]] = [duplicated[j]!, duplicated[i]!];
    }
    const bodies: string[] = [];
    for (let i = 0; i < duplicated.length; ) {
      const size = 1 + int(6);
      bodies.push(JSON.stringify(statusesPayload(duplicated.slice(i, i + size))));
      i += size;
    }
    // Whole payloads redelivered too, some concurrently.
    const deliveries = bodies.flatMap((b) => (int(4) === 0 ? [b, b] : [b]));
    for (let i = 0; i < deliveries.length; i += 20) {
      const responses = await Promise.all(deliveries.slice(i, i + 20).map((b) => post(b)));
      expect(responses.every((r) => r.statusCode === 200)).toBe(true);
      if (i % 100 === 0) await processInbox(api.runtime, { maxBatches: 1, batchSize: 7 });
    }
    await drain();
    await insertSends(api.runtime, ws, sends.slice(150));
    const result = await funnel(api.runtime, ws, { campaignId: campaign });
    expect({
      sent: result.sent,
      delivered: result.delivered,
      read: result.read,
      failed: result.failed,
    }).toEqual(truth);
    expect(result.attempted).toBe(300);
    expect((await inboxStats(api.runtime, ws)).pending).toBe(0);
  });

  it('two workers draining at once, in batches cut by the byte budget, process each payload exactly once', async () => {
    const before = await inboxStats(api.runtime, ws);
    const bodies = Array.from({ length: 60 }, (_, i) =>
      JSON.stringify(
        statusesPayload([{ id: `wamid.share.${i}`, status: 'delivered', timestamp: T0, recipient: '+911' }]),
      ),
    );
    const responses = await Promise.all(bodies.map((b) => post(b)));
    expect(responses.every((r) => r.statusCode === 200)).toBe(true);
    // Each body is ~300 bytes: a 1,000-byte budget takes three or four per batch, so the drain has to
    // keep leasing after batches shorter than batchSize.
    const options = { batchSize: 25, batchBytes: 1_000, retryDelayMs: () => 0 };
    const [a, b] = await Promise.all([
      processInbox(api.runtime, options),
      processInbox(api.runtime, options),
    ]);
    expect(a.payloads + b.payloads).toBe(60);
    expect(a.statuses + b.statuses).toBe(60);
    expect(a.batches + b.batches).toBeGreaterThanOrEqual(15);
    const after = await inboxStats(api.runtime, ws);
    expect(after.pending).toBe(0);
    expect(after.processed - before.processed).toBe(60);
    const stored = await api.runtime.ch.rows<{ n: string; rows: string }>(
      `SELECT uniqExact(provider_message_id) AS n, count() AS rows FROM ${api.runtime.ch.database}.message_statuses
        WHERE workspace_id = {ws:String} AND startsWith(provider_message_id, 'wamid.share.')`,
      { ws },
    );
    expect(Number(stored[0]!.n)).toBe(60);
    // Processed once: a payload taken by both workers would have been inserted twice.
    expect(Number(stored[0]!.rows)).toBe(60);
  });

  it('the worker loop processes what the endpoint stores, without being called', async () => {
    const loop = runInboxLoop(api.runtime, { pollMs: 50 });
    try {
      const body = JSON.stringify(
        statusesPayload([{ id: 'wamid.loop', status: 'delivered', timestamp: T0, recipient: '+911' }]),
      );
      expect((await post(body)).statusCode).toBe(200);
      let seen = 0;
      for (let i = 0; i < 200 && !seen; i++) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        const rows = await api.runtime.ch.rows<{ n: string }>(
          `SELECT count() AS n FROM ${api.runtime.ch.database}.message_statuses WHERE provider_message_id = 'wamid.loop'`,
        );
        seen = Number(rows[0]!.n);
      }
      expect(seen).toBe(1);
    } finally {
      await loop.stop();
    }
  });

  it('keeps everything acknowledged while ClickHouse is down and stores it once when it returns', async () => {
    const campaign = 'cmp_fault';
    const sends = Array.from({ length: 60 }, (_, i) => ({
      send_id: `fs_${i}`,
      campaign_id: campaign,
      contact_id: `fct_${i}`,
      provider_message_id: `wamid.f.${i}`,
      sent_at: new Date((T0 + i) * 1000).toISOString(),
    }));
    await insertSends(api.runtime, ws, sends);
    const runtime = api.runtime;
    const working = runtime.ch;
    // Part of the storm is processed, then ClickHouse goes away mid-storm.
    const statuses = (i: number): StatusSpec[] => [
      { id: `wamid.f.${i}`, status: 'delivered', timestamp: T0 + i, recipient: '+91' },
      { id: `wamid.f.${i}`, status: 'read', timestamp: T0 + i + 9, recipient: '+91' },
    ];
    for (let i = 0; i < 20; i++)
      expect((await post(JSON.stringify(statusesPayload(statuses(i))))).statusCode).toBe(200);
    await drain();
    await working.close();
    const acks = await Promise.all(
      Array.from({ length: 40 }, (_, k) => post(JSON.stringify(statusesPayload(statuses(20 + k))))),
    );
    expect(acks.every((r) => r.statusCode === 200)).toBe(true);
    const failed = await processInbox(runtime, { retryDelayMs: () => 0 });
    expect(failed.failed).toBe(true);
    expect((await inboxStats(runtime, ws)).pending).toBe(40);
    // Duplicates of already-stored payloads keep arriving during the outage.
    for (let i = 0; i < 10; i++) await post(JSON.stringify(statusesPayload(statuses(i))));
    runtime.ch = await openClickHouse({
      dataDir: clickhouseDataDir(runtime.config),
      database: working.database,
    });
    const recovered = await drain();
    expect(recovered.failed).toBe(false);
    expect((await inboxStats(runtime, ws)).pending).toBe(0);
    const result = await funnel(runtime, ws, { campaignId: campaign });
    expect(result).toMatchObject({ sent: 60, delivered: 60, read: 60, failed: 0 });
    const rows = await runtime.ch.rows<{ n: number }>(
      `SELECT count() AS n FROM ${runtime.ch.database}.message_statuses FINAL WHERE startsWith(provider_message_id, 'wamid.f.')`,
    );
    expect(Number(rows[0]!.n)).toBe(120);
    // The runtime's close() closes the store it opened with; hand the reopened one back to it.
    await runtime.ch.close();
    runtime.ch = working;
  });
});

/** mulberry32: a small seeded generator, so the stream is the same on every run. */
function seededInts(seed: number): (max: number) => number {
  let a = seed >>> 0;
  return (max) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * max);
  };
}
