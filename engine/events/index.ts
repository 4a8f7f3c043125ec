import { cachedIdentity, rememberIdentity } from '../contacts/identity-cache.ts';
import {
  existingContactIds,
  findContactIdsByExternalId,
  findContactIdsByPhone,
  upsertContacts,
} from '../contacts/index.ts';
import { GroupCommit } from '../group-commit.ts';
import type { Runtime } from '../runtime.ts';
import { stringSet, tsv } from '../stores/clickhouse.ts';
import { type FieldIssue, pointer, ValidationError } from '../validation.ts';
import type { Workspace } from '../workspaces.ts';

import { type CheckContext, type Checked, type CheckedBatch, checkEvents, checkNdjson } from './check.ts';
import { checkOnWorker } from './check-pool.ts';

export { MAX_EVENT_BATCH, parseNdjson } from './check.ts';

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

/**
 * Ingests a batch of events, all or nothing: one bad item rejects the batch with a path per problem
 * (`/body/3/timestamp`) and nothing is written. Ids already ingested and ids repeated in the batch
 * are skipped. Events naming an unknown phone or external_id create that contact; an unknown
 * contact id is an error.
 */
export async function ingestEvents(
  runtime: Runtime,
  workspace: Pick<Workspace, 'id' | 'default_region'>,
  items: unknown[],
  options: { path?: string; now?: Date } = {},
): Promise<IngestResult> {
  return arriving(runtime, (queued) =>
    ingestChecked(runtime, workspace, checkEvents(items, checkContext(workspace, options)), options, queued),
  );
}

// Below this size a body is checked inline: the hand-off to a worker would cost more than it saves.
const WORKER_BELOW_BYTES = 64 * 1024;

/**
 * `ingestEvents` for an NDJSON body (one event per line). Large bodies are parsed and checked on a
 * worker thread, so the thread that serves requests and talks to the stores does not also spend
 * a few microseconds per event on JSON and validation.
 */
export async function ingestNdjson(
  runtime: Runtime,
  workspace: Pick<Workspace, 'id' | 'default_region'>,
  text: string,
  options: { path?: string; now?: Date } = {},
): Promise<IngestResult> {
  const context = checkContext(workspace, options);
  return arriving(runtime, async (queued) => {
    const batch =
      text.length < WORKER_BELOW_BYTES ? checkNdjson(text, context) : await checkOnWorker(text, context);
    return ingestChecked(runtime, workspace, batch, options, queued);
  });
}

/** Batches being checked and resolved, not yet in the event queue: a forming group waits for them. */
const arrivingCounts = new WeakMap<Runtime, { n: number }>();

/** Runs `ingest` counted as arriving until it hands its batch to the queue (`queued`) or fails. */
async function arriving(
  runtime: Runtime,
  ingest: (queued: () => void) => Promise<IngestResult>,
): Promise<IngestResult> {
  const counter = arrivingCounts.get(runtime) ?? { n: 0 };
  arrivingCounts.set(runtime, counter);
  counter.n++;
  let counted = true;
  const queued = () => {
    if (!counted) return;
    counted = false;
    counter.n--;
  };
  try {
    return await ingest(queued);
  } finally {
    if (counted) {
      queued();
      // A group may be waiting for this batch, which will not come.
      eventQueue(runtime).nudge();
    }
  }
}

function checkContext(
  workspace: Pick<Workspace, 'id' | 'default_region'>,
  options: { path?: string; now?: Date },
): CheckContext {
  return {
    path: options.path ?? '/body',
    region: workspace.default_region,
    now: (options.now ?? new Date()).getTime(),
    workspaceId: workspace.id,
  };
}

async function ingestChecked(
  runtime: Runtime,
  workspace: Pick<Workspace, 'id' | 'default_region'>,
  batch: CheckedBatch,
  options: { path?: string },
  queued: () => void,
): Promise<IngestResult> {
  const path = options.path ?? '/body';
  const checked = batch.events;
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
  const issues: FieldIssue[] = [];
  for (const c of checked)
    if (c.ref.kind === 'id' && !liveIds.has(c.ref.value))
      issues.push({
        path: `${path}${pointer(c.index)}/contact/id`,
        message: `no contact ${c.ref.value}`,
        code: 'unknown_contact',
      });
  if (issues.length)
    throw new ValidationError(`${issues.length} invalid field(s); no event was written`, issues);
  // The event queue checks the batch against what is stored, then writes it with others.
  queued();
  return eventQueue(runtime).submit({
    workspace,
    received: batch.received,
    fresh: checked,
    types: batch.types,
    phoneIds,
    externalIds,
  });
}

/** A validated batch whose contacts are resolved, waiting for its dedupe and insert. */
interface PendingBatch {
  workspace: Pick<Workspace, 'id' | 'default_region'>;
  received: number;
  fresh: Checked[];
  types: [string, string, string][];
  phoneIds: Map<string, string>;
  externalIds: Map<string, string>;
}

/** Events joined per insert: big enough to amortise an insert's parts, small enough to stay quick. */
const MAX_GROUP_EVENTS = 100_000;
/** A group waits for batches on their way until it has this many events, or its oldest waited GATHER_MS. */
const GATHER_EVENTS = 40_000;
const GATHER_MS = 200;
// The order of the TabSeparated rows: contact_id is filled in here, the rest (`tail`) by the check.
const EVENT_COLUMNS = ['workspace_id', 'contact_id', 'name', 'ts', 'event_id', 'properties'] as const;
const queues = new WeakMap<Runtime, GroupCommit<PendingBatch, IngestResult>>();

function eventQueue(runtime: Runtime): GroupCommit<PendingBatch, IngestResult> {
  let queue = queues.get(runtime);
  if (!queue) {
    queue = new GroupCommit((batches) => writeBatches(runtime, batches), {
      weight: (batch) => batch.fresh.length,
      maxWeight: MAX_GROUP_EVENTS,
      // One group at a time, waiting for the batches still being checked: fewer, larger inserts.
      // Two groups at once (the next one's dedupe query during an insert) halved the inserts and
      // cost ~15% more CPU per event in ClickHouse's insert threads and merges (BENCHMARKS.md).
      concurrency: 1,
      moreComing: () => (arrivingCounts.get(runtime)?.n ?? 0) > 0,
      gatherWeight: GATHER_EVENTS,
      lingerMs: GATHER_MS,
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
  const claims: { writing: Set<string>; keys: string[] }[] = [];
  try {
    for (const [workspaceId, list] of byWorkspace) {
      // Ids are claimed synchronously before the lookup, so two running groups never race (the queue
      // runs one at a time now; the claims keep that safe if it runs more): an id the other group
      // claimed first is its own, and an id it released was committed before our lookup.
      const writing = writingIds(runtime, workspaceId);
      const claimed: string[] = [];
      claims.push({ writing, keys: claimed });
      const mineByBatch = new Map<PendingBatch, [Checked, string][]>();
      const idsByHour = new Map<number, string[]>();
      for (const batch of list) {
        const mine: [Checked, string][] = [];
        for (const c of batch.fresh) {
          const hour = hourOf(c.ts);
          const key = `${hour}|${c.eventId}`;
          if (writing.has(key)) continue;
          writing.add(key);
          claimed.push(key);
          mine.push([c, key]);
          const inHour = idsByHour.get(hour);
          if (inHour) inHour.push(c.eventId);
          else idsByHour.set(hour, [c.eventId]);
        }
        mineByBatch.set(batch, mine);
      }
      const storedKeys = await storedEventKeys(runtime, workspaceId, idsByHour);
      for (const [batch, mine] of mineByBatch)
        toWrite.set(
          batch,
          mine.filter(([, key]) => !storedKeys.has(key)).map(([c]) => c),
        );
    }
    return await insertGroup(runtime, batches, byWorkspace, toWrite);
  } finally {
    for (const { writing, keys } of claims) for (const key of keys) writing.delete(key);
  }
}

/** An hour holding at most this many stored ids per id looked up in it is read whole. */
const READ_WHOLE_HOUR_RATIO = 4;

/**
 * The `hour|event_id` keys among a group's that are already stored. A resend carries the same id and
 * timestamp, so only the hours the group touches are read (the `event_ids` primary key), which stays
 * cheap however many events are stored. Rows per hour are counted first: an hour with none needs no
 * lookup (the usual case for live events), an hour with few is read whole, and only a busy hour gets
 * the group's ids as a list (20,000 ids cost ClickHouse ~40-50 ms of CPU to parse and match).
 */
async function storedEventKeys(
  runtime: Runtime,
  workspaceId: string,
  idsByHour: Map<number, string[]>,
): Promise<Set<string>> {
  const stored = new Set<string>();
  if (idsByHour.size === 0) return stored;
  const db = runtime.ch.database;
  const counts = await runtime.ch.rows<{ hour: number; n: string }>(
    `SELECT toUnixTimestamp(hour) AS hour, count() AS n FROM ${db}.event_ids
      WHERE workspace_id = {ws:String} AND hour IN {hours:Array(DateTime('UTC'))} GROUP BY hour`,
    { ws: workspaceId, hours: [...idsByHour.keys()] },
  );
  const wholeHours: number[] = [];
  const listedHours: number[] = [];
  const listedIds: string[] = [];
  for (const { hour, n } of counts) {
    const ids = idsByHour.get(Number(hour)) ?? [];
    if (Number(n) <= READ_WHOLE_HOUR_RATIO * ids.length) wholeHours.push(Number(hour));
    else {
      listedHours.push(Number(hour));
      for (const id of ids) listedIds.push(id);
    }
  }
  const listed = stringSet('ids', listedIds);
  const [wholeRows, listedRows] = await Promise.all([
    wholeHours.length
      ? runtime.ch.rows<{ hour: number; event_id: string }>(
          `SELECT toUnixTimestamp(hour) AS hour, event_id FROM ${db}.event_ids
            WHERE workspace_id = {ws:String} AND hour IN {hours:Array(DateTime('UTC'))}`,
          { ws: workspaceId, hours: wholeHours },
        )
      : [],
    listedHours.length
      ? runtime.ch.rows<{ hour: number; event_id: string }>(
          `SELECT DISTINCT toUnixTimestamp(hour) AS hour, event_id FROM ${db}.event_ids
            WHERE workspace_id = {ws:String} AND hour IN {hours:Array(DateTime('UTC'))} AND event_id IN ${listed.sql}`,
          { ws: workspaceId, hours: listedHours, ...listed.params },
        )
      : [],
  ]);
  for (const r of wholeRows) stored.add(`${Number(r.hour)}|${r.event_id}`);
  for (const r of listedRows) stored.add(`${Number(r.hour)}|${r.event_id}`);
  return stored;
}

const writing = new WeakMap<Runtime, Map<string, Set<string>>>();
/** `hour|event_id` keys being written by a running group, per workspace. */
function writingIds(runtime: Runtime, workspaceId: string): Set<string> {
  let byWorkspace = writing.get(runtime);
  if (!byWorkspace) {
    byWorkspace = new Map();
    writing.set(runtime, byWorkspace);
  }
  let ids = byWorkspace.get(workspaceId);
  if (!ids) {
    ids = new Set();
    byWorkspace.set(workspaceId, ids);
  }
  return ids;
}

async function insertGroup(
  runtime: Runtime,
  batches: PendingBatch[],
  byWorkspace: Map<string, PendingBatch[]>,
  toWrite: Map<PendingBatch, Checked[]>,
): Promise<IngestResult[]> {
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
      body += `${ws}\t${tsv(contactId)}\t${c.tail}\n`;
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
      list.flatMap((batch) => batch.types),
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
  for (const [i, phone] of phones.entries()) {
    phoneIds.set(phone, result.ids[i]!);
    rememberIdentity(runtime, workspace.id, 'phone', phone, result.ids[i]!);
  }
  for (const [i, external] of externals.entries()) {
    const id = result.ids[phones.length + i]!;
    externalIds.set(external, id);
    rememberIdentity(runtime, workspace.id, 'external_id', external, id);
  }
  return result.created;
}

const knownTypes = new WeakMap<Runtime, Set<string>>();

/** Property types per event name, for the segment checker; known ones are skipped without a query. */
async function recordPropertyTypes(
  runtime: Runtime,
  workspaceId: string,
  types: [string, string, string][],
): Promise<void> {
  const known = knownTypes.get(runtime) ?? new Set<string>();
  knownTypes.set(runtime, known);
  const fresh = new Map<string, [string, string, string]>();
  for (const [name, property, type] of types) {
    const key = `${workspaceId}|${name}|${property}|${type}`;
    if (!known.has(key)) fresh.set(key, [name, property, type]);
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
