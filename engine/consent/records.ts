import { parseDateTime } from '../contacts/attributes.ts';
import type { Channel, ConsentInput, ConsentStatus, Purpose } from '../contacts/types.ts';
import { copyText, type Sql } from '../stores/postgres.ts';
import { type FieldIssue, pointer } from '../validation.ts';

export const CHANNELS: readonly Channel[] = ['whatsapp', 'sms', 'email'];
export const PURPOSES: readonly Purpose[] = ['marketing', 'utility', 'authentication'];
export const STATUSES: readonly ConsentStatus[] = ['opted_in', 'opted_out'];

/** A consent input after validation: every field present, `recorded_at` as ISO 8601 UTC. */
export interface ConsentChange {
  channel: Channel;
  purpose: Purpose;
  status: ConsentStatus;
  source: string;
  proof: string | null;
  actor: string;
  recorded_at: string;
}

export function validateConsent(
  inputs: unknown,
  path: string,
  issues: FieldIssue[],
  defaults: { actor: string; now: Date },
): ConsentChange[] {
  if (!Array.isArray(inputs)) {
    issues.push({ path, message: 'must be a list of consent changes' });
    return [];
  }
  const out: ConsentChange[] = [];
  inputs.forEach((raw: Partial<ConsentInput>, i) => {
    const at = `${path}${pointer(i)}`;
    const before = issues.length;
    if (typeof raw !== 'object' || raw === null) {
      issues.push({ path: at, message: 'must be an object' });
      return;
    }
    if (!CHANNELS.includes(raw.channel as Channel))
      issues.push({ path: `${at}/channel`, message: `must be one of ${CHANNELS.join(', ')}` });
    if (!PURPOSES.includes(raw.purpose as Purpose))
      issues.push({ path: `${at}/purpose`, message: `must be one of ${PURPOSES.join(', ')}` });
    if (!STATUSES.includes(raw.status as ConsentStatus))
      issues.push({ path: `${at}/status`, message: `must be one of ${STATUSES.join(', ')}` });
    if (typeof raw.source !== 'string' || raw.source.trim() === '' || raw.source.length > 200)
      issues.push({ path: `${at}/source`, message: 'is required (1 to 200 characters), e.g. "signup_form"' });
    if (
      raw.proof !== undefined &&
      raw.proof !== null &&
      (typeof raw.proof !== 'string' || raw.proof.length > 10_000)
    )
      issues.push({ path: `${at}/proof`, message: 'must be text of at most 10,000 characters' });
    if (
      raw.actor !== undefined &&
      (typeof raw.actor !== 'string' || raw.actor.length === 0 || raw.actor.length > 200)
    )
      issues.push({ path: `${at}/actor`, message: 'must be text of 1 to 200 characters' });
    let recordedAt = defaults.now.toISOString();
    if (raw.recorded_at !== undefined) {
      const parsed = typeof raw.recorded_at === 'string' ? parseDateTime(raw.recorded_at) : undefined;
      if (!parsed) issues.push({ path: `${at}/recorded_at`, message: 'must be an ISO 8601 date-time' });
      else if (Date.parse(parsed) > defaults.now.getTime() + 5 * 60_000)
        issues.push({ path: `${at}/recorded_at`, message: 'is in the future' });
      else recordedAt = parsed;
    }
    if (issues.length > before) return;
    out.push({
      channel: raw.channel as Channel,
      purpose: raw.purpose as Purpose,
      status: raw.status as ConsentStatus,
      source: (raw.source as string).trim(),
      proof: raw.proof ?? null,
      actor: raw.actor ?? defaults.actor,
      recorded_at: recordedAt,
    });
  });
  return out;
}

/**
 * Appends consent records and moves `consent_current` forward, inside the caller's transaction.
 * `current` keeps the record with the latest `recorded_at`, so a late-arriving older record is kept
 * in history without overriding a newer decision. With `onlyChanges`, a record that would repeat the
 * current status is skipped (imports: the same file twice writes nothing).
 */
export async function writeConsent(
  tx: Sql,
  workspaceId: string,
  changes: { contactId: string; change: ConsentChange }[],
  options: {
    onlyChanges?: boolean;
    /**
     * Contacts the caller has just found absent from the contact store (new in this write), whose
     * consent state is not read: on PGlite that read probes the table once per id, and in a fresh
     * import every id is new. (A contact half-written by a crash may still have rows: its key's
     * copy then falls back to the conditional upsert, and a repeated status adds one history record.)
     */
    newContacts?: ReadonlySet<string>;
  } = {},
): Promise<{ written: number; current: Map<string, Record<string, ConsentStatus>> }> {
  const ids = [...new Set(changes.map((c) => c.contactId))];
  const current = new Map<string, Record<string, ConsentStatus>>(ids.map((id) => [id, {}]));
  if (changes.length === 0) return { written: 0, current };
  const toRead = options.newContacts ? ids.filter((id) => !options.newContacts!.has(id)) : ids;
  // The current state is read once: it filters repeats and gives the resulting maps without a re-read.
  const { rows } = await tx.query<{
    contact_id: string;
    channel: string;
    purpose: string;
    status: ConsentStatus;
    recorded_at: Date | string;
  }>(
    `SELECT contact_id, channel, purpose, status, recorded_at FROM consent_current
      WHERE workspace_id = $1 AND contact_id = ANY($2::text[])`,
    [workspaceId, toRead],
  );
  const stored = new Set(rows.map((r) => `${r.contact_id}|${r.channel}.${r.purpose}`));
  const state = new Map(
    rows.map((r) => [
      `${r.contact_id}|${r.channel}.${r.purpose}`,
      { status: r.status, at: new Date(r.recorded_at).getTime() },
    ]),
  );
  const pending = changes.filter(({ contactId, change }) => {
    const key = `${contactId}|${change.channel}.${change.purpose}`;
    const now = state.get(key);
    if (options.onlyChanges && now?.status === change.status) return false;
    const at = Date.parse(change.recorded_at);
    // Same rule as the upsert below: the latest recorded_at wins, a tie goes to the later record.
    if (!now || at >= now.at) state.set(key, { status: change.status, at });
    return true;
  });
  for (const [key, { status }] of state) {
    const [contactId, consentKey] = key.split('|') as [string, string];
    current.get(contactId)![consentKey] = status;
  }
  if (pending.length === 0) return { written: 0, current };
  if (tx.copyFrom) await copyConsent(tx, tx.copyFrom.bind(tx), workspaceId, pending, stored);
  else await insertConsent(tx, workspaceId, pending);
  return { written: pending.length, current };
}

type PendingChange = { contactId: string; change: ConsentChange };

/** One statement: the records, then `consent_current` from what was inserted (a server's path). */
async function insertConsent(tx: Sql, workspaceId: string, pending: PendingChange[]): Promise<void> {
  const column = <K extends keyof ConsentChange>(k: K) => pending.map((p) => p.change[k]);
  await tx.query(
    `WITH input AS (
       SELECT * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::timestamptz[])
         WITH ORDINALITY AS t(contact_id, channel, purpose, status, source, proof, actor, recorded_at, ord)
     ), inserted AS (
       INSERT INTO consent_records (workspace_id, contact_id, channel, purpose, status, source, proof, actor, recorded_at)
       SELECT $1, contact_id, channel, purpose, status, source, proof, actor, recorded_at FROM input ORDER BY ord
       RETURNING id, contact_id, channel, purpose, status, recorded_at
     )
     INSERT INTO consent_current (workspace_id, contact_id, channel, purpose, status, recorded_at, record_id)
     SELECT DISTINCT ON (contact_id, channel, purpose) $1, contact_id, channel, purpose, status, recorded_at, id
       FROM inserted ORDER BY contact_id, channel, purpose, recorded_at DESC, id DESC
     ON CONFLICT (workspace_id, contact_id, channel, purpose) DO UPDATE
       SET status = EXCLUDED.status, recorded_at = EXCLUDED.recorded_at, record_id = EXCLUDED.record_id
       WHERE consent_current.recorded_at <= EXCLUDED.recorded_at`,
    [
      workspaceId,
      pending.map((p) => p.contactId),
      column('channel'),
      column('purpose'),
      column('status'),
      column('source'),
      column('proof'),
      column('actor'),
      column('recorded_at'),
    ],
  );
}

/** consent_records' columns in COPY order. */
export const RECORD_COLUMNS = [
  'id',
  'workspace_id',
  'contact_id',
  'channel',
  'purpose',
  'status',
  'source',
  'proof',
  'actor',
  'recorded_at',
] as const;
const CURRENT_COLUMNS = [
  'workspace_id',
  'contact_id',
  'channel',
  'purpose',
  'status',
  'recorded_at',
  'record_id',
] as const;

// PGlite runs each COPY to completion on the thread that serves requests: chunks of this many rows
// (tens of milliseconds each) with a turn of the event loop between them keep the API answering.
const COPY_CHUNK = 2_000;
const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * The same write with COPY (PGlite): ids are taken from the sequence in one block, records are
 * copied with them, and `consent_current` gets the latest record per key by the same rule as
 * `insertConsent` (latest recorded_at, a tie to the later record). Keys that had no current row
 * (every key of a new contact) are copied; the others go through the conditional upsert. The
 * caller's transaction holds PGlite's only connection, so `stored` cannot go stale meanwhile.
 */
async function copyConsent(
  tx: Sql,
  copy: NonNullable<Sql['copyFrom']>,
  workspaceId: string,
  pending: PendingChange[],
  stored: ReadonlySet<string>,
): Promise<void> {
  const { rows } = await tx.query<{ first: string }>(
    `WITH block AS (SELECT nextval(pg_get_serial_sequence('consent_records', 'id')) AS first)
     SELECT first, setval(pg_get_serial_sequence('consent_records', 'id'), first + $1 - 1) FROM block`,
    [pending.length],
  );
  const first = Number(rows[0]!.first);
  const ws = copyText(workspaceId);
  let records = '';
  const latest = new Map<string, { index: number; at: number }>();
  for (let i = 0; i < pending.length; i++) {
    const { contactId, change } = pending[i]!;
    records += `${first + i}\t${ws}\t${copyText(contactId)}\t${change.channel}\t${change.purpose}\t${change.status}\t${copyText(change.source)}\t${change.proof === null ? '\\N' : copyText(change.proof)}\t${copyText(change.actor)}\t${change.recorded_at}\n`;
    const key = `${contactId}|${change.channel}.${change.purpose}`;
    const at = Date.parse(change.recorded_at);
    const seen = latest.get(key);
    if (!seen || at >= seen.at) latest.set(key, { index: i, at });
    if ((i + 1) % COPY_CHUNK === 0 || i === pending.length - 1) {
      await copy('consent_records', RECORD_COLUMNS, records);
      records = '';
      await yieldToEventLoop();
    }
  }
  const known: PendingChange[] = [];
  const knownIds: number[] = [];
  const fresh: [PendingChange, number][] = [];
  for (const [key, { index }] of latest) {
    if (stored.has(key)) {
      known.push(pending[index]!);
      knownIds.push(first + index);
    } else fresh.push([pending[index]!, first + index]);
  }
  for (let i = 0; i < fresh.length; i += COPY_CHUNK) {
    const chunk = fresh.slice(i, i + COPY_CHUNK);
    let text = '';
    for (const [p, id] of chunk)
      text += `${ws}\t${copyText(p.contactId)}\t${p.change.channel}\t${p.change.purpose}\t${p.change.status}\t${p.change.recorded_at}\t${id}\n`;
    await tx.query('SAVEPOINT consent_copy');
    try {
      await copy('consent_current', CURRENT_COLUMNS, text);
      await tx.query('RELEASE SAVEPOINT consent_copy');
    } catch (error) {
      // A key already had a current row (a contact of `newContacts` half-written before): this chunk
      // goes through the conditional upsert instead. Anything else is a real failure.
      if ((error as { code?: string }).code !== '23505') throw error;
      await tx.query('ROLLBACK TO SAVEPOINT consent_copy');
      for (const [p, id] of chunk) {
        known.push(p);
        knownIds.push(id);
      }
    }
    await yieldToEventLoop();
  }
  if (known.length)
    await tx.query(
      `INSERT INTO consent_current (workspace_id, contact_id, channel, purpose, status, recorded_at, record_id)
       SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[], $7::bigint[])
       ON CONFLICT (workspace_id, contact_id, channel, purpose) DO UPDATE
         SET status = EXCLUDED.status, recorded_at = EXCLUDED.recorded_at, record_id = EXCLUDED.record_id
         WHERE consent_current.recorded_at <= EXCLUDED.recorded_at`,
      [
        workspaceId,
        known.map((p) => p.contactId),
        known.map((p) => p.change.channel),
        known.map((p) => p.change.purpose),
        known.map((p) => p.change.status),
        known.map((p) => p.change.recorded_at),
        knownIds,
      ],
    );
}

/** Current consent of each contact as `{ 'whatsapp.marketing': 'opted_in', ... }`. */
export async function consentMaps(
  sql: Sql,
  workspaceId: string,
  contactIds: readonly string[],
): Promise<Map<string, Record<string, ConsentStatus>>> {
  const out = new Map<string, Record<string, ConsentStatus>>();
  if (contactIds.length === 0) return out;
  const { rows } = await sql.query<{
    contact_id: string;
    channel: string;
    purpose: string;
    status: ConsentStatus;
  }>(
    `SELECT contact_id, channel, purpose, status FROM consent_current
      WHERE workspace_id = $1 AND contact_id = ANY($2::text[]) ORDER BY contact_id, channel, purpose`,
    [workspaceId, [...new Set(contactIds)]],
  );
  for (const id of contactIds) out.set(id, {});
  for (const row of rows) out.get(row.contact_id)![`${row.channel}.${row.purpose}`] = row.status;
  return out;
}
