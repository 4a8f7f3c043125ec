import { readFileSync } from 'node:fs';
import type { SegmentAst } from '../../engine/segments/ast.ts';
import { validateAst } from '../../engine/segments/ast-validate.ts';
import {
  type AudienceInput,
  countAudience as countContacts,
  createSnapshot,
  loadSchema,
  previewAudience as previewContacts,
  SegmentError,
  snapshotContacts,
} from '../../engine/segments/audiences.ts';
import type { Diagnostic } from '../../engine/segments/diagnostics.ts';
import { compileSegment, parseSegment } from '../../engine/segments/index.ts';
import {
  campaignsNamingSegment,
  cycleDiagnostic,
  deleteSegmentRow,
  findCycle,
  getSegment as findSegment,
  getSegmentByName,
  insertSegment,
  listSegments as pageSegments,
  type SavedSegment,
  segmentDependents,
  updateSegmentRow,
} from '../../engine/segments/store.ts';
import { badRequest, conflict, notFound, type ProblemError, unprocessable } from '../problem.ts';
import type { Handler } from '../types.ts';

const AST_SCHEMA = JSON.parse(
  readFileSync(new URL('../../engine/segments/ast.schema.json', import.meta.url), 'utf8'),
) as Record<string, unknown>;

function diagnosticsProblem(diagnostics: Diagnostic[], field = '/body/dsl'): ProblemError {
  const errors = diagnostics.filter((d) => d.severity === 'error');
  return unprocessable(
    errors.map((d) => `${d.line}:${d.column} ${d.message}`).join('; ') || 'the segment does not compile',
    errors.map((d) => ({ path: field, message: `${d.line}:${d.column} ${d.message}`, code: d.code })),
  );
}

/** Exactly one of dsl, ast or segment_id; a tree is validated before anything reads it. */
function audienceInput(body: {
  dsl?: string;
  ast?: Record<string, unknown>;
  segment_id?: string;
}): AudienceInput {
  const given = (['dsl', 'ast', 'segment_id'] as const).filter((key) => body[key] !== undefined);
  if (given.length !== 1) {
    throw badRequest('give exactly one of dsl, ast or segment_id', [
      {
        path: '/body',
        message: `exactly one of dsl, ast or segment_id (got ${given.length ? given.join(', ') : 'none'})`,
      },
    ]);
  }
  if (body.ast !== undefined) {
    const problems = validateAst(body.ast);
    if (problems.length)
      throw badRequest(
        'invalid segment tree',
        problems.map((p) => ({ path: `/body/ast${p.path}`, message: p.message })),
      );
    return { ast: body.ast as unknown as SegmentAst };
  }
  return body.dsl !== undefined ? { dsl: body.dsl } : { segment_id: body.segment_id! };
}

function parseNow(now: string | undefined): Date | undefined {
  if (now === undefined) return undefined;
  const at = new Date(now);
  if (Number.isNaN(at.getTime()))
    throw badRequest('invalid now', [{ path: '/body/now', message: 'is not a date-time' }]);
  return at;
}

/** Maps engine refusals to problems: a bad segment is 422 at its field, a missing one 404. */
async function guarded<T>(fn: () => Promise<T>, field = '/body/dsl'): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    if (error instanceof SegmentError) {
      if (error.notFound) throw notFound(error.message);
      if (error.diagnostics.length) throw diagnosticsProblem(error.diagnostics, field);
      throw unprocessable(error.message, [{ path: field, message: error.message }]);
    }
    throw error;
  }
}

/** Parses and checks a segment to be saved under `name`, refusing errors and cycles. */
async function prepareSaved(
  runtime: Parameters<Handler<'createSegment'>>[0]['runtime'],
  workspaceId: string,
  name: string,
  dsl: string,
) {
  const schema = await loadSchema(runtime.pg, workspaceId, runtime.ch);
  const parsed = parseSegment(dsl);
  if (!parsed.ast) throw diagnosticsProblem(parsed.diagnostics);
  const cycle = findCycle(name, parsed.ast, schema.segments ?? {});
  if (cycle) throw diagnosticsProblem([cycleDiagnostic(cycle)]);
  const result = compileSegment(
    parsed.ast,
    { ...schema, segments: { ...schema.segments } },
    { workspaceId, now: new Date(), database: runtime.ch.database },
  );
  if (!result.compiled) throw diagnosticsProblem(result.diagnostics);
  return parsed.ast;
}

export const listSegments: Handler<'listSegments'> = async ({ runtime, workspace, query }) => {
  const limit = query.limit ?? 100;
  const rows = await pageSegments(runtime.pg, workspace.id, {
    limit: limit + 1,
    ...(query.cursor ? { after: query.cursor } : {}),
  });
  const page = rows.slice(0, limit);
  return {
    status: 200,
    body: { data: page.map(toApi), next_cursor: rows.length > limit ? page[page.length - 1]!.name : null },
  };
};

export const createSegment: Handler<'createSegment'> = async ({ runtime, workspace, body }) => {
  if (await getSegmentByName(runtime.pg, workspace.id, body.name)) {
    throw conflict(`a segment named ${JSON.stringify(body.name)} exists`, [
      { path: '/body/name', message: 'is taken' },
    ]);
  }
  const ast = await prepareSaved(runtime, workspace.id, body.name, body.dsl);
  try {
    const saved = await insertSegment(runtime.pg, workspace.id, {
      name: body.name,
      description: body.description ?? null,
      dsl: body.dsl,
      ast,
    });
    return { status: 201, body: toApi(saved) };
  } catch (error) {
    if ((error as { code?: string }).code === '23505')
      throw conflict('the name is taken', [{ path: '/body/name', message: 'is taken' }]);
    throw error;
  }
};

export const getSegment: Handler<'getSegment'> = async ({ runtime, workspace, params }) => {
  const segment = await findSegment(runtime.pg, workspace.id, params.segment_id);
  if (!segment) throw notFound(`no segment ${params.segment_id}`);
  return { status: 200, body: toApi(segment) };
};

export const updateSegment: Handler<'updateSegment'> = async ({ runtime, workspace, params, body }) => {
  const existing = await findSegment(runtime.pg, workspace.id, params.segment_id);
  if (!existing) throw notFound(`no segment ${params.segment_id}`);
  if (body.name !== existing.name) {
    const dependents = await segmentDependents(runtime.pg, workspace.id, existing);
    if (dependents.segments.length) {
      throw conflict(
        `segments refer to ${JSON.stringify(existing.name)} by name: ${dependents.segments.map((s) => s.name).join(', ')}`,
        [{ path: '/body/name', message: 'cannot change while other segments refer to it' }],
      );
    }
    const campaigns = await campaignsNamingSegment(runtime.pg, workspace.id, existing.name);
    if (campaigns.length) {
      throw conflict(
        `campaign audiences refer to ${JSON.stringify(existing.name)} by name: ${campaigns.map((c) => c.name).join(', ')}`,
        [{ path: '/body/name', message: 'cannot change while campaign audiences refer to it' }],
      );
    }
    if (await getSegmentByName(runtime.pg, workspace.id, body.name)) {
      throw conflict(`a segment named ${JSON.stringify(body.name)} exists`, [
        { path: '/body/name', message: 'is taken' },
      ]);
    }
  }
  const ast = await prepareSaved(runtime, workspace.id, body.name, body.dsl);
  const saved = await updateSegmentRow(runtime.pg, workspace.id, params.segment_id, {
    name: body.name,
    description: body.description ?? null,
    dsl: body.dsl,
    ast,
  });
  if (!saved) throw notFound(`no segment ${params.segment_id}`);
  return { status: 200, body: toApi(saved) };
};

export const deleteSegment: Handler<'deleteSegment'> = async ({ runtime, workspace, params }) => {
  const existing = await findSegment(runtime.pg, workspace.id, params.segment_id);
  if (!existing) throw notFound(`no segment ${params.segment_id}`);
  const dependents = await segmentDependents(runtime.pg, workspace.id, existing);
  if (dependents.segments.length || dependents.campaigns.length) {
    const names = [
      ...dependents.segments.map((s) => `segment ${s.name}`),
      ...dependents.campaigns.map((c) => `campaign ${c.name}`),
    ];
    throw conflict(`in use by ${names.join(', ')}`, [
      { path: '/params/segment_id', message: `in use by ${names.join(', ')}` },
    ]);
  }
  await deleteSegmentRow(runtime.pg, workspace.id, params.segment_id);
  return { status: 204, body: undefined };
};

export const getSegmentDependents: Handler<'getSegmentDependents'> = async ({
  runtime,
  workspace,
  params,
}) => {
  const existing = await findSegment(runtime.pg, workspace.id, params.segment_id);
  if (!existing) throw notFound(`no segment ${params.segment_id}`);
  return { status: 200, body: await segmentDependents(runtime.pg, workspace.id, existing) };
};

export const checkSegment: Handler<'checkSegment'> = async ({ runtime, workspace, body }) => {
  const input = audienceInput(body);
  const schema = await loadSchema(runtime.pg, workspace.id, runtime.ch);
  const result = compileSegment(input.dsl ?? input.ast!, schema, {
    workspaceId: workspace.id,
    now: parseNow(body.now) ?? new Date(),
    database: runtime.ch.database,
  });
  const valid = !result.diagnostics.some((d) => d.severity === 'error');
  return {
    status: 200,
    body: {
      valid,
      diagnostics: result.diagnostics,
      ...(result.ast
        ? { ast: JSON.parse(JSON.stringify(result.ast, (k, v) => (k === 'loc' ? undefined : v))) }
        : {}),
      ...(body.include_sql && result.compiled
        ? { sql: result.compiled.sql, params: result.compiled.params }
        : {}),
    },
  };
};

export const getSegmentAstSchema: Handler<'getSegmentAstSchema'> = async () => ({
  status: 200,
  body: AST_SCHEMA,
});

export const countAudience: Handler<'countAudience'> = async ({ runtime, workspace, body }) => {
  const input = audienceInput(body);
  const now = parseNow(body.now) ?? new Date();
  const result = await guarded(
    () => countContacts(runtime, workspace.id, input, { now, ...(body.path ? { path: body.path } : {}) }),
    fieldOf(input),
  );
  return {
    status: 200,
    body: { count: result.count, now: now.toISOString(), diagnostics: result.diagnostics },
  };
};

export const previewAudience: Handler<'previewAudience'> = async ({ runtime, workspace, body }) => {
  const input = audienceInput(body);
  const now = parseNow(body.now) ?? new Date();
  const result = await guarded(
    () =>
      previewContacts(runtime, workspace.id, input, {
        now,
        ...(body.path ? { path: body.path } : {}),
        ...(body.limit ? { limit: body.limit } : {}),
        ...(body.cursor ? { after: body.cursor } : {}),
        ...(body.attributes ? { attributes: body.attributes } : {}),
      }),
    fieldOf(input),
  );
  return {
    status: 200,
    body: { data: result.contacts, next_cursor: result.next_cursor, now: now.toISOString() },
  };
};

export const createAudienceSnapshot: Handler<'createAudienceSnapshot'> = async ({
  runtime,
  workspace,
  body,
}) => {
  const input = audienceInput(body);
  const now = parseNow(body.now) ?? new Date();
  const result = await guarded(
    () =>
      createSnapshot(runtime, workspace.id, input, {
        now,
        ...(body.path ? { path: body.path } : {}),
        ...(body.snapshot_id ? { snapshotId: body.snapshot_id } : {}),
      }),
    fieldOf(input),
  );
  return { status: 201, body: result };
};

export const getAudienceSnapshot: Handler<'getAudienceSnapshot'> = async ({
  runtime,
  workspace,
  params,
  query,
}) => {
  const limit = query.limit ?? 1000;
  const ids = await snapshotContacts(runtime, workspace.id, params.snapshot_id, {
    limit: limit + 1,
    ...(query.cursor ? { after: query.cursor } : {}),
  });
  const page = ids.slice(0, limit);
  return {
    status: 200,
    body: {
      snapshot_id: params.snapshot_id,
      contact_ids: page,
      next_cursor: ids.length > limit ? page[page.length - 1]! : null,
    },
  };
};

/** The stored row as the API shows it (the tree as plain JSON). */
function toApi(segment: SavedSegment) {
  return { ...segment, ast: segment.ast as unknown as Record<string, unknown> };
}

function fieldOf(input: AudienceInput): string {
  return input.dsl !== undefined ? '/body/dsl' : input.ast !== undefined ? '/body/ast' : '/body/segment_id';
}
