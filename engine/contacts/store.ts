import { type ClickHouseStore, stringSet, tsv } from '../stores/clickhouse.ts';
import type { AttributeType, AttributeValue } from './attributes.ts';
import type { ConsentStatus, Contact } from './types.ts';

/** A contacts row as ClickHouse returns it (JSONEachRow). */
export interface ContactRow {
  workspace_id: string;
  contact_id: string;
  external_id: string;
  phone: string;
  country: string;
  language: string;
  timezone: string;
  attr_strings: Record<string, string>;
  attr_numbers: Record<string, number>;
  attr_booleans: Record<string, boolean>;
  attr_dates: Record<string, string>;
  attr_datetimes: Record<string, string>;
  attr_lists: Record<string, string[]>;
  tags: string[];
  lists: string[];
  consent: Record<string, string>;
  created_at: string;
  last_seen_at: string | null;
  updated_at: string;
  version: string | number;
}

const MAP_OF: Record<AttributeType, keyof ContactRow> = {
  string: 'attr_strings',
  number: 'attr_numbers',
  boolean: 'attr_booleans',
  date: 'attr_dates',
  datetime: 'attr_datetimes',
  string_list: 'attr_lists',
};

export const CONTACT_COLUMNS = `contact_id, workspace_id, external_id, phone, country, language, timezone,
  attr_strings, attr_numbers, attr_booleans, attr_dates, attr_datetimes, attr_lists, tags, lists, consent,
  created_at, last_seen_at, updated_at, version`;

/** ClickHouse DateTime64 text ('YYYY-MM-DD hh:mm:ss.sss', UTC) to ISO 8601. */
export function fromChTime(value: string): string {
  return value.includes('T') ? value : `${value.replace(' ', 'T')}${value.length === 19 ? '.000' : ''}Z`;
}

/** ISO 8601 (UTC) to the form ClickHouse reads back unchanged. */
export function toChTime(iso: string): string {
  // A bulk upsert converts the same instant (its `now`) twice per row: the last answer is kept.
  if (iso === lastChTime[0]) return lastChTime[1];
  const out = new Date(iso).toISOString().replace('T', ' ').replace('Z', '');
  lastChTime = [iso, out];
  return out;
}
let lastChTime: [string, string] = ['', ''];

export function rowToContact(row: ContactRow): Contact {
  const attributes: Contact['attributes'] = {};
  for (const [name, value] of Object.entries(row.attr_strings)) attributes[name] = value;
  for (const [name, value] of Object.entries(row.attr_numbers)) attributes[name] = Number(value);
  for (const [name, value] of Object.entries(row.attr_booleans)) attributes[name] = Boolean(value);
  for (const [name, value] of Object.entries(row.attr_dates)) attributes[name] = value;
  for (const [name, value] of Object.entries(row.attr_datetimes)) attributes[name] = fromChTime(value);
  for (const [name, value] of Object.entries(row.attr_lists)) attributes[name] = value;
  return {
    id: row.contact_id,
    workspace_id: row.workspace_id,
    external_id: row.external_id || null,
    phone: row.phone || null,
    country: row.country || null,
    language: row.language || null,
    timezone: row.timezone || null,
    attributes: sortKeys(attributes),
    tags: row.tags,
    lists: row.lists,
    consent: sortKeys(row.consent) as Record<string, ConsentStatus>,
    created_at: fromChTime(row.created_at),
    last_seen_at: row.last_seen_at ? fromChTime(row.last_seen_at) : null,
    updated_at: fromChTime(row.updated_at),
  };
}

/** The row for a contact version; attributes go to the map of their declared type. */
export function contactToRow(
  contact: Contact,
  types: Map<string, AttributeType>,
  version: bigint,
): Record<string, unknown> {
  const maps: Record<string, Record<string, unknown>> = {
    attr_strings: {},
    attr_numbers: {},
    attr_booleans: {},
    attr_dates: {},
    attr_datetimes: {},
    attr_lists: {},
  };
  for (const [name, value] of Object.entries(contact.attributes)) {
    const type = types.get(name) ?? inferType(value);
    maps[MAP_OF[type] as string]![name] = type === 'datetime' ? toChTime(value as string) : value;
  }
  return {
    workspace_id: contact.workspace_id,
    contact_id: contact.id,
    external_id: contact.external_id ?? '',
    phone: contact.phone ?? '',
    country: contact.country ?? '',
    language: contact.language ?? '',
    timezone: contact.timezone ?? '',
    ...maps,
    tags: contact.tags,
    lists: contact.lists,
    consent: contact.consent,
    created_at: toChTime(contact.created_at),
    last_seen_at: contact.last_seen_at ? toChTime(contact.last_seen_at) : null,
    updated_at: toChTime(contact.updated_at),
    version: version.toString(),
    deleted: 0,
  };
}

/** The contacts columns in the order `contactToTsv` writes them. */
export const CONTACT_TSV_COLUMNS = [
  'workspace_id',
  'contact_id',
  'external_id',
  'phone',
  'country',
  'language',
  'timezone',
  'attr_strings',
  'attr_numbers',
  'attr_booleans',
  'attr_dates',
  'attr_datetimes',
  'attr_lists',
  'tags',
  'lists',
  'consent',
  'created_at',
  'last_seen_at',
  'updated_at',
  'version',
  'deleted',
  'input_hash',
] as const;

const QUOTED_SPECIAL = /[\\'\t\n\r\0]/;
const QUOTED_ESCAPES: Record<string, string> = {
  '\\': '\\\\',
  "'": "\\'",
  '\t': '\\t',
  '\n': '\\n',
  '\r': '\\r',
  '\0': '\\0',
};
/**
 * A string inside a TabSeparated Array or Map: single-quoted, with backslash escapes, as ClickHouse
 * writes and reads them. The field is read as it stands (no second level of row escaping), so every
 * tab and line break inside is escaped here.
 */
export function quotedText(value: string): string {
  return QUOTED_SPECIAL.test(value)
    ? `'${value.replace(/[\\'\t\n\r\0]/g, (c) => QUOTED_ESCAPES[c]!)}'`
    : `'${value}'`;
}
const textArray = (values: readonly string[]) => `[${values.map(quotedText).join(',')}]`;
function mapLiteral(entries: [string, string][]): string {
  let out = '{';
  for (let i = 0; i < entries.length; i++)
    out += `${i ? ',' : ''}${quotedText(entries[i]![0])}:${entries[i]![1]}`;
  return `${out}}`;
}

/**
 * `contactToRow` as one TabSeparated line (columns `CONTACT_TSV_COLUMNS`): ClickHouse parses it
 * several times faster than JSONEachRow with six Map columns, and building it allocates less.
 */
export function contactToTsv(
  contact: Contact,
  types: Map<string, AttributeType>,
  version: bigint,
  inputHash = '',
): string {
  const maps: Record<string, [string, string][]> = {
    attr_strings: [],
    attr_numbers: [],
    attr_booleans: [],
    attr_dates: [],
    attr_datetimes: [],
    attr_lists: [],
  };
  for (const name in contact.attributes) {
    const value = contact.attributes[name]!;
    const type = types.get(name) ?? inferType(value);
    const literal =
      type === 'number'
        ? String(value)
        : type === 'boolean'
          ? value
            ? 'true'
            : 'false'
          : type === 'string_list'
            ? textArray(value as string[])
            : quotedText(type === 'datetime' ? toChTime(value as string) : String(value));
    maps[MAP_OF[type] as string]!.push([name, literal]);
  }
  const consent: [string, string][] = [];
  for (const key in contact.consent) consent.push([key, quotedText(contact.consent[key]!)]);
  return `${tsv(contact.workspace_id)}\t${tsv(contact.id)}\t${tsv(contact.external_id ?? '')}\t${tsv(contact.phone ?? '')}\t${tsv(contact.country ?? '')}\t${tsv(contact.language ?? '')}\t${tsv(contact.timezone ?? '')}\t${mapLiteral(maps.attr_strings!)}\t${mapLiteral(maps.attr_numbers!)}\t${mapLiteral(maps.attr_booleans!)}\t${mapLiteral(maps.attr_dates!)}\t${mapLiteral(maps.attr_datetimes!)}\t${mapLiteral(maps.attr_lists!)}\t${textArray(contact.tags)}\t${textArray(contact.lists)}\t${mapLiteral(consent)}\t${toChTime(contact.created_at)}\t${contact.last_seen_at ? toChTime(contact.last_seen_at) : '\\N'}\t${toChTime(contact.updated_at)}\t${version}\t0\t${inputHash}\n`;
}

// Used only for an attribute whose declaration is gone; keeps its value in a map that fits it.
function inferType(value: AttributeValue): AttributeType {
  if (Array.isArray(value)) return 'string_list';
  if (typeof value === 'number') return 'number';
  if (typeof value === 'boolean') return 'boolean';
  return 'string';
}

export function sortKeys<T>(record: Record<string, T>): Record<string, T> {
  return Object.fromEntries(Object.entries(record).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** The latest version of each contact (deleted ones excluded), one query for the whole batch. */
export async function loadContactRows(
  ch: ClickHouseStore,
  workspaceId: string,
  ids: readonly string[],
): Promise<Map<string, ContactRow>> {
  const out = new Map<string, ContactRow>();
  if (ids.length === 0) return out;
  const set = stringSet('ids', new Set(ids));
  const rows = await ch.rows<ContactRow>(
    `SELECT ${CONTACT_COLUMNS} FROM ${ch.database}.contacts FINAL
      WHERE workspace_id = {ws:String} AND contact_id IN ${set.sql}`,
    { ws: workspaceId, ...set.params },
  );
  for (const row of rows) out.set(row.contact_id, row);
  return out;
}

/**
 * The `input_hash` of each contact's latest version (erased ones absent), reading two narrow columns
 * without FINAL: what a re-import compares with before reading any full row.
 */
export async function latestInputHashes(
  ch: ClickHouseStore,
  workspaceId: string,
  ids: readonly string[],
): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  if (ids.length === 0) return out;
  const set = stringSet('ids', new Set(ids));
  const rows = await ch.rows<{ contact_id: string; input_hash: string }>(
    `SELECT contact_id, argMax(input_hash, version) AS input_hash FROM ${ch.database}.contacts
      WHERE workspace_id = {ws:String} AND contact_id IN ${set.sql}
      GROUP BY contact_id HAVING argMax(deleted, version) = 0`,
    { ws: workspaceId, ...set.params },
  );
  for (const row of rows) out.set(row.contact_id, row.input_hash);
  return out;
}

/**
 * Which of `ids` have any stored row (any version, erased ones included), reading one narrow column
 * without FINAL. A bulk upsert's candidate ids are hashes spread over the whole table, so a FINAL
 * read of all columns for them touches nearly every granule however few exist; this check is a
 * fraction of that, and the full read then runs only for the ids found.
 */
export async function storedContactIds(
  ch: ClickHouseStore,
  workspaceId: string,
  ids: readonly string[],
): Promise<string[]> {
  if (ids.length === 0) return [];
  const set = stringSet('ids', new Set(ids));
  const rows = await ch.rows<{ contact_id: string }>(
    `SELECT DISTINCT contact_id FROM ${ch.database}.contacts
      WHERE workspace_id = {ws:String} AND contact_id IN ${set.sql}`,
    { ws: workspaceId, ...set.params },
  );
  return rows.map((r) => r.contact_id);
}

let lastVersion = 0n;

/**
 * A version for a new contact row: microseconds since the epoch, strictly increasing in this
 * process, so the latest write wins in ReplacingMergeTree and two writes in one millisecond differ.
 */
export function nextVersion(): bigint {
  const now = BigInt(Date.now()) * 1000n;
  lastVersion = now > lastVersion ? now : lastVersion + 1n;
  return lastVersion;
}
