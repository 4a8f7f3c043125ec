import { newId } from '../ids.ts';
import type { Sql } from '../stores/postgres.ts';
import { isValidTimeZone } from '../workspaces.ts';
import {
  type Campaign,
  CampaignError,
  type CampaignInput,
  type CampaignSettings,
  type CampaignState,
  DEFAULT_SETTINGS,
  type Schedule,
} from './types.ts';

const COLUMNS = `id, workspace_id, name, type, channel, sender_id, audience, content, goal,
  holdout_percent::float8 AS holdout_percent, schedule, settings, state, state_reason, audience_count,
  created_by, created_at, updated_at, launched_at, finished_at`;

type Row = Omit<Campaign, 'created_at' | 'updated_at' | 'launched_at' | 'finished_at'> & {
  created_at: Date | string;
  updated_at: Date | string;
  launched_at: Date | string | null;
  finished_at: Date | string | null;
};

const iso = (value: Date | string | null) =>
  value === null ? null : value instanceof Date ? value.toISOString() : new Date(value).toISOString();

function fromRow(row: Row): Campaign {
  return {
    ...row,
    holdout_percent: Number(row.holdout_percent),
    settings: { ...DEFAULT_SETTINGS, ...(row.settings as Partial<CampaignSettings>) },
    created_at: iso(row.created_at)!,
    updated_at: iso(row.updated_at)!,
    launched_at: iso(row.launched_at),
    finished_at: iso(row.finished_at),
  };
}

/** Which state changes are allowed, and by which action. */
export const TRANSITIONS: Record<string, { from: CampaignState[]; to: CampaignState }> = {
  launch_now: { from: ['draft'], to: 'running' },
  launch_later: { from: ['draft'], to: 'scheduled' },
  start: { from: ['scheduled'], to: 'running' },
  pause: { from: ['running', 'scheduled'], to: 'paused' },
  resume: { from: ['paused'], to: 'running' },
  cancel: { from: ['draft', 'scheduled', 'running', 'paused'], to: 'cancelled' },
  complete: { from: ['running'], to: 'completed' },
  fail: { from: ['scheduled', 'running', 'paused'], to: 'failed' },
};

/** Checks what can be checked without other modules; returns every problem at once. */
export function validateInput(
  input: Partial<CampaignInput>,
  prefix = '/body',
): { path: string; message: string }[] {
  const errors: { path: string; message: string }[] = [];
  if (input.audience?.type === 'segment' && !input.audience.dsl && !input.audience.segment_id)
    errors.push({ path: `${prefix}/audience`, message: 'a segment audience needs dsl or segment_id' });
  if (input.audience?.type === 'segment' && input.audience.dsl && input.audience.segment_id)
    errors.push({ path: `${prefix}/audience`, message: 'give dsl or segment_id, not both' });
  if (input.schedule) errors.push(...validateSchedule(input.schedule, `${prefix}/schedule`));
  const quiet = input.settings?.quiet_hours;
  if (quiet && quiet.start === quiet.end)
    errors.push({ path: `${prefix}/settings/quiet_hours`, message: 'start and end must differ' });
  if (input.type && input.type !== 'broadcast')
    errors.push({ path: `${prefix}/type`, message: `${input.type} campaigns are not available yet` });
  return errors;
}

export function validateSchedule(schedule: Schedule, path: string): { path: string; message: string }[] {
  const errors: { path: string; message: string }[] = [];
  if (schedule.type === 'at') {
    if (!isValidTimeZone(schedule.timezone))
      errors.push({ path: `${path}/timezone`, message: `unknown time zone ${schedule.timezone}` });
    else if (Number.isNaN(scheduleStart(schedule).getTime()))
      errors.push({ path: `${path}/at`, message: 'not a date-time' });
  }
  if (schedule.type === 'optimal') {
    const start = Date.parse(schedule.window_start);
    const end = Date.parse(schedule.window_end);
    if (Number.isNaN(start)) errors.push({ path: `${path}/window_start`, message: 'not a date-time' });
    if (Number.isNaN(end)) errors.push({ path: `${path}/window_end`, message: 'not a date-time' });
    if (start >= end) errors.push({ path: `${path}/window_end`, message: 'must be after window_start' });
    // the send-time model chooses among hours: a window must hold at least one
    else if (end - start < 3_600_000)
      errors.push({ path: `${path}/window_end`, message: 'the window must be at least an hour long' });
  }
  return errors;
}

/** The instant a schedule starts: now, a wall-clock time in a zone, or the window start. */
export function scheduleStart(schedule: Schedule, now = new Date()): Date {
  if (schedule.type === 'now') return now;
  if (schedule.type === 'optimal') return new Date(schedule.window_start);
  // A wall-clock time with an explicit offset or Z is taken as given; otherwise it is local to the zone.
  if (/(Z|[+-]\d\d:?\d\d)$/.test(schedule.at)) return new Date(schedule.at);
  return wallClockToInstant(schedule.at, schedule.timezone);
}

export function wallClockToInstant(local: string, zone: string): Date {
  const m = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2}))?$/.exec(local);
  if (!m) return new Date(Number.NaN);
  const [y, mo, d, h, mi, s] = m.slice(1).map((v) => Number(v ?? 0)) as number[];
  const guess = Date.UTC(y!, mo! - 1, d!, h!, mi!, s ?? 0);
  // Two passes of "offset at the guess" settle the zone offset, DST edges included.
  let instant = guess - zoneOffsetMs(new Date(guess), zone);
  instant = guess - zoneOffsetMs(new Date(instant), zone);
  return new Date(instant);
}

/** Offset of a zone from UTC at an instant, in ms (positive east of Greenwich). */
export function zoneOffsetMs(at: Date, zone: string): number {
  const parts = new Intl.DateTimeFormat('en-US', {
    timeZone: zone,
    hourCycle: 'h23',
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
  }).formatToParts(at);
  const get = (type: string) => Number(parts.find((p) => p.type === type)?.value);
  const asUtc = Date.UTC(
    get('year'),
    get('month') - 1,
    get('day'),
    get('hour'),
    get('minute'),
    get('second'),
  );
  return asUtc - Math.floor(at.getTime() / 1000) * 1000;
}

export async function createCampaign(
  sql: Sql,
  workspaceId: string,
  input: CampaignInput,
  actor: string,
): Promise<Campaign> {
  const errors = validateInput(input);
  if (input.sender_id)
    errors.push(...(await checkSender(sql, workspaceId, input.sender_id, '/body/sender_id')));
  if (errors.length) throw new CampaignError('invalid', 'the campaign is invalid', errors);
  const id = newId('cmp', 16);
  const settings = { ...DEFAULT_SETTINGS, ...input.settings };
  try {
    const { rows } = await sql.query<Row>(
      `INSERT INTO campaigns (id, workspace_id, name, type, channel, sender_id, audience, content, goal,
         holdout_percent, schedule, settings, created_by)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING ${COLUMNS}`,
      [
        id,
        workspaceId,
        input.name,
        input.type ?? 'broadcast',
        input.channel ?? 'whatsapp',
        input.sender_id ?? null,
        JSON.stringify(input.audience),
        JSON.stringify(input.content),
        input.goal ? JSON.stringify(input.goal) : null,
        input.holdout_percent ?? 0,
        JSON.stringify(input.schedule ?? { type: 'now' }),
        JSON.stringify(settings),
        actor,
      ],
    );
    await audit(sql, workspaceId, id, actor, 'create', { changes: input });
    return fromRow(rows[0]!);
  } catch (error) {
    if ((error as { code?: string }).code === '23505')
      throw new CampaignError('conflict', `a campaign named ${input.name} exists`, [
        { path: '/body/name', message: 'already used in this workspace' },
      ]);
    throw error;
  }
}

async function checkSender(sql: Sql, workspaceId: string, senderId: string, path: string) {
  const { rows } = await sql.query('SELECT 1 FROM senders WHERE id = $1 AND workspace_id = $2', [
    senderId,
    workspaceId,
  ]);
  return rows.length ? [] : [{ path, message: `no sender ${senderId} in this workspace` }];
}

export async function getCampaign(sql: Sql, workspaceId: string, id: string): Promise<Campaign | undefined> {
  const { rows } = await sql.query<Row>(
    `SELECT ${COLUMNS} FROM campaigns WHERE id = $1 AND workspace_id = $2`,
    [id, workspaceId],
  );
  return rows[0] ? fromRow(rows[0]) : undefined;
}

export async function requireCampaign(sql: Sql, workspaceId: string, id: string): Promise<Campaign> {
  const campaign = await getCampaign(sql, workspaceId, id);
  if (!campaign) throw new CampaignError('not_found', `no campaign ${id}`);
  return campaign;
}

export async function listCampaigns(
  sql: Sql,
  workspaceId: string,
  options: { state?: CampaignState; limit?: number } = {},
): Promise<Campaign[]> {
  const { rows } = await sql.query<Row>(
    `SELECT ${COLUMNS} FROM campaigns WHERE workspace_id = $1 AND ($2::text IS NULL OR state = $2)
     ORDER BY created_at DESC, id LIMIT $3`,
    [workspaceId, options.state ?? null, options.limit ?? 100],
  );
  return rows.map(fromRow);
}

/** Edits a draft; anything launched is frozen (pause or cancel it instead). */
export async function updateCampaign(
  sql: Sql,
  workspaceId: string,
  id: string,
  patch: Partial<CampaignInput>,
  actor: string,
): Promise<Campaign> {
  const current = await requireCampaign(sql, workspaceId, id);
  if (current.state !== 'draft')
    throw new CampaignError('conflict', `a ${current.state} campaign cannot be edited; only drafts can`);
  const errors = validateInput(patch);
  if (patch.sender_id)
    errors.push(...(await checkSender(sql, workspaceId, patch.sender_id, '/body/sender_id')));
  if (errors.length) throw new CampaignError('invalid', 'the change is invalid', errors);
  const next = {
    name: patch.name ?? current.name,
    sender_id: patch.sender_id === undefined ? current.sender_id : patch.sender_id,
    audience: patch.audience ?? current.audience,
    content: patch.content ?? current.content,
    goal: patch.goal === undefined ? current.goal : patch.goal,
    holdout_percent: patch.holdout_percent ?? current.holdout_percent,
    schedule: patch.schedule ?? current.schedule,
    settings: { ...current.settings, ...patch.settings },
  };
  try {
    const { rows } = await sql.query<Row>(
      `UPDATE campaigns SET name = $3, sender_id = $4, audience = $5, content = $6, goal = $7,
         holdout_percent = $8, schedule = $9, settings = $10, updated_at = now()
       WHERE id = $1 AND workspace_id = $2 AND state = 'draft' RETURNING ${COLUMNS}`,
      [
        id,
        workspaceId,
        next.name,
        next.sender_id,
        JSON.stringify(next.audience),
        JSON.stringify(next.content),
        next.goal ? JSON.stringify(next.goal) : null,
        next.holdout_percent,
        JSON.stringify(next.schedule),
        JSON.stringify(next.settings),
      ],
    );
    if (!rows[0]) throw new CampaignError('conflict', 'the campaign left draft while being edited');
    await audit(sql, workspaceId, id, actor, 'update', { changes: patch });
    return fromRow(rows[0]);
  } catch (error) {
    if ((error as { code?: string }).code === '23505')
      throw new CampaignError('conflict', `a campaign named ${patch.name} exists`, [
        { path: '/body/name', message: 'already used in this workspace' },
      ]);
    throw error;
  }
}

/**
 * Moves a campaign from one of the action's source states to its target, atomically (a concurrent
 * change makes it a conflict, never a lost update), and writes the audit row.
 */
export async function transition(
  sql: Sql,
  workspaceId: string,
  id: string,
  action: keyof typeof TRANSITIONS,
  actor: string,
  options: { reason?: string; extra?: Record<string, unknown> } = {},
): Promise<Campaign> {
  const rule = TRANSITIONS[action]!;
  const { rows: before } = await sql.query<{ state: CampaignState }>(
    'SELECT state FROM campaigns WHERE id = $1 AND workspace_id = $2',
    [id, workspaceId],
  );
  if (!before[0]) throw new CampaignError('not_found', `no campaign ${id}`);
  const from = before[0].state;
  if (!rule.from.includes(from))
    throw new CampaignError('conflict', `cannot ${action.replace('_', ' ')} a ${from} campaign`);
  const finished = ['completed', 'cancelled', 'failed'].includes(rule.to);
  const { rows } = await sql.query<Row>(
    `UPDATE campaigns SET state = $3, state_reason = $4, updated_at = now(),
       launched_at = CASE WHEN $5 THEN now() ELSE launched_at END,
       finished_at = CASE WHEN $6 THEN now() ELSE finished_at END
     WHERE id = $1 AND workspace_id = $2 AND state = $7 RETURNING ${COLUMNS}`,
    [id, workspaceId, rule.to, options.reason ?? null, action.startsWith('launch'), finished, from],
  );
  if (!rows[0]) throw new CampaignError('conflict', 'the campaign changed state concurrently; try again');
  await audit(sql, workspaceId, id, actor, action, {
    from,
    to: rule.to,
    reason: options.reason,
    changes: options.extra,
  });
  return fromRow(rows[0]);
}

export async function audit(
  sql: Sql,
  workspaceId: string,
  campaignId: string,
  actor: string,
  action: string,
  detail: { from?: string; to?: string; reason?: string; changes?: unknown } = {},
): Promise<void> {
  await sql.query(
    `INSERT INTO campaign_audit (workspace_id, campaign_id, actor, action, from_state, to_state, changes, reason)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
    [
      workspaceId,
      campaignId,
      actor,
      action,
      detail.from ?? null,
      detail.to ?? null,
      detail.changes === undefined ? null : JSON.stringify(detail.changes),
      detail.reason ?? null,
    ],
  );
}

export interface AuditEntry {
  actor: string;
  action: string;
  from_state: string | null;
  to_state: string | null;
  changes: unknown;
  reason: string | null;
  at: string;
}

export async function auditLog(sql: Sql, workspaceId: string, campaignId: string): Promise<AuditEntry[]> {
  const { rows } = await sql.query<AuditEntry & { at: Date | string }>(
    `SELECT actor, action, from_state, to_state, changes, reason, at FROM campaign_audit
     WHERE workspace_id = $1 AND campaign_id = $2 ORDER BY id`,
    [workspaceId, campaignId],
  );
  return rows.map((r) => ({ ...r, at: iso(r.at)! }));
}
