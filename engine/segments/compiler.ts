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
  /** `FROM ... JOINs` over the latest contact versions, aliased `c`. */
  from: string;
  /** The boolean condition over `c` and the scans. */
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

interface Scan {
  aggregates: string[];
  /** Row filters, OR-ed; `undefined` lower bound means the condition needs all history. */
  filters: { sql: string; lower?: Date; name?: string }[];
}

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
  const events: Scan = { aggregates: [], filters: [] };
  const rollup: Scan = { aggregates: [], filters: [] };
  const messages: Scan = { aggregates: [], filters: [] };
  /** Raw events of the contacts whose latest event is after now, for `last seen` (see lastSeenSql). */
  const late: Scan = { aggregates: [], filters: [] };
  /** events_by_contact (one row per contact and event name), on every path but the forced `raw`. */
  const summary: Scan = { aggregates: [], filters: [] };
  const summaryColumns = new Map<string, string>();
  const summaryNames = new Map<string, string>();
  /** Per action whose status set is narrowed, the sends of each condition whose statuses it needs. */
  const statusSends: Partial<Record<MessageCondition['action'], string[]>> = {};
  const messageActions = new Set<MessageCondition['action']>();
  /** Lower bounds of the `last seen` conditions answered from contact_activity (undefined: none). */
  const activityLowers: (Date | undefined)[] = [];
  let eventConditions = 0;
  let todayCache: string | undefined;

  const agg = (scan: Scan, alias: string, expr: string): string => {
    const name = `${alias}${scan.aggregates.length}`;
    scan.aggregates.push(`${expr} AS ${name}`);
    return `${alias}.${name}`;
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
  const eventMatch = (event: string, where: PropertyExpr | undefined): { sql: string; name: string } => {
    const name = params.string(event);
    return { sql: where ? `name = ${name} AND ${propertySql(where)}` : `name = ${name}`, name };
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

  /** Count, first and last time of matching events in bounds, exact, from the rollup and raw edges. */
  const countAndTimes = (
    event: string | undefined,
    bounds: Bounds,
    want: { min?: boolean; max?: boolean },
  ): { count: string; min?: string; max?: string } => {
    const name = event === undefined ? undefined : params.string(event);
    const nameSql = name ? `name = ${name} AND ` : '';
    const split = rollupSplit(bounds);
    const rawBounds = boundsSql(bounds, 'ts');
    if (!split) {
      const cond = `${nameSql}${rawBounds}`;
      events.filters.push(rowFilter(name, bounds));
      return {
        count: agg(events, 'e', `countIf(${cond})`),
        ...(want.min ? { min: agg(events, 'e', `minIf(ts, ${cond})`) } : {}),
        ...(want.max ? { max: agg(events, 'e', `maxIf(ts, ${cond})`) } : {}),
      };
    }
    const from = split.from ? day(split.from) : undefined;
    const to = day(split.to);
    const dayCond = `${nameSql}${from ? `day >= ${from} AND ` : ''}day < ${to}`;
    rollup.filters.push({ sql: `(${dayCond})`, ...(name ? { name } : {}) });
    const edge = `(${split.from ? `ts < ${params.instant(split.from)} OR ` : ''}ts >= ${params.instant(split.to)})`;
    const cond = `${nameSql}${rawBounds} AND ${edge}`;
    events.filters.push(rowFilter(name, bounds, edge));
    const rc = agg(rollup, 'r', `sumIf(events, ${dayCond})`);
    const ec = agg(events, 'e', `countIf(${cond})`);
    const out: { count: string; min?: string; max?: string } = { count: `(${rc} + ${ec})` };
    if (want.min) {
      const rm = agg(rollup, 'r', `minIf(first_ts, ${dayCond})`);
      const em = agg(events, 'e', `minIf(ts, ${cond})`);
      out.min = `multiIf(${rc} > 0 AND ${ec} > 0, least(${rm}, ${em}), ${rc} > 0, ${rm}, ${em})`;
    }
    if (want.max) {
      const rm = agg(rollup, 'r', `maxIf(last_ts, ${dayCond})`);
      const em = agg(events, 'e', `maxIf(ts, ${cond})`);
      out.max = `multiIf(${rc} > 0 AND ${ec} > 0, greatest(${rm}, ${em}), ${rc} > 0, ${rm}, ${em})`;
    }
    return out;
  };

  const countTest = (count: string, clause: CountClause): string => {
    const n = params.add(clause.value, 'UInt64');
    return clause.op === 'at-least'
      ? `${count} >= ${n}`
      : clause.op === 'at-most'
        ? `${count} <= ${n}`
        : `${count} = ${n}`;
  };

  // ---- behaviour ----
  // ---- events_by_contact: all-time count, first and last time per contact and name ----
  /** One summary column of an event name (shared by the conditions on that name). */
  const summaryColumn = (event: string, column: 'count' | 'first' | 'last'): string => {
    const key = `${column}|${event}`;
    let ref = summaryColumns.get(key);
    if (!ref) {
      let name = summaryNames.get(event);
      if (!name) {
        name = params.string(event);
        summaryNames.set(event, name);
        summary.filters.push({ sql: '', name });
      }
      const expr =
        column === 'count'
          ? `sumIf(events, name = ${name})`
          : column === 'first'
            ? `minIf(first_ts, name = ${name})`
            : `maxIf(last_ts, name = ${name})`;
      ref = agg(summary, 'k', expr);
      summaryColumns.set(key, ref);
    }
    return ref;
  };
  /**
   * The summary holds every event ever stored, `now` or not. A contact whose last event of the name
   * is after `now` (a past `now`) is answered from its raw events instead, read by the `late` scan
   * (contacts whose latest event is after now; empty when `now` is the present).
   */
  const lateAgg = (event: string, bounds: Bounds, expr: (cond: string) => string): string => {
    const name = params.string(event);
    late.filters.push(rowFilter(name, bounds));
    return agg(late, 'l', expr(`name = ${name} AND ${boundsSql(bounds, 'ts')}`));
  };
  /** Some event of the name in a window reaching now (or all history), or undefined. */
  const summaryExists = (event: string, window: Window | undefined): string | undefined => {
    if (path === 'raw') return undefined;
    if (window && window.kind !== 'in-last' && window.kind !== 'since') return undefined;
    const bounds = boundsOf(window);
    const count = summaryColumn(event, 'count');
    const last = summaryColumn(event, 'last');
    const late = lateAgg(event, bounds, (cond) => `countIf(${cond})`);
    const inWindow = bounds.lower ? ` AND ${boundsSql({ lower: bounds.lower }, last)}` : '';
    return `if(${last} > ${nowSql}, ${late} > 0, ${count} > 0${inWindow})`;
  };

  const eventSql = (expr: EventCondition): string => {
    eventConditions++;
    const bounds = boundsOf(expr.window);
    if (!expr.where && path !== 'raw') {
      const { op, value } = expr.count;
      if (!expr.window) {
        // All history: the stored count, or the raw count for a contact with events after now.
        const last = summaryColumn(expr.event, 'last');
        const late = lateAgg(expr.event, {}, (cond) => `countIf(${cond})`);
        const count = `if(${last} > ${nowSql}, ${late}, ${summaryColumn(expr.event, 'count')})`;
        return `(${countTest(count, expr.count)})`;
      }
      const exists = op === 'at-least' && value === 1;
      const none = value === 0 && (op === 'exactly' || op === 'at-most');
      if (exists || none) {
        const found = summaryExists(expr.event, expr.window);
        if (found) return exists ? `(${found})` : `(NOT ${found})`;
      }
    }
    if (!expr.where) return `(${countTest(countAndTimes(expr.event, bounds, {}).count, expr.count)})`;
    const match = eventMatch(expr.event, expr.where);
    events.filters.push(rowFilter(match.name, bounds));
    const count = agg(events, 'e', `countIf(${match.sql} AND ${boundsSql(bounds, 'ts')})`);
    return `(${countTest(count, expr.count)})`;
  };

  const eventTimeSql = (expr: EventTimeCondition): string => {
    eventConditions++;
    const window = expr.window;
    if (!expr.where && path !== 'raw' && window) {
      const count = summaryColumn(expr.event, 'count');
      if (expr.which === 'first') {
        // The first event ever is the first one up to now, unless it is after now (then none is).
        const first = summaryColumn(expr.event, 'first');
        return `(${count} > 0 AND ${first} <= ${nowSql} AND ${windowSql(window, first)})`;
      }
      if (window.kind !== 'in-last' && window.kind !== 'since') {
        const last = summaryColumn(expr.event, 'last');
        const lateCount = lateAgg(expr.event, {}, (cond) => `countIf(${cond})`);
        const lateLast = lateAgg(expr.event, {}, (cond) => `maxIf(ts, ${cond})`);
        return `(if(${last} > ${nowSql}, ${lateCount} > 0 AND ${windowSql(window, lateLast)}, ${count} > 0 AND ${windowSql(window, last)}))`;
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
    let count: string;
    let time: string;
    if (!expr.where) {
      const result = countAndTimes(expr.event, {}, expr.which === 'first' ? { min: true } : { max: true });
      count = result.count;
      time = (expr.which === 'first' ? result.min : result.max)!;
    } else {
      const match = eventMatch(expr.event, expr.where);
      events.filters.push(rowFilter(match.name, {}));
      count = agg(events, 'e', `countIf(${match.sql})`);
      time = agg(events, 'e', `${expr.which === 'first' ? 'minIf' : 'maxIf'}(ts, ${match.sql})`);
    }
    return `(${count} > 0 AND ${windowSql(window, time)})`;
  };

  const aggregateSql = (expr: EventAggregateCondition): string => {
    eventConditions++;
    const bounds = boundsOf(expr.window);
    const match = eventMatch(expr.event, expr.where);
    events.filters.push(rowFilter(match.name, bounds));
    const key = params.string(expr.property);
    const base = `${match.sql} AND ${boundsSql(bounds, 'ts')}`;
    const value = params.add(expr.value, 'Float64');
    if (expr.fn === 'count-distinct') {
      const distinct = agg(
        events,
        'e',
        `uniqExactIf(JSONExtractRaw(properties, ${key}), ${base} AND JSONHas(properties, ${key}) AND JSONType(properties, ${key}) != 'Null')`,
      );
      return `(${distinct} ${expr.op} ${value})`;
    }
    const { present, value: number } = numberProperty(key);
    const numeric = `${base} AND ${present}`;
    switch (expr.fn) {
      case 'sum':
        // An event without the number adds the map's default, 0: no presence test needed.
        return `(${agg(events, 'e', `sumIf(${number}, ${base})`)} ${expr.op} ${value})`;
      case 'avg': {
        const count = agg(events, 'e', `countIf(${numeric})`);
        return `(${count} > 0 AND ${agg(events, 'e', `sumIf(${number}, ${numeric})`)} / ${count} ${expr.op} ${value})`;
      }
      default: {
        const count = agg(events, 'e', `countIf(${numeric})`);
        return `(${count} > 0 AND ${agg(events, 'e', `${expr.fn}If(${number}, ${numeric})`)} ${expr.op} ${value})`;
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
      rowFilter(first.name, { ...bounds, upper: { at: new Date(firstUpper), inclusive: true } }),
      rowFilter(then.name, {
        ...(bounds.lower ? { lower: bounds.lower } : {}),
        upper: { at: new Date(firstUpper + withinMs), inclusive: true },
      }),
    );
    // Per contact, one sorted pass instead of comparing every pair: each event's time in ms, doubled,
    // plus its kind (0 = a second event, 1 = a first event), so one integer sort orders by time and
    // puts seconds first at equal times; a reverse fill then gives each first event (2a + 1) the next
    // second event after it (2b, b > a strictly), or the sentinel far in the future when none follows.
    // b <= a + within is 2b <= (2a + 1) - 1 + 2 within. Computed in the scan: one flag crosses the join.
    // One array holds every event with its kind; a row that is both a first and a second event (one
    // event name on both sides) adds its second-event entry through a second array, empty otherwise.
    // The SQL is the same whatever the names (the fuzz test checks that no name shapes it).
    const collected = `arrayConcat(
      groupArrayIf(toUnixTimestamp64Milli(ts) * 2 + (${firstCond}), (${firstCond}) OR (${then.sql})),
      groupArrayIf(toUnixTimestamp64Milli(ts) * 2, (${firstCond}) AND (${then.sql})))`;
    const sorted = `arraySort(arrayPushBack(${collected}, toInt64(4611686018427387904)))`;
    const next = `arrayReverseFill(x -> bitAnd(x, 1) = 0, ${sorted})`;
    const follows = `n <= x - 1 + 2 * ${within}`;
    const found = agg(
      events,
      'e',
      `arrayExists((x, n) -> bitAnd(x, 1) = 1 AND ${expr.negated ? 'NOT ' : ''}${follows}, ${sorted}, ${next})`,
    );
    return `(${found} = 1)`;
  };

  const lastSeenSql = (expr: LastSeenCondition): string => {
    eventConditions++;
    const bounds = boundsOf(expr.window);
    const attribute = `ifNull(${boundsSql(bounds, 'assumeNotNull(c.last_seen_at)')} AND c.last_seen_at IS NOT NULL, 0)`;
    const reachesNow = !bounds.upper || bounds.upper.at.getTime() >= now.getTime();
    if (path === 'raw' || !reachesNow) {
      const count = countAndTimes(undefined, bounds, {}).count;
      return `(${count} > 0 OR ${attribute})`;
    }
    // A window reaching now holds an event exactly when the contact's latest event (contact_activity,
    // one row per contact) falls in it, unless that latest event is after now (a past `now`): only
    // those contacts' raw events in the window are read, and counted.
    // Those contacts are read by a scan of their own (usually empty), so the main events scan keeps
    // its name and window pruning.
    late.filters.push(rowFilter(undefined, bounds));
    const lateCount = agg(late, 'l', `countIf(${boundsSql(bounds, 'ts')})`);
    activityLowers.push(bounds.lower?.at);
    const inWindow = bounds.lower ? boundsSql({ lower: bounds.lower }, 'a.latest') : '1';
    return `((a.events > 0 AND (a.latest <= ${nowSql} AND ${inWindow} OR a.latest > ${nowSql} AND ${lateCount} > 0)) OR ${attribute})`;
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
    const count = agg(messages, 'm', `countIf(${[reached[expr.action], ...own].join(' AND ')})`);
    return `(${countTest(count, expr.count)})`;
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
  // Scans are grouped by a 64-bit hash of the contact id (stored in events as contact_key) and joined
  // on it: an integer hash table instead of a string one, in the scans and in the joins.
  const contactKey = 'cityHash64(c.contact_id)';
  let from = `FROM ${db}.contacts AS c FINAL`;
  if (events.aggregates.length) {
    const filters = dedupe(events.filters.map((f) => f.sql));
    const global: string[] = [];
    if (events.filters.every((f) => f.lower)) {
      const earliest = Math.min(...events.filters.map((f) => f.lower!.getTime()));
      global.push(`ts >= ${params.instant(new Date(earliest))}`);
    }
    if (events.filters.every((f) => f.name)) {
      global.push(`name IN (${dedupe(events.filters.map((f) => f.name!)).join(', ')})`);
    }
    from += `
LEFT JOIN (
  SELECT contact_key, ${events.aggregates.join(',\n    ')}
  FROM ${db}.events
  WHERE workspace_id = ${ws} AND ts <= ${nowSql}${global.map((g) => ` AND ${g}`).join('')}
    AND (${filters.includes('1') ? '1' : filters.join(' OR ')})
  GROUP BY contact_key
) AS e ON e.contact_key = ${contactKey}`;
  }
  if (summary.aggregates.length) {
    const names = dedupe(summary.filters.map((f) => f.name!));
    from += `
LEFT JOIN (
  SELECT contact_key, ${summary.aggregates.join(',\n    ')}
  FROM ${db}.events_by_contact
  WHERE workspace_id = ${ws} AND name IN (${names.join(', ')})
  GROUP BY contact_key
) AS k ON k.contact_key = ${contactKey}`;
  }
  if (rollup.aggregates.length) {
    const filters = dedupe(rollup.filters.map((f) => f.sql));
    const names = rollup.filters.every((f) => f.name)
      ? ` AND name IN (${dedupe(rollup.filters.map((f) => f.name!)).join(', ')})`
      : '';
    from += `
LEFT JOIN (
  SELECT cityHash64(contact_id) AS contact_key, ${rollup.aggregates.join(',\n    ')}
  FROM ${db}.events_daily
  WHERE workspace_id = ${ws}${names} AND (${filters.join(' OR ')})
  GROUP BY contact_key
) AS r ON r.contact_key = ${contactKey}`;
  }
  if (activityLowers.length) {
    // Rows before the earliest window cannot change whether a latest event falls in any window.
    const lowest = activityLowers.every(Boolean)
      ? ` AND last_event_at >= ${params.instant(new Date(Math.min(...activityLowers.map((d) => d!.getTime()))))}`
      : '';
    from += `
LEFT JOIN (
  SELECT cityHash64(contact_id) AS contact_key, max(last_event_at) AS latest, count() AS events
  FROM ${db}.contact_activity
  WHERE workspace_id = ${ws}${lowest}
  GROUP BY contact_key
) AS a ON a.contact_key = ${contactKey}`;
  }
  if (late.aggregates.length) {
    const filters = dedupe(late.filters.map((f) => f.sql));
    from += `
LEFT JOIN (
  SELECT contact_key, ${late.aggregates.join(',\n    ')}
  FROM ${db}.events
  WHERE workspace_id = ${ws} AND ts <= ${nowSql} AND (${filters.includes('1') ? '1' : filters.join(' OR ')})
    AND contact_key IN (
      SELECT cityHash64(contact_id) FROM ${db}.contact_activity WHERE workspace_id = ${ws} AND last_event_at > ${nowSql})
  GROUP BY contact_key
) AS l ON l.contact_key = ${contactKey}`;
  }
  if (messages.aggregates.length) {
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
    let aggregates = messages.aggregates.join(',\n    ');
    for (const [marker, set] of sets) aggregates = aggregates.replaceAll(marker, set);
    // FINAL without merging across partitions: a send's rows share its sent_at, so its month.
    from += `
LEFT JOIN (
  SELECT cityHash64(contact_id) AS contact_key, ${aggregates}
  FROM ${db}.sends FINAL
  WHERE ${sendsWhere}
  GROUP BY contact_key
  SETTINGS do_not_merge_across_partitions_select_final = 1
) AS m ON m.contact_key = ${contactKey}`;
  }
  const fullWhere = `c.workspace_id = ${ws} AND c.deleted = 0 AND ${where}`;
  return {
    from,
    where: fullWhere,
    sql: `SELECT c.contact_id AS contact_id\n${from}\nWHERE ${fullWhere}`,
    params: params.values,
    plan: {
      events: events.aggregates.length > 0,
      rollup: rollup.aggregates.length > 0,
      summary: summary.aggregates.length > 0,
      activity: activityLowers.length > 0,
      messages: messages.aggregates.length > 0,
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
