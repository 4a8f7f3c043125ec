import { normalizePhone } from '../contacts/phone.ts';
import { stableId } from '../ids.ts';
import { tsv } from '../stores/clickhouse.ts';
import { type FieldIssue, pointer, ValidationError } from '../validation.ts';

/** Largest batch POST /v1/events and `ingestEvents` accept (documented in the API). */
export const MAX_EVENT_BATCH = 10_000;

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

/** A valid event, reduced to what the write needs. */
export interface Checked {
  index: number;
  eventId: string;
  ts: number;
  ref: { kind: RefKind; value: string };
  /** The row's TabSeparated columns after contact_id: name, ts, event_id, properties. */
  tail: string;
}

export type RefKind = 'id' | 'phone' | 'external_id';

/** A batch that passed every check: its events (repeats within it removed) and property types. */
export interface CheckedBatch {
  received: number;
  events: Checked[];
  /** Distinct [event name, property, type] seen in the batch. */
  types: [string, string, string][];
}

export interface CheckContext {
  /** JSON pointer prefix of the items in error paths. */
  path: string;
  region: string;
  now: number;
  workspaceId: string;
}

// Parsing a phone with full metadata costs tens of microseconds; batches repeat the same contacts.
// One map per region, keyed by the text as sent, so a hit builds no key string.
const phoneMemo = new Map<string, Map<string, string | { reason: string }>>();
let memoSize = 0;
function memoPhone(raw: string, region: string): string | { reason: string } {
  let memo = phoneMemo.get(region);
  if (!memo) {
    memo = new Map();
    phoneMemo.set(region, memo);
  }
  let hit = memo.get(raw);
  if (hit === undefined) {
    const result = normalizePhone(raw, region);
    hit = result.ok ? result.e164 : { reason: result.reason };
    if (++memoSize > 200_000) {
      phoneMemo.clear();
      memoSize = 1;
      memo = new Map();
      phoneMemo.set(region, memo);
    }
    memo.set(raw, hit);
  }
  return hit;
}

function checkItem(
  raw: unknown,
  index: number,
  { path, region, now, workspaceId }: CheckContext,
  issues: FieldIssue[],
  types: Map<string, [string, string, string]>,
): Checked | undefined {
  // Built only for an issue (an index needs no JSON-pointer escaping): most events have none.
  const at = () => `${path}/${index}`;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    issues.push({ path: at(), message: 'must be an event object' });
    return undefined;
  }
  const item = raw as Record<string, unknown>;
  const before = issues.length;
  for (const key in item)
    if (!EVENT_FIELDS.has(key))
      issues.push({ path: `${at()}${pointer(key)}`, message: 'is not a known field' });
  const name = item.name;
  if (typeof name !== 'string' || !isName(EVENT_NAME, name))
    issues.push({
      path: `${at()}/name`,
      message: 'must be an event name of 1 to 128 letters, digits, spaces or _ . : / -',
    });
  let ts = Number.NaN;
  if (typeof item.timestamp !== 'string' || !TIMESTAMP.test(item.timestamp))
    issues.push({
      path: `${at()}/timestamp`,
      message: 'must be an ISO 8601 date-time with a zone, e.g. 2026-03-01T10:00:00Z',
    });
  else {
    ts = Date.parse(item.timestamp);
    if (Number.isNaN(ts)) issues.push({ path: `${at()}/timestamp`, message: 'is not a real date-time' });
    else if (ts < MIN_TIME) issues.push({ path: `${at()}/timestamp`, message: 'is before 2000-01-01' });
    else if (ts > now + 86_400_000)
      issues.push({ path: `${at()}/timestamp`, message: 'is more than a day in the future' });
  }
  if (item.id !== undefined && (typeof item.id !== 'string' || !EVENT_ID.test(item.id)))
    issues.push({ path: `${at()}/id`, message: 'must be 1 to 200 printable ASCII characters' });
  let properties = '{}';
  const propertyTypes: [string, string][] = [];
  if (item.properties !== undefined) {
    const props = item.properties;
    if (typeof props !== 'object' || props === null || Array.isArray(props))
      issues.push({ path: `${at()}/properties`, message: 'must be an object' });
    else {
      for (const key in props) {
        const value = (props as Record<string, unknown>)[key];
        if (!isName(PROPERTY, key))
          issues.push({ path: `${at()}/properties${pointer(key)}`, message: 'is not a valid property name' });
        else if (typeof value === 'string' || typeof value === 'boolean')
          propertyTypes.push([key, typeof value]);
        else if (typeof value === 'number') {
          if (Number.isFinite(value)) propertyTypes.push([key, 'number']);
        }
      }
      properties = JSON.stringify(props);
      if (properties.length > MAX_PROPERTIES_BYTES)
        issues.push({
          path: `${at()}/properties`,
          message: `is larger than ${MAX_PROPERTIES_BYTES} bytes of JSON`,
        });
    }
  }
  let ref: Checked['ref'] | undefined;
  const contact = item.contact as Record<string, unknown> | undefined;
  if (typeof contact !== 'object' || contact === null || Array.isArray(contact)) {
    issues.push({
      path: `${at()}/contact`,
      message: 'must name the contact: {"id"}, {"phone"} or {"external_id"}',
    });
  } else {
    const keys = Object.keys(contact);
    const value = contact[keys[0] ?? ''];
    if (keys.length !== 1 || !CONTACT_KEYS.has(keys[0]!))
      issues.push({ path: `${at()}/contact`, message: 'must have exactly one of id, phone, external_id' });
    else if (typeof value !== 'string' || value.length === 0 || value.length > 255)
      issues.push({ path: `${at()}/contact/${keys[0]}`, message: 'must be text of 1 to 255 characters' });
    else if (keys[0] === 'phone') {
      const phone = memoPhone(value, region);
      if (typeof phone === 'string') ref = { kind: 'phone', value: phone };
      else
        issues.push({
          path: `${at()}/contact/phone`,
          message: `${JSON.stringify(value.slice(0, 40))} ${phone.reason}`,
          code: 'invalid_phone',
        });
    } else ref = { kind: keys[0] as 'id' | 'external_id', value };
  }
  if (issues.length > before || !ref) return undefined;
  const eventId =
    (item.id as string | undefined) ??
    stableId('ev', workspaceId, ref.kind, ref.value, name as string, String(ts), properties);
  for (const [property, type] of propertyTypes) {
    const key = `${name}|${property}|${type}`;
    if (!types.has(key)) types.set(key, [name as string, property, type]);
  }
  const iso = new Date(ts).toISOString();
  const chTime = `${iso.slice(0, 10)} ${iso.slice(11, 23)}`;
  return { index, eventId, ts, ref, tail: `${name}\t${chTime}\t${tsv(eventId)}\t${tsv(properties)}` };
}

/** Checks a batch, all or nothing: one bad item throws a ValidationError listing every problem. */
export function checkEvents(items: unknown[], context: CheckContext): CheckedBatch {
  if (items.length > MAX_EVENT_BATCH)
    throw new ValidationError('batch too large', [
      {
        path: context.path,
        message: `has ${items.length} events; send at most ${MAX_EVENT_BATCH} per request`,
      },
    ]);
  const issues: FieldIssue[] = [];
  const types = new Map<string, [string, string, string]>();
  const seen = new Set<string>();
  const events: Checked[] = [];
  for (let i = 0; i < items.length; i++) {
    const c = checkItem(items[i], i, context, issues, types);
    // A repeat within the batch is a duplicate: the first one is kept.
    if (c && !seen.has(c.eventId)) {
      seen.add(c.eventId);
      events.push(c);
    }
  }
  if (issues.length)
    throw new ValidationError(`${issues.length} invalid field(s); no event was written`, issues);
  return { received: items.length, events, types: [...types.values()] };
}

/** `parseNdjson` then `checkEvents`. */
export function checkNdjson(text: string, context: CheckContext): CheckedBatch {
  return checkEvents(parseNdjson(text, context.path), context);
}

const KINDS: RefKind[] = ['id', 'phone', 'external_id'];

/** A batch as a few flat arrays, which cross a worker boundary far faster than 5,000 objects. */
export interface PackedBatch {
  received: number;
  index: Uint32Array;
  eventIds: string[];
  ts: Float64Array;
  kinds: Uint8Array;
  values: string[];
  tails: string[];
  types: [string, string, string][];
}

export function packBatch(batch: CheckedBatch): PackedBatch {
  const n = batch.events.length;
  const packed: PackedBatch = {
    received: batch.received,
    index: new Uint32Array(n),
    eventIds: new Array(n),
    ts: new Float64Array(n),
    kinds: new Uint8Array(n),
    values: new Array(n),
    tails: new Array(n),
    types: batch.types,
  };
  batch.events.forEach((c, i) => {
    packed.index[i] = c.index;
    packed.eventIds[i] = c.eventId;
    packed.ts[i] = c.ts;
    packed.kinds[i] = KINDS.indexOf(c.ref.kind);
    packed.values[i] = c.ref.value;
    packed.tails[i] = c.tail;
  });
  return packed;
}

export function unpackBatch(packed: PackedBatch): CheckedBatch {
  const events: Checked[] = new Array(packed.eventIds.length);
  for (let i = 0; i < events.length; i++)
    events[i] = {
      index: packed.index[i]!,
      eventId: packed.eventIds[i]!,
      ts: packed.ts[i]!,
      ref: { kind: KINDS[packed.kinds[i]!]!, value: packed.values[i]! },
      tail: packed.tails[i]!,
    };
  return { received: packed.received, events, types: packed.types };
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
