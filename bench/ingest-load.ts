// Load generator for bench/ingest: POSTs NDJSON batches of events to a Chorus API, as a client
// process of its own (so its CPU is not counted as the server's), and prints its figures as JSON.
// Usage: node bench/ingest-load.ts URL KEY EVENTS BATCH CONCURRENCY CONTACTS [MAX_SECONDS]
// With MAX_SECONDS, no batch is started after that time (to fit a run in the bench lock's slot).
import { request } from 'node:http';

const [url, key, eventsArg, batchArg, concurrencyArg, contactsArg, maxSecondsArg] = process.argv.slice(2);
const MAX_MS = maxSecondsArg ? Number(maxSecondsArg) * 1000 : Number.POSITIVE_INFINITY;
const EVENTS = Number(eventsArg);
const BATCH = Number(batchArg);
const CONCURRENCY = Number(concurrencyArg);
const CONTACTS = Number(contactsArg);
const names = ['app_open', 'app_open', 'app_open', 'add_to_cart', 'purchase'];
const base = Date.parse('2026-01-01T00:00:00Z');
const phone = (i: number) => `+9198${String(i).padStart(8, '0')}`;

// Built as text (what a client's serializer produces) so the generator stays cheap next to the server.
function batchBody(b: number): Buffer {
  let body = '';
  for (let k = 0; k < BATCH; k++) {
    const n = b * BATCH + k;
    const properties = n % 5 === 4 ? `{"amount":${n % 1000},"currency":"INR"}` : '{"platform":"android"}';
    body += `{"id":"ev-${n}","contact":{"phone":"${phone(n % CONTACTS)}"},"name":"${names[n % names.length]}","timestamp":"${new Date(base + n * 1_000).toISOString()}","properties":${properties}}\n`;
  }
  return Buffer.from(body);
}

const target = new URL('/v1/events', url);
const agent = new (await import('node:http')).Agent({ keepAlive: true, maxSockets: CONCURRENCY });
function post(body: Buffer): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      target,
      {
        method: 'POST',
        agent,
        headers: {
          authorization: `Bearer ${key}`,
          'content-type': 'application/x-ndjson',
          'content-length': body.length,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const batches = Math.ceil(EVENTS / BATCH);
let next = 0;
let sent = 0;
let inserted = 0;
let lastReport = 0;
const latencies: number[] = [];
const cpuStart = process.cpuUsage();
const started = performance.now();
const worker = async () => {
  while (next < batches && performance.now() - started < MAX_MS) {
    const b = next++;
    sent += BATCH;
    const body = batchBody(b);
    const postedAt = performance.now();
    const { status, text } = await post(body);
    latencies.push(performance.now() - postedAt);
    if (status !== 200) throw new Error(`batch ${b}: ${status} ${text.slice(0, 300)}`);
    inserted += (JSON.parse(text) as { inserted: number }).inserted;
    if (inserted - lastReport >= 1_000_000 || (EVENTS < 1_000_000 && b % 20 === 0)) {
      lastReport = inserted;
      process.stderr.write(
        `  events: ${inserted} inserted, ${((performance.now() - started) / 1000).toFixed(1)} s\n`,
      );
    }
  }
};
await Promise.all(Array.from({ length: CONCURRENCY }, worker));
const seconds = (performance.now() - started) / 1000;
const cpu = process.cpuUsage(cpuStart);
latencies.sort((a, b) => a - b);
process.stdout.write(
  `${JSON.stringify({
    sent,
    stopped_by_time_cap: sent < batches * BATCH,
    inserted,
    seconds,
    client_cpu_seconds: (cpu.user + cpu.system) / 1e6,
    latency_ms_p50: Math.round(latencies[Math.floor(latencies.length / 2)] ?? 0),
    latency_ms_p99: Math.round(latencies[Math.floor(latencies.length * 0.99)] ?? 0),
  })}\n`,
);
agent.destroy();
