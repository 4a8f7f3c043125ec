import { newId } from '../ids.ts';
import type { Sql } from '../stores/postgres.ts';
import { type SegmentAst, stripLocations, walk } from './ast.ts';
import type { Diagnostic } from './diagnostics.ts';
import { parseSegment } from './parser.ts';

/** A named segment as stored. */
export interface SavedSegment {
  id: string;
  workspace_id: string;
  name: string;
  description: string | null;
  dsl: string;
  ast: SegmentAst;
  references_segments: string[];
  created_at: string;
  updated_at: string;
}

const COLUMNS = 'id, workspace_id, name, description, dsl, ast, references_segments, created_at, updated_at';

function normalize(row: SavedSegment): SavedSegment {
  const iso = (value: unknown) => (value instanceof Date ? value.toISOString() : String(value));
  return { ...row, created_at: iso(row.created_at), updated_at: iso(row.updated_at) };
}

/** Names of the saved segments a tree refers to directly. */
export function referencedSegments(ast: SegmentAst): string[] {
  const names = new Set<string>();
  walk(ast.root, (node) => {
    if (node.kind === 'in-segment') names.add(node.segment);
  });
  return [...names].sort();
}

/** The cycle a segment named `name` with this tree would close, if any (as a path of names). */
export function findCycle(
  name: string,
  ast: SegmentAst,
  segments: Record<string, SegmentAst>,
): string[] | undefined {
  const graph = { ...segments, [name]: ast };
  const visiting: string[] = [];
  const done = new Set<string>();
  const visit = (current: string): string[] | undefined => {
    if (visiting.includes(current)) return [...visiting.slice(visiting.indexOf(current)), current];
    if (done.has(current) || !graph[current]) return undefined;
    visiting.push(current);
    for (const next of referencedSegments(graph[current]!)) {
      const cycle = visit(next);
      if (cycle) return cycle;
    }
    visiting.pop();
    done.add(current);
    return undefined;
  };
  return visit(name);
}

export function cycleDiagnostic(cycle: string[]): Diagnostic {
  return {
    code: 'segment-cycle',
    severity: 'error',
    message: `segments would refer to each other in a cycle: ${cycle.join(' → ')}`,
    line: 1,
    column: 1,
    offset: 0,
    length: 0,
  };
}

export async function listSegments(
  sql: Sql,
  workspaceId: string,
  options: { limit?: number; after?: string } = {},
): Promise<SavedSegment[]> {
  const { rows } = await sql.query<SavedSegment>(
    `SELECT ${COLUMNS} FROM segments WHERE workspace_id = $1 AND name > $2 ORDER BY name LIMIT $3`,
    [workspaceId, options.after ?? '', options.limit ?? 100],
  );
  return rows.map(normalize);
}

export async function listSegmentAsts(sql: Sql, workspaceId: string): Promise<Record<string, SegmentAst>> {
  const { rows } = await sql.query<{ name: string; ast: SegmentAst }>(
    'SELECT name, ast FROM segments WHERE workspace_id = $1',
    [workspaceId],
  );
  return Object.fromEntries(rows.map((row) => [row.name, row.ast]));
}

export async function getSegment(
  sql: Sql,
  workspaceId: string,
  id: string,
): Promise<SavedSegment | undefined> {
  const { rows } = await sql.query<SavedSegment>(
    `SELECT ${COLUMNS} FROM segments WHERE workspace_id = $1 AND id = $2`,
    [workspaceId, id],
  );
  return rows[0] ? normalize(rows[0]) : undefined;
}

export async function getSegmentByName(
  sql: Sql,
  workspaceId: string,
  name: string,
): Promise<SavedSegment | undefined> {
  const { rows } = await sql.query<SavedSegment>(
    `SELECT ${COLUMNS} FROM segments WHERE workspace_id = $1 AND name = $2`,
    [workspaceId, name],
  );
  return rows[0] ? normalize(rows[0]) : undefined;
}

export async function insertSegment(
  sql: Sql,
  workspaceId: string,
  input: { name: string; description?: string | null; dsl: string; ast: SegmentAst },
): Promise<SavedSegment> {
  const ast = stripLocations(input.ast);
  const { rows } = await sql.query<SavedSegment>(
    `INSERT INTO segments (id, workspace_id, name, description, dsl, ast, references_segments)
     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ${COLUMNS}`,
    [
      newId('seg', 16),
      workspaceId,
      input.name,
      input.description ?? null,
      input.dsl,
      JSON.stringify(ast),
      referencedSegments(ast),
    ],
  );
  return normalize(rows[0]!);
}

export async function updateSegmentRow(
  sql: Sql,
  workspaceId: string,
  id: string,
  input: { name: string; description: string | null; dsl: string; ast: SegmentAst },
): Promise<SavedSegment | undefined> {
  const ast = stripLocations(input.ast);
  const { rows } = await sql.query<SavedSegment>(
    `UPDATE segments SET name = $3, description = $4, dsl = $5, ast = $6, references_segments = $7, updated_at = now()
     WHERE workspace_id = $1 AND id = $2 RETURNING ${COLUMNS}`,
    [workspaceId, id, input.name, input.description, input.dsl, JSON.stringify(ast), referencedSegments(ast)],
  );
  return rows[0] ? normalize(rows[0]) : undefined;
}

export async function deleteSegmentRow(sql: Sql, workspaceId: string, id: string): Promise<boolean> {
  const { rowCount } = await sql.query('DELETE FROM segments WHERE workspace_id = $1 AND id = $2', [
    workspaceId,
    id,
  ]);
  return rowCount > 0;
}

export interface Dependents {
  segments: { id: string; name: string }[];
  campaigns: { id: string; name: string }[];
}

/**
 * Saved segments that refer to this one by name, and unfinished campaigns whose audience is this
 * segment (by id) or a DSL audience that refers to it by name (`in segment "x"`). A completed,
 * cancelled or failed campaign never resolves its audience again, so it does not hold the segment.
 */
export async function segmentDependents(
  sql: Sql,
  workspaceId: string,
  segment: { id: string; name: string },
): Promise<Dependents> {
  const segments = await sql.query<{ id: string; name: string }>(
    'SELECT id, name FROM segments WHERE workspace_id = $1 AND $2 = ANY(references_segments) ORDER BY name',
    [workspaceId, segment.name],
  );
  const byId = await campaignRows(sql, "workspace_id = $1 AND audience->>'segment_id' = $2", [
    workspaceId,
    segment.id,
  ]);
  const byName = await campaignsNamingSegment(sql, workspaceId, segment.name);
  const campaigns = [...new Map([...byId, ...byName].map((c) => [c.id, c])).values()].sort(
    (a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id),
  );
  return { segments: segments.rows, campaigns };
}

/** Campaigns whose DSL audience refers to a saved segment by this name: renaming it would break them. */
export async function campaignsNamingSegment(
  sql: Sql,
  workspaceId: string,
  name: string,
): Promise<{ id: string; name: string }[]> {
  // The substring test only narrows the rows; the parsed tree decides.
  const candidates = await campaignRows(
    sql,
    "workspace_id = $1 AND strpos(audience->>'dsl', $2) > 0",
    [workspaceId, name],
    ", audience->>'dsl' AS dsl",
  );
  return candidates
    .filter((row) => {
      const ast = parseSegment(String(row.dsl)).ast;
      return ast !== undefined && referencedSegments(ast).includes(name);
    })
    .map(({ id, name }) => ({ id, name }));
}

async function campaignRows(
  sql: Sql,
  where: string,
  params: unknown[],
  extra = '',
): Promise<{ id: string; name: string; dsl?: string }[]> {
  // Campaigns are another module's table; it may not exist yet in this deployment.
  const exists = await sql.query<{ present: boolean }>(
    "SELECT to_regclass('campaigns') IS NOT NULL AS present",
  );
  if (!exists.rows[0]?.present) return [];
  const result = await sql.query<{ id: string; name: string; dsl?: string }>(
    `SELECT id::text AS id, name::text AS name${extra} FROM campaigns
      WHERE ${where} AND state NOT IN ('completed', 'cancelled', 'failed') ORDER BY name`,
    params,
  );
  return result.rows;
}
