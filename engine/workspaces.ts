import { timingSafeEqual } from 'node:crypto';
import { isSupportedCountry } from 'libphonenumber-js';
import { newId, sha256Hex } from './ids.ts';
import type { Sql } from './stores/postgres.ts';

export interface Workspace {
  id: string;
  name: string;
  default_region: string;
  timezone: string;
  created_at: string;
}

export interface CreatedKey {
  id: string;
  workspace_id: string;
  name: string;
  /** The secret; shown once and never stored. */
  key: string;
}

export class WorkspaceError extends Error {}

export async function createWorkspace(
  sql: Sql,
  input: { name: string; defaultRegion?: string; timezone?: string; id?: string },
): Promise<Workspace> {
  const region = (input.defaultRegion ?? 'IN').toUpperCase();
  // A region is valid when libphonenumber knows its numbering plan.
  if (!isSupportedCountry(region)) {
    throw new WorkspaceError(`unknown default region ${region}`);
  }
  const timezone = input.timezone ?? 'UTC';
  if (!isValidTimeZone(timezone)) throw new WorkspaceError(`unknown time zone ${timezone}`);
  const { rows } = await sql.query<Workspace>(
    `INSERT INTO workspaces (id, name, default_region, timezone) VALUES ($1, $2, $3, $4)
     RETURNING id, name, default_region, timezone, created_at`,
    [input.id ?? newId('ws', 16), input.name, region, timezone],
  );
  return rows[0]!;
}

export async function getWorkspace(sql: Sql, id: string): Promise<Workspace | undefined> {
  const { rows } = await sql.query<Workspace>(
    'SELECT id, name, default_region, timezone, created_at FROM workspaces WHERE id = $1',
    [id],
  );
  return rows[0];
}

export async function listWorkspaces(sql: Sql): Promise<Workspace[]> {
  const { rows } = await sql.query<Workspace>(
    'SELECT id, name, default_region, timezone, created_at FROM workspaces ORDER BY created_at',
  );
  return rows;
}

export async function createApiKey(sql: Sql, workspaceId: string, name = 'default'): Promise<CreatedKey> {
  if (!(await getWorkspace(sql, workspaceId))) throw new WorkspaceError(`no workspace ${workspaceId}`);
  const id = newId('key', 12);
  const key = `chorus_${newId('sk', 32).slice(3)}`;
  await sql.query(
    'INSERT INTO api_keys (id, workspace_id, name, prefix, key_hash) VALUES ($1, $2, $3, $4, $5)',
    [id, workspaceId, name, key.slice(0, 12), sha256Hex(key)],
  );
  return { id, workspace_id: workspaceId, name, key };
}

export async function revokeApiKey(sql: Sql, workspaceId: string, keyId: string): Promise<boolean> {
  const { rowCount } = await sql.query(
    'UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND workspace_id = $2 AND revoked_at IS NULL',
    [keyId, workspaceId],
  );
  return rowCount > 0;
}

/** Resolves a bearer key to its workspace; undefined when unknown or revoked. */
export async function authenticateKey(sql: Sql, key: string): Promise<Workspace | undefined> {
  if (!key.startsWith('chorus_') || key.length > 200) return undefined;
  const hash = sha256Hex(key);
  const { rows } = await sql.query<Workspace & { key_hash: string }>(
    `SELECT w.id, w.name, w.default_region, w.timezone, w.created_at, k.key_hash
       FROM api_keys k JOIN workspaces w ON w.id = k.workspace_id
      WHERE k.key_hash = $1 AND k.revoked_at IS NULL`,
    [hash],
  );
  const row = rows[0];
  // The lookup is by hash; compare again in constant time so timing says nothing about near misses.
  if (!row || !timingSafeEqual(Buffer.from(row.key_hash), Buffer.from(hash))) return undefined;
  const { key_hash: _, ...workspace } = row;
  return workspace;
}

// Building an Intl.DateTimeFormat costs ~0.3 ms; bulk upserts ask about the same few zones.
const zoneValidity = new Map<string, boolean>();

export function isValidTimeZone(zone: string): boolean {
  const known = zoneValidity.get(zone);
  if (known !== undefined) return known;
  let valid: boolean;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    valid = zone.length > 0;
  } catch {
    valid = false;
  }
  if (zoneValidity.size < 10_000) zoneValidity.set(zone, valid);
  return valid;
}
