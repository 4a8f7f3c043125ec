import {
  existingContactIds,
  findContactIdsByExternalId,
  findContactIdsByPhone,
  upsertContacts,
} from '../contacts/index.ts';
import { normalizePhone } from '../contacts/phone.ts';
import { stableId } from '../ids.ts';
import type { Runtime } from '../runtime.ts';
import { type FieldIssue, pointer, ValidationError } from '../validation.ts';
import type { Workspace } from '../workspaces.ts';

/** Largest batch POST /v1/events and `ingestEvents` accept (documented in the API). */
export const MAX_EVENT_BATCH = 10_000;

export interface EventInput {
  /** Idempotency key: an event whose id was already ingested is ignored. Derived from the content when absent. */
  id?: string;
  contact: { id?: string; phone?: string; external_id?: string };
  name: string;
  /** ISO 8601 with a zone offset (or Z). */
  timestamp: string;
  properties?: Record<string, unknown>;
}

export interface IngestResult {
  received: number;
  inserted: number;
  /** Items whose id was already ingested, or repeated within the batch. */
  duplicates: number;
  /** Contacts created for a phone or external_id not seen before. */
  contacts_created: number;
}

const EVENT_NAME = /^[\p{L}\p{N}_][\p{L}\p{N}_ .:/-]{0,127}$/u;
const EVENT_ID = /^[\x21-\x7e]{1,200}$/;
const PROPERTY = /^[\p{L}\p{N}_][\p{L}\p{N}_ .:/-]{0,127}$/u;
const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})$/i;
const MIN_TIME = Date.UTC(2000, 0, 1);
const MAX_PROPERTIES_BYTES = 32 * 1024;

interface Checked {
  index: number;
  eventId: string;
  name: string;
  ts: number;
  properties: string;
  types: [string, 'string' | 'number' | 'boolean'][];
  ref: { kind: 'id' | 'phone' | 'external_id'; value: string };
}

// Parsing a phone with full metadata costs tens of microseconds; batches repeat the same contacts.
const phoneMemo = new Map<string, string | { reason: string }>();
function memoPhone(raw: string, region: string): string | { reason: string } {
  const key = `${region}|${raw}`;
  let hit = phoneMemo.get(key);
  if (hit === undefined) {
    const result = normalizePhone(raw, region);
    hit = result.ok ? result.e164 : { reason: result.reason };
    if (phoneMemo.size > 200_000) phoneMemo.clear();
    phoneMemo.set(key, hit);
  }
  return hit;
}

function checkItem(
  raw: unknown,
  index: number,
  path: string,
  region: string,
  now: number,
  workspaceId: string,
  issues: FieldIssue[],
): Checked | undefined {
  const at = `${path}${pointer(index)}`;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    issues.push({ path: at, message: 'must be an event object' });
    return undefined;
  }
  const item = raw as Record<string, unknown>;
  const before = issues.length;
  for (const key of Object.keys(item))
    if (!['id', 'contact', 'name', 'timestamp', 'properties'].includes(key))
      issues.push({ path: `${at}${pointer(key)}`, message: 'is not a known field' });
  const name = item.name;
  if (typeof name !== 'string' || !EVENT_NAME.test(name))
    issues.push({
      path: `${at}/name`,
      message: 'must be an event name of 1 to 128 letters, digits, spaces or _ . : / -',
    });
  let ts = Number.NaN;
  if (typeof item.timestamp !== 'string' || !TIMESTAMP.test(item.timestamp))
    issues.push({
      path: `${at}/timestamp`,
      message: 'must be an ISO 8601 date-time with a zone, e.g. 2026-03-01T10:00:00Z',
    });
  else {
    ts = Date.parse(item.timestamp);
    if (Number.isNaN(ts)) issues.push({ path: `${at}/timestamp`, message: 'is not a real date-time' });
    else if (ts < MIN_TIME) issues.push({ path: `${at}/timestamp`, message: 'is before 2000-01-01' });
    else if (ts > now + 86_400_000)
      issues.push({ path: `${at}/timestamp`, message: 'is more than a day in the future' });
  }
  if (item.id !== undefined && (typeof item.id !== 'string' || !EVENT_ID.test(item.id)))
    issues.push({ path: `${at}/id`, message: 'must be 1 to 200 printable ASCII characters' });
  let properties = '{}';
  const types: Checked['types'] = [];
  if (item.properties !== undefined) {
    const props = item.properties;
    if (typeof props !== 'object' || props === null || Array.isArray(props))
      issues.push({ path: `${at}/properties`, message: 'must be an object' });
    else {
      for (const [key, value] of Object.entries(props)) {
        if (!PROPERTY.test(key))
          issues.push({ path: `${at}/properties${pointer(key)}`, message: 'is not a valid property name' });
        else if (typeof value === 'string' || typeof value === 'boolean')
          types.push([key, typeof value as 'string' | 'boolean']);
        else if (typeof value === 'number') {
          if (Number.isFinite(value)) types.push([key, 'number']);
        }
      }
      properties = JSON.stringify(props);
      if (properties.length > MAX_PROPERTIES_BYTES)
        issues.push({
          path: `${at}/properties`,
          message: `is larger than ${MAX_PROPERTIES_BYTES} bytes of JSON`,
        });
    }
  }
  let ref: Checked['ref'] | undefined;
  const contact = item.contact as Record<string, unknown> | undefined;
  if (typeof contact !== 'object' || contact === null || Array.isArray(contact)) {
    issues.push({
      path: `${at}/contact`,
      message: 'must name the contact: {"id"}, {"phone"} or {"external_id"}',
    });
  } else {
    const keys = Object.keys(contact);
    const value = contact[keys[0] ?? ''];
    if (keys.length !== 1 || !['id', 'phone', 'external_id'].includes(keys[0]!))
      issues.push({ path: `${at}/contact`, message: 'must have exactly one of id, phone, external_id' });
    else if (typeof value !== 'string' || value.length === 0 || value.length > 255)
      issues.push({ path: `${at}/contact/${keys[0]}`, message: 'must be text of 1 to 255 characters' });
    else if (keys[0] === 'phone') {
      const phone = memoPhone(value, region);
      if (typeof phone === 'string') ref = { kind: 'phone', value: phone };
      else
        issues.push({
          path: `${at}/contact/phone`,
          message: `${JSON.stringify(value.slice(0, 40))} ${phone.reason}`,
          code: 'invalid_phone',
        });
    } else ref = { kind: keys[0] as 'id' | 'external_id', value };
  }
  if (issues.length > before || !ref) return undefined;
  const eventId =
    (item.id as string | undefined) ??
    stableId('ev', workspaceId, ref.kind, ref.value, name as string, String(ts), properties);
  return { index, eventId, name: name as string, ts, properties, types, ref };
}

/**
 * Ingests a batch of events, all or nothing: one bad item rejects the batch with a path per problem
 * (`/body/3/timestamp`) and nothing is written. Ids already ingested (found through the bloom
 * index on event_id) and ids repeated in the batch are skipped. Events naming an unknown phone or
 * external_id create that contact; an unknown contact id is an error.
 */
export async function ingestEvents(
  runtime: Runtime,
  workspace: Pick<Workspace, 'id' | 'default_region'>,
  items: unknown[],
  options: { path?: string; now?: Date } = {},
): Promise<IngestResult> {
  const path = options.path ?? '/body';
  if (items.length > MAX_EVENT_BATCH)
    throw new ValidationError('batch too large', [
      { path, message: `has ${items.length} events; send at most ${MAX_EVENT_BATCH} per request` },
    ]);
  const now = (options.now ?? new Date()).getTime();
  const issues: FieldIssue[] = [];
  const checked: Checked[] = [];
  for (let i = 0; i < items.length; i++) {
    const c = checkItem(items[i], i, path, workspace.default_region, now, workspace.id, issues);
    if (c) checked.push(c);
  }
  if (issues.length)
    throw new ValidationError(`${issues.length} invalid field(s); no event was written`, issues);

  // Resolve contacts: one query per key kind for the whole batch.
  const byKind = (kind: Checked['ref']['kind']) => [
    ...new Set(checked.filter((c) => c.ref.kind === kind).map((c) => c.ref.value)),
  ];
  const ids = byKind('id');
  const phones = byKind('phone');
  const externals = byKind('external_id');
  const [liveIds, phoneIds, externalIds] = await Promise.all([
    existingContactIds(runtime, workspace.id, ids),
    findContactIdsByPhone(runtime, workspace.id, phones),
    findContactIdsByExternalId(runtime, workspace.id, externals),
  ]);
  for (const c of checked)
    if (c.ref.kind === 'id' && !liveIds.has(c.ref.value))
      issues.push({
        path: `${path}${pointer(c.index)}/contact/id`,
        message: `no contact ${c.ref.value}`,
        code: 'unknown_contact',
      });
  if (issues.length)
    throw new ValidationError(`${issues.length} invalid field(s); no event was written`, issues);

  // Dedupe: in the batch first, then against what is stored.
  const seen = new Set<string>();
  const fresh: Checked[] = [];
  for (const c of checked) {
    if (seen.has(c.eventId)) continue;
    seen.add(c.eventId);
    fresh.push(c);
  }
  // A resend carries the same id and timestamp: look ids up only in the hours the batch touches
  // (the event_ids primary key), which stays cheap however many events are stored.
  const hourOf = (ts: number) => Math.floor(ts / 3_600_000) * 3_600;
  const stored = fresh.length
    ? await runtime.ch.rows<{ hour: number; event_id: string }>(
        `SELECT DISTINCT toUnixTimestamp(hour) AS hour, event_id FROM ${runtime.ch.database}.event_ids
          WHERE workspace_id = {ws:String} AND hour IN {hours:Array(DateTime('UTC'))} AND event_id IN {ids:Array(String)}`,
        {
          ws: workspace.id,
          hours: [...new Set(fresh.map((c) => hourOf(c.ts)))],
          ids: fresh.map((c) => c.eventId),
        },
      )
    : [];
  const already = new Set(stored.map((r) => `${Number(r.hour)}|${r.event_id}`));
  const toWrite = fresh.filter((c) => !already.has(`${hourOf(c.ts)}|${c.eventId}`));

  // New phones and external ids become contacts (all keys valid by now, so this cannot fail on input).
  const missingPhones = [
    ...new Set(
      toWrite.filter((c) => c.ref.kind === 'phone' && !phoneIds.has(c.ref.value)).map((c) => c.ref.value),
    ),
  ];
  const missingExternal = [
    ...new Set(
      toWrite
        .filter((c) => c.ref.kind === 'external_id' && !externalIds.has(c.ref.value))
        .map((c) => c.ref.value),
    ),
  ];
  let contactsCreated = 0;
  if (missingPhones.length || missingExternal.length) {
    const result = await upsertContacts(runtime, workspace, [
      ...missingPhones.map((phone) => ({ phone })),
      ...missingExternal.map((external_id) => ({ external_id })),
    ]);
    contactsCreated = result.created;
    for (const [i, phone] of missingPhones.entries()) phoneIds.set(phone, result.ids[i]!);
    for (const [i, external] of missingExternal.entries())
      externalIds.set(external, result.ids[missingPhones.length + i]!);
  }
  const contactOf = (c: Checked) =>
    c.ref.kind === 'id'
      ? c.ref.value
      : c.ref.kind === 'phone'
        ? phoneIds.get(c.ref.value)!
        : externalIds.get(c.ref.value)!;

  const rows = toWrite.map((c) => ({
    workspace_id: workspace.id,
    name: c.name,
    contact_id: contactOf(c),
    ts: new Date(c.ts).toISOString().replace('T', ' ').replace('Z', ''),
    event_id: c.eventId,
    properties: c.properties,
  }));
  await runtime.ch.insert('events', rows);
  await recordPropertyTypes(runtime, workspace.id, toWrite);
  return {
    received: items.length,
    inserted: rows.length,
    duplicates: items.length - rows.length,
    contacts_created: contactsCreated,
  };
}

const knownTypes = new WeakMap<Runtime, Set<string>>();

/** Property types per event name, for the segment checker; known ones are skipped without a query. */
async function recordPropertyTypes(runtime: Runtime, workspaceId: string, events: Checked[]): Promise<void> {
  const known = knownTypes.get(runtime) ?? new Set<string>();
  knownTypes.set(runtime, known);
  const fresh = new Map<string, [string, string, string]>();
  for (const e of events)
    for (const [property, type] of e.types) {
      const key = `${workspaceId}|${e.name}|${property}|${type}`;
      if (!known.has(key)) fresh.set(key, [e.name, property, type]);
    }
  if (fresh.size === 0) return;
  const values = [...fresh.values()];
  await runtime.pg.query(
    `INSERT INTO event_properties (workspace_id, event_name, property, type)
     SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[]) ON CONFLICT DO NOTHING`,
    [workspaceId, values.map((v) => v[0]), values.map((v) => v[1]), values.map((v) => v[2])],
  );
  for (const key of fresh.keys()) known.add(key);
}

/** Splits an NDJSON body into items; a line that is not JSON is an error at its index. */
export function parseNdjson(text: string, path = '/body'): unknown[] {
  const items: unknown[] = [];
  const issues: FieldIssue[] = [];
  let index = 0;
  let lineNumber = 0;
  for (const line of text.split('\n')) {
    lineNumber++;
    const trimmed = line.trim();
    if (trimmed === '') continue;
    try {
      items.push(JSON.parse(trimmed));
    } catch {
      issues.push({ path: `${path}${pointer(index)}`, message: `line ${lineNumber} is not valid JSON` });
      items.push(undefined);
    }
    index++;
    if (index > MAX_EVENT_BATCH) break;
  }
  if (issues.length) throw new ValidationError('invalid NDJSON; no event was written', issues);
  return items;
}
