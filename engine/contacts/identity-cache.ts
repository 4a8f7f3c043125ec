import type { Runtime } from '../runtime.ts';

/**
 * Phone / external id -> contact id, for the hot event path, which names the same contacts batch
 * after batch. Filled by the event path's lookups and the contacts it creates; an erase clears its
 * workspace, an identity that moves in an upsert is dropped. Entries expire after `IDENTITY_TTL_MS`,
 * which bounds how long another process's re-key or erase can go unseen in server mode.
 */
export const IDENTITY_TTL_MS = 60_000;
// About 150 bytes an entry: the cap keeps the cache near 75 MB.
const MAX_ENTRIES = 500_000;

interface Entry {
  contactId: string;
  expires: number;
}

// Runtime -> workspace -> kind -> value: keyed by the value itself, so a lookup builds no string.
type Cache = { size: number; workspaces: Map<string, Map<string, Map<string, Entry>>> };
const caches = new WeakMap<Runtime, Cache>();

function kindMap(runtime: Runtime, workspaceId: string, kind: string, create: boolean) {
  let cache = caches.get(runtime);
  if (!cache) {
    if (!create) return undefined;
    cache = { size: 0, workspaces: new Map() };
    caches.set(runtime, cache);
  }
  let kinds = cache.workspaces.get(workspaceId);
  if (!kinds) {
    if (!create) return undefined;
    kinds = new Map();
    cache.workspaces.set(workspaceId, kinds);
  }
  let values = kinds.get(kind);
  if (!values && create) {
    values = new Map();
    kinds.set(kind, values);
  }
  return values && { cache, values };
}

export function cachedIdentity(
  runtime: Runtime,
  workspaceId: string,
  kind: string,
  value: string,
  now = Date.now(),
): string | undefined {
  const found = kindMap(runtime, workspaceId, kind, false);
  const entry = found?.values.get(value);
  if (!entry) return undefined;
  if (entry.expires < now) {
    found!.values.delete(value);
    found!.cache.size--;
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
  const existing = caches.get(runtime);
  // Past the cap everything goes: cheaper than tracking age, and the next batches refill it.
  if (existing && existing.size >= MAX_ENTRIES) {
    existing.workspaces.clear();
    existing.size = 0;
  }
  const { cache, values } = kindMap(runtime, workspaceId, kind, true)!;
  if (!values.has(value)) cache.size++;
  values.set(value, { contactId, expires: now + IDENTITY_TTL_MS });
}

export function forgetIdentity(runtime: Runtime, workspaceId: string, kind: string, value: string): void {
  const found = kindMap(runtime, workspaceId, kind, false);
  if (found?.values.delete(value)) found.cache.size--;
}

/** After an erase: nothing cached for the workspace survives. */
export function forgetWorkspaceIdentities(runtime: Runtime, workspaceId: string): void {
  const cache = caches.get(runtime);
  const kinds = cache?.workspaces.get(workspaceId);
  if (!cache || !kinds) return;
  for (const values of kinds.values()) cache.size -= values.size;
  cache.workspaces.delete(workspaceId);
}
