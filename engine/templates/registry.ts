/**
 * The template registry: templates stored per workspace, validated before anything is written,
 * submitted for review through a sender's WhatsApp Business Account, and moved through Meta's
 * states by review webhooks (`applyTemplateStatusEvent`).
 */
import type { WebhookEvent } from '../channels/types.ts';
import { getAttributeSchema } from '../contacts/attributes.ts';
import { newId } from '../ids.ts';
import type { Runtime } from '../runtime.ts';
import { getSender } from '../senders.ts';
import type { Sql } from '../stores/postgres.ts';
import { type FieldIssue, NotFoundError, ValidationError } from '../validation.ts';
import { toMetaDefinition, validateTemplateInput } from './definition.ts';
import { TEMPLATE_STATUSES, type Template, type TemplateInput, type TemplateStatus } from './types.ts';

export class TemplateConflictError extends Error {
  readonly errors: FieldIssue[];
  constructor(message: string, errors: FieldIssue[] = []) {
    super(message);
    this.name = 'TemplateConflictError';
    this.errors = errors;
  }
}

/** The provider refused or could not be reached; `status` is the HTTP status to answer with. */
export class TemplateProviderError extends Error {
  readonly status: 422 | 502;
  readonly errors: FieldIssue[];
  constructor(status: 422 | 502, message: string, errors: FieldIssue[] = []) {
    super(message);
    this.name = 'TemplateProviderError';
    this.status = status;
    this.errors = errors;
  }
}

const COLUMNS = `id, workspace_id, name, language, category, channel, sender_id, parameter_format, header, body, footer,
  buttons, content, variables, status, status_reason, provider_template_id, submitted_at, status_updated_at,
  created_at, updated_at`;

const iso = (v: unknown) => (v ? new Date(v as string).toISOString() : null);

function fromRow(row: Record<string, unknown>): Template {
  return {
    ...(row as unknown as Template),
    buttons: (row.buttons as Template['buttons']) ?? [],
    variables: (row.variables as Template['variables']) ?? {},
    submitted_at: iso(row.submitted_at),
    status_updated_at: iso(row.status_updated_at),
    created_at: iso(row.created_at)!,
    updated_at: iso(row.updated_at)!,
  };
}

function isUnique(error: unknown) {
  return (error as { code?: string })?.code === '23505';
}

async function checkInput(runtime: Runtime, workspaceId: string, input: TemplateInput): Promise<void> {
  const attributes = await getAttributeSchema(runtime.pg, workspaceId);
  const issues = validateTemplateInput(input, attributes);
  if (input.sender_id && !(await getSender(runtime.pg, workspaceId, input.sender_id)))
    issues.push({ path: '/sender_id', code: 'unknown-sender', message: `no sender ${input.sender_id}` });
  if (issues.length) throw new ValidationError('invalid template; nothing was stored', issues);
}

function values(input: TemplateInput) {
  return [
    input.name,
    input.language,
    input.category,
    input.channel ?? 'whatsapp',
    input.sender_id ?? null,
    input.parameter_format ?? 'POSITIONAL',
    input.header ? JSON.stringify(input.header) : null,
    input.content ? null : (input.body ?? null),
    input.content ? null : (input.footer ?? null),
    JSON.stringify(input.content ? [] : (input.buttons ?? [])),
    input.content ? JSON.stringify(input.content) : null,
    JSON.stringify(input.variables ?? {}),
  ];
}

export async function createTemplate(
  runtime: Runtime,
  workspaceId: string,
  input: TemplateInput,
): Promise<Template> {
  await checkInput(runtime, workspaceId, input);
  try {
    const { rows } = await runtime.pg.query(
      `INSERT INTO templates (id, workspace_id, name, language, category, channel, sender_id, parameter_format, header,
         body, footer, buttons, content, variables, status)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10, $11, $12::jsonb, $13::jsonb, $14::jsonb, $15)
       RETURNING ${COLUMNS}`,
      [newId('tpl', 16), workspaceId, ...values(input), input.content ? 'READY' : 'DRAFT'],
    );
    return fromRow(rows[0]!);
  } catch (error) {
    if (isUnique(error))
      throw new TemplateConflictError('a template with this name and language already exists', [
        { path: '/name', message: `${input.name} (${input.language}) already exists`, code: 'duplicate' },
      ]);
    throw error;
  }
}

export async function getTemplate(sql: Sql, workspaceId: string, id: string): Promise<Template | null> {
  const { rows } = await sql.query(`SELECT ${COLUMNS} FROM templates WHERE workspace_id = $1 AND id = $2`, [
    workspaceId,
    id,
  ]);
  return rows[0] ? fromRow(rows[0]) : null;
}

/** By name and language, as campaigns name them. */
export async function findTemplate(
  sql: Sql,
  workspaceId: string,
  name: string,
  language?: string,
): Promise<Template | null> {
  const { rows } = await sql.query(
    `SELECT ${COLUMNS} FROM templates WHERE workspace_id = $1 AND name = $2 AND ($3::text IS NULL OR language = $3)
     ORDER BY created_at LIMIT 1`,
    [workspaceId, name, language ?? null],
  );
  return rows[0] ? fromRow(rows[0]) : null;
}

export async function listTemplates(
  sql: Sql,
  workspaceId: string,
  filter: { status?: string; channel?: string } = {},
): Promise<Template[]> {
  const { rows } = await sql.query(
    `SELECT ${COLUMNS} FROM templates WHERE workspace_id = $1 AND ($2::text IS NULL OR status = $2)
       AND ($3::text IS NULL OR channel = $3) ORDER BY name, language`,
    [workspaceId, filter.status ?? null, filter.channel ?? null],
  );
  return rows.map(fromRow);
}

const EDITABLE: TemplateStatus[] = ['DRAFT', 'READY', 'REJECTED'];

/** Replaces a template's definition; allowed before review and after a rejection (then resubmit). */
export async function updateTemplate(
  runtime: Runtime,
  workspaceId: string,
  id: string,
  input: TemplateInput,
): Promise<Template> {
  const current = await getTemplate(runtime.pg, workspaceId, id);
  if (!current) throw new NotFoundError(`no template ${id}`);
  if (!EDITABLE.includes(current.status))
    throw new TemplateConflictError(
      `a ${current.status} template cannot be edited; create a new template (a new name or language) instead`,
    );
  await checkInput(runtime, workspaceId, input);
  try {
    const { rows } = await runtime.pg.query(
      `UPDATE templates SET name = $3, language = $4, category = $5, channel = $6, sender_id = $7, parameter_format = $8,
         header = $9::jsonb, body = $10, footer = $11, buttons = $12::jsonb, content = $13::jsonb, variables = $14::jsonb,
         status = $15, status_reason = CASE WHEN $15 = 'REJECTED' THEN status_reason ELSE NULL END, updated_at = now()
       WHERE workspace_id = $1 AND id = $2 RETURNING ${COLUMNS}`,
      [
        workspaceId,
        id,
        ...values(input),
        input.content ? 'READY' : current.status === 'REJECTED' ? 'REJECTED' : 'DRAFT',
      ],
    );
    return fromRow(rows[0]!);
  } catch (error) {
    if (isUnique(error))
      throw new TemplateConflictError('a template with this name and language already exists', [
        { path: '/name', message: `${input.name} (${input.language}) already exists`, code: 'duplicate' },
      ]);
    throw error;
  }
}

export interface ProviderOptions {
  fetch?: typeof fetch;
  timeoutMs?: number;
}

async function providerCall(
  runtime: Runtime,
  workspaceId: string,
  template: Template,
  method: 'POST' | 'DELETE',
  options: ProviderOptions,
  body?: unknown,
): Promise<Record<string, unknown>> {
  if (!template.sender_id)
    throw new ValidationError('the template has no sender to submit through', [
      { path: '/sender_id', message: 'set sender_id to a WhatsApp sender with a waba_id', code: 'required' },
    ]);
  const sender = await getSender(runtime.pg, workspaceId, template.sender_id);
  if (!sender?.waba_id)
    throw new ValidationError('the sender has no WhatsApp Business Account id', [
      { path: '/sender_id', message: 'the sender needs a waba_id to submit templates', code: 'no-waba' },
    ]);
  const base = `${sender.base_url.replace(/\/+$/, '')}/${sender.api_version}/${sender.waba_id}/message_templates`;
  const url =
    method === 'DELETE'
      ? `${base}?name=${encodeURIComponent(template.name)}${template.provider_template_id ? `&hsm_id=${encodeURIComponent(template.provider_template_id)}` : ''}`
      : base;
  let response: Response;
  try {
    response = await (options.fetch ?? fetch)(url, {
      method,
      headers: { authorization: `Bearer ${sender.access_token ?? ''}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(options.timeoutMs ?? 15_000),
    });
  } catch (error) {
    throw new TemplateProviderError(502, `the provider could not be reached: ${(error as Error).message}`);
  }
  const json = (await response.json().catch(() => ({}))) as Record<string, unknown>;
  if (!response.ok) {
    const error = (json.error ?? {}) as {
      message?: string;
      error_user_msg?: string;
      code?: number;
      error_data?: { details?: string };
    };
    const message = error.error_user_msg ?? error.message ?? `HTTP ${response.status}`;
    throw new TemplateProviderError(response.status >= 500 ? 502 : 422, `the provider refused: ${message}`, [
      { path: '/', message, code: String(error.code ?? response.status) },
    ]);
  }
  return json;
}

/** Sends a template for review; it becomes PENDING (or whatever the provider answers). */
export async function submitTemplate(
  runtime: Runtime,
  workspaceId: string,
  id: string,
  options: ProviderOptions = {},
): Promise<Template> {
  const template = await getTemplate(runtime.pg, workspaceId, id);
  if (!template) throw new NotFoundError(`no template ${id}`);
  if (template.content)
    throw new TemplateConflictError('free-form content needs no review; it is READY to send');
  if (template.status !== 'DRAFT' && template.status !== 'REJECTED')
    throw new TemplateConflictError(
      `the template is ${template.status}; only DRAFT and REJECTED templates are submitted`,
    );
  if (template.status === 'REJECTED' && template.provider_template_id) {
    // Meta keeps the rejected one under its name: remove it before submitting the corrected one.
    await providerCall(runtime, workspaceId, template, 'DELETE', options).catch((error) => {
      if (!(error instanceof TemplateProviderError && error.status === 422)) throw error;
    });
  }
  const { definition } = toMetaDefinition(template as TemplateInput);
  const answer = await providerCall(runtime, workspaceId, template, 'POST', options, definition);
  const status = TEMPLATE_STATUSES.includes(answer.status as TemplateStatus)
    ? (answer.status as TemplateStatus)
    : 'PENDING';
  const { rows } = await runtime.pg.query(
    `UPDATE templates SET provider_template_id = $3, status = $4, status_reason = NULL, submitted_at = now(),
       status_updated_at = now(), updated_at = now()
     WHERE workspace_id = $1 AND id = $2 RETURNING ${COLUMNS}`,
    [workspaceId, id, String(answer.id ?? ''), status],
  );
  return fromRow(rows[0]!);
}

/** Deletes a template here and, when it was submitted, at the provider first. */
export async function deleteTemplate(
  runtime: Runtime,
  workspaceId: string,
  id: string,
  options: ProviderOptions = {},
): Promise<void> {
  const template = await getTemplate(runtime.pg, workspaceId, id);
  if (!template) throw new NotFoundError(`no template ${id}`);
  if (template.provider_template_id)
    await providerCall(runtime, workspaceId, template, 'DELETE', options).catch((error) => {
      // Already gone at the provider: nothing to undo there.
      if (!(error instanceof TemplateProviderError && error.status === 422)) throw error;
    });
  await runtime.pg.query('DELETE FROM templates WHERE workspace_id = $1 AND id = $2', [workspaceId, id]);
}

/** Meta's review events, mapped to our status; REINSTATED and UNARCHIVED put a template back in service. */
const EVENT_STATUS: Record<string, TemplateStatus> = { REINSTATED: 'APPROVED', UNARCHIVED: 'APPROVED' };

/**
 * Applies a message_template_status_update (parsed by the adapter) to the template Meta knows by that
 * id; records the event. Returns null when no template has that provider id.
 */
export async function applyTemplateStatusEvent(
  runtime: Runtime,
  event: Extract<WebhookEvent, { kind: 'template_status' }>,
): Promise<{ template: Template; previous: TemplateStatus } | null> {
  const status =
    EVENT_STATUS[event.event] ??
    (TEMPLATE_STATUSES.includes(event.event as TemplateStatus) ? (event.event as TemplateStatus) : undefined);
  return runtime.pg.transaction(async (tx) => {
    const { rows } = await tx.query<{ id: string; workspace_id: string; status: TemplateStatus }>(
      'SELECT id, workspace_id, status FROM templates WHERE provider_template_id = $1 FOR UPDATE',
      [event.templateId],
    );
    const row = rows[0];
    if (!row) return null;
    // Webhooks are retried and duplicated: the same event twice in a row is one event.
    const { rows: last } = await tx.query<{
      event: string;
      reason: string | null;
      other_info: string | null;
    }>(
      'SELECT event, reason, other_info FROM template_status_events WHERE template_id = $1 ORDER BY id DESC LIMIT 1',
      [row.id],
    );
    const previous = last[0];
    if (
      previous &&
      previous.event === event.event &&
      previous.reason === (event.reason ?? null) &&
      previous.other_info === (event.otherInfo ?? null)
    ) {
      const { rows: current } = await tx.query(`SELECT ${COLUMNS} FROM templates WHERE id = $1`, [row.id]);
      return { template: fromRow(current[0]!), previous: row.status };
    }
    // A late PENDING never undoes a decision already made.
    const late = status === 'PENDING' && row.status !== 'DRAFT' && row.status !== 'PENDING';
    const reason = event.reason && event.reason !== 'NONE' ? event.reason : (event.otherInfo ?? null);
    await tx.query(
      `INSERT INTO template_status_events (template_id, workspace_id, event, reason, other_info) VALUES ($1, $2, $3, $4, $5)`,
      [row.id, row.workspace_id, event.event, event.reason ?? null, event.otherInfo ?? null],
    );
    const updated = await tx.query(
      `UPDATE templates SET status = COALESCE($2, status), status_reason = CASE WHEN $2::text IS NULL THEN status_reason ELSE $3 END,
         status_updated_at = now(), updated_at = now()
       WHERE id = $1 RETURNING ${COLUMNS}`,
      [row.id, late ? null : (status ?? null), late ? null : status === 'APPROVED' ? null : reason],
    );
    return { template: fromRow(updated.rows[0]!), previous: row.status };
  });
}

export async function templateStatusEvents(sql: Sql, workspaceId: string, id: string) {
  const { rows } = await sql.query<{
    event: string;
    reason: string | null;
    other_info: string | null;
    received_at: string;
  }>(
    'SELECT event, reason, other_info, received_at FROM template_status_events WHERE workspace_id = $1 AND template_id = $2 ORDER BY id',
    [workspaceId, id],
  );
  return rows.map((r) => ({ ...r, received_at: new Date(r.received_at).toISOString() }));
}
