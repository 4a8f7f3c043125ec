// Dispatch throughput against the Cloud API simulator over HTTP: achieved vs configured rate at 80/s
// and 1,000/s on one sender, four senders at 1,000/s each, and the time from launch to first send.
// The simulator runs in its own process (`chorus sim`). On PostgreSQL (DATABASE_URL) this process is
// the API/pump and BENCH_WORKERS (2) worker processes send, the production layout; PGlite lives in
// one process, so there the workers run here. Rates come from the simulator's acceptance timestamps.
// `--size small` (default) sends a few seconds' worth; `--size full` ~30 s per sender.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { groundTruthLookup } from '../engine/campaigns/dispatch.ts';
import { launchCampaign } from '../engine/campaigns/launch.ts';
import { createCampaign, getCampaign } from '../engine/campaigns/model.ts';
import { newId } from '../engine/ids.ts';
import { openRuntime } from '../engine/runtime.ts';
import { createWorkspace } from '../engine/workspaces.ts';
import { startBoss } from '../jobs/boss.ts';
import { startDispatcher } from '../jobs/dispatch/index.ts';
import type { SimLogEntry } from '../simulator/log.ts';
import { processCpuSeconds, startSimulatorProcess } from './sim-process.ts';

const args = process.argv.slice(2);
const size = args[args.indexOf('--size') + 1] === 'full' ? 'full' : 'small';
/** Seconds of sending per sender. */
const seconds = Number(process.env.BENCH_SECONDS ?? (size === 'full' ? 30 : 5));
const localConcurrency = Number(process.env.BENCH_LOCAL_CONCURRENCY ?? 128);

const dataDir = mkdtempSync(join(tmpdir(), 'chorus-bench-dispatch-'));
const server = Boolean(process.env.DATABASE_URL);
// Chorus's own PostgreSQL sessions (this process and the workers, which inherit it) carry this name,
// so the CPU of their server backends can be read from /proc (pg-boss's sessions name themselves).
const appName = `chorus-bench-${process.pid}`;
process.env.PGAPPNAME = appName;
// Pooled connections stay open for the whole run, so no backend's CPU is lost with its exit.
process.env.CHORUS_PG_IDLE_MS = '600000';
const schema = server ? `bench_${process.pid}` : 'chorus';
const runtime = await openRuntime({
  config: {
    dataDir,
    databaseUrl: process.env.DATABASE_URL || undefined,
    postgresSchema: schema,
    logLevel: 'warn',
  },
  log: pino({ level: 'warn' }),
});
const sim = await startSimulatorProcess([
  '--seed',
  'bench',
  '--tier',
  'TIER_UNLIMITED',
  '--lenient-templates',
  '--not-on-whatsapp',
  '0',
  '--stopped-marketing',
  '0',
  '--marketing-per-user',
  '1000',
  '--log-limit',
  '3000000',
]);
const simCall = async (method: string, path: string, body?: unknown) => {
  const response = await fetch(`${sim.url}${path}`, {
    method,
    headers: body ? { 'content-type': 'application/json' } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  if (!response.ok) throw new Error(`simulator ${method} ${path}: HTTP ${response.status}`);
  return response.json();
};

const boss = await startBoss(runtime);
const workerCount = server ? Number(process.env.BENCH_WORKERS ?? 2) : 0;
// On PostgreSQL this process only pumps (enqueues due sends as jobs); the workers claim and send.
const dispatcher = await startDispatcher(runtime, boss, {
  pumpIntervalMs: 200,
  localConcurrency,
  lookup: groundTruthLookup(sim.url),
  work: !server,
});
const workers: ChildProcess[] = [];
for (let i = 0; i < workerCount; i++) {
  const profile = process.env.WORKER_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.WORKER_PROF}`] : [];
  const worker = fileURLToPath(new URL('../test/helpers/dispatch-worker.ts', import.meta.url));
  const child = spawn(process.execPath, [...profile, worker], {
    env: {
      ...process.env,
      CHORUS_DATA_DIR: join(dataDir, `worker${i}`),
      CHORUS_POSTGRES_SCHEMA: schema,
      SIM_URL: sim.url,
      // Production leases and timeouts (the worker's defaults are the crash test's short ones).
      LEASE_MS: '30000',
      REQUEST_TIMEOUT_MS: '10000',
      STALE_MS: '20000',
      LOCAL_CONCURRENCY: String(localConcurrency),
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => chunk.toString().includes('ready') && resolve());
    child.once('exit', (code) => reject(new Error(`worker exited with ${code}`)));
  });
  workers.push(child);
}
const ws = (await createWorkspace(runtime.pg, { name: 'Bench' })).id;

/** CPU seconds of the PostgreSQL backends serving this benchmark's Chorus sessions, by pid. */
const backendCpu = async (): Promise<Map<number, number>> => {
  if (!server) return new Map();
  const { rows } = await runtime.pg.query<{ pid: number }>(
    'SELECT pid FROM pg_stat_activity WHERE application_name = $1',
    [appName],
  );
  return new Map(rows.map((r) => [r.pid, processCpuSeconds(r.pid)]));
};
/** CPU seconds of every process named postgres on this machine, by pid (other users' work included). */
const allPostgresCpu = (): Map<number, number> => {
  const cpu = new Map<number, number>();
  if (!server) return cpu;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, 'utf8').trim() !== 'postgres') continue;
    } catch {
      continue;
    }
    const seconds = processCpuSeconds(Number(entry));
    if (Number.isFinite(seconds)) cpu.set(Number(entry), seconds);
  }
  return cpu;
};
/** CPU used since `before` by the processes in `after` (one started meanwhile counts from its start). */
const cpuDelta = (before: Map<number, number>, after: Map<number, number>) =>
  Number([...after].reduce((sum, [pid, s]) => sum + s - (before.get(pid) ?? 0), 0).toFixed(2));
const cpuSnapshot = async () => ({
  bench: process.cpuUsage(),
  simulatorMicros: await sim.cpuMicros(),
  workers: workers.map((w) => processCpuSeconds(w.pid!)),
  backends: await backendCpu(),
  allPostgres: allPostgresCpu(),
});
const cpuSince = async (before: Awaited<ReturnType<typeof cpuSnapshot>>) => {
  const after = await cpuSnapshot();
  const bench = process.cpuUsage(before.bench);
  return {
    bench_process: Number(((bench.user + bench.system) / 1e6).toFixed(2)),
    simulator: Number(((after.simulatorMicros - before.simulatorMicros) / 1e6).toFixed(2)),
    workers: Number(after.workers.reduce((sum, s, i) => sum + s - before.workers[i]!, 0).toFixed(2)),
    // Processes started during the scenario count from their start; one that exited meanwhile (an
    // autovacuum worker) is missed. Chorus's pools keep their connections (CHORUS_PG_IDLE_MS above).
    postgres_chorus_backends: cpuDelta(before.backends, after.backends),
    postgres_all_processes: cpuDelta(before.allPostgres, after.allPostgres),
  };
};

let phoneSeq = 0;
let numberSeq = 0;
async function scenario(name: string, rate: number, senders: number) {
  const perSender = Math.round(rate * seconds);
  const campaigns: string[] = [];
  const numberIds: string[] = [];
  const seedStarted = Date.now();
  for (let s = 0; s < senders; s++) {
    const id = newId('snd', 12);
    const numberId = `${700_000 + numberSeq++}`;
    await simCall('POST', `/_sim/numbers/${numberId}`, { throughputMps: rate, portfolioId: `pf_${name}` });
    numberIds.push(numberId);
    await runtime.pg.query(
      `INSERT INTO senders (id, workspace_id, name, base_url, phone_number_id, portfolio_id, access_token, throughput_mps, tier)
       VALUES ($1, $2, $3, $4, $5, $6, 'token', $7, 'TIER_UNLIMITED')`,
      [id, ws, `${name} ${s}`, sim.url, numberId, `pf_${name}`, rate],
    );
    const tag = `${name}_${s}`;
    const now = new Date().toISOString();
    const contacts = Array.from({ length: perSender }, () => {
      const i = phoneSeq++;
      return { id: `c${i}`, phone: `+9197${String(10_000_000 + i).slice(-8)}`, tag };
    });
    for (let i = 0; i < contacts.length; i += 20_000)
      await runtime.ch.insert(
        'contacts',
        contacts.slice(i, i + 20_000).map((c) => ({
          workspace_id: ws,
          contact_id: c.id,
          phone: c.phone,
          country: 'IN',
          timezone: 'Asia/Kolkata',
          tags: [c.tag],
          created_at: now,
          updated_at: now,
          version: 1,
        })),
      );
    for (let i = 0; i < contacts.length; i += 5_000) {
      const chunk = contacts.slice(i, i + 5_000);
      await runtime.pg.query(
        `INSERT INTO consent_current (workspace_id, contact_id, channel, purpose, status, recorded_at, record_id)
         SELECT $1, unnest($2::text[]), 'whatsapp', 'marketing', 'opted_in', now(), 0`,
        [ws, chunk.map((c) => c.id)],
      );
    }
    const campaign = await createCampaign(
      runtime.pg,
      ws,
      {
        name: `${name} ${s}`,
        sender_id: id,
        audience: { type: 'tags', tags: [tag] },
        content: { template: { name: 'promo', language: 'en_US', category: 'MARKETING' } },
        settings: { quiet_hours: null, frequency_cap: null },
      },
      'bench',
    );
    campaigns.push(campaign.id);
  }
  const seedMs = Date.now() - seedStarted;
  const catalog = {
    find: async () => ({
      name: 'promo',
      language: 'en_US',
      status: 'APPROVED',
      category: 'MARKETING' as const,
    }),
  };
  const loadBefore = loadavg();
  const cpuBefore = await cpuSnapshot();
  const launchedAt = Date.now();
  const launchReturned: number[] = [];
  for (const id of campaigns) {
    await launchCampaign(runtime, ws, id, 'bench', { catalog });
    launchReturned.push(Date.now());
    // As the API's launch handler does: this process's pump runs at once instead of at its next tick.
    void dispatcher.kick();
  }
  await dispatcher.kick();
  let lastReport = Date.now();
  for (const id of campaigns) {
    for (;;) {
      const state = (await getCampaign(runtime.pg, ws, id))?.state;
      if (state === 'completed' || state === 'paused') break;
      await new Promise((r) => setTimeout(r, 100));
      if (process.env.BENCH_VERBOSE && Date.now() - lastReport > 5_000) {
        lastReport = Date.now();
        const { rows } = await runtime.pg.query(
          'SELECT state, count(*) AS n FROM campaign_sends WHERE campaign_id = $1 GROUP BY state',
          [id],
        );
        process.stderr.write(`${name}: ${JSON.stringify(rows)}\n`);
      }
    }
  }
  const wallSeconds = (Date.now() - launchedAt) / 1000;
  const cpu = await cpuSince(cpuBefore);
  const loadAfter = loadavg();
  const ours = new Set(numberIds);
  const log = async (kind: string) =>
    ((await simCall('GET', `/_sim/log?kind=${kind}`)) as { entries: SimLogEntry[] }).entries.filter((e) =>
      ours.has(e.phoneNumberId ?? ''),
    );
  const accepted = await log('send_accepted');
  const rejected = await log('send_rejected');
  const times = accepted.map((e) => e.atMs).sort((a, b) => a - b);
  const span = (times.at(-1)! - times[0]!) / 1000;
  // Steady rate: the middle 80% of sends, so start-up and the tail do not count.
  const lo = Math.floor(times.length * 0.1);
  const hi = Math.floor(times.length * 0.9);
  const steady = (hi - lo) / ((times[hi]! - times[lo]!) / 1000);
  // Per sender too: the goal is each sender within 2% of its own configured rate.
  const perSenderSteady = numberIds.map((numberId) => {
    const own = accepted
      .filter((e) => e.phoneNumberId === numberId)
      .map((e) => e.atMs)
      .sort((a, b) => a - b);
    const a = Math.floor(own.length * 0.1);
    const b = Math.floor(own.length * 0.9);
    return Number(((b - a) / ((own[b]! - own[a]!) / 1000)).toFixed(1));
  });
  // Where the time went when a rate falls short: the longest pauses between acceptances of a sender.
  const gaps = numberIds.flatMap((numberId) => {
    const own = accepted.filter((e) => e.phoneNumberId === numberId).map((e) => e.atMs);
    own.sort((a, b) => a - b);
    return own.slice(1).map((t, i) => t - own[i]!);
  });
  gaps.sort((a, b) => b - a);
  const firstByNumber = numberIds.map(
    (numberId, i) => accepted.find((e) => e.phoneNumberId === numberId)!.atMs - launchReturned[i]!,
  );
  const configured = rate * senders;
  const result = {
    scenario: name,
    postgres: runtime.pg.mode,
    worker_processes: workerCount || 'in the bench process',
    senders,
    configured_per_second: configured,
    messages: accepted.length,
    ledger_contacts: perSender * senders,
    span_seconds: Number(span.toFixed(2)),
    achieved_per_second: Number((accepted.length / span).toFixed(1)),
    steady_per_second: Number(steady.toFixed(1)),
    steady_share_of_configured: Number((steady / configured).toFixed(4)),
    steady_per_sender: perSenderSteady,
    launch_ms: launchReturned.map((t, i) => t - (i ? launchReturned[i - 1]! : launchedAt)),
    first_send_after_launch_ms: firstByNumber,
    longest_gaps_ms: gaps.slice(0, 5),
    rejected_130429: rejected.filter((e) => e.code === 130429).length,
    rejected_other: rejected.filter((e) => e.code !== 130429).length,
    seed_ms: seedMs,
    wall_seconds: Number(wallSeconds.toFixed(2)),
    cpu_seconds: cpu,
    cpu_ms_per_message: Object.fromEntries(
      Object.entries(cpu).map(([k, v]) => [k, Number(((1000 * v) / accepted.length).toFixed(3))]),
    ),
    load_average: { before: loadBefore, after: loadAfter },
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
  return result;
}

const only = process.env.BENCH_SCENARIO?.split(',');
const plan: [string, number, number][] = [
  ['one_sender_80', 80, 1],
  ['one_sender_1000', 1000, 1],
  ['four_senders_1000', 1000, 4],
];
const results = [];
try {
  for (const [name, rate, senders] of plan)
    if (!only || only.includes(name)) results.push(await scenario(name, rate, senders));
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
  writeFileSync(
    new URL(`./results/dispatch-${runtime.pg.mode}.json`, import.meta.url),
    JSON.stringify(
      {
        size,
        seconds_per_sender: seconds,
        postgres: runtime.pg.mode,
        machine: { cpus: cpus().length, node: process.version },
        headroom: process.env.CHORUS_DISPATCH_HEADROOM ?? 'default',
        at: new Date().toISOString(),
        results,
      },
      null,
      2,
    ),
  );
} finally {
  for (const worker of workers) worker.kill('SIGTERM');
  await Promise.all(
    workers.map(
      (w) => new Promise((resolve) => (w.exitCode !== null ? resolve(null) : w.once('exit', resolve))),
    ),
  );
  await dispatcher.stop();
  await boss.stop({ graceful: false });
  if (runtime.pg.mode === 'server')
    await runtime.pg
      .exec(`DROP SCHEMA IF EXISTS ${schema} CASCADE; DROP SCHEMA IF EXISTS ${schema}_boss CASCADE`)
      .catch(() => {});
  await runtime.close();
  sim.stop();
  rmSync(dataDir, { recursive: true, force: true });
}
