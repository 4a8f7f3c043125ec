/**
 * The segment AST: plain, frozen, JSON-serializable objects, one `kind` per construct, so a visual
 * builder can produce the same tree the parser does (see ast.schema.json). `loc` is optional: the
 * parser sets it for diagnostics; trees built elsewhere may omit it.
 */

export interface Loc {
  line: number;
  column: number;
  offset: number;
  length: number;
}

export type DurationUnit = 'minutes' | 'hours' | 'days' | 'weeks';
export interface Duration {
  amount: number;
  unit: DurationUnit;
}

export type Literal =
  | { type: 'string'; value: string }
  | { type: 'number'; value: number }
  | { type: 'boolean'; value: boolean }
  /** A calendar date, midnight in the workspace time zone when compared with instants. */
  | { type: 'date'; value: string }
  /** An ISO 8601 instant (with Z or an offset; without one it is workspace-local). */
  | { type: 'datetime'; value: string };

/** Time windows on an attribute or an event time. */
export type Window =
  | { kind: 'in-last'; duration: Duration }
  | { kind: 'more-than-ago'; duration: Duration }
  | { kind: 'since'; at: Literal }
  | { kind: 'before'; at: Literal }
  | { kind: 'between'; from: Literal; to: Literal };

export type CompareOp = '=' | '!=' | '<' | '<=' | '>' | '>=';

/** Operators of attribute and event-property conditions. */
export type Predicate =
  | { op: CompareOp; value: Literal }
  | { op: 'in' | 'not-in'; values: Literal[] }
  | { op: 'between'; from: Literal; to: Literal }
  | { op: 'is-set' | 'is-not-set' }
  | { op: 'contains' | 'starts-with' | 'ends-with' | 'matches' | 'has'; value: Literal }
  | { op: 'window'; window: Window }
  | { op: 'anniversary-today' }
  | { op: 'anniversary-next'; days: number };

export type AttributeCondition = { kind: 'attribute'; attribute: string; loc?: Loc } & Predicate;
export type PropertyCondition = { kind: 'property'; property: string; loc?: Loc } & Predicate;

export interface And<T> {
  kind: 'and';
  items: T[];
  loc?: Loc;
}
export interface Or<T> {
  kind: 'or';
  items: T[];
  loc?: Loc;
}
export interface Not<T> {
  kind: 'not';
  item: T;
  loc?: Loc;
}

export type PropertyExpr = PropertyCondition | And<PropertyExpr> | Or<PropertyExpr> | Not<PropertyExpr>;

export interface CountClause {
  op: 'at-least' | 'at-most' | 'exactly';
  value: number;
}

/** `did "x" [where ...] [count] [window]`; `did not` is `exactly 0`. */
export interface EventCondition {
  kind: 'event';
  event: string;
  where?: PropertyExpr;
  count: CountClause;
  window?: Window;
  loc?: Loc;
}

/** `first did "x" ...` / `last did "x" ...`: the first/last matching event (ever) falls in the window. */
export interface EventTimeCondition {
  kind: 'event-time';
  which: 'first' | 'last';
  event: string;
  where?: PropertyExpr;
  window?: Window;
  loc?: Loc;
}

export type AggregateFn = 'sum' | 'avg' | 'min' | 'max' | 'count-distinct';

/** `sum of amount over "purchase" [where ...] [window] > 5000`. */
export interface EventAggregateCondition {
  kind: 'event-aggregate';
  fn: AggregateFn;
  property: string;
  event: string;
  where?: PropertyExpr;
  window?: Window;
  op: CompareOp;
  value: number;
  loc?: Loc;
}

export interface SequenceStep {
  event: string;
  where?: PropertyExpr;
}

/** `did "a" then [not] "b" within D [window]`; the window bounds the first event. */
export interface EventSequenceCondition {
  kind: 'event-sequence';
  first: SequenceStep;
  next: SequenceStep;
  negated: boolean;
  within: Duration;
  window?: Window;
  loc?: Loc;
}

export interface LastSeenCondition {
  kind: 'last-seen';
  window: Window;
  loc?: Loc;
}

export type MessageAction = 'received' | 'read' | 'replied' | 'failed';
export type MessageTarget =
  | { type: 'campaign'; name: string }
  | { type: 'template'; name: string }
  | { type: 'any' };

export interface MessageCondition {
  kind: 'message';
  action: MessageAction;
  target: MessageTarget;
  count: CountClause;
  window?: Window;
  loc?: Loc;
}

export interface TaggedCondition {
  kind: 'tagged';
  tag: string;
  loc?: Loc;
}
export interface InListCondition {
  kind: 'in-list';
  list: string;
  loc?: Loc;
}
export interface InSegmentCondition {
  kind: 'in-segment';
  segment: string;
  loc?: Loc;
}

export const CHANNELS = ['whatsapp', 'sms', 'email'] as const;
export const PURPOSES = ['marketing', 'utility', 'authentication'] as const;
export type Channel = (typeof CHANNELS)[number];
export type Purpose = (typeof PURPOSES)[number];

export interface ConsentCondition {
  kind: 'consent';
  state: 'subscribed' | 'unsubscribed';
  channel: Channel;
  purpose: Purpose;
  loc?: Loc;
}

export interface SampleCondition {
  kind: 'sample';
  percent: number;
  seed: string;
  loc?: Loc;
}

export interface ConstantCondition {
  kind: 'constant';
  value: boolean;
  loc?: Loc;
}

export type Condition =
  | AttributeCondition
  | TaggedCondition
  | InListCondition
  | InSegmentCondition
  | ConsentCondition
  | EventCondition
  | EventTimeCondition
  | EventAggregateCondition
  | EventSequenceCondition
  | LastSeenCondition
  | MessageCondition
  | SampleCondition
  | ConstantCondition;

export type SegmentExpr = Condition | And<SegmentExpr> | Or<SegmentExpr> | Not<SegmentExpr>;

/** The JSON document a segment is stored and exchanged as. */
export interface SegmentAst {
  version: 1;
  root: SegmentExpr;
}

/** Deep-freezes a tree so no stage can change what an earlier stage produced. */
export function freeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    for (const child of Object.values(value)) freeze(child);
    Object.freeze(value);
  }
  return value;
}

/** The tree without source positions (what the JSON Schema describes and what is stored). */
export function stripLocations<T>(value: T): T {
  return JSON.parse(JSON.stringify(value, (key, v) => (key === 'loc' ? undefined : v))) as T;
}

/** Visits every segment-level node (not property expressions). */
export function walk(expr: SegmentExpr, visit: (node: SegmentExpr) => void): void {
  visit(expr);
  if (expr.kind === 'and' || expr.kind === 'or') for (const item of expr.items) walk(item, visit);
  else if (expr.kind === 'not') walk(expr.item, visit);
}

export function durationMs(duration: Duration): number {
  const unit = { minutes: 60_000, hours: 3_600_000, days: 86_400_000, weeks: 604_800_000 }[duration.unit];
  return duration.amount * unit;
}
