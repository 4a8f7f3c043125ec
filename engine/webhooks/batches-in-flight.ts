import type { Runtime } from '../runtime.ts';

// Inbox batches this process is applying. A GDPR erase waits for them (engine/contacts/erase.ts): on
// PGlite a batch is leased by a timestamp, not a row lock, so a batch that read its payloads before
// the erase marked them could otherwise write about the person after the erase's deletes. (On a
// PostgreSQL server the batch's row locks make the erase's marking wait for it, in any process.)
const inFlight = new WeakMap<Runtime, Set<Promise<unknown>>>();

/** Runs `batch`, known as in flight until it settles. */
export function trackBatch<T>(runtime: Runtime, batch: Promise<T>): Promise<T> {
  let set = inFlight.get(runtime);
  if (!set) {
    set = new Set();
    inFlight.set(runtime, set);
  }
  const running = set;
  running.add(batch);
  const done = () => running.delete(batch);
  batch.then(done, done);
  return batch;
}

/** Settles once every batch in flight now has ended (whether it succeeded or not). */
export async function batchesSettled(runtime: Runtime): Promise<void> {
  await Promise.allSettled([...(inFlight.get(runtime) ?? [])]);
}
