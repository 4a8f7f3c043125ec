import { newId } from '../ids.ts';
import type { Runtime } from '../runtime.ts';
import type { ClickHouseStore } from '../stores/clickhouse.ts';
import type { Sql } from '../stores/postgres.ts';
import type { SegmentAst } from './ast.ts';
import { type CompiledSql, CompileError, type EventPath } from './compiler.ts';
import type { Diagnostic } from './diagnostics.ts';
import { compileSegment } from './index.ts';
import type { AttributeType, PropertyType, SegmentSchema } from './schema.ts';
import { getSegment, listSegmentAsts } from './store.ts';

/** A segment that cannot run: its diagnostics say why and where. */
export class SegmentError extends Error {
  readonly diagnostics: Diagnostic[];
  readonly notFound: boolean;
  constructor(message: string, diagnostics: Diagnostic[] = [], notFound = false) {
    super(message);
    this.diagnostics = diagnostics;
    this.notFound = notFound;
  }
}

/** Either segment text or a saved segment's id (or a tree from a visual builder). */
export interface AudienceInput {
  dsl?: string;
  segment_id?: string;
  ast?: SegmentAst;
}

export interface AudienceOptions {
  /** The instant the segment is evaluated at (default: the current time). */
  now?: Date;
  /** Force the raw-events or rollup path (tests and benchmarks). */
  path?: EventPath;
}

/** The workspace schema the checker types against, read from Postgres. */
export async function loadSchema(
  sql: Sql,
  workspaceId: string,
  ch?: ClickHouseStore,
): Promise<SegmentSchema> {
  const [workspace, attributes, properties, segments] = await Promise.all([
    sql.query<{ timezone: string }>('SELECT timezone FROM workspaces WHERE id = $1', [workspaceId]),
    sql.query<{ name: string; type: AttributeType }>(
      'SELECT name, type FROM attribute_schemas WHERE workspace_id = $1',
      [workspaceId],
    ),
    sql.query<{ event_name: string; property: string; type: PropertyType }>(
      'SELECT event_name, property, type FROM event_properties WHERE workspace_id = $1',
      [workspaceId],
    ),
    listSegmentAsts(sql, workspaceId),
  ]);
  if (!workspace.rows[0]) throw new SegmentError(`no workspace ${workspaceId}`, [], true);
  const events: Record<string, Record<string, PropertyType[]>> = {};
  for (const row of properties.rows) {
    events[row.event_name] ??= {};
    const props = events[row.event_name]!;
    props[row.property] ??= [];
    props[row.property]!.push(row.type);
  }
  // Events without properties never reach event_properties; the rollup knows every name ingested.
  for (const name of ch ? await eventNames(ch, workspaceId) : []) events[name] ??= {};
  return {
    timezone: workspace.rows[0].timezone,
    attributes: Object.fromEntries(attributes.rows.map((row) => [row.name, row.type])),
    // Without any recorded property, event names are unknown rather than "none seen": no warnings.
    ...(Object.keys(events).length ? { events } : {}),
    segments,
  };
}

const namesCache = new Map<string, { at: number; names: string[] }>();

/** Event names the workspace has ingested (from the daily rollup), cached for a minute. */
async function eventNames(ch: ClickHouseStore, workspaceId: string): Promise<string[]> {
  const key = `${ch.database}|${workspaceId}`;
  const cached = namesCache.get(key);
  if (cached && Date.now() - cached.at < 60_000) return cached.names;
  const rows = await ch.rows<{ name: string }>(
    `SELECT DISTINCT name FROM ${ch.database}.events_daily WHERE workspace_id = {ws:String} LIMIT 10000`,
    { ws: workspaceId },
  );
  const names = rows.map((row) => row.name);
  if (namesCache.size > 1000) namesCache.clear();
  namesCache.set(key, { at: Date.now(), names });
  return names;
}

const compression = new WeakMap<Runtime, { at: number; compresses: boolean }>();

/** Whether the daily rollup is at most half the size of raw events (from part metadata, cached 5 minutes). */
export async function rollupCompresses(runtime: Runtime): Promise<boolean> {
  const cached = compression.get(runtime);
  if (cached && Date.now() - cached.at < 300_000) return cached.compresses;
  const rows = await runtime.ch.rows<{ table: string; rows: string | number }>(
    `SELECT table, sum(rows) AS rows FROM system.parts
     WHERE database = {db:String} AND active AND table IN ('events', 'events_daily') GROUP BY table`,
    { db: runtime.ch.database },
  );
  const count = (table: string) => Number(rows.find((r) => r.table === table)?.rows ?? 0);
  const compresses = count('events') > 0 && count('events_daily') <= count('events') / 2;
  compression.set(runtime, { at: Date.now(), compresses });
  return compresses;
}

/** Parses, checks and compiles an audience; throws SegmentError with every diagnostic when it cannot run. */
export async function prepareAudience(
  runtime: Runtime,
  workspaceId: string,
  input: AudienceInput,
  options: AudienceOptions = {},
): Promise<{ compiled: CompiledSql; diagnostics: Diagnostic[]; ast: SegmentAst; schema: SegmentSchema }> {
  const schema = await loadSchema(runtime.pg, workspaceId, runtime.ch);
  let source: string | SegmentAst;
  if (input.segment_id !== undefined) {
    const segment = await getSegment(runtime.pg, workspaceId, input.segment_id);
    if (!segment) throw new SegmentError(`no segment ${input.segment_id}`, [], true);
    source = segment.ast;
  } else if (input.dsl !== undefined) {
    source = input.dsl;
  } else if (input.ast !== undefined) {
    source = input.ast;
  } else {
    throw new SegmentError('give dsl, ast or segment_id');
  }
  const result = compileSegment(source, schema, {
    workspaceId,
    now: options.now ?? new Date(),
    database: runtime.ch.database,
    ...(options.path ? { path: options.path } : {}),
    ...(options.path === undefined || options.path === 'auto'
      ? { rollupCompresses: await rollupCompresses(runtime) }
      : {}),
  });
  if (!result.compiled || !result.ast) {
    const first = result.diagnostics.find((d) => d.severity === 'error');
    throw new SegmentError(
      first ? `${first.line}:${first.column} ${first.message}` : 'segment does not compile',
      result.diagnostics,
    );
  }
  return { compiled: result.compiled, diagnostics: result.diagnostics, ast: result.ast, schema };
}

/** Runs a compiled query, turning the few runtime refusals a segment can cause into SegmentErrors. */
async function run<T>(
  runtime: Runtime,
  sql: string,
  params: Record<string, unknown>,
  command = false,
): Promise<T[]> {
  try {
    if (command) {
      await runtime.ch.command(sql, params);
      return [];
    }
    return await runtime.ch.rows<T>(sql, params);
  } catch (error) {
    const message = (error as Error).message ?? '';
    if (/regexp|re2|pattern/i.test(message)) {
      throw new SegmentError('a regular expression in the segment was refused by the database', [
        {
          code: 'invalid-regex',
          severity: 'error',
          message: 'regular expression refused by RE2',
          line: 1,
          column: 1,
          offset: 0,
          length: 0,
        },
      ]);
    }
    if (error instanceof CompileError) throw new SegmentError(error.message);
    throw error;
  }
}

/** How many contacts match, now or at `options.now`. */
export async function countAudience(
  runtime: Runtime,
  workspaceId: string,
  input: AudienceInput,
  options: AudienceOptions = {},
): Promise<{ count: number; diagnostics: Diagnostic[] }> {
  const { compiled, diagnostics } = await prepareAudience(runtime, workspaceId, input, options);
  const rows = await run<{ count: string | number }>(
    runtime,
    `SELECT count() AS count FROM (${compiled.sql})`,
    compiled.params,
  );
  return { count: Number(rows[0]?.count ?? 0), diagnostics };
}

/** The matching contact ids, sorted (tests, small audiences). */
export async function audienceIds(
  runtime: Runtime,
  workspaceId: string,
  input: AudienceInput,
  options: AudienceOptions = {},
): Promise<string[]> {
  const { compiled } = await prepareAudience(runtime, workspaceId, input, options);
  const rows = await run<{ contact_id: string }>(
    runtime,
    `${compiled.sql}\nORDER BY contact_id`,
    compiled.params,
  );
  return rows.map((row) => row.contact_id);
}

export interface PreviewContact {
  id: string;
  phone: string | null;
  country: string | null;
  language: string | null;
  timezone: string | null;
  created_at: string;
  last_seen_at: string | null;
  attributes: Record<string, unknown>;
}

/** One page of matching contacts, by contact id, with the chosen custom attributes. */
export async function previewAudience(
  runtime: Runtime,
  workspaceId: string,
  input: AudienceInput,
  options: AudienceOptions & { limit?: number; after?: string; attributes?: string[] } = {},
): Promise<{ contacts: PreviewContact[]; next_cursor: string | null; diagnostics: Diagnostic[] }> {
  const { compiled, diagnostics, schema } = await prepareAudience(runtime, workspaceId, input, options);
  const limit = Math.max(1, Math.min(options.limit ?? 50, 1000));
  const params: Record<string, unknown> = {
    ...compiled.params,
    preview_limit: limit + 1,
    preview_after: options.after ?? '',
  };
  const columns: string[] = [];
  const wanted = options.attributes ?? Object.keys(schema.attributes);
  const unknown = wanted.filter((name) => !Object.hasOwn(schema.attributes, name));
  if (unknown.length) {
    throw new SegmentError(`unknown attributes: ${unknown.join(', ')}`);
  }
  const mapOf: Record<AttributeType, string> = {
    string: 'attr_strings',
    number: 'attr_numbers',
    boolean: 'attr_booleans',
    date: 'attr_dates',
    datetime: 'attr_datetimes',
    string_list: 'attr_lists',
  };
  wanted.forEach((name, i) => {
    const column = mapOf[schema.attributes[name]!];
    params[`preview_attr${i}`] = name;
    columns.push(
      `if(mapContains(c.${column}, {preview_attr${i}:String}), toJSONString(c.${column}[{preview_attr${i}:String}]), '') AS a${i}`,
    );
  });
  const sql = `${compiled.with}SELECT c.contact_id AS id, c.phone AS phone, c.country AS country, c.language AS language,
    c.timezone AS timezone, c.created_at AS created_at, c.last_seen_at AS last_seen_at${columns.map((col) => `, ${col}`).join('')}
${compiled.from}
WHERE ${compiled.where} AND c.contact_id > {preview_after:String}
ORDER BY c.contact_id
LIMIT {preview_limit:UInt32}`;
  const rows = await run<Record<string, string | null>>(runtime, sql, params);
  const page = rows.slice(0, limit);
  const iso = (value: string | null | undefined) => (value ? `${value.replace(' ', 'T')}Z` : null);
  return {
    contacts: page.map((row) => ({
      id: row.id!,
      phone: row.phone || null,
      country: row.country || null,
      language: row.language || null,
      timezone: row.timezone || null,
      created_at: iso(row.created_at)!,
      last_seen_at: iso(row.last_seen_at),
      attributes: Object.fromEntries(
        wanted.flatMap((name, i) => {
          const raw = row[`a${i}`];
          return raw ? [[name, JSON.parse(raw) as unknown]] : [];
        }),
      ),
    })),
    next_cursor: rows.length > limit ? page[page.length - 1]!.id! : null,
    diagnostics,
  };
}

/**
 * Freezes the exact matching contact ids into ClickHouse `audience_snapshots`. Re-running with the
 * same snapshot id and segment adds nothing (the table collapses duplicates), so a retry is safe.
 */
export async function createSnapshot(
  runtime: Runtime,
  workspaceId: string,
  input: AudienceInput,
  options: AudienceOptions & { snapshotId?: string } = {},
): Promise<{ snapshot_id: string; count: number; now: string }> {
  const now = options.now ?? new Date();
  const { compiled } = await prepareAudience(runtime, workspaceId, input, { ...options, now });
  const snapshotId = options.snapshotId ?? newId('snap', 20);
  const db = runtime.ch.database;
  const params = { ...compiled.params, snapshot_ws: workspaceId, snapshot_id: snapshotId };
  await run(
    runtime,
    `INSERT INTO ${db}.audience_snapshots (workspace_id, snapshot_id, contact_id)
SELECT {snapshot_ws:String}, {snapshot_id:String}, contact_id FROM (${compiled.sql})`,
    params,
    true,
  );
  const rows = await runtime.ch.rows<{ count: string | number }>(
    `SELECT count() AS count FROM ${db}.audience_snapshots FINAL WHERE workspace_id = {ws:String} AND snapshot_id = {id:String}`,
    { ws: workspaceId, id: snapshotId },
  );
  runtime.log.info(
    { workspaceId, snapshotId, count: Number(rows[0]?.count ?? 0) },
    'audience snapshot created',
  );
  return { snapshot_id: snapshotId, count: Number(rows[0]?.count ?? 0), now: now.toISOString() };
}

/** The contact ids of a snapshot, a page at a time. */
export async function snapshotContacts(
  runtime: Runtime,
  workspaceId: string,
  snapshotId: string,
  options: { limit?: number; after?: string } = {},
): Promise<string[]> {
  const rows = await runtime.ch.rows<{ contact_id: string }>(
    `SELECT DISTINCT contact_id FROM ${runtime.ch.database}.audience_snapshots
WHERE workspace_id = {ws:String} AND snapshot_id = {id:String} AND contact_id > {after:String}
ORDER BY contact_id LIMIT {limit:UInt32}`,
    { ws: workspaceId, id: snapshotId, after: options.after ?? '', limit: options.limit ?? 10_000 },
  );
  return rows.map((row) => row.contact_id);
}
