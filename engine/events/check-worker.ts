// Worker thread that parses and checks NDJSON event batches (see check-pool.ts).
import { parentPort } from 'node:worker_threads';
import { serveWorkerRequests } from '../worker-pool.ts';
import { type CheckContext, checkNdjson, packBatch } from './check.ts';

serveWorkerRequests(parentPort!, ({ text, context }: { text: string; context: CheckContext }) =>
  packBatch(checkNdjson(text, context)),
);
