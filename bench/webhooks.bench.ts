// Webhook ingestion: status events acknowledged per second, acknowledgement latency (p50/p99), and
// the time until every acknowledged event is stored in ClickHouse (the inbox loop runs meanwhile).
// `--size small` (default) or `--size full`.
import { type ChildProcess, fork } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { type AddressInfo, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
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
      { name: 'one status per payload', events: 100_000, perPayload: 1, concurrency: 64, pipeline: 4 },
      { name: '50 statuses per payload', events: 200_000, perPayload: 50, concurrency: 32, pipeline: 1 },
    ],
    small: [
      { name: 'one status per payload', events: 2_000, perPayload: 1, concurrency: 32, pipeline: 4 },
      { name: '50 statuses per payload', events: 20_000, perPayload: 50, concurrency: 16, pipeline: 1 },
    ],
    // A quick check that the harness runs.
    smoke: [
      { name: 'one status per payload', events: 100, perPayload: 1, concurrency: 8, pipeline: 4 },
      { name: '50 statuses per payload', events: 500, perPayload: 50, concurrency: 4, pipeline: 1 },
    ],
  }[size as 'small'] ?? [];
const SECRET = 'bench-secret';
// Requests in flight for every scenario (`--concurrency N`), instead of each scenario's own.
const CONCURRENCY = process.argv.includes('--concurrency')
  ? Number(process.argv[process.argv.indexOf('--concurrency') + 1])
  : undefined;
// Requests pipelined per socket, for every scenario (`--pipeline N`), instead of each scenario's own:
// 4 for single-status payloads (the client's cost per request matters there), 1 for 50-status ones
// (a 10 KB body waits long behind others on its socket, and the client costs little per status).
const PIPELINE_DEPTH = process.argv.includes('--pipeline')
  ? Number(process.argv[process.argv.indexOf('--pipeline') + 1])
  : undefined;

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
    // Each process names its Postgres connections, so the bench can read their backends' CPU.
    // BENCH_CPU_PROF=dir: V8 CPU profiles of the API and the worker process, written when they end.
    const profiled = process.env.BENCH_CPU_PROF
      ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`]
      : [];
    const named = (role: string) => {
      const url = new URL(process.env.DATABASE_URL!);
      url.searchParams.set('application_name', `${schema}_${role}`);
      return { ...process.env, BENCH_PG_SCHEMA: schema, DATABASE_URL: url.toString() };
    };
    const worker = fork(self, ['--role', 'worker'], { env: named('worker'), execArgv: profiled });
    children.push(worker);
    const senderId = await ask<string>(worker, {}, 'senderId');
    const api = fork(self, ['--role', 'api'], { env: named('api'), execArgv: profiled });
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
      : runInboxLoop(runtime, { pollMs: 500 });
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
  for (const [index, listed] of SCENARIOS.entries()) {
    const scenario = CONCURRENCY ? { ...listed, concurrency: CONCURRENCY } : listed;
    const tag = `s${index}`;
    const bodies: string[] = [];
    for (let i = 0; i < scenario.events; i += scenario.perPayload)
      bodies.push(payload(tag, i, scenario.perPayload));
    const signed = bodies.map((body) => ({ body, signature: signWebhook(body, SECRET) }));
    const requests = signed.map(({ body, signature }) => signedRequest(target.url, body, signature));
    const loadAverage = readFileSync('/proc/loadavg', 'utf8').trim();
    const started = performance.now();
    const cpuStart = process.cpuUsage();
    const childCpuStart = Object.fromEntries(
      Object.entries(target.pids).map(([name, pid]) => [name, processCpuSeconds(pid)]),
    );
    const postgresStart = await postgresBackendsCpu();
    const { latencies, failures } = await sendAll(
      target.url,
      requests,
      scenario.concurrency,
      PIPELINE_DEPTH ?? scenario.pipeline,
    );
    const acked = performance.now() - started;
    const ackCpu = process.cpuUsage(cpuStart);
    const childCpu = Object.fromEntries(
      Object.entries(target.pids).map(([name, pid]) => [name, processCpuSeconds(pid) - childCpuStart[name]!]),
    );
    // Stored: every acknowledged status is in message_statuses.
    let stored = 0;
    while (!process.env.BENCH_NO_LOOP && stored < scenario.events) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      stored = await target.stored(`wamid.${tag}.`);
    }
    const all = performance.now() - started;
    const postgresCpu = postgresCpuSince(postgresStart, await postgresBackendsCpu());
    const loadAverageAtEnd = readFileSync('/proc/loadavg', 'utf8').trim();
    const workerCpu = target.pids.worker
      ? processCpuSeconds(target.pids.worker) - childCpuStart.worker!
      : undefined;
    latencies.sort((a, b) => a - b);
    const result = {
      scenario: scenario.name,
      events: scenario.events,
      payloads: bodies.length,
      concurrency: scenario.concurrency,
      pipeline: PIPELINE_DEPTH ?? scenario.pipeline,
      failures,
      ack_seconds: acked / 1000,
      events_acknowledged_per_second: Math.round(scenario.events / (acked / 1000)),
      payloads_acknowledged_per_second: Math.round(bodies.length / (acked / 1000)),
      stored_seconds: all / 1000,
      events_stored_per_second: Math.round(scenario.events / (all / 1000)),
      load_average_at_start: loadAverage,
      load_average_at_end: loadAverageAtEnd,
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
            // The PostgreSQL backends serving the API and the worker, until everything was stored.
            postgres_cpu_seconds: postgresCpu,
            cpu_us_per_payload: {
              api: Math.round((childCpu.api! * 1e6) / bodies.length),
              worker: Math.round((workerCpu! * 1e6) / bodies.length),
              postgres_for_api: Math.round((postgresCpu.api! * 1e6) / bodies.length),
              postgres_for_worker: Math.round((postgresCpu.worker! * 1e6) / bodies.length),
              load_generator: Math.round((ackCpu.user + ackCpu.system) / bodies.length),
            },
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
  await postgresAdmin?.end();
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
  writeFileSync(
    new URL(`./results/webhooks${production ? '-production' : ''}.json`, import.meta.url),
    JSON.stringify({ size, layout: production ? 'production' : 'embedded', results }, null, 2),
  );
}

let postgresAdmin: pg.Client | undefined;

/** CPU seconds of each PostgreSQL backend whose connection this run's processes named. */
async function postgresBackendsCpu(): Promise<Map<number, { role: string; seconds: number }>> {
  if (!production) return new Map();
  if (!postgresAdmin) {
    postgresAdmin = new pg.Client({ connectionString: process.env.DATABASE_URL });
    await postgresAdmin.connect();
  }
  const { rows } = await postgresAdmin.query<{ pid: number; role: string }>(
    'SELECT pid, substr(application_name, $2) AS role FROM pg_stat_activity WHERE starts_with(application_name, $1)',
    [`${schema}_`, schema.length + 2],
  );
  const cpu = new Map<number, { role: string; seconds: number }>();
  for (const { pid, role } of rows) {
    try {
      cpu.set(pid, { role, seconds: processCpuSeconds(pid) });
    } catch {
      // the backend ended meanwhile
    }
  }
  return cpu;
}

/** CPU used between two readings, per role; a backend that started in between counts from zero. */
function postgresCpuSince(
  start: Map<number, { role: string; seconds: number }>,
  end: Map<number, { role: string; seconds: number }>,
): Record<string, number> {
  const total: Record<string, number> = { api: 0, worker: 0 };
  for (const [pid, { role, seconds }] of end)
    total[role] = Math.round(((total[role] ?? 0) + seconds - (start.get(pid)?.seconds ?? 0)) * 100) / 100;
  return total;
}

/** A whole HTTP/1.1 request, built and signed before the clock starts. */
function signedRequest(url: string, body: string, signature: string): Buffer {
  const { host, pathname } = new URL(url);
  const bytes = Buffer.from(body);
  const head =
    `POST ${pathname} HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\n` +
    `Content-Length: ${bytes.length}\r\nX-Hub-Signature-256: ${signature}\r\n\r\n`;
  return Buffer.concat([Buffer.from(head), bytes]);
}

/**
 * The load generator: `concurrency` requests in flight over kept-alive sockets, `depth` pipelined on
 * each (HTTP/1.1 pipelining: the server answers in order). Each payload is still its own signed POST
 * with its own answer; its latency runs from writing its bytes to reading the end of its answer, so
 * time spent queued behind another request on the socket is counted. Requests written together go
 * out in one write, which is what makes this client cheaper than node:http.
 */
async function sendAll(
  url: string,
  requests: Buffer[],
  concurrency: number,
  depth: number,
): Promise<{ latencies: number[]; failures: number }> {
  const { hostname, port } = new URL(url);
  const latencies: number[] = [];
  let failures = 0;
  let next = 0;
  const sockets = Math.max(1, Math.round(concurrency / depth));
  await Promise.all(
    Array.from(
      { length: sockets },
      () =>
        new Promise<void>((resolve, reject) => {
          const socket = connect({ host: hostname, port: Number(port), noDelay: true });
          const sentAt: number[] = [];
          let buffered: Buffer = Buffer.alloc(0);
          const fill = () => {
            const batch: Buffer[] = [];
            const now = performance.now();
            while (sentAt.length < depth && next < requests.length) {
              batch.push(requests[next++]!);
              sentAt.push(now);
            }
            if (batch.length) socket.write(batch.length === 1 ? batch[0]! : Buffer.concat(batch));
            else if (!sentAt.length) {
              socket.end();
              resolve();
            }
          };
          socket.on('connect', fill);
          socket.on('error', reject);
          socket.on('data', (chunk: Buffer) => {
            buffered = buffered.length ? Buffer.concat([buffered, chunk]) : chunk;
            let answered = 0;
            for (;;) {
              const end = buffered.indexOf('\r\n\r\n');
              if (end < 0) break;
              const head = buffered.toString('latin1', 0, end);
              const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
              if (buffered.length < end + 4 + length) break;
              buffered = buffered.subarray(end + 4 + length);
              latencies.push(performance.now() - sentAt.shift()!);
              if (!head.startsWith('HTTP/1.1 200')) failures++;
              answered++;
            }
            if (answered) fill();
          });
        }),
    ),
  );
  return { latencies, failures };
}

// Children end with the bench, however it ends.
if (role !== 'bench') process.on('disconnect', () => process.exit(1));
if (role === 'worker') {
  // Owns chdb and the inbox loop; sets up the sender and answers count requests over IPC.
  const dataDir = mkdtempSync(join(tmpdir(), 'chorus-bench-webhooks-worker-'));
  const runtime = await open(dataDir);
  const sender = await setUp(runtime);
  const loop = runInboxLoop(runtime, { pollMs: 500 });
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
