import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { normalizePhone, type PhoneResult } from './phone.ts';

/**
 * Bulk E.164 normalization on worker threads. Parsing one number against the full metadata costs
 * 15-20 µs, which alone caps a bulk import at ~50,000 rows/s on the thread that also parses the CSV
 * and talks to the stores; spread over workers it runs beside that work. Small lists stay inline.
 */
const INLINE_BELOW = 500;
const CHUNK = 1_000;

interface PoolWorker {
  worker: Worker;
  busy: number;
}

let pool: PoolWorker[] | undefined;
let nextJob = 0;
const waiting = new Map<
  number,
  { resolve: (r: PhoneResult[]) => void; reject: (e: unknown) => void; owner: PoolWorker }
>();

function workers(): PoolWorker[] {
  if (pool) return pool;
  const size = Math.max(1, Math.min(4, availableParallelism() - 1));
  pool = Array.from({ length: size }, () => {
    const entry: PoolWorker = { worker: new Worker(new URL('./phone-worker.ts', import.meta.url)), busy: 0 };
    entry.worker.unref(); // an idle pool never holds the process open
    entry.worker.on('message', (message: { id: number; results: PhoneResult[] }) => {
      const job = waiting.get(message.id);
      if (!job) return;
      waiting.delete(message.id);
      if (--entry.busy === 0) entry.worker.unref();
      job.resolve(message.results);
    });
    entry.worker.on('error', (error) => {
      for (const [id, job] of waiting)
        if (job.owner === entry) {
          waiting.delete(id);
          job.reject(error);
        }
      pool = undefined; // the next call starts a fresh pool
    });
    return entry;
  });
  return pool;
}

function run(entry: PoolWorker, phones: string[], region: string): Promise<PhoneResult[]> {
  return new Promise((resolve, reject) => {
    const id = nextJob++;
    waiting.set(id, { resolve, reject, owner: entry });
    if (entry.busy++ === 0) entry.worker.ref(); // a pending answer keeps the process alive
    entry.worker.postMessage({ id, phones, region });
  });
}

/** `normalizePhone` for each number, in order; results are identical to calling it inline. */
export async function normalizePhones(phones: readonly string[], region: string): Promise<PhoneResult[]> {
  if (phones.length < INLINE_BELOW) return phones.map((p) => normalizePhone(p, region));
  const all = workers();
  const chunks: Promise<PhoneResult[]>[] = [];
  for (let i = 0, k = 0; i < phones.length; i += CHUNK, k++)
    chunks.push(run(all[k % all.length]!, phones.slice(i, i + CHUNK), region));
  return (await Promise.all(chunks)).flat();
}
