/**
 * Senders: one business phone number (WhatsApp) each, with how to call the provider for it.
 * Tokens and app secrets are write-only: the public shape says only whether they are set.
 */
import type { FieldError } from '../api/problem.ts';
import { newId } from './ids.ts';
import type { Sql } from './stores/postgres.ts';

export const TIERS = ['TIER_250', 'TIER_2K', 'TIER_10K', 'TIER_100K', 'TIER_UNLIMITED'] as const;
export const QUALITIES = ['GREEN', 'YELLOW', 'RED', 'UNKNOWN'] as const;
export const SENDER_STATUSES = ['active', 'paused', 'stopped'] as const;
export type Tier = (typeof TIERS)[number];

export interface Sender {
  id: string;
  workspace_id: string;
  channel: 'whatsapp' | 'sms' | 'email';
  name: string;
  base_url: string;
  api_version: string;
  phone_number_id: string | null;
  display_phone_number: string | null;
  waba_id: string | null;
  portfolio_id: string;
  throughput_mps: number;
  tier: Tier;
  quality: (typeof QUALITIES)[number];
  status: (typeof SENDER_STATUSES)[number];
  status_reason: string | null;
  warmup_started_at: string | null;
  created_at: string;
  updated_at: string;
  has_access_token: boolean;
  has_app_secret: boolean;
  has_verify_token: boolean;
}

/** A sender with its secrets, for the adapter and webhook verification only; never returned by the API. */
export interface SenderWithSecrets extends Sender {
  access_token: string | null;
  app_secret: string | null;
  verify_token: string | null;
}

export interface SenderInput {
  name?: string;
  channel?: Sender['channel'];
  base_url?: string;
  api_version?: string;
  phone_number_id?: string | null;
  display_phone_number?: string | null;
  waba_id?: string | null;
  portfolio_id?: string;
  access_token?: string | null;
  app_secret?: string | null;
  verify_token?: string | null;
  throughput_mps?: number;
  tier?: Tier;
  quality?: Sender['quality'];
  status?: Sender['status'];
  status_reason?: string | null;
}

export class SenderError extends Error {
  readonly status: 404 | 409 | 422;
  readonly errors: FieldError[];
  constructor(status: 404 | 409 | 422, message: string, errors: FieldError[] = []) {
    super(message);
    this.status = status;
    this.errors = errors;
  }
}

const WRITABLE = [
  'name',
  'channel',
  'base_url',
  'api_version',
  'phone_number_id',
  'display_phone_number',
  'waba_id',
  'portfolio_id',
  'access_token',
  'app_secret',
  'verify_token',
  'throughput_mps',
  'tier',
  'quality',
  'status',
  'status_reason',
] as const;

const COLUMNS = `id, workspace_id, channel, name, base_url, api_version, phone_number_id, display_phone_number,
  waba_id, portfolio_id, throughput_mps, tier, quality, status, status_reason, warmup_started_at, created_at,
  updated_at, access_token, app_secret, verify_token`;

type Row = Omit<SenderWithSecrets, 'has_access_token' | 'has_app_secret' | 'has_verify_token'>;

function withFlags(row: Row): SenderWithSecrets {
  return {
    ...row,
    created_at: new Date(row.created_at).toISOString(),
    updated_at: new Date(row.updated_at).toISOString(),
    warmup_started_at: row.warmup_started_at ? new Date(row.warmup_started_at).toISOString() : null,
    has_access_token: !!row.access_token,
    has_app_secret: !!row.app_secret,
    has_verify_token: !!row.verify_token,
  };
}

/** The sender without its secrets. */
export function publicSender(sender: SenderWithSecrets): Sender {
  const { access_token: _t, app_secret: _s, verify_token: _v, ...rest } = sender;
  return rest;
}

function check(input: SenderInput, creating: boolean): FieldError[] {
  const errors: FieldError[] = [];
  const add = (field: string, message: string) => errors.push({ path: `/body/${field}`, message });
  if (creating && !input.name?.trim()) add('name', 'name is required');
  if (creating && !input.portfolio_id?.trim()) add('portfolio_id', 'portfolio_id is required');
  if (input.base_url !== undefined && !/^https?:\/\/[^\s/]+/.test(input.base_url))
    add('base_url', 'base_url must be an http(s) URL');
  if (input.api_version !== undefined && !/^v\d+\.\d+$/.test(input.api_version))
    add('api_version', 'api_version looks like v23.0');
  if (input.phone_number_id && !/^[0-9A-Za-z_-]{1,64}$/.test(input.phone_number_id))
    add('phone_number_id', 'phone_number_id is the Cloud API id of the number');
  if (
    input.throughput_mps !== undefined &&
    !(Number.isInteger(input.throughput_mps) && input.throughput_mps >= 1 && input.throughput_mps <= 1000)
  )
    add('throughput_mps', 'throughput_mps is an integer from 1 to 1000');
  if (input.tier !== undefined && !TIERS.includes(input.tier))
    add('tier', `tier is one of ${TIERS.join(', ')}`);
  if (input.quality !== undefined && !QUALITIES.includes(input.quality))
    add('quality', `quality is one of ${QUALITIES.join(', ')}`);
  if (input.status !== undefined && !SENDER_STATUSES.includes(input.status))
    add('status', `status is one of ${SENDER_STATUSES.join(', ')}`);
  const channel = input.channel ?? 'whatsapp';
  if (creating && channel === 'whatsapp' && !input.phone_number_id)
    add('phone_number_id', 'a WhatsApp sender needs its phone_number_id');
  return errors;
}

function uniqueViolation(error: unknown): SenderError | null {
  const e = error as { code?: string; constraint?: string; message?: string };
  if (e?.code !== '23505') return null;
  const field = `${e.constraint ?? ''} ${e.message ?? ''}`.includes('phone_number_id')
    ? 'phone_number_id'
    : 'name';
  return new SenderError(409, `a sender with this ${field} already exists`, [
    { path: `/body/${field}`, message: `${field} is already used by another sender` },
  ]);
}

export async function createSender(
  sql: Sql,
  workspaceId: string,
  input: SenderInput,
): Promise<SenderWithSecrets> {
  const errors = check(input, true);
  if (errors.length) throw new SenderError(422, 'invalid sender', errors);
  const fields = WRITABLE.filter((f) => input[f] !== undefined);
  const values = fields.map((f) => input[f]);
  try {
    const { rows } = await sql.query<Row>(
      `INSERT INTO senders (id, workspace_id${fields.map((f) => `, ${f}`).join('')})
       VALUES ($1, $2${fields.map((_, i) => `, $${i + 3}`).join('')}) RETURNING ${COLUMNS}`,
      [newId('snd', 16), workspaceId, ...values],
    );
    return withFlags(rows[0]!);
  } catch (error) {
    throw uniqueViolation(error) ?? error;
  }
}

export async function getSender(
  sql: Sql,
  workspaceId: string,
  id: string,
): Promise<SenderWithSecrets | null> {
  const { rows } = await sql.query<Row>(
    `SELECT ${COLUMNS} FROM senders WHERE workspace_id = $1 AND id = $2`,
    [workspaceId, id],
  );
  return rows[0] ? withFlags(rows[0]) : null;
}

/** For webhook routing: the number is unique across workspaces. */
export async function getSenderByPhoneNumberId(
  sql: Sql,
  phoneNumberId: string,
): Promise<SenderWithSecrets | null> {
  const { rows } = await sql.query<Row>(`SELECT ${COLUMNS} FROM senders WHERE phone_number_id = $1`, [
    phoneNumberId,
  ]);
  return rows[0] ? withFlags(rows[0]) : null;
}

export async function listSenders(sql: Sql, workspaceId: string): Promise<SenderWithSecrets[]> {
  const { rows } = await sql.query<Row>(
    `SELECT ${COLUMNS} FROM senders WHERE workspace_id = $1 ORDER BY created_at, id`,
    [workspaceId],
  );
  return rows.map(withFlags);
}

export async function updateSender(
  sql: Sql,
  workspaceId: string,
  id: string,
  patch: SenderInput,
): Promise<SenderWithSecrets> {
  const errors = check(patch, false);
  if (patch.name !== undefined && !patch.name.trim())
    errors.push({ path: '/body/name', message: 'name may not be empty' });
  if (errors.length) throw new SenderError(422, 'invalid sender', errors);
  const fields = WRITABLE.filter((f) => patch[f] !== undefined);
  if (!fields.length) {
    const current = await getSender(sql, workspaceId, id);
    if (!current) throw new SenderError(404, `no sender ${id}`);
    return current;
  }
  try {
    const { rows } = await sql.query<Row>(
      `UPDATE senders SET ${fields.map((f, i) => `${f} = $${i + 3}`).join(', ')}, updated_at = now()
       WHERE workspace_id = $1 AND id = $2 RETURNING ${COLUMNS}`,
      [workspaceId, id, ...fields.map((f) => patch[f])],
    );
    if (!rows[0]) throw new SenderError(404, `no sender ${id}`);
    return withFlags(rows[0]);
  } catch (error) {
    throw uniqueViolation(error) ?? error;
  }
}

export async function deleteSender(sql: Sql, workspaceId: string, id: string): Promise<boolean> {
  const { rowCount } = await sql.query('DELETE FROM senders WHERE workspace_id = $1 AND id = $2', [
    workspaceId,
    id,
  ]);
  return rowCount > 0;
}
