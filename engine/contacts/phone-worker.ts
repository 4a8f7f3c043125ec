// Worker thread for bulk phone normalization (see normalizePhones in phone-pool.ts).
import { parentPort } from 'node:worker_threads';
import { normalizePhone } from './phone.ts';

parentPort!.on('message', (job: { id: number; phones: string[]; region: string }) => {
  parentPort!.postMessage({ id: job.id, results: job.phones.map((p) => normalizePhone(p, job.region)) });
});
