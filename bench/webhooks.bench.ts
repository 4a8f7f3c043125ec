// Webhook ingestion: status events acknowledged per second, acknowledgement latency (p50/p99), and
// the time until every acknowledged event is stored in ClickHouse (the inbox loop runs meanwhile).
// `--size small` (default) or `--size full`.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { buildServer } from '../api/server.ts';
import { signWebhook } from '../engine/channels/whatsapp/index.ts';
import { openRuntime } from '../engine/runtime.ts';
import { createSender } from '../engine/senders.ts';
import { runInboxLoop } from '../engine/webhooks/index.ts';
import { createWorkspace } from '../engine/workspaces.ts';

const size = process.argv.includes('--size') ? process.argv[process.argv.indexOf('--size') + 1] : 'small';
const SCENARIOS =
  size === 'full'
    ? [
        { name: 'one status per payload', events: 20_000, perPayload: 1, concurrency: 64 },
        { name: '50 statuses per payload', events: 200_000, perPayload: 50, concurrency: 32 },
      ]
    : [
        { name: 'one status per payload', events: 2_000, perPayload: 1, concurrency: 32 },
        { name: '50 statuses per payload', events: 20_000, perPayload: 50, concurrency: 16 },
      ];
const SECRET = 'bench-secret';

const dataDir = mkdtempSync(join(tmpdir(), 'chorus-bench-webhooks-'));
const runtime = await openRuntime({
  config: {
    dataDir,
    logLevel: 'warn',
    databaseUrl: process.env.DATABASE_URL || undefined,
    postgresSchema: `bench_${process.pid}`,
  },
  log: pino({ level: 'warn' }),
});
const workspace = await createWorkspace(runtime.pg, { name: 'bench' });
const sender = await createSender(runtime.pg, workspace.id, {
  name: 'bench',
  phone_number_id: `pn_bench_${process.pid}`,
  portfolio_id: 'pf',
  app_secret: SECRET,
  verify_token: 'v',
});
const app = await buildServer(runtime, { logger: false });
await app.listen({ port: 0, host: '127.0.0.1' });
const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}/webhooks/whatsapp/${sender.id}`;
const loop = process.env.BENCH_NO_LOOP
  ? { kick() {}, async stop() {} }
  : runInboxLoop(runtime, { pollMs: 200, batchSize: 500 });

function payload(scenario: string, from: number, count: number): string {
  const t = Math.floor(Date.now() / 1000);
  return JSON.stringify({
    object: 'whatsapp_business_account',
    entry: [
      {
        id: 'waba',
        changes: [
          {
            field: 'messages',
            value: {
              messaging_product: 'whatsapp',
              metadata: { display_phone_number: '15550001111', phone_number_id: 'pn' },
              statuses: Array.from({ length: count }, (_, i) => ({
                id: `wamid.${scenario}.${from + i}`,
                status: (from + i) % 3 === 0 ? 'read' : 'delivered',
                timestamp: String(t),
                recipient_id: `9198${String(from + i).padStart(8, '0')}`,
              })),
            },
          },
        ],
      },
    ],
  });
}

const quantile = (sorted: number[], q: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
const results = [];
for (const [index, scenario] of SCENARIOS.entries()) {
  const tag = `s${index}`;
  const bodies: string[] = [];
  for (let i = 0; i < scenario.events; i += scenario.perPayload)
    bodies.push(payload(tag, i, scenario.perPayload));
  const latencies: number[] = [];
  let next = 0;
  let failures = 0;
  const started = performance.now();
  const cpuStart = process.cpuUsage();
  await Promise.all(
    Array.from({ length: scenario.concurrency }, async () => {
      while (next < bodies.length) {
        const body = bodies[next++]!;
        const t0 = performance.now();
        const response = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-hub-signature-256': signWebhook(body, SECRET) },
          body,
        });
        await response.arrayBuffer();
        latencies.push(performance.now() - t0);
        if (response.status !== 200) failures++;
      }
    }),
  );
  const acked = performance.now() - started;
  const ackCpu = process.cpuUsage(cpuStart);
  // Stored: every acknowledged status is in message_statuses.
  let stored = 0;
  while (!process.env.BENCH_NO_LOOP && stored < scenario.events) {
    loop.kick();
    await new Promise((resolve) => setTimeout(resolve, 50));
    const rows = await runtime.ch.rows<{ n: string }>(
      `SELECT uniqExact(provider_message_id) AS n FROM ${runtime.ch.database}.message_statuses WHERE startsWith(provider_message_id, {p:String})`,
      { p: `wamid.${tag}.` },
    );
    stored = Number(rows[0]!.n);
  }
  const all = performance.now() - started;
  latencies.sort((a, b) => a - b);
  const result = {
    scenario: scenario.name,
    events: scenario.events,
    payloads: bodies.length,
    concurrency: scenario.concurrency,
    failures,
    ack_seconds: acked / 1000,
    events_acknowledged_per_second: Math.round(scenario.events / (acked / 1000)),
    payloads_acknowledged_per_second: Math.round(bodies.length / (acked / 1000)),
    stored_seconds: all / 1000,
    events_stored_per_second: Math.round(scenario.events / (all / 1000)),
    // CPU of the whole process (server, PGlite, chdb and the load-generating client) while acknowledging.
    events_acknowledged_per_cpu_second: Math.round(scenario.events / ((ackCpu.user + ackCpu.system) / 1e6)),
    ack_ms: { p50: quantile(latencies, 0.5), p99: quantile(latencies, 0.99), max: latencies.at(-1) },
  };
  results.push(result);
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

await loop.stop();
await app.close();
if (runtime.pg.mode === 'server')
  await runtime.pg.exec(`DROP SCHEMA IF EXISTS ${runtime.pg.schema} CASCADE`).catch(() => {});
await runtime.close();
rmSync(dataDir, { recursive: true, force: true });
mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
writeFileSync(
  new URL('./results/webhooks.json', import.meta.url),
  JSON.stringify({ size, postgres: process.env.DATABASE_URL ? 'server' : 'pglite', results }, null, 2),
);
