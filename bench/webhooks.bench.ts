// Webhook ingestion: status events acknowledged per second, acknowledgement latency (p50/p99), and
// the time until every acknowledged event is stored in ClickHouse (the inbox loop runs meanwhile).
// `--size small` (default) or `--size full`.
import { type ChildProcess, fork } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { buildServer } from '../api/server.ts';
import { signWebhook } from '../engine/channels/whatsapp/index.ts';
import { openRuntime } from '../engine/runtime.ts';
import { createSender } from '../engine/senders.ts';
import { runInboxLoop } from '../engine/webhooks/index.ts';
import { createWorkspace } from '../engine/workspaces.ts';

const size =
  (process.argv.includes('--size') ? process.argv[process.argv.indexOf('--size') + 1] : undefined) ?? 'small';
const SCENARIOS =
  {
    full: [
      { name: 'one status per payload', events: 20_000, perPayload: 1, concurrency: 64 },
      { name: '50 statuses per payload', events: 200_000, perPayload: 50, concurrency: 32 },
    ],
    small: [
      { name: 'one status per payload', events: 2_000, perPayload: 1, concurrency: 32 },
      { name: '50 statuses per payload', events: 20_000, perPayload: 50, concurrency: 16 },
    ],
    // A quick check that the harness runs.
    smoke: [
      { name: 'one status per payload', events: 100, perPayload: 1, concurrency: 8 },
      { name: '50 statuses per payload', events: 500, perPayload: 50, concurrency: 4 },
    ],
  }[size as 'small'] ?? [];
const SECRET = 'bench-secret';

// Two layouts. Embedded (default): one process runs the API, PGlite, chdb, the inbox loop and the
// load generator. Production (`DATABASE_URL` set): the API in one process and the inbox loop in a
// worker process, both on the real PostgreSQL, and the load generator in this one; CPU is then
// read per process from /proc.
const role = process.argv.includes('--role') ? process.argv[process.argv.indexOf('--role') + 1] : 'bench';
const production = Boolean(process.env.DATABASE_URL);
const schema = process.env.BENCH_PG_SCHEMA ?? `bench_${process.pid}`;

async function open(dataDir: string, migrate = true) {
  return openRuntime({
    config: {
      dataDir,
      logLevel: 'warn',
      databaseUrl: process.env.DATABASE_URL || undefined,
      postgresSchema: schema,
    },
    log: pino({ level: 'warn' }),
    migrate,
  });
}

async function setUp(runtime: Awaited<ReturnType<typeof open>>) {
  const workspace = await createWorkspace(runtime.pg, { name: 'bench' });
  return createSender(runtime.pg, workspace.id, {
    name: 'bench',
    phone_number_id: `pn_bench_${process.pid}`,
    portfolio_id: 'pf',
    app_secret: SECRET,
    verify_token: 'v',
  });
}

/** Stored statuses whose message id starts with the prefix (the ClickHouse owner answers). */
const storedCount = async (runtime: Awaited<ReturnType<typeof open>>, prefix: string) =>
  Number(
    (
      await runtime.ch.rows<{ n: string }>(
        `SELECT uniqExact(provider_message_id) AS n FROM ${runtime.ch.database}.message_statuses WHERE startsWith(provider_message_id, {p:String})`,
        { p: prefix },
      )
    )[0]!.n,
  );

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

/** CPU seconds a process has used (user + system), from /proc. */
function processCpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function ask<T>(child: ChildProcess, message: object, key: string): Promise<T> {
  return new Promise((resolve) => {
    const onMessage = (reply: Record<string, unknown>) => {
      if (!(key in reply)) return;
      child.off('message', onMessage);
      resolve(reply[key] as T);
    };
    child.on('message', onMessage);
    if (Object.keys(message).length) child.send(message);
  });
}

async function runBench() {
  const self = fileURLToPath(import.meta.url);
  const children: ChildProcess[] = [];
  let target: { url: string; stored: (prefix: string) => Promise<number>; pids: Record<string, number> };
  let close: () => Promise<void>;
  if (production) {
    const env = { ...process.env, BENCH_PG_SCHEMA: schema };
    const worker = fork(self, ['--role', 'worker'], { env });
    children.push(worker);
    const senderId = await ask<string>(worker, {}, 'senderId');
    const api = fork(self, ['--role', 'api'], { env });
    children.push(api);
    const port = await ask<number>(api, {}, 'port');
    target = {
      url: `http://127.0.0.1:${port}/webhooks/whatsapp/${senderId}`,
      stored: (prefix) => ask<number>(worker, { count: prefix }, 'count'),
      pids: { api: api.pid!, worker: worker.pid! },
    };
    close = async () => {
      const exits = children.map((child) => new Promise((resolve) => child.once('exit', resolve)));
      for (const child of children) child.send({ stop: true });
      await Promise.all(exits);
    };
  } else {
    const dataDir = mkdtempSync(join(tmpdir(), 'chorus-bench-webhooks-'));
    const runtime = await open(dataDir);
    const sender = await setUp(runtime);
    const app = await buildServer(runtime, { logger: false });
    await app.listen({ port: 0, host: '127.0.0.1' });
    const loop = process.env.BENCH_NO_LOOP
      ? { kick() {}, async stop() {} }
      : runInboxLoop(runtime, { pollMs: 200 });
    target = {
      url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}/webhooks/whatsapp/${sender.id}`,
      stored: async (prefix) => {
        loop.kick();
        return storedCount(runtime, prefix);
      },
      pids: {},
    };
    close = async () => {
      await loop.stop();
      await app.close();
      await runtime.close();
      rmSync(dataDir, { recursive: true, force: true });
    };
  }
  const results = [];
  for (const [index, scenario] of SCENARIOS.entries()) {
    const tag = `s${index}`;
    const bodies: string[] = [];
    for (let i = 0; i < scenario.events; i += scenario.perPayload)
      bodies.push(payload(tag, i, scenario.perPayload));
    const signed = bodies.map((body) => ({ body, signature: signWebhook(body, SECRET) }));
    const agent = new Agent({ keepAlive: true, maxSockets: scenario.concurrency });
    const latencies: number[] = [];
    let next = 0;
    let failures = 0;
    const loadAverage = readFileSync('/proc/loadavg', 'utf8').trim();
    const started = performance.now();
    const cpuStart = process.cpuUsage();
    const childCpuStart = Object.fromEntries(
      Object.entries(target.pids).map(([name, pid]) => [name, processCpuSeconds(pid)]),
    );
    await Promise.all(
      Array.from({ length: scenario.concurrency }, async () => {
        while (next < signed.length) {
          const { body, signature } = signed[next++]!;
          const t0 = performance.now();
          const status = await post(agent, target.url, body, signature);
          latencies.push(performance.now() - t0);
          if (status !== 200) failures++;
        }
      }),
    );
    const acked = performance.now() - started;
    const ackCpu = process.cpuUsage(cpuStart);
    const childCpu = Object.fromEntries(
      Object.entries(target.pids).map(([name, pid]) => [name, processCpuSeconds(pid) - childCpuStart[name]!]),
    );
    agent.destroy();
    // Stored: every acknowledged status is in message_statuses.
    let stored = 0;
    while (!process.env.BENCH_NO_LOOP && stored < scenario.events) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      stored = await target.stored(`wamid.${tag}.`);
    }
    const all = performance.now() - started;
    const workerCpu = target.pids.worker
      ? processCpuSeconds(target.pids.worker) - childCpuStart.worker!
      : undefined;
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
      load_average_at_start: loadAverage,
      // Embedded: CPU of the whole process (server, PGlite, chdb and the client) while acknowledging.
      // Production: the API process's CPU while acknowledging, the worker's until all was stored.
      load_generator_cpu_seconds: (ackCpu.user + ackCpu.system) / 1e6,
      ...(production
        ? {
            api_cpu_seconds: childCpu.api,
            worker_cpu_seconds: workerCpu,
            events_acknowledged_per_api_cpu_second: Math.round(scenario.events / childCpu.api!),
            payloads_acknowledged_per_api_cpu_second: Math.round(bodies.length / childCpu.api!),
            events_stored_per_worker_cpu_second: Math.round(scenario.events / workerCpu!),
          }
        : {
            events_acknowledged_per_cpu_second: Math.round(
              scenario.events / ((ackCpu.user + ackCpu.system) / 1e6),
            ),
          }),
      ack_ms: { p50: quantile(latencies, 0.5), p99: quantile(latencies, 0.99), max: latencies.at(-1) },
    };
    results.push(result);
    process.stdout.write(`${JSON.stringify(result)}\n`);
  }
  await close();
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
  writeFileSync(
    new URL(`./results/webhooks${production ? '-production' : ''}.json`, import.meta.url),
    JSON.stringify({ size, layout: production ? 'production' : 'embedded', results }, null, 2),
  );
}

/** One signed POST over a kept-alive connection; resolves with the status once the body is read. */
function post(agent: Agent, url: string, body: string, signature: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, {
      method: 'POST',
      agent,
      headers: {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(body),
        'x-hub-signature-256': signature,
      },
    });
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(body);
  });
}

// Children end with the bench, however it ends.
if (role !== 'bench') process.on('disconnect', () => process.exit(1));
if (role === 'worker') {
  // Owns chdb and the inbox loop; sets up the sender and answers count requests over IPC.
  const dataDir = mkdtempSync(join(tmpdir(), 'chorus-bench-webhooks-worker-'));
  const runtime = await open(dataDir);
  const sender = await setUp(runtime);
  const loop = runInboxLoop(runtime, { pollMs: 200 });
  process.on('message', async (message: { count?: string; stop?: boolean }) => {
    if (message.count !== undefined) {
      loop.kick();
      process.send!({ count: await storedCount(runtime, message.count) });
    }
    if (message.stop) {
      await loop.stop();
      await runtime.pg.exec(`DROP SCHEMA IF EXISTS ${runtime.pg.schema} CASCADE`).catch(() => {});
      await runtime.close();
      rmSync(dataDir, { recursive: true, force: true });
      process.exit(0);
    }
  });
  process.send!({ senderId: sender.id });
} else if (role === 'api') {
  // The API alone, as `chorus serve` runs it next to separate workers (its chdb is not used here).
  const dataDir = mkdtempSync(join(tmpdir(), 'chorus-bench-webhooks-api-'));
  const runtime = await open(dataDir, false);
  const app = await buildServer(runtime, { logger: false });
  await app.listen({ port: 0, host: '127.0.0.1' });
  process.on('message', async (message: { stop?: boolean }) => {
    if (!message.stop) return;
    await app.close();
    await runtime.close();
    rmSync(dataDir, { recursive: true, force: true });
    process.exit(0);
  });
  process.send!({ port: (app.server.address() as AddressInfo).port });
} else {
  await runBench();
}
