import { ValidationError } from '../validation.ts';
import { WorkerPool } from '../worker-pool.ts';
import { type CheckContext, type CheckedBatch, type PackedBatch, unpackBatch } from './check.ts';

let pool: WorkerPool<{ text: string; context: CheckContext }, PackedBatch> | undefined;

/** `checkNdjson` on a worker thread; a refused batch throws the same ValidationError. */
export async function checkOnWorker(text: string, context: CheckContext): Promise<CheckedBatch> {
  pool ??= new WorkerPool(new URL('./check-worker.ts', import.meta.url));
  try {
    return unpackBatch(await pool.run({ text, context }));
  } catch (error) {
    const e = error as { name?: string; message?: string; errors?: ValidationError['errors'] };
    if (e?.name === 'ValidationError') throw new ValidationError(e.message ?? 'invalid', e.errors ?? []);
    throw error;
  }
}
