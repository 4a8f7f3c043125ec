import { createHash } from 'node:crypto';
import { type ConsentChange, validateConsent, writeConsent } from '../consent/records.ts';
import { stableId } from '../ids.ts';
import type { Runtime } from '../runtime.ts';
import { stringSet, tsv } from '../stores/clickhouse.ts';
import { type FieldIssue, pointer, ValidationError } from '../validation.ts';
import { isValidTimeZone, type Workspace } from '../workspaces.ts';
import {
  type AttributeSchema,
  type AttributeValue,
  getAttributeSchema,
  parseDateTime,
  validateAttributes,
} from './attributes.ts';
import { forgetIdentity } from './identity-cache.ts';
import { canonicalZone, countryTimeZone, normalizePhone, type PhoneResult } from './phone.ts';
import { normalizePhones } from './phone-pool.ts';
import {
  CONTACT_TSV_COLUMNS,
  contactToTsv,
  latestInputHashes,
  loadContactRows,
  nextVersion,
  rowToContact,
  sortKeys,
  storedContactIds,
} from './store.ts';
import type { Contact, ContactInput } from './types.ts';

export interface UpsertOptions {
  /** JSON pointer prefix of the inputs in error paths, e.g. `/body` (the default). */
  path?: string;
  /** Who made the change, for consent records (an API key id, `import:<job>`, a user). */
  actor?: string;
  now?: Date;
  /** Schema already loaded by the caller (imports load it once per file). */
  schema?: AttributeSchema;
  /**
   * The inputs' phones already normalized (`normalizePhones` of each input's phone, '' for none, in
   * the workspace's region), e.g. started by an import while its previous batch was being written.
   */
  phones?: Promise<PhoneResult[]>;
  /** When the i-th input creates a contact, its created_at (history loads, the demo); default now. */
  createdAt?: (index: number) => string | undefined;
}

export interface UpsertResult {
  /** The contact id of each input, in input order. */
  ids: string[];
  /** Distinct contacts created, changed, and left as they were (their merged content was equal). */
  created: number;
  updated: number;
  unchanged: number;
}

const IDENTITY_COLUMNS = ['workspace_id', 'kind', 'value', 'contact_id', 'version', 'deleted'] as const;
const NAME = /^[\p{L}\p{N}_][\p{L}\p{N}_ .:/-]{0,63}$/u;
const LANGUAGE = /^[a-z]{2,3}(-[A-Za-z0-9]{2,8}){0,3}$/;

interface Normalized {
  externalId?: string;
  phone?: { e164: string; country: string | null };
  language?: string;
  timezone?: string;
  attributes: Record<string, AttributeValue | null>;
  tags: string[];
  lists: string[];
  consent: ConsentChange[];
  lastSeenAt?: string;
}

export function validateNames(values: unknown, path: string, what: string, issues: FieldIssue[]): string[] {
  if (values === undefined) return [];
  if (!Array.isArray(values)) {
    issues.push({ path, message: `must be a list of ${what} names` });
    return [];
  }
  const out: string[] = [];
  values.forEach((value, i) => {
    if (typeof value === 'string' && NAME.test(value)) out.push(value);
    else
      issues.push({
        path: `${path}${pointer(i)}`,
        message: `must be a ${what} name: 1 to 64 letters, digits, spaces or _ . : / -, not starting with a symbol`,
      });
  });
  return out;
}

function validateInput(
  input: ContactInput,
  at: string,
  workspace: Pick<Workspace, 'default_region'>,
  schema: AttributeSchema,
  issues: FieldIssue[],
  defaults: { actor: string; now: Date },
  phoneResult?: PhoneResult,
): Normalized {
  const out: Normalized = { attributes: {}, tags: [], lists: [], consent: [] };
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    issues.push({ path: at || '/', message: 'must be a contact object' });
    return out;
  }
  if (input.external_id !== undefined) {
    if (
      typeof input.external_id !== 'string' ||
      input.external_id.trim() === '' ||
      input.external_id.length > 255
    )
      issues.push({ path: `${at}/external_id`, message: 'must be text of 1 to 255 characters' });
    else out.externalId = input.external_id.trim();
  }
  if (input.phone !== undefined) {
    if (typeof input.phone !== 'string') issues.push({ path: `${at}/phone`, message: 'must be a string' });
    else {
      const result = phoneResult ?? normalizePhone(input.phone, workspace.default_region);
      if (result.ok) out.phone = { e164: result.e164, country: result.country };
      else
        issues.push({
          path: `${at}/phone`,
          message: `${JSON.stringify(input.phone.slice(0, 40))} ${result.reason}`,
          code: 'invalid_phone',
        });
    }
  }
  if (
    out.externalId === undefined &&
    out.phone === undefined &&
    input.external_id === undefined &&
    input.phone === undefined
  )
    issues.push({
      path: at || '/',
      message: 'needs external_id or phone to identify the contact',
      code: 'missing_key',
    });
  if (input.language !== undefined) {
    if (typeof input.language !== 'string' || !LANGUAGE.test(input.language))
      issues.push({ path: `${at}/language`, message: 'must be a language tag such as en, pt-BR' });
    else out.language = input.language;
  }
  if (input.timezone !== undefined) {
    if (
      typeof input.timezone !== 'string' ||
      !input.timezone.includes('/') ||
      !isValidTimeZone(input.timezone)
    )
      issues.push({ path: `${at}/timezone`, message: 'must be an IANA time zone such as Asia/Kolkata' });
    else out.timezone = canonicalZone(input.timezone);
  }
  if (input.attributes !== undefined) {
    if (typeof input.attributes !== 'object' || input.attributes === null || Array.isArray(input.attributes))
      issues.push({ path: `${at}/attributes`, message: 'must be an object of attribute values' });
    else out.attributes = validateAttributes(schema, input.attributes, `${at}/attributes`, issues);
  }
  out.tags = validateNames(input.tags, `${at}/tags`, 'tag', issues);
  out.lists = validateNames(input.lists, `${at}/lists`, 'list', issues);
  if (input.consent !== undefined)
    out.consent = validateConsent(input.consent, `${at}/consent`, issues, defaults);
  if (input.last_seen_at !== undefined) {
    const parsed = typeof input.last_seen_at === 'string' ? parseDateTime(input.last_seen_at) : undefined;
    if (!parsed) issues.push({ path: `${at}/last_seen_at`, message: 'must be an ISO 8601 date-time' });
    else out.lastSeenAt = parsed;
  }
  return out;
}

function contentKey(contact: Contact): string {
  const { updated_at: _u, ...content } = contact;
  return JSON.stringify({
    ...content,
    attributes: sortKeys(content.attributes),
    consent: sortKeys(content.consent),
  });
}

function union(a: string[], b: string[]): string[] {
  if (b.every((x) => a.includes(x))) return a;
  return [...new Set([...a, ...b])].sort();
}

/**
 * Creates or updates contacts, matched by external_id, else by phone. Validation is all-or-nothing
 * for the call: one bad input throws a ValidationError listing every problem, and nothing is written.
 * Ids are derived from the workspace and the identifying key, so replays and concurrent upserts of
 * the same new contact converge on one id. A contact whose merged content equals what is stored is
 * not written again. One identity lookup and one contact read serve the whole batch.
 */
export async function upsertContacts(
  runtime: Runtime,
  workspace: Pick<Workspace, 'id' | 'default_region'>,
  inputs: ContactInput[],
  options: UpsertOptions = {},
): Promise<UpsertResult> {
  const { ch, pg } = runtime;
  const path = options.path ?? '/body';
  const now = options.now ?? new Date();
  const nowIso = now.toISOString();
  const schema = options.schema ?? (await getAttributeSchema(pg, workspace.id));
  const issues: FieldIssue[] = [];
  const defaults = { actor: options.actor ?? 'api', now };
  // Bulk calls parse their phones on worker threads (see phone-pool.ts).
  const phoneResults = options.phones
    ? await options.phones
    : inputs.length >= BULK_INPUTS
      ? await bulkPhones(inputs, workspace.default_region)
      : undefined;
  const normalized = inputs.map((input, i) =>
    validateInput(input, `${path}${pointer(i)}`, workspace, schema, issues, defaults, phoneResults?.[i]),
  );
  if (issues.length)
    throw new ValidationError(`${issues.length} invalid field(s); nothing was written`, issues);
  if (inputs.length === 0) return { ids: [], created: 0, updated: 0, unchanged: 0 };

  // One lookup for every identifying key in the batch.
  const phones = [...new Set(normalized.flatMap((n) => (n.phone ? [n.phone.e164] : [])))];
  const externalIds = [...new Set(normalized.flatMap((n) => (n.externalId ? [n.externalId] : [])))];
  const phoneSet = stringSet('phones', phones);
  const externalSet = stringSet('externalIds', externalIds);
  const identities = await ch.rows<{ kind: string; value: string; contact_id: string }>(
    `SELECT kind, value, contact_id FROM ${ch.database}.contact_identities FINAL
      WHERE workspace_id = {ws:String}
        AND ((kind = 'phone' AND value IN ${phoneSet.sql})
          OR (kind = 'external_id' AND value IN ${externalSet.sql}))`,
    { ws: workspace.id, ...phoneSet.params, ...externalSet.params },
  );
  const idByKey = new Map(identities.map((r) => [`${r.kind}:${r.value}`, r.contact_id]));
  const newIdFor = (n: Normalized) =>
    n.externalId !== undefined
      ? stableId('ct', workspace.id, 'external_id', n.externalId)
      : stableId('ct', workspace.id, 'phone', n.phone!.e164);
  /** The contacts an input's keys lead to now (the map grows as the batch assigns new contacts). */
  const keyedIds = (n: Normalized) => ({
    byExternal: n.externalId !== undefined ? idByKey.get(`external_id:${n.externalId}`) : undefined,
    byPhone: n.phone ? idByKey.get(`phone:${n.phone.e164}`) : undefined,
  });
  // Stable ids are read too: a write that stored the contact but not its identities is then recognised.
  const newIds = normalized.map(newIdFor); // a hash each: computed once per input
  // A stable id is only used by an input none of whose keys were found, so only those are candidates.
  const unmatched = newIds.filter((_, i) => {
    const { byExternal, byPhone } = keyedIds(normalized[i]!);
    return byExternal === undefined && byPhone === undefined;
  });
  // Bulk calls: a contact that only one input of the batch names, by keys that all lead to it, and
  // whose latest version this very input produced (same digest) is left as it is without reading its
  // row: applying an input again to what it produced changes nothing (values set again, tags and
  // lists already there, consent already in that state). Any other write since (API, consent,
  // memberships) stored another digest or none, so such a contact goes the full way.
  const inputHashes = inputs.length >= BULK_INPUTS ? inputs.map((input) => inputHash(workspace, input)) : [];
  const skipped = new Map<number, string>(); // input index -> its contact id
  if (inputHashes.length && identities.length) {
    const inputsPerId = new Map<string, number>();
    const target: (string | undefined)[] = normalized.map((n, i) => {
      const { byExternal, byPhone } = keyedIds(n);
      const id = byExternal ?? byPhone ?? newIds[i]!;
      inputsPerId.set(id, (inputsPerId.get(id) ?? 0) + 1);
      const allKeysLead = (n.externalId === undefined || byExternal === id) && (!n.phone || byPhone === id);
      return allKeysLead ? id : undefined;
    });
    const candidates = target.filter((id): id is string => id !== undefined && inputsPerId.get(id) === 1);
    const hashes = await latestInputHashes(ch, workspace.id, candidates);
    target.forEach((id, i) => {
      if (id !== undefined && inputsPerId.get(id) === 1 && hashes.get(id) === inputHashes[i])
        skipped.set(i, id);
    });
  }
  const skippedIds = new Set(skipped.values());
  const found = identities.map((r) => r.contact_id).filter((id) => !skippedIds.has(id));
  // Bulk calls look for which unmatched ids exist first (cheap), then read only those in full. Ids
  // found through identities are read in full directly: a re-import finds them all and skips the check.
  const stored = await loadContactRows(ch, workspace.id, [
    ...found,
    ...(unmatched.length > 200 ? await storedContactIds(ch, workspace.id, unmatched) : unmatched),
  ]);

  const original = new Map<string, string>();
  const state = new Map<string, Contact>();
  for (const [id, row] of stored) {
    const contact = rowToContact(row);
    state.set(id, contact);
    original.set(id, contentKey(contact));
  }
  const originalKeys = new Map(
    [...state].map(([id, c]) => [id, { phone: c.phone, external_id: c.external_id }]),
  );

  const ids: string[] = [];
  const consentWrites: { contactId: string; change: ConsentChange }[] = [];
  // The digest of the input last applied to each contact, stored with the version it produces.
  const hashById = new Map<string, string>();
  normalized.forEach((n, i) => {
    const skippedId = skipped.get(i);
    if (skippedId !== undefined) {
      ids.push(skippedId);
      return;
    }
    const at = `${path}${pointer(i)}`;
    const { byExternal, byPhone } = keyedIds(n);
    let id: string;
    if (byExternal) {
      id = byExternal;
      if (byPhone && byPhone !== byExternal) {
        issues.push({
          path: `${at}/phone`,
          message: `${n.phone!.e164} already belongs to another contact (${byPhone})`,
          code: 'identity_conflict',
        });
        return;
      }
    } else if (byPhone) {
      id = byPhone;
      const owner = state.get(byPhone);
      if (n.externalId !== undefined && owner?.external_id && owner.external_id !== n.externalId) {
        issues.push({
          path: `${at}/external_id`,
          message: `phone ${n.phone!.e164} belongs to the contact with external_id ${JSON.stringify(owner.external_id)}`,
          code: 'identity_conflict',
        });
        return;
      }
    } else id = newIds[i]!;

    const contact: Contact = state.get(id) ?? {
      id,
      workspace_id: workspace.id,
      external_id: null,
      phone: null,
      country: null,
      language: null,
      timezone: null,
      attributes: {},
      tags: [],
      lists: [],
      consent: {},
      created_at: options.createdAt?.(i) ?? nowIso,
      last_seen_at: null,
      updated_at: nowIso,
    };
    const next: Contact = { ...contact, attributes: { ...contact.attributes } };
    if (n.externalId !== undefined) next.external_id = n.externalId;
    if (n.phone) {
      if (contact.phone && contact.phone !== n.phone.e164) idByKey.delete(`phone:${contact.phone}`);
      next.phone = n.phone.e164;
      next.country = n.phone.country;
    }
    if (n.language !== undefined) next.language = n.language;
    if (n.timezone !== undefined) next.timezone = n.timezone;
    else if (!next.timezone && next.country) next.timezone = countryTimeZone(next.country);
    for (const [name, value] of Object.entries(n.attributes)) {
      if (value === null) delete next.attributes[name];
      else next.attributes[name] = value;
    }
    next.tags = union(contact.tags, n.tags);
    next.lists = union(contact.lists, n.lists);
    if (n.lastSeenAt && (!next.last_seen_at || n.lastSeenAt > next.last_seen_at))
      next.last_seen_at = n.lastSeenAt;
    if (next.external_id) idByKey.set(`external_id:${next.external_id}`, id);
    if (next.phone) idByKey.set(`phone:${next.phone}`, id);
    for (const change of n.consent) consentWrites.push({ contactId: id, change });
    if (inputHashes.length) hashById.set(id, inputHashes[i]!);
    state.set(id, next);
    ids.push(id);
  });
  if (issues.length)
    throw new ValidationError(`${issues.length} invalid field(s); nothing was written`, issues);

  // Consent history is the record in Postgres; the contact row carries a copy of the current state.
  if (consentWrites.length) {
    const { current } = await pg.transaction((tx) =>
      writeConsent(tx, workspace.id, consentWrites, {
        onlyChanges: true,
        newContacts: new Set(consentWrites.flatMap((w) => (original.has(w.contactId) ? [] : [w.contactId]))),
      }),
    );
    for (const [id, consent] of current) state.get(id)!.consent = consent;
  }

  const version = nextVersion();
  // Both tables in TabSeparated: ClickHouse parses it far faster than JSONEachRow (six Map columns).
  let contactLines = '';
  let identityLines = '';
  const ws = tsv(workspace.id);
  let created = 0;
  let updated = 0;
  let unchanged = 0;
  for (const id of new Set(ids)) {
    if (skippedIds.has(id)) {
      unchanged++;
      continue;
    }
    const contact = state.get(id)!;
    const before = original.get(id);
    // A new contact has nothing to compare with: its content key is not built.
    if (before !== undefined && before === contentKey(contact)) {
      unchanged++;
      continue;
    }
    if (before === undefined) created++;
    else updated++;
    contact.updated_at = nowIso;
    contactLines += contactToTsv(contact, schema, version, hashById.get(id));
    const keys = originalKeys.get(id);
    const identity = (kind: string, value: string, deleted: 0 | 1) => {
      identityLines += `${ws}\t${kind}\t${tsv(value)}\t${tsv(id)}\t${version}\t${deleted}\n`;
    };
    if (contact.phone && contact.phone !== keys?.phone) identity('phone', contact.phone, 0);
    if (keys?.phone && keys.phone !== contact.phone) {
      // A key that moves is forgotten before the write. New keys are not remembered here: bulk imports
      // would fill the cache with contacts no event names (the event path remembers what it resolves).
      forgetIdentity(runtime, workspace.id, 'phone', keys.phone);
      identity('phone', keys.phone, 1);
    }
    if (contact.external_id && contact.external_id !== keys?.external_id)
      identity('external_id', contact.external_id, 0);
  }
  // Both at once: a crash between them heals itself either way (identities are looked up first and a
  // missing contact row is written again; stable ids find a contact whose identities are missing).
  await Promise.all([
    ch.insertTsv('contacts', CONTACT_TSV_COLUMNS, contactLines),
    ch.insertTsv('contact_identities', IDENTITY_COLUMNS, identityLines),
  ]);

  const tags = [...new Set(normalized.flatMap((n) => n.tags))];
  const lists = [...new Set(normalized.flatMap((n) => n.lists))];
  if (tags.length) await registerNames(runtime, 'tags', workspace.id, tags);
  if (lists.length) await registerNames(runtime, 'lists', workspace.id, lists);
  return { ids, created, updated, unchanged };
}

/** Calls at least this big are bulk: phones parsed on workers, inputs digested (see `inputHash`). */
const BULK_INPUTS = 500;

/**
 * What a re-import compares: the input as given (an import builds it the same way from the same row
 * and mapping) and the region its phone is read in. 132 bits of SHA-256 (22 base64url characters).
 */
function inputHash(workspace: Pick<Workspace, 'default_region'>, input: ContactInput): string {
  return createHash('sha256')
    .update(`${workspace.default_region}\u0000${JSON.stringify(input)}`)
    .digest('base64url')
    .slice(0, 22);
}

/**
 * Each input's phone normalized on the worker pool ('' stands for an input without one), as
 * `upsertContacts` does for bulk calls; an import starts it for the next batch ahead of time.
 */
export function bulkPhones(inputs: readonly ContactInput[], region: string): Promise<PhoneResult[]> {
  return normalizePhones(
    inputs.map((input) =>
      typeof input === 'object' && input !== null && typeof input.phone === 'string' ? input.phone : '',
    ),
    region,
  );
}

/** Tags and lists are registered in Postgres on first use, so they can be listed and described. */
export async function registerNames(
  runtime: Runtime,
  table: 'tags' | 'lists',
  workspaceId: string,
  names: string[],
): Promise<void> {
  await runtime.pg.query(
    `INSERT INTO ${table} (workspace_id, name) SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING`,
    [workspaceId, names],
  );
}
