// Worker thread for bulk phone normalization (see phone-pool.ts).
import { parentPort } from 'node:worker_threads';
import { serveWorkerRequests } from '../worker-pool.ts';
import { normalizePhone } from './phone.ts';

serveWorkerRequests(parentPort!, ({ phones, region }: { phones: string[]; region: string }) =>
  phones.map((p) => normalizePhone(p, region)),
);
