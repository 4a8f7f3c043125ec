import { cachedIdentity, rememberIdentity } from '../contacts/identity-cache.ts';
import {
  existingContactIds,
  findContactIdsByExternalId,
  findContactIdsByPhone,
  upsertContacts,
} from '../contacts/index.ts';
import { normalizePhone } from '../contacts/phone.ts';
import { GroupCommit } from '../group-commit.ts';
import { stableId } from '../ids.ts';
import type { Runtime } from '../runtime.ts';
import { tsv } from '../stores/clickhouse.ts';
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
const EVENT_FIELDS = new Set(['id', 'contact', 'name', 'timestamp', 'properties']);
const CONTACT_KEYS = new Set(['id', 'phone', 'external_id']);

// Batches repeat a handful of event and property names; the Unicode-aware patterns run once per name.
const validNames = new Set<string>();
function isName(pattern: RegExp, value: string): boolean {
  if (validNames.has(value)) return true;
  if (!pattern.test(value)) return false;
  if (validNames.size > 50_000) validNames.clear();
  validNames.add(value);
  return true;
}
const MAX_PROPERTIES_BYTES = 32 * 1024;

interface Checked {
  index: number;
  eventId: string;
  name: string;
  ts: number;
  /** `ts` as ClickHouse DateTime64 text. */
  chTime: string;
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
  const at = `${path}/${index}`; // an index needs no JSON-pointer escaping
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    issues.push({ path: at, message: 'must be an event object' });
    return undefined;
  }
  const item = raw as Record<string, unknown>;
  const before = issues.length;
  for (const key in item)
    if (!EVENT_FIELDS.has(key))
      issues.push({ path: `${at}${pointer(key)}`, message: 'is not a known field' });
  const name = item.name;
  if (typeof name !== 'string' || !isName(EVENT_NAME, name))
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
      for (const key in props) {
        const value = (props as Record<string, unknown>)[key];
        if (!isName(PROPERTY, key))
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
    if (keys.length !== 1 || !CONTACT_KEYS.has(keys[0]!))
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
  const iso = new Date(ts).toISOString();
  const chTime = `${iso.slice(0, 10)} ${iso.slice(11, 23)}`;
  return { index, eventId, name: name as string, ts, chTime, properties, types, ref };
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

  // Resolve contacts: cached identities first, then one query per key kind for the rest of the batch.
  const phoneIds = new Map<string, string>();
  const externalIds = new Map<string, string>();
  const unresolved = { id: new Set<string>(), phone: new Set<string>(), external_id: new Set<string>() };
  for (const c of checked) {
    const { kind, value } = c.ref;
    if (kind === 'id') unresolved.id.add(value);
    else {
      const known = kind === 'phone' ? phoneIds : externalIds;
      if (known.has(value)) continue;
      const hit = cachedIdentity(runtime, workspace.id, kind, value);
      if (hit) known.set(value, hit);
      else unresolved[kind].add(value);
    }
  }
  const [liveIds, foundPhones, foundExternal] = await Promise.all([
    existingContactIds(runtime, workspace.id, [...unresolved.id]),
    findContactIdsByPhone(runtime, workspace.id, [...unresolved.phone]),
    findContactIdsByExternalId(runtime, workspace.id, [...unresolved.external_id]),
  ]);
  for (const [phone, id] of foundPhones) {
    phoneIds.set(phone, id);
    rememberIdentity(runtime, workspace.id, 'phone', phone, id);
  }
  for (const [external, id] of foundExternal) {
    externalIds.set(external, id);
    rememberIdentity(runtime, workspace.id, 'external_id', external, id);
  }
  for (const c of checked)
    if (c.ref.kind === 'id' && !liveIds.has(c.ref.value))
      issues.push({
        path: `${path}${pointer(c.index)}/contact/id`,
        message: `no contact ${c.ref.value}`,
        code: 'unknown_contact',
      });
  if (issues.length)
    throw new ValidationError(`${issues.length} invalid field(s); no event was written`, issues);

  // Repeats within the batch go here; the event queue checks the rest against what is stored.
  const seen = new Set<string>();
  const fresh: Checked[] = [];
  for (const c of checked) {
    if (seen.has(c.eventId)) continue;
    seen.add(c.eventId);
    fresh.push(c);
  }
  return eventQueue(runtime).submit({ workspace, received: items.length, fresh, phoneIds, externalIds });
}

/** A validated batch whose contacts are resolved, waiting for its dedupe and insert. */
interface PendingBatch {
  workspace: Pick<Workspace, 'id' | 'default_region'>;
  received: number;
  fresh: Checked[];
  phoneIds: Map<string, string>;
  externalIds: Map<string, string>;
}

/** Events joined per insert: big enough to amortise an insert's parts, small enough to stay quick. */
const MAX_GROUP_EVENTS = 100_000;
const EVENT_COLUMNS = ['workspace_id', 'name', 'contact_id', 'ts', 'event_id', 'properties'] as const;
const queues = new WeakMap<Runtime, GroupCommit<PendingBatch, IngestResult>>();

function eventQueue(runtime: Runtime): GroupCommit<PendingBatch, IngestResult> {
  let queue = queues.get(runtime);
  if (!queue) {
    queue = new GroupCommit((batches) => writeBatches(runtime, batches), {
      weight: (batch) => batch.fresh.length,
      maxWeight: MAX_GROUP_EVENTS,
    });
    queues.set(runtime, queue);
  }
  return queue;
}

const hourOf = (ts: number) => Math.floor(ts / 3_600_000) * 3_600;

/**
 * Deduplicates a group of batches against stored ids (one query per workspace), creates the contacts
 * their new phones and external ids name, and appends all their events in one insert. A batch's
 * events are never split from each other, and an id a batch shares with an earlier one in the group
 * counts as that earlier batch's.
 */
async function writeBatches(runtime: Runtime, batches: PendingBatch[]): Promise<IngestResult[]> {
  const byWorkspace = new Map<string, PendingBatch[]>();
  for (const batch of batches) {
    const list = byWorkspace.get(batch.workspace.id) ?? [];
    list.push(batch);
    byWorkspace.set(batch.workspace.id, list);
  }
  const toWrite = new Map<PendingBatch, Checked[]>();
  for (const [workspaceId, list] of byWorkspace) {
    // A resend carries the same id and timestamp: look ids up only in the hours the group touches
    // (the event_ids primary key), which stays cheap however many events are stored.
    const hours = new Set<number>();
    const ids: string[] = [];
    for (const batch of list)
      for (const c of batch.fresh) {
        hours.add(hourOf(c.ts));
        ids.push(c.eventId);
      }
    const stored = ids.length
      ? await runtime.ch.rows<{ hour: number; event_id: string }>(
          `SELECT DISTINCT toUnixTimestamp(hour) AS hour, event_id FROM ${runtime.ch.database}.event_ids
            WHERE workspace_id = {ws:String} AND hour IN {hours:Array(DateTime('UTC'))} AND event_id IN {ids:Array(String)}`,
          { ws: workspaceId, hours: [...hours], ids },
        )
      : [];
    const claimed = new Set(stored.map((r) => `${Number(r.hour)}|${r.event_id}`));
    for (const batch of list) {
      const mine: Checked[] = [];
      for (const c of batch.fresh) {
        const key = `${hourOf(c.ts)}|${c.eventId}`;
        if (claimed.has(key)) continue;
        claimed.add(key);
        mine.push(c);
      }
      toWrite.set(batch, mine);
    }
  }

  let body = '';
  const results: IngestResult[] = [];
  for (const batch of batches) {
    const events = toWrite.get(batch)!;
    const contactsCreated = await createMissingContacts(runtime, batch, events);
    const { phoneIds, externalIds } = batch;
    const ws = tsv(batch.workspace.id);
    for (const c of events) {
      const contactId =
        c.ref.kind === 'id'
          ? c.ref.value
          : c.ref.kind === 'phone'
            ? phoneIds.get(c.ref.value)!
            : externalIds.get(c.ref.value)!;
      body += `${ws}\t${c.name}\t${tsv(contactId)}\t${c.chTime}\t${tsv(c.eventId)}\t${tsv(c.properties)}\n`;
    }
    results.push({
      received: batch.received,
      inserted: events.length,
      duplicates: batch.received - events.length,
      contacts_created: contactsCreated,
    });
  }
  await runtime.ch.insertTsv('events', EVENT_COLUMNS, body);
  for (const [workspaceId, list] of byWorkspace)
    await recordPropertyTypes(
      runtime,
      workspaceId,
      list.flatMap((batch) => toWrite.get(batch)!),
    );
  return results;
}

/** New phones and external ids become contacts (all keys are valid by now, so this cannot fail on input). */
async function createMissingContacts(
  runtime: Runtime,
  batch: PendingBatch,
  events: Checked[],
): Promise<number> {
  const { phoneIds, externalIds, workspace } = batch;
  const missingPhones = new Set<string>();
  const missingExternal = new Set<string>();
  for (const c of events) {
    if (c.ref.kind === 'phone' && !phoneIds.has(c.ref.value)) {
      // An earlier batch of the group may have created it.
      const known = cachedIdentity(runtime, workspace.id, 'phone', c.ref.value);
      if (known) phoneIds.set(c.ref.value, known);
      else missingPhones.add(c.ref.value);
    } else if (c.ref.kind === 'external_id' && !externalIds.has(c.ref.value)) {
      const known = cachedIdentity(runtime, workspace.id, 'external_id', c.ref.value);
      if (known) externalIds.set(c.ref.value, known);
      else missingExternal.add(c.ref.value);
    }
  }
  if (missingPhones.size === 0 && missingExternal.size === 0) return 0;
  const phones = [...missingPhones];
  const externals = [...missingExternal];
  const result = await upsertContacts(runtime, workspace, [
    ...phones.map((phone) => ({ phone })),
    ...externals.map((external_id) => ({ external_id })),
  ]);
  for (const [i, phone] of phones.entries()) phoneIds.set(phone, result.ids[i]!);
  for (const [i, external] of externals.entries()) externalIds.set(external, result.ids[phones.length + i]!);
  return result.created;
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
