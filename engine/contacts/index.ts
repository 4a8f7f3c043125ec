import type { Runtime } from '../runtime.ts';
import { stringSet } from '../stores/clickhouse.ts';
import { type ContactRow, fromChTime, loadContactRows, nextVersion, rowToContact } from './store.ts';
import type { Contact } from './types.ts';

export {
  ATTRIBUTE_TYPES,
  type AttributeDefinition,
  type AttributeSchema,
  type AttributeType,
  defineAttributes,
  getAttributeSchema,
  listAttributes,
} from './attributes.ts';
export { type EraseReport, eraseContact } from './erase.ts';
export { canonicalZone, countryTimeZone, normalizePhone } from './phone.ts';
export type { Channel, ConsentInput, ConsentStatus, Contact, ContactInput, Purpose } from './types.ts';
export { registerNames, type UpsertOptions, type UpsertResult, upsertContacts } from './upsert.ts';

/** Latest events per contact, from the contact_activity view over events. */
async function lastEvents(
  runtime: Runtime,
  workspaceId: string,
  ids: string[],
): Promise<Map<string, string>> {
  const { ch } = runtime;
  const rows = await ch.rows<{ contact_id: string; last_event_at: string }>(
    `SELECT contact_id, max(last_event_at) AS last_event_at FROM ${ch.database}.contact_activity
      WHERE workspace_id = {ws:String} AND contact_id IN {ids:Array(String)} GROUP BY contact_id`,
    { ws: workspaceId, ids },
  );
  return new Map(rows.map((r) => [r.contact_id, fromChTime(r.last_event_at)]));
}

function withActivity(contact: Contact, lastEvent: string | undefined): Contact {
  if (lastEvent && (!contact.last_seen_at || lastEvent > contact.last_seen_at))
    return { ...contact, last_seen_at: lastEvent };
  return contact;
}

/** Contacts by id, in the order asked; unknown or erased ids are left out. */
export async function getContacts(
  runtime: Runtime,
  workspaceId: string,
  ids: readonly string[],
): Promise<Contact[]> {
  const unique = [...new Set(ids)];
  if (unique.length === 0) return [];
  const [rows, activity] = await Promise.all([
    loadContactRows(runtime.ch, workspaceId, unique),
    lastEvents(runtime, workspaceId, unique),
  ]);
  return unique.flatMap((id) => {
    const row = rows.get(id);
    return row ? [withActivity(rowToContact(row), activity.get(id))] : [];
  });
}

export async function getContact(
  runtime: Runtime,
  workspaceId: string,
  id: string,
): Promise<Contact | undefined> {
  return (await getContacts(runtime, workspaceId, [id]))[0];
}

async function findIds(runtime: Runtime, workspaceId: string, kind: string, values: readonly string[]) {
  const { ch } = runtime;
  const out = new Map<string, string>();
  if (values.length === 0) return out;
  const set = stringSet('values', new Set(values));
  const rows = await ch.rows<{ value: string; contact_id: string }>(
    `SELECT value, contact_id FROM ${ch.database}.contact_identities FINAL
      WHERE workspace_id = {ws:String} AND kind = {kind:String} AND value IN ${set.sql}`,
    { ws: workspaceId, kind, ...set.params },
  );
  for (const row of rows) out.set(row.value, row.contact_id);
  return out;
}

/** E.164 phone → contact id, for the phones that belong to a contact (one query for the batch). */
export function findContactIdsByPhone(runtime: Runtime, workspaceId: string, phones: readonly string[]) {
  return findIds(runtime, workspaceId, 'phone', phones);
}

export function findContactIdsByExternalId(
  runtime: Runtime,
  workspaceId: string,
  externalIds: readonly string[],
) {
  return findIds(runtime, workspaceId, 'external_id', externalIds);
}

/** Which of these ids name a live contact. */
export async function existingContactIds(
  runtime: Runtime,
  workspaceId: string,
  ids: readonly string[],
): Promise<Set<string>> {
  const { ch } = runtime;
  if (ids.length === 0) return new Set();
  const set = stringSet('ids', new Set(ids));
  const rows = await ch.rows<{ contact_id: string }>(
    `SELECT contact_id FROM ${ch.database}.contacts FINAL
      WHERE workspace_id = {ws:String} AND contact_id IN ${set.sql}`,
    { ws: workspaceId, ...set.params },
  );
  return new Set(rows.map((r) => r.contact_id));
}

/** A page of contacts ordered by id; pass the last id of a page as `after` for the next one. */
export async function listContacts(
  runtime: Runtime,
  workspaceId: string,
  options: { limit?: number; after?: string; tag?: string; list?: string } = {},
): Promise<Contact[]> {
  const { ch } = runtime;
  const limit = Math.min(Math.max(options.limit ?? 50, 1), 1000);
  const rows = await ch.rows<{ contact_id: string }>(
    `SELECT contact_id FROM ${ch.database}.contacts FINAL
      WHERE workspace_id = {ws:String} AND contact_id > {after:String}
        AND ({tag:String} = '' OR has(tags, {tag:String}))
        AND ({list:String} = '' OR has(lists, {list:String}))
      ORDER BY contact_id LIMIT {limit:UInt32}`,
    { ws: workspaceId, after: options.after ?? '', tag: options.tag ?? '', list: options.list ?? '', limit },
  );
  return getContacts(
    runtime,
    workspaceId,
    rows.map((r) => r.contact_id),
  );
}

export async function countContacts(runtime: Runtime, workspaceId: string): Promise<number> {
  const { ch } = runtime;
  const rows = await ch.rows<{ n: string }>(
    `SELECT count() AS n FROM ${ch.database}.contacts FINAL WHERE workspace_id = {ws:String}`,
    { ws: workspaceId },
  );
  return Number(rows[0]?.n ?? 0);
}

/**
 * Adds and removes tags and lists on many contacts at once: one read, one appended version per
 * contact that actually changes. Returns how many contacts changed.
 */
export async function updateMemberships(
  runtime: Runtime,
  workspaceId: string,
  contactIds: readonly string[],
  change: { addTags?: string[]; removeTags?: string[]; addLists?: string[]; removeLists?: string[] },
): Promise<{ changed: number; missing: string[] }> {
  const rows = await loadContactRows(runtime.ch, workspaceId, contactIds);
  const missing = [...new Set(contactIds)].filter((id) => !rows.has(id));
  const apply = (current: string[], add: string[] = [], remove: string[] = []) =>
    [...new Set([...current, ...add])].filter((x) => !remove.includes(x)).sort();
  const version = nextVersion();
  const now = new Date().toISOString().replace('T', ' ').replace('Z', '');
  const changed: Record<string, unknown>[] = [];
  for (const row of rows.values()) {
    const tags = apply(row.tags, change.addTags, change.removeTags);
    const lists = apply(row.lists, change.addLists, change.removeLists);
    if (
      JSON.stringify(tags) === JSON.stringify(row.tags) &&
      JSON.stringify(lists) === JSON.stringify(row.lists)
    )
      continue;
    changed.push(appendedVersion(row, { tags, lists, updated_at: now }, version));
  }
  await runtime.ch.insert('contacts', changed);
  return { changed: changed.length, missing };
}

/** A stored row with some columns replaced, as a new version (no schema needed: maps keep their types). */
export function appendedVersion(
  row: ContactRow,
  patch: Partial<ContactRow>,
  version: bigint,
): Record<string, unknown> {
  // Not written by a bulk upsert's input: no input digest (see sql/clickhouse/0112).
  return { ...row, ...patch, version: version.toString(), deleted: 0, input_hash: '' };
}
