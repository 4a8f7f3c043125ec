import {
  exportConsent as exportConsentFile,
  recordConsent as recordConsentChanges,
} from '../../engine/consent/index.ts';
import {
  defineAttributes,
  eraseContact as eraseContactEverywhere,
  findContactIdsByExternalId,
  findContactIdsByPhone,
  getContacts,
  listAttributes as loadAttributes,
  getContact as loadContact,
  normalizePhone,
  listContacts as pageContacts,
  registerNames,
  updateMemberships,
  upsertContacts,
} from '../../engine/contacts/index.ts';
import { validateNames } from '../../engine/contacts/upsert.ts';
import type { Runtime } from '../../engine/runtime.ts';
import { type FieldIssue, NotFoundError, ValidationError } from '../../engine/validation.ts';
import type { Handler } from '../types.ts';

async function contactOr404(runtime: Runtime, workspaceId: string, id: string) {
  const contact = await loadContact(runtime, workspaceId, id);
  if (!contact) throw new NotFoundError(`no contact ${id}`);
  return contact;
}

export const listAttributes: Handler<'listAttributes'> = async ({ runtime, workspace }) => ({
  status: 200,
  body: { data: await loadAttributes(runtime.pg, workspace.id) },
});

export const defineAttribute: Handler<'defineAttribute'> = async ({ runtime, workspace, params, body }) => {
  const all = await defineAttributes(
    runtime.pg,
    workspace.id,
    [{ name: params.name, type: body.type, description: body.description }],
    { name: () => '/params/name', type: () => '/body/type' },
  );
  return { status: 200, body: all.find((a) => a.name === params.name)! };
};

export const upsertContact: Handler<'upsertContact'> = async ({ runtime, workspace, body }) => {
  // A single contact's errors are reported at /body/..., not /body/0/...
  const result = await upsertContacts(runtime, workspace, [body], { path: '/body' }).catch(
    (error: unknown) => {
      if (error instanceof ValidationError)
        throw new ValidationError(
          error.message,
          error.errors.map((e) => ({ ...e, path: e.path.replace(/^\/body\/0(?=\/|$)/, '/body') })),
        );
      throw error;
    },
  );
  const contact = await contactOr404(runtime, workspace.id, result.ids[0]!);
  return result.created ? { status: 201, body: contact } : { status: 200, body: contact };
};

export const upsertContactsBatch: Handler<'upsertContactsBatch'> = async ({ runtime, workspace, body }) => ({
  status: 200,
  body: await upsertContacts(runtime, workspace, body.contacts, { path: '/body/contacts' }),
});

export const listContacts: Handler<'listContacts'> = async ({ runtime, workspace, query }) => {
  if (query.phone !== undefined || query.external_id !== undefined) {
    const ids: string[] = [];
    if (query.phone !== undefined) {
      const phone = normalizePhone(query.phone, workspace.default_region);
      if (!phone.ok)
        throw new ValidationError('invalid phone', [
          { path: '/querystring/phone', message: `${query.phone} ${phone.reason}` },
        ]);
      const found = (await findContactIdsByPhone(runtime, workspace.id, [phone.e164])).get(phone.e164);
      if (found) ids.push(found);
    }
    if (query.external_id !== undefined) {
      const found = (await findContactIdsByExternalId(runtime, workspace.id, [query.external_id])).get(
        query.external_id,
      );
      if (found) ids.push(found);
    }
    // Both keys given: the contact must match both.
    const matching =
      query.phone !== undefined && query.external_id !== undefined
        ? ids[0] === ids[1]
          ? [ids[0]!]
          : []
        : ids;
    return {
      status: 200,
      body: { data: await getContacts(runtime, workspace.id, matching), next_after: null },
    };
  }
  const limit = query.limit ?? 50;
  const data = await pageContacts(runtime, workspace.id, {
    limit,
    after: query.after,
    tag: query.tag,
    list: query.list,
  });
  return {
    status: 200,
    body: { data, next_after: data.length === limit ? data[data.length - 1]!.id : null },
  };
};

export const getContact: Handler<'getContact'> = async ({ runtime, workspace, params }) => ({
  status: 200,
  body: await contactOr404(runtime, workspace.id, params.id),
});

export const eraseContact: Handler<'eraseContact'> = async ({ runtime, workspace, params }) => {
  await eraseContactEverywhere(runtime, workspace.id, params.id);
  return { status: 204, body: undefined };
};

function checkNames(change: { add?: string[]; remove?: string[] }, what: string) {
  const issues: FieldIssue[] = [];
  const add = validateNames(change.add, '/body/add', what, issues);
  const remove = validateNames(change.remove, '/body/remove', what, issues);
  if (issues.length) throw new ValidationError(`invalid ${what} names`, issues);
  return { add, remove };
}

export const changeContactTags: Handler<'changeContactTags'> = async ({
  runtime,
  workspace,
  params,
  body,
}) => {
  const { add, remove } = checkNames(body, 'tag');
  await contactOr404(runtime, workspace.id, params.id);
  if (add.length) await registerNames(runtime, 'tags', workspace.id, add);
  await updateMemberships(runtime, workspace.id, [params.id], { addTags: add, removeTags: remove });
  return { status: 200, body: await contactOr404(runtime, workspace.id, params.id) };
};

export const changeContactLists: Handler<'changeContactLists'> = async ({
  runtime,
  workspace,
  params,
  body,
}) => {
  const { add, remove } = checkNames(body, 'list');
  await contactOr404(runtime, workspace.id, params.id);
  if (add.length) await registerNames(runtime, 'lists', workspace.id, add);
  await updateMemberships(runtime, workspace.id, [params.id], { addLists: add, removeLists: remove });
  return { status: 200, body: await contactOr404(runtime, workspace.id, params.id) };
};

export const listTags: Handler<'listTags'> = async ({ runtime, workspace }) => {
  const { rows } = await runtime.pg.query<{ name: string; created_at: Date }>(
    'SELECT name, created_at FROM tags WHERE workspace_id = $1 ORDER BY name',
    [workspace.id],
  );
  return {
    status: 200,
    body: { data: rows.map((r) => ({ name: r.name, created_at: new Date(r.created_at).toISOString() })) },
  };
};

export const listLists: Handler<'listLists'> = async ({ runtime, workspace }) => {
  const { rows } = await runtime.pg.query<{ name: string; description: string | null; created_at: Date }>(
    'SELECT name, description, created_at FROM lists WHERE workspace_id = $1 ORDER BY name',
    [workspace.id],
  );
  return {
    status: 200,
    body: { data: rows.map((r) => ({ ...r, created_at: new Date(r.created_at).toISOString() })) },
  };
};

export const putList: Handler<'putList'> = async ({ runtime, workspace, params, body }) => {
  const issues: FieldIssue[] = [];
  validateNames([params.name], '/params/name', 'list', issues);
  if (issues.length)
    throw new ValidationError(
      'invalid list name',
      issues.map((i) => ({ ...i, path: '/params/name' })),
    );
  const { rows } = await runtime.pg.query<{ name: string; description: string | null; created_at: Date }>(
    `INSERT INTO lists (workspace_id, name, description) VALUES ($1, $2, $3)
     ON CONFLICT (workspace_id, name) DO UPDATE SET description = EXCLUDED.description
     RETURNING name, description, created_at`,
    [workspace.id, params.name, body.description ?? null],
  );
  const row = rows[0]!;
  return { status: 200, body: { ...row, created_at: new Date(row.created_at).toISOString() } };
};

export const changeListMembers: Handler<'changeListMembers'> = async ({
  runtime,
  workspace,
  params,
  body,
}) => {
  const issues: FieldIssue[] = [];
  validateNames([params.name], '/params/name', 'list', issues);
  if (issues.length)
    throw new ValidationError(
      'invalid list name',
      issues.map((i) => ({ ...i, path: '/params/name' })),
    );
  await registerNames(runtime, 'lists', workspace.id, [params.name]);
  const add = body.add ?? [];
  const remove = body.remove ?? [];
  const a = await updateMemberships(runtime, workspace.id, add, { addLists: [params.name] });
  const r = await updateMemberships(runtime, workspace.id, remove, { removeLists: [params.name] });
  return { status: 200, body: { changed: a.changed + r.changed, missing: [...a.missing, ...r.missing] } };
};

export const recordConsent: Handler<'recordConsent'> = async ({ runtime, workspace, params, body }) => ({
  status: 200,
  body: { current: await recordConsentChanges(runtime, workspace.id, params.id, body, { actor: 'api' }) },
});

export const getConsent: Handler<'getConsent'> = async ({ runtime, workspace, params }) => {
  await contactOr404(runtime, workspace.id, params.id);
  return { status: 200, body: await exportConsentFile(runtime.pg, workspace.id, params.id) };
};

export const exportConsent: Handler<'exportConsent'> = async ({ runtime, workspace, params }) => {
  await contactOr404(runtime, workspace.id, params.id);
  return {
    status: 200,
    body: await exportConsentFile(runtime.pg, workspace.id, params.id),
    headers: { 'content-disposition': `attachment; filename="consent-${params.id}.json"` },
  };
};
