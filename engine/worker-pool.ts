import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';

/**
 * A small pool of worker threads running one module (`worker-pool` protocol: `{ id, request }` in,
 * `{ id, result }` or `{ id, error }` out; see `serveWorkerRequests`). Idle workers are unref'd, so
 * the pool never holds a process open; a pending request does. A worker that dies fails its
 * requests and the next request starts a fresh pool.
 */
export class WorkerPool<Request, Result> {
  private readonly url: URL;
  private readonly size: number;
  private workers: { worker: Worker; busy: number }[] | undefined;
  private nextId = 0;
  private turn = 0;
  private readonly waiting = new Map<
    number,
    { resolve: (r: Result) => void; reject: (e: unknown) => void; owner: Worker }
  >();

  constructor(url: URL, size = Math.max(1, Math.min(4, availableParallelism() - 1))) {
    this.url = url;
    this.size = size;
  }

  run(request: Request): Promise<Result> {
    const workers = this.start();
    const entry = workers[this.turn++ % workers.length]!;
    return new Promise((resolve, reject) => {
      const id = this.nextId++;
      this.waiting.set(id, { resolve, reject, owner: entry.worker });
      if (entry.busy++ === 0) entry.worker.ref();
      entry.worker.postMessage({ id, request });
    });
  }

  private start() {
    if (this.workers) return this.workers;
    const workers = Array.from({ length: this.size }, () => {
      const entry = { worker: new Worker(this.url), busy: 0 };
      entry.worker.unref();
      entry.worker.on('message', (message: { id: number; result?: Result; error?: unknown }) => {
        const job = this.waiting.get(message.id);
        if (!job) return;
        this.waiting.delete(message.id);
        if (--entry.busy === 0) entry.worker.unref();
        if ('error' in message) job.reject(message.error);
        else job.resolve(message.result as Result);
      });
      entry.worker.on('error', (error) => {
        for (const [id, job] of this.waiting)
          if (job.owner === entry.worker) {
            this.waiting.delete(id);
            job.reject(error);
          }
        this.workers = undefined;
      });
      return entry;
    });
    this.workers = workers;
    return workers;
  }
}

/**
 * The worker side: answers each request with `handle`'s result, or with the error it threw (as a
 * plain object, since class instances lose their prototype crossing threads).
 */
export function serveWorkerRequests<Request, Result>(
  port: {
    on(event: 'message', fn: (m: { id: number; request: Request }) => void): void;
    postMessage(m: unknown): void;
  },
  handle: (request: Request) => Result,
): void {
  port.on('message', ({ id, request }) => {
    try {
      port.postMessage({ id, result: handle(request) });
    } catch (error) {
      const e = error as Error & { errors?: unknown };
      port.postMessage({ id, error: { name: e.name, message: e.message, errors: e.errors } });
    }
  });
}
