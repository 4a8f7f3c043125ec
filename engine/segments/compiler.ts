import { DateTime } from 'luxon';
import {
  type CompareOp,
  type CountClause,
  durationMs,
  type EventAggregateCondition,
  type EventCondition,
  type EventSequenceCondition,
  type EventTimeCondition,
  type LastSeenCondition,
  type Literal,
  type MessageCondition,
  type Predicate,
  type PropertyExpr,
  type SegmentAst,
  type SegmentExpr,
  type Window,
} from './ast.ts';
import { toInstant } from './checker.ts';
import { type AttributeType, attributeType, type SegmentSchema } from './schema.ts';

/** Which physical path answers event counts and first/last times. */
export type EventPath = 'auto' | 'raw' | 'rollup';

export interface CompileOptions {
  workspaceId: string;
  /** The instant the segment is evaluated at; every window is relative to it. */
  now: Date;
  /** ClickHouse database holding Chorus tables (a validated identifier). */
  database?: string;
  /** `auto` uses the daily rollup where it reads at least two whole days; the others force a path. */
  path?: EventPath;
  /**
   * Whether the rollup holds markedly fewer rows than raw events (several events per contact, name
   * and day). When false, `auto` reads raw events: a rollup as large as the events saves nothing.
   */
  rollupCompresses?: boolean;
  /** Contact time zones beyond the IANA canonical list (aliases), for anniversaries. */
  extraZones?: string[];
}

export interface CompiledSql {
  /** `WITH scan_... AS (...)` (empty when the segment reads contacts only): the sets `where` tests. */
  with: string;
  /** `FROM` the latest contact versions, aliased `c`, and the scans joined as condition bit masks. */
  from: string;
  /** The boolean condition over `c`: attributes, and membership of `c`'s key in the scans' sets. */
  where: string;
  /** `SELECT c.contact_id AS contact_id FROM ... WHERE ...`: the audience, one row per contact. */
  sql: string;
  params: Record<string, unknown>;
  /** What the query reads, for tests and benchmarks. */
  plan: {
    events: boolean;
    rollup: boolean;
    /** events_by_contact: count, first and last time per contact and event name. */
    summary: boolean;
    activity: boolean;
    messages: boolean;
    eventConditions: number;
  };
}

export class CompileError extends Error {}

const IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/;
const DAY = 86_400_000;
const NUMBER_TYPES = `('Int64', 'UInt64', 'Double')`;

/** Map column of each custom attribute type; a closed allow-list, never user text. */
const MAP_COLUMN: Record<AttributeType, string> = {
  string: 'c.attr_strings',
  number: 'c.attr_numbers',
  boolean: 'c.attr_booleans',
  date: 'c.attr_dates',
  datetime: 'c.attr_datetimes',
  string_list: 'c.attr_lists',
};
const BUILTIN_COLUMN: Record<string, string> = {
  phone: 'c.phone',
  country: 'c.country',
  language: 'c.language',
  timezone: 'c.timezone',
  created_at: 'c.created_at',
  last_seen_at: 'c.last_seen_at',
};

/** Query parameters: every value a segment carries goes here, and the SQL names it `{pN:Type}`. */
class Params {
  readonly values: Record<string, unknown> = {};
  private n = 0;
  add(value: unknown, type: string): string {
    const name = `p${this.n++}`;
    // The client refuses numbers beyond 2^53; ClickHouse reads them exactly from text.
    this.values[name] =
      typeof value === 'number' && !Number.isSafeInteger(value) && Number.isFinite(value)
        ? String(value)
        : value;
    return `{${name}:${type}}`;
  }
  string(value: string): string {
    return this.add(value, 'String');
  }
  instant(value: Date): string {
    return this.add(formatInstant(value), "DateTime64(3, 'UTC')");
  }
}

export function formatInstant(value: Date): string {
  return value.toISOString().replace('T', ' ').replace('Z', '');
}

/**
 * One grouped read of a source per segment (raw events, the per-contact summary, ...). Its
 * conditions ("atoms") are evaluated inside the scan, per contact, and the scan yields the contacts
 * whose atom differs from its value for a contact with no rows at all; the outer query tests
 * membership in that set instead of joining the scan's columns (README: "The query").
 */
interface Scan {
  /** The CTE name, `scan_<source>`. */
  name: string;
  aggregates: string[];
  /** Row filters, OR-ed; `undefined` lower bound means the condition needs all history. */
  filters: { sql: string; lower?: Date; name?: string }[];
  /**
   * `predicate` over the scan's aggregates, with its value for a contact without rows (`absent`);
   * or `exists`: a row predicate (some row of the contact matches), false when absent.
   */
  atoms: ({ predicate: string; absent: boolean } | { exists: string })[];
}

const newScan = (name: string): Scan => ({ name: `scan_${name}`, aggregates: [], filters: [], atoms: [] });

const atomMarker = (scan: Scan, index: number) => `__atom_${scan.name}_${index}__`;

const COMPARE: Record<CompareOp, (a: number, b: number) => boolean> = {
  '=': (a, b) => a === b,
  '!=': (a, b) => a !== b,
  '<': (a, b) => a < b,
  '<=': (a, b) => a <= b,
  '>': (a, b) => a > b,
  '>=': (a, b) => a >= b,
};

/** Compiles a checked AST to one parameterized ClickHouse query. */
export function compileAst(ast: SegmentAst, schema: SegmentSchema, options: CompileOptions): CompiledSql {
  const db = options.database ?? 'chorus';
  if (!IDENTIFIER.test(db)) throw new CompileError('invalid database name');
  const path = options.path ?? 'auto';
  const now = options.now;
  if (Number.isNaN(now.getTime())) throw new CompileError('invalid now');
  const params = new Params();
  const ws = params.string(options.workspaceId);
  const nowSql = params.instant(now);
  const events = newScan('events');
  /** events_daily whole days and the raw events at a window's partial edges, as one row stream. */
  const rollup = newScan('rollup');
  /** Row filters of the rollup scan's raw edge events (its `filters` are the whole days'). */
  const rollupEdges: Scan['filters'] = [];
  const messages = newScan('messages');
  /** events_by_contact (one row per contact and event name), on every path but the forced `raw`. */
  const summary = newScan('summary');
  const summaryColumns = new Map<string, string>();
  const summaryNames = new Map<string, string>();
  /** contact_activity (the latest event per contact), for `last seen` in windows reaching now. */
  const activity = newScan('activity');
  /** Lower bounds of the `last seen` conditions answered from contact_activity (undefined: none). */
  const activityLowers: (Date | undefined)[] = [];
  /** Per action whose status set is narrowed, the sends of each condition whose statuses it needs. */
  const statusSends: Partial<Record<MessageCondition['action'], string[]>> = {};
  const messageActions = new Set<MessageCondition['action']>();
  let eventConditions = 0;
  let todayCache: string | undefined;
  let aggregateCount = 0;

  /** An aggregate column of a scan; the name is what the scan's atoms refer to. */
  const agg = (scan: Scan, expr: string): string => {
    const name = `v${aggregateCount++}`;
    scan.aggregates.push(`${expr} AS ${name}`);
    return name;
  };
  /** A condition evaluated in the scan; the SQL is a marker replaced by the membership test. */
  const atom = (scan: Scan, predicate: string, absent: boolean): string => {
    scan.atoms.push({ predicate, absent });
    return atomMarker(scan, scan.atoms.length - 1);
  };
  const existsAtom = (scan: Scan, rows: string): string => {
    scan.atoms.push({ exists: rows });
    return atomMarker(scan, scan.atoms.length - 1);
  };

  // ---- time ----
  const instantOf = (literal: Literal): Date => {
    const at = toInstant(literal, schema.timezone);
    if (!at) throw new CompileError(`invalid time ${literal.type}`);
    return at;
  };
  interface Bounds {
    lower?: { at: Date; inclusive: boolean };
    upper?: { at: Date; inclusive: boolean };
  }
  const boundsOf = (window: Window | undefined): Bounds => {
    if (!window) return {};
    switch (window.kind) {
      case 'in-last':
        return {
          lower: { at: new Date(now.getTime() - durationMs(window.duration)), inclusive: false },
          upper: { at: now, inclusive: true },
        };
      case 'more-than-ago':
        return { upper: { at: new Date(now.getTime() - durationMs(window.duration)), inclusive: false } };
      case 'since':
        return { lower: { at: instantOf(window.at), inclusive: true } };
      case 'before':
        return { upper: { at: instantOf(window.at), inclusive: false } };
      case 'between':
        return {
          lower: { at: instantOf(window.from), inclusive: true },
          upper: { at: instantOf(window.to), inclusive: false },
        };
    }
  };
  const boundsSql = (bounds: Bounds, ts: string): string => {
    const parts: string[] = [];
    if (bounds.lower)
      parts.push(`${ts} ${bounds.lower.inclusive ? '>=' : '>'} ${params.instant(bounds.lower.at)}`);
    if (bounds.upper)
      parts.push(`${ts} ${bounds.upper.inclusive ? '<=' : '<'} ${params.instant(bounds.upper.at)}`);
    return parts.length ? parts.join(' AND ') : '1';
  };
  const windowSql = (window: Window | undefined, ts: string) => boundsSql(boundsOf(window), ts);

  // ---- attributes ----
  const attributeSql = (name: string, predicate: Predicate): string => {
    const type = attributeType(schema, name);
    if (!type) throw new CompileError(`unknown attribute ${name}`);
    let value: string;
    let present: string;
    if (Object.hasOwn(BUILTIN_COLUMN, name)) {
      value = BUILTIN_COLUMN[name]!;
      present = type === 'string' ? `${value} != ''` : name === 'last_seen_at' ? `${value} IS NOT NULL` : '1';
      if (name === 'last_seen_at') value = `assumeNotNull(${value})`;
    } else {
      const column = MAP_COLUMN[type];
      const key = params.string(name);
      value = `${column}[${key}]`;
      present = `mapContains(${column}, ${key})`;
      if (type === 'string') present += ` AND ${value} != ''`;
      if (type === 'string_list') present += ` AND notEmpty(${value})`;
    }
    if (predicate.op === 'is-set') return `(${present})`;
    if (predicate.op === 'is-not-set') return `NOT (${present})`;
    let instant = value;
    if (type === 'date') instant = `toDateTime64(${value}, 3, ${params.string(schema.timezone)})`;
    const test = valuePredicate(predicate, type, value, instant);
    return `(${present} AND ${test})`;
  };

  const literalSql = (literal: Literal, type: AttributeType | 'property'): string => {
    switch (literal.type) {
      case 'string':
        return params.string(literal.value);
      case 'number':
        return params.add(literal.value, 'Float64');
      case 'boolean':
        return params.add(literal.value, 'Bool');
      default:
        void type;
        return params.instant(instantOf(literal));
    }
  };

  const valuePredicate = (
    predicate: Predicate,
    type: AttributeType,
    value: string,
    instant: string,
  ): string => {
    const time = type === 'date' || type === 'datetime';
    switch (predicate.op) {
      case '=':
      case '!=':
      case '<':
      case '<=':
      case '>':
      case '>=':
        return `${time ? instant : value} ${predicate.op} ${literalSql(predicate.value, type)}`;
      case 'in':
      case 'not-in': {
        const arrayType = type === 'number' ? 'Array(Float64)' : 'Array(String)';
        const values = predicate.values.map((v) => v.value);
        return `${predicate.op === 'not-in' ? 'NOT ' : ''}has(${params.add(values, arrayType)}, ${value})`;
      }
      case 'between':
        return `${value} >= ${literalSql(predicate.from, type)} AND ${value} <= ${literalSql(predicate.to, type)}`;
      case 'contains':
        return `positionCaseInsensitiveUTF8(${value}, ${literalSql(predicate.value, type)}) > 0`;
      case 'starts-with':
        return `startsWith(${value}, ${literalSql(predicate.value, type)})`;
      case 'ends-with':
        return `endsWith(${value}, ${literalSql(predicate.value, type)})`;
      case 'matches':
        return `match(${value}, ${literalSql(predicate.value, type)})`;
      case 'has':
        return `has(${value}, ${literalSql(predicate.value, type)})`;
      case 'window':
        return windowSql(predicate.window, instant);
      case 'anniversary-today':
      case 'anniversary-next': {
        const day = type === 'date' ? value : `toDate(${value}, ${params.string(schema.timezone)})`;
        const monthDay = `(toMonth(${day}) * 100 + toDayOfMonth(${day}))`;
        const today = contactToday();
        if (predicate.op === 'anniversary-today')
          return `${monthDay} = (toMonth(${today}) * 100 + toDayOfMonth(${today}))`;
        const days = params.add(predicate.days, 'UInt16');
        return `has(arrayMap(k -> toMonth(addDays(${today}, k)) * 100 + toDayOfMonth(addDays(${today}, k)), range(${days})), ${monthDay})`;
      }
      default:
        throw new CompileError(`operator ${predicate.op} does not apply`);
    }
  };

  /** Today's date in each contact's own zone (the workspace's when the contact has none). */
  const contactToday = (): string => {
    if (todayCache) return todayCache;
    const { zones, dates, fallback } = localDates(now, schema.timezone, options.extraZones);
    todayCache = `transform(c.timezone, ${params.add(zones, 'Array(String)')}, ${params.add(dates, 'Array(Date)')}, ${params.add(fallback, 'Date')})`;
    return todayCache;
  };

  // ---- event properties (JSON) ----
  const propertySql = (expr: PropertyExpr): string => {
    if (expr.kind === 'and' || expr.kind === 'or')
      return `(${expr.items.map(propertySql).join(` ${expr.kind.toUpperCase()} `)})`;
    if (expr.kind === 'not') return `NOT ${propertySql(expr.item)}`;
    const key = params.string(expr.property);
    const json = jsonProperty(key);
    if (expr.op === 'is-set' || expr.op === 'is-not-set') {
      const present = `(${json.present} AND NOT (${json.isString} AND ${json.string} = ''))`;
      return expr.op === 'is-set' ? present : `NOT ${present}`;
    }
    const literal =
      'value' in expr
        ? expr.value
        : 'values' in expr
          ? expr.values[0]!
          : 'from' in expr
            ? expr.from
            : undefined;
    const kind = literal?.type === 'number' ? 'number' : literal?.type === 'boolean' ? 'boolean' : 'string';
    if (kind === 'boolean') return `(${json.isBool} AND ${valuePredicate(expr, kind, json.bool, json.bool)})`;
    // Numbers and strings from the typed maps materialized at ingest (migration 0110).
    const typed = kind === 'number' ? numberProperty(key) : stringProperty(key);
    return `(${typed.present} AND ${valuePredicate(expr, kind, typed.value, typed.value)})`;
  };
  /** A condition's event test; `properties`, its property filter, also narrows the scan's rows. */
  const eventMatch = (
    event: string,
    where: PropertyExpr | undefined,
  ): { sql: string; name: string; properties?: string } => {
    const name = params.string(event);
    if (!where) return { sql: `name = ${name}`, name };
    const properties = propertySql(where);
    return { sql: `name = ${name} AND ${properties}`, name, properties };
  };
  /**
   * The rows one condition can use, as a row filter of its scan: its name and its window's bounds
   * (closed, a superset of what the condition counts), so the primary key (name, day) prunes them.
   */
  const rowFilter = (name: string | undefined, bounds: Bounds, extra?: string): Scan['filters'][number] => {
    const lower = bounds.lower?.at;
    const upper = bounds.upper && bounds.upper.at.getTime() < now.getTime() ? bounds.upper.at : undefined;
    const parts = [
      name ? `name = ${name}` : '',
      lower ? `ts >= ${params.instant(lower)}` : '',
      upper ? `ts <= ${params.instant(upper)}` : '',
      extra ?? '',
    ].filter(Boolean);
    return {
      sql: parts.length ? `(${parts.join(' AND ')})` : '1',
      ...(lower ? { lower } : {}),
      ...(name ? { name } : {}),
    };
  };

  // ---- the daily rollup: whole UTC days from events_daily, partial edges from raw events ----
  const rollupSplit = (bounds: Bounds): { from?: Date; to: Date } | undefined => {
    if (path === 'raw' || (path === 'auto' && options.rollupCompresses === false)) return undefined;
    const floorDay = (d: Date) => new Date(Math.floor(d.getTime() / DAY) * DAY);
    let from: Date | undefined;
    if (bounds.lower) {
      const at = bounds.lower.at;
      from = bounds.lower.inclusive && at.getTime() % DAY === 0 ? at : new Date(floorDay(at).getTime() + DAY);
    }
    const upper = bounds.upper ? Math.min(bounds.upper.at.getTime(), now.getTime()) : now.getTime();
    const to = floorDay(new Date(upper));
    const span = from ? to.getTime() - from.getTime() : Number.POSITIVE_INFINITY;
    if (span <= 0) return undefined;
    if (path === 'auto' && span < 2 * DAY) return undefined;
    return { ...(from ? { from } : {}), to };
  };
  const day = (d: Date) => params.add(d.toISOString().slice(0, 10), 'Date');

  /**
   * Count, first and last time of matching events in bounds, exact, all in one scan: raw events, or
   * the rollup scan, whose rows are events_daily's whole days (`raw = 0`, `ts` its first time) and
   * the raw events of the partial days at the edges (`raw = 1`, one row per event).
   */
  const countAndTimes = (
    event: string | undefined,
    bounds: Bounds,
    want: { min?: boolean; max?: boolean },
  ): { scan: Scan; count: string; min?: string; max?: string } => {
    const name = event === undefined ? undefined : params.string(event);
    const nameSql = name ? `name = ${name} AND ` : '';
    const split = rollupSplit(bounds);
    const rawBounds = boundsSql(bounds, 'ts');
    if (!split) {
      const cond = `${nameSql}${rawBounds}`;
      events.filters.push(rowFilter(name, bounds));
      return {
        scan: events,
        count: agg(events, `countIf(${cond})`),
        ...(want.min ? { min: agg(events, `minIf(ts, ${cond})`) } : {}),
        ...(want.max ? { max: agg(events, `maxIf(ts, ${cond})`) } : {}),
      };
    }
    const from = split.from ? day(split.from) : undefined;
    const to = day(split.to);
    const dayCond = `${nameSql}${from ? `day >= ${from} AND ` : ''}day < ${to}`;
    const edge = `(${split.from ? `ts < ${params.instant(split.from)} OR ` : ''}ts >= ${params.instant(split.to)})`;
    rollup.filters.push({ sql: `(${dayCond})`, ...(name ? { name } : {}) });
    rollupEdges.push(rowFilter(name, bounds, edge));
    const cond = `(raw = 0 AND ${dayCond} OR raw = 1 AND ${nameSql}${rawBounds} AND ${edge})`;
    return {
      scan: rollup,
      count: agg(rollup, `sumIf(events, ${cond})`),
      ...(want.min ? { min: agg(rollup, `minIf(ts, ${cond})`) } : {}),
      ...(want.max ? { max: agg(rollup, `maxIf(last_ts, ${cond})`) } : {}),
    };
  };

  /** A count clause as SQL, and its value for a count of zero (a contact without rows). */
  const countClause = (count: string, clause: CountClause): { sql: string; zero: boolean } => {
    const n = params.add(clause.value, 'UInt64');
    const op = clause.op === 'at-least' ? '>=' : clause.op === 'at-most' ? '<=' : '=';
    return { sql: `${count} ${op} ${n}`, zero: COMPARE[op](0, clause.value) };
  };
  const countAtom = (scan: Scan, count: string, clause: CountClause): string => {
    const test = countClause(count, clause);
    return atom(scan, test.sql, test.zero);
  };

  // ---- behaviour ----
  // ---- events_by_contact: all-time count, first and last time per contact and name ----
  // The summary scan reads events_by_contact for every contact whose events are all at or before
  // `now`, and the raw events (one row per event up to now) of the others: contacts whose latest
  // event is after `now` (a past `now`; none when `now` is the present), so its counts and times
  // are those of the events up to `now` for every contact.
  /** One summary column of an event name (shared by the conditions on that name). */
  const summaryColumn = (event: string, column: 'count' | 'first' | 'last'): string => {
    const key = `${column}|${event}`;
    let ref = summaryColumns.get(key);
    if (!ref) {
      const name = summaryName(event);
      const expr =
        column === 'count'
          ? `sumIf(events, name = ${name})`
          : column === 'first'
            ? `minIf(first_ts, name = ${name})`
            : `maxIf(last_ts, name = ${name})`;
      ref = agg(summary, expr);
      summaryColumns.set(key, ref);
    }
    return ref;
  };
  const summaryName = (event: string): string => {
    let name = summaryNames.get(event);
    if (!name) {
      name = params.string(event);
      summaryNames.set(event, name);
    }
    return name;
  };
  /** Some event of the name in a window reaching now (or all history): some summary row's last time. */
  const summaryExists = (event: string, window: Window | undefined): string | undefined => {
    if (path === 'raw') return undefined;
    if (window && window.kind !== 'in-last' && window.kind !== 'since') return undefined;
    const bounds = boundsOf(window);
    const inWindow = bounds.lower ? ` AND ${boundsSql({ lower: bounds.lower }, 'last_ts')}` : '';
    return existsAtom(summary, `name = ${summaryName(event)}${inWindow}`);
  };

  const eventSql = (expr: EventCondition): string => {
    eventConditions++;
    const bounds = boundsOf(expr.window);
    if (!expr.where && path !== 'raw') {
      const { op, value } = expr.count;
      const exists = op === 'at-least' && value === 1;
      const none = value === 0 && (op === 'exactly' || op === 'at-most');
      if (exists || none) {
        const found = summaryExists(expr.event, expr.window);
        if (found) return exists ? found : `(NOT ${found})`;
      }
      if (!expr.window) return countAtom(summary, summaryColumn(expr.event, 'count'), expr.count);
    }
    if (!expr.where) {
      const { scan, count } = countAndTimes(expr.event, bounds, {});
      return countAtom(scan, count, expr.count);
    }
    const match = eventMatch(expr.event, expr.where);
    events.filters.push(rowFilter(match.name, bounds, match.properties));
    const rows = `${match.sql} AND ${boundsSql(bounds, 'ts')}`;
    if (expr.count.op === 'at-least' && expr.count.value === 1) return existsAtom(events, rows);
    return countAtom(events, agg(events, `countIf(${rows})`), expr.count);
  };

  const eventTimeSql = (expr: EventTimeCondition): string => {
    eventConditions++;
    const window = expr.window;
    if (!expr.where && path !== 'raw' && window) {
      const count = summaryColumn(expr.event, 'count');
      if (expr.which === 'first') {
        const first = summaryColumn(expr.event, 'first');
        return atom(summary, `${count} > 0 AND ${windowSql(window, first)}`, false);
      }
      if (window.kind !== 'in-last' && window.kind !== 'since') {
        const last = summaryColumn(expr.event, 'last');
        return atom(summary, `${count} > 0 AND ${windowSql(window, last)}`, false);
      }
    }
    // The last event falls in a window that reaches now exactly when some event does (and the first
    // event falls in an open-ended past window exactly when some event does): a plain windowed count.
    const reachesNow = window && (window.kind === 'in-last' || window.kind === 'since');
    const fromPast = window && (window.kind === 'more-than-ago' || window.kind === 'before');
    if ((expr.which === 'last' && reachesNow) || (expr.which === 'first' && fromPast) || !window) {
      return eventSql({
        kind: 'event',
        event: expr.event,
        ...(expr.where ? { where: expr.where } : {}),
        count: { op: 'at-least', value: 1 },
        ...(window ? { window } : {}),
      });
    }
    if (!expr.where) {
      const result = countAndTimes(expr.event, {}, expr.which === 'first' ? { min: true } : { max: true });
      const time = (expr.which === 'first' ? result.min : result.max)!;
      return atom(result.scan, `${result.count} > 0 AND ${windowSql(window, time)}`, false);
    }
    const match = eventMatch(expr.event, expr.where);
    events.filters.push(rowFilter(match.name, {}, match.properties));
    const count = agg(events, `countIf(${match.sql})`);
    const time = agg(events, `${expr.which === 'first' ? 'minIf' : 'maxIf'}(ts, ${match.sql})`);
    return atom(events, `${count} > 0 AND ${windowSql(window, time)}`, false);
  };

  const aggregateSql = (expr: EventAggregateCondition): string => {
    eventConditions++;
    const bounds = boundsOf(expr.window);
    const match = eventMatch(expr.event, expr.where);
    events.filters.push(rowFilter(match.name, bounds, match.properties));
    const key = params.string(expr.property);
    const base = `${match.sql} AND ${boundsSql(bounds, 'ts')}`;
    const value = params.add(expr.value, 'Float64');
    // Without events: a count distinct and a sum are 0; an average, minimum or maximum does not exist.
    const zero = COMPARE[expr.op](0, expr.value);
    if (expr.fn === 'count-distinct') {
      const distinct = agg(
        events,
        `uniqExactIf(JSONExtractRaw(properties, ${key}), ${base} AND JSONHas(properties, ${key}) AND JSONType(properties, ${key}) != 'Null')`,
      );
      return atom(events, `${distinct} ${expr.op} ${value}`, zero);
    }
    const { present, value: number } = numberProperty(key);
    const numeric = `${base} AND ${present}`;
    switch (expr.fn) {
      case 'sum':
        // An event without the number adds the map's default, 0: no presence test needed.
        return atom(events, `${agg(events, `sumIf(${number}, ${base})`)} ${expr.op} ${value}`, zero);
      case 'avg': {
        const count = agg(events, `countIf(${numeric})`);
        const sum = agg(events, `sumIf(${number}, ${numeric})`);
        return atom(events, `${count} > 0 AND ${sum} / ${count} ${expr.op} ${value}`, false);
      }
      default: {
        const count = agg(events, `countIf(${numeric})`);
        const extreme = agg(events, `${expr.fn}If(${number}, ${numeric})`);
        return atom(events, `${count} > 0 AND ${extreme} ${expr.op} ${value}`, false);
      }
    }
  };

  const sequenceSql = (expr: EventSequenceCondition): string => {
    eventConditions++;
    const bounds = boundsOf(expr.window);
    const first = eventMatch(expr.first.event, expr.first.where);
    const then = eventMatch(expr.next.event, expr.next.where);
    const withinMs = durationMs(expr.within);
    const within = params.add(withinMs, 'Int64');
    const nowMs = params.add(now.getTime(), 'Int64');
    // A first event of a negated sequence counts once its whole span has passed (a + within <= now).
    const firstUpper = Math.min(
      bounds.upper?.at.getTime() ?? now.getTime(),
      expr.negated ? now.getTime() - withinMs : now.getTime(),
    );
    const firstCond = `${first.sql} AND ${boundsSql(bounds, 'ts')}${expr.negated ? ` AND toUnixTimestamp64Milli(ts) + ${within} <= ${nowMs}` : ''}`;
    // Rows: first events in the window; second events after its start and at most `within` after its end.
    events.filters.push(
      rowFilter(
        first.name,
        { ...bounds, upper: { at: new Date(firstUpper), inclusive: true } },
        first.properties,
      ),
      rowFilter(
        then.name,
        {
          ...(bounds.lower ? { lower: bounds.lower } : {}),
          upper: { at: new Date(firstUpper + withinMs), inclusive: true },
        },
        then.properties,
      ),
    );
    // Per contact, one sorted pass instead of comparing every pair: each event's time in ms, doubled,
    // plus its kind (0 = a second event, 1 = a first event), so one integer sort orders by time and
    // puts seconds first at equal times; a reverse fill then gives each first event (2a + 1) the next
    // second event after it (2b, b > a strictly), or, when none follows, the last entry, odd.
    // b <= a + within is 2b <= (2a + 1) - 1 + 2 within. Computed in the scan: one flag crosses the join.
    // A row that is both a first and a second event (possible only when both sides name the same
    // event) adds its second-event entry through a second array; with two names there is none, and
    // leaving that array out saves ~12% (1M A/B: 1,060 -> 936 ms for `add_to_cart then not purchase`).
    // Only whether the two names are equal shapes the SQL, never their text (the fuzz test checks it).
    const entries = `groupArrayIf(toUnixTimestamp64Milli(ts) * 2 + (${firstCond}), (${firstCond}) OR (${then.sql}))`;
    const collected =
      expr.first.event === expr.next.event
        ? `arrayConcat(
      ${entries},
      groupArrayIf(toUnixTimestamp64Milli(ts) * 2, (${firstCond}) AND (${then.sql})))`
        : entries;
    const sorted = agg(events, `arraySort(${collected})`);
    const next = `arrayReverseFill(x -> bitAnd(x, 1) = 0, ${sorted})`;
    const within2 = `x - 1 + 2 * ${within}`;
    const test = expr.negated ? `bitAnd(n, 1) = 1 OR n > ${within2}` : `bitAnd(n, 1) = 0 AND n <= ${within2}`;
    const found = agg(events, `arrayExists((x, n) -> bitAnd(x, 1) = 1 AND (${test}), ${sorted}, ${next})`);
    // Without events there is no first event: false.
    return atom(events, `${found} = 1`, false);
  };

  const lastSeenSql = (expr: LastSeenCondition): string => {
    eventConditions++;
    const bounds = boundsOf(expr.window);
    const attribute = `ifNull(${boundsSql(bounds, 'assumeNotNull(c.last_seen_at)')} AND c.last_seen_at IS NOT NULL, 0)`;
    const reachesNow = !bounds.upper || bounds.upper.at.getTime() >= now.getTime();
    if (path === 'raw' || !reachesNow) {
      const { scan, count } = countAndTimes(undefined, bounds, {});
      return `(${atom(scan, `${count} > 0`, false)} OR ${attribute})`;
    }
    // A window reaching now holds an event exactly when some activity row's latest event (at or
    // before now) falls in it; contacts with an event after now (a past `now`) are read from their
    // raw events up to now instead (see the activity scan).
    activityLowers.push(bounds.lower?.at);
    const inWindow = bounds.lower ? boundsSql({ lower: bounds.lower }, 'latest') : '1';
    return `(${existsAtom(activity, inWindow)} OR ${attribute})`;
  };

  const messageSql = (expr: MessageCondition): string => {
    const name = expr.target.type === 'any' ? undefined : params.string(expr.target.name);
    const target =
      expr.target.type === 'campaign'
        ? `campaign_name = ${name}`
        : expr.target.type === 'template'
          ? `template_name = ${name}`
          : '1';
    const window = boundsSql(boundsOf(expr.window), 'sent_at');
    // The sends this condition counts, as a row filter of the sends scan (OR-ed over conditions).
    const own = [target, window].filter((part) => part !== '1');
    messages.filters.push({ sql: own.length ? `(${own.join(' AND ')})` : '1' });
    // Whether a send's message reached a status is a membership test of its message id in the set
    // of messages with such a status by now (one set per action, built once per query).
    const restrict = SET_RESTRICTED_BY_OUTCOME[expr.action];
    if (restrict) {
      statusSends[expr.action] ??= [];
      statusSends[expr.action]!.push([...own, restrict].join(' AND '));
    }
    messageActions.add(expr.action);
    const member = `provider_message_id IN ${setMarker(expr.action)}`;
    const reached: Record<MessageCondition['action'], string> = {
      received: `(outcome = 'accepted' OR ${member})`,
      read: member,
      replied: member,
      failed: `(outcome = 'failed' OR ${member})`,
    };
    const count = agg(messages, `countIf(${[reached[expr.action], ...own].join(' AND ')})`);
    return countAtom(messages, count, expr.count);
  };

  // ---- the boolean structure ----
  const exprSql = (expr: SegmentExpr, stack: string[]): string => {
    switch (expr.kind) {
      case 'and':
      case 'or':
        return `(${expr.items.map((item) => exprSql(item, stack)).join(` ${expr.kind.toUpperCase()} `)})`;
      case 'not':
        return `(NOT ${exprSql(expr.item, stack)})`;
      case 'constant':
        return expr.value ? '1' : '0';
      case 'attribute':
        return attributeSql(expr.attribute, expr);
      case 'tagged':
        return `has(c.tags, ${params.string(expr.tag)})`;
      case 'in-list':
        return `has(c.lists, ${params.string(expr.list)})`;
      case 'consent':
        return `(c.consent[${params.string(`${expr.channel}.${expr.purpose}`)}] = ${params.string(expr.state === 'subscribed' ? 'opted_in' : 'opted_out')})`;
      case 'sample': {
        const seed = params.string(expr.seed);
        const threshold = params.add(Math.round(expr.percent * 10_000), 'UInt64');
        return `(reinterpretAsUInt64(reverse(substring(SHA256(concat(${seed}, ':', c.contact_id)), 1, 8))) % 1000000 < ${threshold})`;
      }
      case 'in-segment': {
        const referenced = schema.segments?.[expr.segment];
        if (!referenced) throw new CompileError(`unknown segment ${expr.segment}`);
        if (stack.includes(expr.segment)) throw new CompileError(`segment cycle through ${expr.segment}`);
        return exprSql(referenced.root, [...stack, expr.segment]);
      }
      case 'event':
        return eventSql(expr);
      case 'event-time':
        return eventTimeSql(expr);
      case 'event-aggregate':
        return aggregateSql(expr);
      case 'event-sequence':
        return sequenceSql(expr);
      case 'last-seen':
        return lastSeenSql(expr);
      case 'message':
        return messageSql(expr);
    }
  };

  const where = exprSql(ast.root, []);
  // Scans key contacts by a 64-bit hash of the contact id (stored in events as contact_key): integer
  // sets instead of string ones.
  const contactKey = 'cityHash64(c.contact_id)';
  const ctes: string[] = [];
  const memberships = new Map<string, string>();
  /**
   * A scan as a CTE of the contacts whose atoms differ from their value without rows: `contact_key`
   * alone when the scan has one atom, else `(contact_key, atom)` pairs (atom numbered from 1). A
   * scan of existence tests only needs no GROUP BY: a contact is in the set when some row matches.
   */
  const joins: string[] = [];
  // One scan with one condition: a set of contact keys. Otherwise every scan is joined as condition
  // masks: several sets are built one after another before the contacts are read, while join
  // tables fill side by side (1M: composite C 450 ms as sets, 300 as masks; the old join 446).
  const scansUsed = [events, summary, rollup, activity, messages].filter((x) => x.atoms.length).length;
  const finishScan = (scan: Scan, source: string, rowWhere: string) => {
    if (!scan.atoms.length) return;
    const existsOnly = scan.aggregates.length === 0 && scan.atoms.every((a) => 'exists' in a);
    // Existence tests among other conditions become counts.
    const tests = scan.atoms.map((a) =>
      'exists' in a
        ? { differs: existsOnly ? a.exists : `${agg(scan, `countIf(${a.exists})`)} > 0`, absent: false }
        : { differs: a.absent ? `NOT (${a.predicate})` : `(${a.predicate})`, absent: a.absent },
    );
    const aggregates = scan.aggregates.join(',\n      ');
    let body: string;
    if (tests.length === 1 && scansUsed === 1) {
      // The set of contacts where the condition differs, tested with IN.
      body = existsOnly
        ? `SELECT contact_key FROM ${source}
    WHERE ${rowWhere} AND (${tests[0]!.differs})`
        : `SELECT contact_key FROM (
    SELECT contact_key, ${aggregates}
    FROM ${source}
    WHERE ${rowWhere}
    GROUP BY contact_key
    HAVING ${tests[0]!.differs})`;
      const member = `${contactKey} IN ${scan.name}`;
      memberships.set(atomMarker(scan, 0), tests[0]!.absent ? `(NOT (${member}))` : `(${member})`);
    } else {
      // One row per contact where some condition differs, the conditions as bits of 64-bit masks,
      // joined (a contact without a row has every bit 0: each condition has its value without rows).
      const masks: string[][] = [];
      tests.forEach((t, i) => {
        masks[i >> 6] ??= [];
        masks[i >> 6]!.push(`bitShiftLeft(toUInt64(${t.differs}), ${i & 63})`);
      });
      const alias = `joined_${scan.name.slice('scan_'.length)}`;
      const maskColumns = masks.map((bits, k) =>
        existsOnly ? `groupBitOr(${bits.join(' + ')}) AS mask${k}` : `${bits.join(' + ')} AS mask${k}`,
      );
      const anyBit = masks.map((_, k) => `mask${k} != 0`).join(' OR ');
      body = existsOnly
        ? `SELECT contact_key, ${maskColumns.join(', ')}
    FROM ${source}
    WHERE ${rowWhere} AND (${tests.map((t) => `(${t.differs})`).join(' OR ')})
    GROUP BY contact_key`
        : `SELECT contact_key, ${masks.map((_, k) => `mask${k}`).join(', ')} FROM (
    SELECT contact_key, ${aggregates},
      ${maskColumns.join(',\n      ')}
    FROM ${source}
    WHERE ${rowWhere}
    GROUP BY contact_key
    HAVING ${anyBit})`;
      joins.push(`LEFT JOIN ${scan.name} AS ${alias} ON ${alias}.contact_key = ${contactKey}`);
      for (const [i, t] of tests.entries()) {
        const bit = `bitTest(${alias}.mask${i >> 6}, ${i & 63})`;
        memberships.set(atomMarker(scan, i), t.absent ? `(NOT ${bit})` : `(${bit} = 1)`);
      }
    }
    ctes.push(`${scan.name} AS (\n  ${body}\n)`);
  };
  /** Contacts with an event after now (a past `now`): their summaries and activity include it. */
  const late = `(SELECT cityHash64(contact_id) FROM ${db}.contact_activity WHERE workspace_id = ${ws} AND last_event_at > ${nowSql})`;

  if (events.atoms.length) {
    const filters = dedupe(events.filters.map((f) => f.sql));
    const global: string[] = [];
    if (events.filters.every((f) => f.lower)) {
      const earliest = Math.min(...events.filters.map((f) => f.lower!.getTime()));
      global.push(`ts >= ${params.instant(new Date(earliest))}`);
    }
    if (events.filters.every((f) => f.name)) {
      global.push(`name IN (${dedupe(events.filters.map((f) => f.name!)).join(', ')})`);
    }
    finishScan(
      events,
      `${db}.events`,
      `workspace_id = ${ws} AND ts <= ${nowSql}${global.map((g) => ` AND ${g}`).join('')}
      AND (${filters.includes('1') ? '1' : filters.join(' OR ')})`,
    );
  }
  if (summary.atoms.length) {
    const names = [...summaryNames.values()].join(', ');
    finishScan(
      summary,
      `(
      SELECT contact_key, name, toUInt64(events) AS events, CAST(first_ts AS DateTime64(3, 'UTC')) AS first_ts,
        CAST(last_ts AS DateTime64(3, 'UTC')) AS last_ts
      FROM ${db}.events_by_contact
      WHERE workspace_id = ${ws} AND name IN (${names}) AND contact_key NOT IN ${late}
      UNION ALL
      SELECT contact_key, name, toUInt64(1), ts, ts
      FROM ${db}.events
      WHERE workspace_id = ${ws} AND name IN (${names}) AND ts <= ${nowSql} AND contact_key IN ${late}
    )`,
      '1',
    );
  }
  if (rollup.atoms.length) {
    const names = (filters: Scan['filters']) =>
      filters.every((f) => f.name) ? ` AND name IN (${dedupe(filters.map((f) => f.name!)).join(', ')})` : '';
    const days = dedupe(rollup.filters.map((f) => f.sql));
    const edges = dedupe(rollupEdges.map((f) => f.sql));
    finishScan(
      rollup,
      `(
      SELECT cityHash64(contact_id) AS contact_key, name, 0 AS raw, day, CAST(first_ts AS DateTime64(3, 'UTC')) AS ts,
        CAST(last_ts AS DateTime64(3, 'UTC')) AS last_ts, toUInt64(events) AS events
      FROM ${db}.events_daily
      WHERE workspace_id = ${ws}${names(rollup.filters)} AND (${days.join(' OR ')})
      UNION ALL
      SELECT contact_key, name, 1, toDate(ts), ts, ts, toUInt64(1)
      FROM ${db}.events
      WHERE workspace_id = ${ws} AND ts <= ${nowSql}${names(rollupEdges)} AND (${edges.join(' OR ')})
    )`,
      '1',
    );
  }
  if (activity.atoms.length) {
    // Rows before the earliest window cannot put a latest event in any window.
    const lowest = activityLowers.every(Boolean)
      ? params.instant(new Date(Math.min(...activityLowers.map((d) => d!.getTime()))))
      : undefined;
    finishScan(
      activity,
      `(
      SELECT cityHash64(contact_id) AS contact_key, CAST(last_event_at AS DateTime64(3, 'UTC')) AS latest
      FROM ${db}.contact_activity
      WHERE workspace_id = ${ws} AND last_event_at <= ${nowSql}${lowest ? ` AND last_event_at >= ${lowest}` : ''}
      UNION ALL
      SELECT contact_key, ts
      FROM ${db}.events
      WHERE workspace_id = ${ws} AND ts <= ${nowSql}${lowest ? ` AND ts >= ${lowest}` : ''} AND contact_key IN ${late}
    )`,
      '1',
    );
  }
  if (messages.atoms.length) {
    // Only the sends some condition counts are read; each action's statuses are one set of message
    // ids (statuses of this workspace up to now), narrowed for `received` to the sends whose own
    // outcome does not decide it (refused ones: a few percent), so the set stays small.
    const filters = dedupe(messages.filters.map((f) => f.sql));
    const sendsWhere = `workspace_id = ${ws} AND sent_at <= ${nowSql}${filters.includes('1') ? '' : ` AND (${filters.join(' OR ')})`}`;
    const sets = new Map<string, string>();
    for (const action of [...messageActions].sort()) {
      const statuses = params.add(STATUSES_OF[action], 'Array(String)');
      const narrowed = statusSends[action];
      const narrow = narrowed
        ? `
        AND provider_message_id IN (SELECT provider_message_id FROM ${db}.sends
          WHERE workspace_id = ${ws} AND sent_at <= ${nowSql} AND (${dedupe(narrowed).join(' OR ')}))`
        : '';
      sets.set(
        setMarker(action),
        `(
      SELECT provider_message_id FROM ${db}.message_statuses
      WHERE workspace_id = ${ws} AND provider_message_id != '' AND ts <= ${nowSql} AND has(${statuses}, status)${narrow})`,
      );
    }
    for (const [marker, set] of sets)
      messages.aggregates = messages.aggregates.map((a) => a.replaceAll(marker, set));
    // FINAL without merging across partitions: a send's rows share its sent_at, so its month.
    finishScan(
      messages,
      `(
      SELECT cityHash64(contact_id) AS contact_key, campaign_name, template_name, outcome, provider_message_id, sent_at
      FROM ${db}.sends FINAL
      WHERE ${sendsWhere}
      SETTINGS do_not_merge_across_partitions_select_final = 1
    )`,
      '1',
    );
  }
  let fullWhere = `c.workspace_id = ${ws} AND c.deleted = 0 AND ${where}`;
  for (const [marker, sql] of memberships) fullWhere = fullWhere.replaceAll(marker, sql);
  const withSql = ctes.length ? `WITH ${ctes.join(',\n')}\n` : '';
  const from = [`FROM ${db}.contacts AS c FINAL`, ...joins].join('\n');
  return {
    with: withSql,
    from,
    where: fullWhere,
    sql: `${withSql}SELECT c.contact_id AS contact_id
${from}
WHERE ${fullWhere}`,
    params: params.values,
    plan: {
      events: events.atoms.length > 0,
      rollup: rollup.atoms.length > 0,
      summary: summary.atoms.length > 0,
      activity: activity.atoms.length > 0,
      messages: messages.atoms.length > 0,
      eventConditions,
    },
  };
}

/**
 * A top-level number or string property from the maps materialized at ingest (migration 0110):
 * present when the key's JSON value has that type, the value as ClickHouse reads it from the JSON.
 */
function numberProperty(key: string) {
  return { present: `mapContains(prop_numbers, ${key})`, value: `prop_numbers[${key}]` };
}
function stringProperty(key: string) {
  return { present: `mapContains(prop_strings, ${key})`, value: `prop_strings[${key}]` };
}

/**
 * One top-level property of the `properties` JSON, typed as the contract says. Every writer stores
 * `JSON.stringify` output (compact, unique keys), so in a document with no nested object or array
 * and no escape, `"key":` occurs only at the key and the raw text after it is the value: the
 * simpleJSON functions, several times cheaper than a full JSON parse per call, read it exactly.
 * Any other document takes the parsing functions (`if` evaluates only the branch a row needs).
 */
function jsonProperty(key: string) {
  const flat = `(position(properties, '\\\\') = 0 AND countSubstrings(properties, '{') = 1 AND position(properties, '[') = 0)`;
  const raw = `simpleJSONExtractRaw(properties, ${key})`;
  const type = `JSONType(properties, ${key})`;
  return {
    present: `if(${flat}, ${raw} NOT IN ('', 'null'), JSONHas(properties, ${key}) AND ${type} != 'Null')`,
    isNumber: `if(${flat}, match(${raw}, '^-?[0-9]'), ${type} IN ${NUMBER_TYPES})`,
    isString: `if(${flat}, startsWith(${raw}, '"'), ${type} = 'String')`,
    isBool: `if(${flat}, ${raw} IN ('true', 'false'), ${type} = 'Bool')`,
    number: `if(${flat}, toFloat64OrZero(${raw}), JSONExtractFloat(properties, ${key}))`,
    string: `if(${flat}, substring(${raw}, 2, length(${raw}) - 2), JSONExtractString(properties, ${key}))`,
    bool: `if(${flat}, ${raw} = 'true', JSONExtractBool(properties, ${key}))`,
  };
}

/**
 * Sends whose own outcome already decides an action need no status lookup: an accepted send is
 * received. The `received` status set is narrowed to the other sends (refused ones are few, while
 * nearly every message has a `sent` status); the other actions' sets are small without narrowing.
 */
const SET_RESTRICTED_BY_OUTCOME: Record<MessageCondition['action'], string | undefined> = {
  received: `outcome != 'accepted'`,
  failed: undefined,
  read: undefined,
  replied: undefined,
};

/** A stand-in for an action's status set in an aggregate, replaced once every condition is known. */
const setMarker = (action: MessageCondition['action']) => `__status_set_${action}__`;

/** The provider statuses each message action tests (besides the send's own outcome). */
const STATUSES_OF: Record<MessageCondition['action'], string[]> = {
  received: ['sent', 'delivered', 'read', 'replied'],
  read: ['read', 'replied'],
  replied: ['replied'],
  failed: ['failed'],
};

function dedupe<T>(values: T[]): T[] {
  return [...new Set(values)];
}

const ZONE_ALIASES = [
  'UTC',
  'Etc/UTC',
  'GMT',
  'Asia/Calcutta',
  'Asia/Kolkata',
  'Asia/Saigon',
  'Asia/Ho_Chi_Minh',
  'Asia/Katmandu',
  'Asia/Kathmandu',
  'Europe/Kiev',
  'Europe/Kyiv',
  'Asia/Rangoon',
  'Asia/Yangon',
  'America/Buenos_Aires',
  'America/Argentina/Buenos_Aires',
  'Asia/Dacca',
  'Asia/Dhaka',
];
let zoneList: string[] | undefined;

/**
 * ClickHouse takes only constant time zones, so a contact's local date is looked up: the zones whose
 * date at `now` differs from the workspace's, with their dates; every other contact gets the workspace's.
 */
export function localDates(
  now: Date,
  workspaceZone: string,
  extra: string[] = [],
): { zones: string[]; dates: string[]; fallback: string } {
  // Every zone offset is whole minutes, so one answer holds for the whole minute.
  const key = `${Math.floor(now.getTime() / 60_000)}|${workspaceZone}|${extra.join(',')}`;
  const cached = localDatesCache.get(key);
  if (cached) return cached;
  zoneList ??= [...new Set([...Intl.supportedValuesOf('timeZone'), ...ZONE_ALIASES])];
  const fallback = localDate(now, workspaceZone) ?? DateTime.fromJSDate(now, { zone: 'UTC' }).toISODate()!;
  const zones: string[] = [];
  const dates: string[] = [];
  for (const zone of new Set([...zoneList, ...extra])) {
    const date = localDate(now, zone);
    if (date && date !== fallback) {
      zones.push(zone);
      dates.push(date);
    }
  }
  const result = { zones, dates, fallback };
  if (localDatesCache.size > 100) localDatesCache.clear();
  localDatesCache.set(key, result);
  return result;
}

const localDatesCache = new Map<string, { zones: string[]; dates: string[]; fallback: string }>();
const dateFormats = new Map<string, Intl.DateTimeFormat | null>();

/** YYYY-MM-DD in a zone; formatters are cached because building one costs far more than using it. */
function localDate(now: Date, zone: string): string | undefined {
  let format = dateFormats.get(zone);
  if (format === undefined) {
    try {
      format = new Intl.DateTimeFormat('en-CA', {
        timeZone: zone,
        year: 'numeric',
        month: '2-digit',
        day: '2-digit',
      });
    } catch {
      format = null;
    }
    dateFormats.set(zone, format);
  }
  return format?.format(now);
}

export type { CompareOp };
