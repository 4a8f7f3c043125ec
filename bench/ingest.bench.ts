// Ingest throughput: events per second over HTTP (NDJSON batches of 5,000, server on loopback, the
// client in a process of its own: bench/ingest-load.ts) and CSV contacts per second through the
// streamed import, with the process's peak RSS sampled and CPU time per phase.
// `--size small` (default): 200k events, 50k CSV rows. `--size full`: 20M events, 1M CSV rows.
// `--only events|csv` runs one phase; the CSV file is imported twice (`--no-reimport`: once); `--concurrency N` sets the requests in flight (default 8, as in BENCHMARKS.md's method);
// `--events N` overrides the event count; `--max-seconds S` stops starting event batches after S seconds (the run reports what it sent).
// `BENCH_DATA_DIR` puts the run's stores under that folder instead of the system temp dir (deleted after the run).

import { spawn } from 'node:child_process';
import {
  createReadStream,
  createWriteStream,
  mkdirSync,
  mkdtempSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import pino from 'pino';
import { buildServer } from '../api/server.ts';
import { defineAttributes, upsertContacts } from '../engine/contacts/index.ts';
import { importContacts } from '../engine/imports/index.ts';
import { openRuntime } from '../engine/runtime.ts';
import { createApiKey, createWorkspace } from '../engine/workspaces.ts';
import { threadCpu } from './thread-cpu.ts';

const args = process.argv.slice(2);
const size = args[args.indexOf('--size') + 1] === 'full' ? 'full' : 'small';
const EVENTS_DEFAULT = size === 'full' ? 20_000_000 : 200_000;
const CSV_ROWS = size === 'full' ? 1_000_000 : 50_000;
const CONTACTS = size === 'full' ? 200_000 : 10_000;
const BATCH = 5_000;
const option = (name: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const CONCURRENCY = Number(option('--concurrency') ?? 8);
const only = option('--only');
const EVENTS = Number(option('--events') ?? EVENTS_DEFAULT);
const cpuSeconds = (since: NodeJS.CpuUsage) => {
  const used = process.cpuUsage(since);
  return Math.round((used.user + used.system) / 1e4) / 100;
};
const load = () => loadavg().map((l) => Math.round(l * 100) / 100);
const perThreadMicros = (before: Map<string, number>, items: number) => {
  const out: Record<string, number> = {};
  for (const [name, seconds] of threadCpu()) {
    const used = seconds - (before.get(name) ?? 0);
    if (used > 0.01) out[name] = Math.round((used * 1e7) / items) / 10;
  }
  return out;
};

const dataDir = mkdtempSync(join(process.env.BENCH_DATA_DIR ?? tmpdir(), 'chorus-bench-'));
const runtime = await openRuntime({ config: { dataDir, logLevel: 'warn' }, log: pino({ level: 'warn' }) });

let peakRss = 0;
const rssSamples: { t: number; rss_mb: number; phase: string }[] = [];
let phase = 'setup';
const started = Date.now();
const sampler = setInterval(() => {
  const rss = process.memoryUsage.rss();
  peakRss = Math.max(peakRss, rss);
  rssSamples.push({ t: (Date.now() - started) / 1000, rss_mb: Math.round(rss / 1048576), phase });
}, 250);

try {
  const workspace = await createWorkspace(runtime.pg, { name: 'Bench', defaultRegion: 'IN' });
  const { key } = await createApiKey(runtime.pg, workspace.id);
  await defineAttributes(runtime.pg, workspace.id, [
    { name: 'plan', type: 'string' },
    { name: 'age', type: 'number' },
  ]);
  const phone = (i: number) => `+9198${String(i).padStart(8, '0')}`;
  // The contacts the events name (the CSV phase imports its own).
  for (let i = 0; only !== 'csv' && i < CONTACTS; i += 5_000) {
    const inputs = Array.from({ length: Math.min(5_000, CONTACTS - i) }, (_, k) => ({ phone: phone(i + k) }));
    await upsertContacts(runtime, workspace, inputs);
  }

  // Events over HTTP, from a separate client process.
  let events: Record<string, unknown> | undefined;
  if (only !== 'csv') {
    phase = 'events';
    const app = await buildServer(runtime, { logger: false });
    await app.listen({ port: 0, host: '127.0.0.1' });
    const address = app.server.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    const loadBefore = load();
    const cpuStart = process.cpuUsage();
    const threadsStart = threadCpu();
    const eventsStart = performance.now();
    const client = spawn(
      process.execPath,
      [
        new URL('./ingest-load.ts', import.meta.url).pathname,
        `http://127.0.0.1:${port}`,
        key,
        String(EVENTS),
        String(BATCH),
        String(CONCURRENCY),
        String(CONTACTS),
        ...(option('--max-seconds') ? [String(option('--max-seconds'))] : []),
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let output = '';
    client.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    const code = await new Promise<number | null>((resolve) => client.on('close', resolve));
    const eventsSeconds = (performance.now() - eventsStart) / 1000;
    const serverCpu = cpuSeconds(cpuStart);
    const serverThreads = perThreadMicros(threadsStart, EVENTS);
    await app.close();
    if (code !== 0) throw new Error(`the load generator failed (${code}): ${output}`);
    const result = JSON.parse(output) as { sent: number; inserted: number; client_cpu_seconds: number };
    const stored = await runtime.ch.rows<{ n: string }>(
      `SELECT count() AS n FROM ${runtime.ch.database}.events WHERE workspace_id = {ws:String}`,
      { ws: workspace.id },
    );
    events = {
      ...result,
      stored: Number(stored[0]?.n ?? 0),
      batch: BATCH,
      concurrency: CONCURRENCY,
      seconds: Math.round(eventsSeconds * 10) / 10,
      per_second: Math.round(result.sent / eventsSeconds),
      server_cpu_seconds: serverCpu,
      server_cpu_us_per_event: Math.round((serverCpu * 1e6 * 100) / result.sent) / 100,
      server_cpu_us_per_event_by_thread: serverThreads,
      total_cpu_us_per_event:
        Math.round(((serverCpu + result.client_cpu_seconds) * 1e6 * 100) / result.sent) / 100,
      peak_rss_mb: Math.round(peakRss / 1048576),
      loadavg_before: loadBefore,
      loadavg_after: load(),
    };
  }

  // CSV contacts through the streamed import.
  let csv: Record<string, unknown> | undefined;
  if (only !== 'events') {
    phase = 'csv-write';
    const csvPath = join(dataDir, 'contacts.csv');
    await new Promise<void>((resolve, reject) => {
      const out = createWriteStream(csvPath);
      out.on('error', reject);
      out.write('phone,external_id,plan,age,tags,consent.whatsapp.marketing\n');
      let i = 0;
      const write = () => {
        let ok = true;
        while (i < CSV_ROWS && ok) {
          ok = out.write(
            `+9197${String(i).padStart(8, '0')},csv-${i},${i % 3 ? 'free' : 'pro'},${18 + (i % 60)},t${i % 7},${i % 10 ? 'yes' : 'no'}\n`,
          );
          i++;
        }
        if (i < CSV_ROWS) out.once('drain', write);
        else out.end(resolve);
      };
      write();
    });
    // The same file twice: the second import must change nothing (and should cost far less).
    const importOnce = async (label: string) => {
      phase = label;
      peakRss = 0;
      const csvBytes = statSync(csvPath).size;
      const loadBefore = load();
      const cpuStart = process.cpuUsage();
      const threadsStart = threadCpu();
      // How long the thread that would serve API requests is held up while the import runs.
      const lag = monitorEventLoopDelay({ resolution: 10 });
      lag.enable();
      const csvStart = performance.now();
      const job = await importContacts(runtime, workspace, createReadStream(csvPath), {
        fileName: 'contacts.csv',
        bytesTotal: csvBytes,
        onProgress: (j) => {
          if (j.rows_processed % 100_000 < 5_000)
            process.stdout.write(`  ${label}: ${j.rows_processed} rows\n`);
        },
      });
      const csvSeconds = (performance.now() - csvStart) / 1000;
      const csvCpu = cpuSeconds(cpuStart);
      const csvThreads = perThreadMicros(threadsStart, CSV_ROWS);
      lag.disable();
      const csvSamples = rssSamples.filter((s) => s.phase === label).map((s) => s.rss_mb);
      return {
        rows: CSV_ROWS,
        bytes: csvBytes,
        imported: job.rows_imported,
        rejected: job.rows_rejected,
        created: job.contacts_created,
        updated: job.contacts_updated,
        unchanged: job.contacts_unchanged,
        status: job.status,
        seconds: Math.round(csvSeconds * 10) / 10,
        per_second: Math.round(CSV_ROWS / csvSeconds),
        cpu_seconds: csvCpu,
        cpu_us_per_row: Math.round((csvCpu * 1e6 * 100) / CSV_ROWS) / 100,
        cpu_us_per_row_by_thread: csvThreads,
        peak_rss_mb: Math.round(peakRss / 1048576),
        event_loop_lag_ms: { p99: Math.round(lag.percentile(99) / 1e6), max: Math.round(lag.max / 1e6) },
        rss_first_quarter_mb: csvSamples.length
          ? Math.max(...csvSamples.slice(0, Math.ceil(csvSamples.length / 4)))
          : null,
        rss_last_quarter_mb: csvSamples.length
          ? Math.max(...csvSamples.slice(-Math.ceil(csvSamples.length / 4)))
          : null,
        loadavg_before: loadBefore,
        loadavg_after: load(),
      };
    };
    csv = await importOnce('csv');
    if (!args.includes('--no-reimport')) csv.reimport = await importOnce('csv-again');
  }

  const results = {
    size,
    machine: {
      cpus: cpus().length,
      memory_gb: Math.round(totalmem() / 2 ** 30),
      node: process.version,
      shared: true,
    },
    events,
    csv,
  };
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
  writeFileSync(
    new URL('./results/ingest.json', import.meta.url),
    `${JSON.stringify({ ...results, rss_samples: rssSamples }, null, 2)}\n`,
  );
  process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
} finally {
  clearInterval(sampler);
  await runtime.close();
  rmSync(dataDir, { recursive: true, force: true });
}
