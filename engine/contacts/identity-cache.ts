import type { Runtime } from '../runtime.ts';

/**
 * Phone / external id -> contact id, for the hot event path, which names the same contacts batch
 * after batch. Filled by the event path's lookups and the contacts it creates; an erase clears its
 * workspace, an identity that moves in an upsert is dropped. Entries expire after `IDENTITY_TTL_MS`, which bounds how long
 * another process's re-key or erase can go unseen in server mode.
 */
export const IDENTITY_TTL_MS = 60_000;
// About 150 bytes an entry: the cap keeps the cache near 75 MB.
const MAX_ENTRIES = 500_000;

interface Entry {
  contactId: string;
  expires: number;
}

const caches = new WeakMap<Runtime, Map<string, Entry>>();

function cacheOf(runtime: Runtime): Map<string, Entry> {
  let cache = caches.get(runtime);
  if (!cache) {
    cache = new Map();
    caches.set(runtime, cache);
  }
  return cache;
}

const keyOf = (workspaceId: string, kind: string, value: string) =>
  `${workspaceId}\u0000${kind}\u0000${value}`;

export function cachedIdentity(
  runtime: Runtime,
  workspaceId: string,
  kind: string,
  value: string,
  now = Date.now(),
): string | undefined {
  const cache = cacheOf(runtime);
  const key = keyOf(workspaceId, kind, value);
  const entry = cache.get(key);
  if (!entry) return undefined;
  if (entry.expires < now) {
    cache.delete(key);
    return undefined;
  }
  return entry.contactId;
}

export function rememberIdentity(
  runtime: Runtime,
  workspaceId: string,
  kind: string,
  value: string,
  contactId: string,
  now = Date.now(),
): void {
  const cache = cacheOf(runtime);
  // Insertion order is age order: past the cap, the oldest entries go first.
  if (cache.size >= MAX_ENTRIES) {
    let drop = MAX_ENTRIES / 10;
    for (const key of cache.keys()) {
      cache.delete(key);
      if (--drop <= 0) break;
    }
  }
  cache.set(keyOf(workspaceId, kind, value), { contactId, expires: now + IDENTITY_TTL_MS });
}

export function forgetIdentity(runtime: Runtime, workspaceId: string, kind: string, value: string): void {
  cacheOf(runtime).delete(keyOf(workspaceId, kind, value));
}

/** After an erase: nothing cached for the workspace survives. */
export function forgetWorkspaceIdentities(runtime: Runtime, workspaceId: string): void {
  const cache = cacheOf(runtime);
  const prefix = `${workspaceId}\u0000`;
  for (const key of cache.keys()) if (key.startsWith(prefix)) cache.delete(key);
}
