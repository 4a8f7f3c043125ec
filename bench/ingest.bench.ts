// Ingest throughput: events per second over HTTP (NDJSON batches of 5,000, server on loopback) and
// CSV contacts per second through the streamed import, with the process's peak RSS sampled.
// `--size small` (default): 200k events, 50k CSV rows. `--size full`: 20M events, 1M CSV rows.
import {
  createReadStream,
  createWriteStream,
  mkdirSync,
  mkdtempSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { buildServer } from '../api/server.ts';
import { defineAttributes, upsertContacts } from '../engine/contacts/index.ts';
import { importContacts } from '../engine/imports/index.ts';
import { openRuntime } from '../engine/runtime.ts';
import { createApiKey, createWorkspace } from '../engine/workspaces.ts';

const args = process.argv.slice(2);
const size = args[args.indexOf('--size') + 1] === 'full' ? 'full' : 'small';
const EVENTS = size === 'full' ? 20_000_000 : 200_000;
const CSV_ROWS = size === 'full' ? 1_000_000 : 50_000;
const CONTACTS = size === 'full' ? 200_000 : 10_000;
const BATCH = 5_000;
const CONCURRENCY = 2;

const dataDir = mkdtempSync(join(tmpdir(), 'chorus-bench-'));
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
  for (let i = 0; i < CONTACTS; i += 5_000) {
    const inputs = Array.from({ length: Math.min(5_000, CONTACTS - i) }, (_, k) => ({ phone: phone(i + k) }));
    await upsertContacts(runtime, workspace, inputs);
  }

  // Events over HTTP.
  phase = 'events';
  const app = await buildServer(runtime, { logger: false });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const names = ['app_open', 'app_open', 'app_open', 'add_to_cart', 'purchase'];
  const base = Date.parse('2026-01-01T00:00:00Z');
  const batchBody = (b: number) => {
    const lines: string[] = [];
    for (let k = 0; k < BATCH; k++) {
      const n = b * BATCH + k;
      lines.push(
        JSON.stringify({
          id: `ev-${n}`,
          contact: { phone: phone(n % CONTACTS) },
          name: names[n % names.length],
          timestamp: new Date(base + n * 1_000).toISOString(),
          properties: n % 5 === 4 ? { amount: n % 1000, currency: 'INR' } : { platform: 'android' },
        }),
      );
    }
    return lines.join('\n');
  };
  const batches = Math.ceil(EVENTS / BATCH);
  let next = 0;
  let inserted = 0;
  const eventsStart = performance.now();
  const worker = async () => {
    while (next < batches) {
      const b = next++;
      const response = await fetch(`http://127.0.0.1:${port}/v1/events`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/x-ndjson' },
        body: batchBody(b),
      });
      const result = (await response.json()) as { inserted?: number };
      if (response.status !== 200)
        throw new Error(`batch ${b}: ${response.status} ${JSON.stringify(result).slice(0, 300)}`);
      inserted += result.inserted ?? 0;
      if (b % 20 === 0) process.stdout.write(`  events: ${inserted} inserted\n`);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const eventsSeconds = (performance.now() - eventsStart) / 1000;
  await app.close();
  const eventsPeak = peakRss;

  // CSV contacts through the streamed import.
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
  phase = 'csv';
  peakRss = 0;
  const csvBytes = statSync(csvPath).size;
  const csvStart = performance.now();
  const job = await importContacts(runtime, workspace, createReadStream(csvPath), {
    fileName: 'contacts.csv',
    bytesTotal: csvBytes,
    onProgress: (j) => {
      if (j.rows_processed % 100_000 < 5_000) process.stdout.write(`  csv: ${j.rows_processed} rows\n`);
    },
  });
  const csvSeconds = (performance.now() - csvStart) / 1000;
  const csvSamples = rssSamples.filter((s) => s.phase === 'csv').map((s) => s.rss_mb);

  const results = {
    size,
    machine: {
      cpus: cpus().length,
      memory_gb: Math.round(totalmem() / 2 ** 30),
      node: process.version,
      shared: true,
    },
    events: {
      sent: batches * BATCH,
      inserted,
      batch: BATCH,
      concurrency: CONCURRENCY,
      seconds: Math.round(eventsSeconds * 10) / 10,
      per_second: Math.round((batches * BATCH) / eventsSeconds),
      peak_rss_mb: Math.round(eventsPeak / 1048576),
    },
    csv: {
      rows: CSV_ROWS,
      bytes: csvBytes,
      imported: job.rows_imported,
      status: job.status,
      seconds: Math.round(csvSeconds * 10) / 10,
      per_second: Math.round(CSV_ROWS / csvSeconds),
      peak_rss_mb: Math.round(peakRss / 1048576),
      rss_first_quarter_mb: csvSamples.length
        ? Math.max(...csvSamples.slice(0, Math.ceil(csvSamples.length / 4)))
        : null,
      rss_last_quarter_mb: csvSamples.length
        ? Math.max(...csvSamples.slice(-Math.ceil(csvSamples.length / 4)))
        : null,
    },
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
