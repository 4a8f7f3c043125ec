import { appendedVersion } from '../contacts/index.ts';
import { loadContactRows, nextVersion } from '../contacts/store.ts';
import type { Channel, ConsentInput, ConsentStatus, Purpose } from '../contacts/types.ts';
import type { Runtime } from '../runtime.ts';
import type { Sql } from '../stores/postgres.ts';
import { type FieldIssue, NotFoundError, ValidationError } from '../validation.ts';
import { consentMaps, validateConsent, writeConsent } from './records.ts';

export { CHANNELS, type ConsentChange, consentMaps, PURPOSES, STATUSES } from './records.ts';

export interface ConsentRecord {
  id: number;
  channel: Channel;
  purpose: Purpose;
  status: ConsentStatus;
  source: string;
  proof: string | null;
  actor: string;
  recorded_at: string;
  created_at: string;
}

export interface CurrentConsent {
  channel: Channel;
  purpose: Purpose;
  status: ConsentStatus;
  recorded_at: string;
}

/**
 * Records consent changes for one contact: every input becomes a history record, and the current
 * state moves forward, in one Postgres transaction; then the contact gets a new version carrying the
 * new consent map in ClickHouse (segments read it there). Postgres stays the authority for sends.
 */
export async function recordConsent(
  runtime: Runtime,
  workspaceId: string,
  contactId: string,
  inputs: ConsentInput[],
  options: { actor?: string; path?: string; now?: Date } = {},
): Promise<CurrentConsent[]> {
  const issues: FieldIssue[] = [];
  const changes = validateConsent(inputs, options.path ?? '/body', issues, {
    actor: options.actor ?? 'api',
    now: options.now ?? new Date(),
  });
  if (issues.length) throw new ValidationError('invalid consent; nothing was recorded', issues);
  const row = (await loadContactRows(runtime.ch, workspaceId, [contactId])).get(contactId);
  if (!row) throw new NotFoundError(`no contact ${contactId}`);
  await runtime.pg.transaction((tx) =>
    writeConsent(
      tx,
      workspaceId,
      changes.map((change) => ({ contactId, change })),
    ),
  );
  const consent = (await consentMaps(runtime.pg, workspaceId, [contactId])).get(contactId) ?? {};
  if (JSON.stringify(consent) !== JSON.stringify(row.consent)) {
    const now = new Date().toISOString().replace('T', ' ').replace('Z', '');
    await runtime.ch.insert('contacts', [appendedVersion(row, { consent, updated_at: now }, nextVersion())]);
  }
  return listCurrentConsent(runtime.pg, workspaceId, contactId);
}

/** Current status for one channel and purpose, for many contacts; contacts with no record are absent. */
export async function currentConsent(
  sql: Sql,
  workspaceId: string,
  contactIds: readonly string[],
  channel: Channel,
  purpose: Purpose,
): Promise<Map<string, ConsentStatus>> {
  const out = new Map<string, ConsentStatus>();
  if (contactIds.length === 0) return out;
  const { rows } = await sql.query<{ contact_id: string; status: ConsentStatus }>(
    `SELECT contact_id, status FROM consent_current
      WHERE workspace_id = $1 AND channel = $2 AND purpose = $3 AND contact_id = ANY($4::text[])`,
    [workspaceId, channel, purpose, [...new Set(contactIds)]],
  );
  for (const row of rows) out.set(row.contact_id, row.status);
  return out;
}

export async function listCurrentConsent(
  sql: Sql,
  workspaceId: string,
  contactId: string,
): Promise<CurrentConsent[]> {
  const { rows } = await sql.query<CurrentConsent & { recorded_at: Date | string }>(
    `SELECT channel, purpose, status, recorded_at FROM consent_current
      WHERE workspace_id = $1 AND contact_id = $2 ORDER BY channel, purpose`,
    [workspaceId, contactId],
  );
  return rows.map((r) => ({ ...r, recorded_at: iso(r.recorded_at) }));
}

/** Every consent record of a contact, oldest first. */
export async function consentHistory(
  sql: Sql,
  workspaceId: string,
  contactId: string,
): Promise<ConsentRecord[]> {
  const { rows } = await sql.query<
    ConsentRecord & { id: string | number; recorded_at: Date | string; created_at: Date | string }
  >(
    `SELECT id, channel, purpose, status, source, proof, actor, recorded_at, created_at FROM consent_records
      WHERE workspace_id = $1 AND contact_id = $2 ORDER BY recorded_at, id`,
    [workspaceId, contactId],
  );
  return rows.map((r) => ({
    ...r,
    id: Number(r.id),
    recorded_at: iso(r.recorded_at),
    created_at: iso(r.created_at),
  }));
}

export interface ConsentExport {
  contact_id: string;
  workspace_id: string;
  exported_at: string;
  current: CurrentConsent[];
  history: ConsentRecord[];
}

/** The full consent file of a contact: what they agreed to, when, where, and the proof. */
export async function exportConsent(
  sql: Sql,
  workspaceId: string,
  contactId: string,
): Promise<ConsentExport> {
  const [current, history] = await Promise.all([
    listCurrentConsent(sql, workspaceId, contactId),
    consentHistory(sql, workspaceId, contactId),
  ]);
  return {
    contact_id: contactId,
    workspace_id: workspaceId,
    exported_at: new Date().toISOString(),
    current,
    history,
  };
}

function iso(value: Date | string): string {
  return value instanceof Date ? value.toISOString() : new Date(value).toISOString();
}
