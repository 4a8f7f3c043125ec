// An independent evaluator of the segment language, written from shared/segment-dsl.md (and the
// choices documented in engine/segments/README.md), not from the compiler: plain loops over plain
// objects, one contact at a time. The differential test holds the compiled SQL to its answers.
import { createHash } from 'node:crypto';
import { DateTime } from 'luxon';
import type {
  Duration,
  Literal,
  Predicate,
  PropertyExpr,
  SegmentAst,
  SegmentExpr,
  Window,
} from '../../engine/segments/ast.ts';
import type { AttributeType } from '../../engine/segments/schema.ts';
import type { ContactRow, EventRow, SendRow } from './segment-data.ts';

export interface Dataset {
  timezone: string;
  attributes: Record<string, AttributeType>;
  contacts: ContactRow[];
  events: EventRow[];
  sends: SendRow[];
  segments: Record<string, SegmentAst>;
}

const UNIT_MS = { minutes: 60_000, hours: 3_600_000, days: 86_400_000, weeks: 7 * 86_400_000 };
const ms = (d: Duration) => d.amount * UNIT_MS[d.unit];

type Indexed = {
  latest: Map<string, ContactRow>;
  eventsBy: Map<string, { name: string; t: number; props: Record<string, unknown> }[]>;
  sendsBy: Map<
    string,
    { campaign: string; template: string; t: number; outcome: string; statuses: Set<string> }[]
  >;
};
const indexes = new WeakMap<Dataset, Map<number, Indexed>>();

/** The dataset as seen at `now` (latest versions, visible events and statuses), built once per (data, now). */
function indexed(data: Dataset, nowMs: number): Indexed {
  let byNow = indexes.get(data);
  if (!byNow) {
    byNow = new Map();
    indexes.set(data, byNow);
  }
  const hit = byNow.get(nowMs);
  if (hit) return hit;
  const latest = new Map<string, ContactRow>();
  for (const c of data.contacts) {
    const seen = latest.get(c.id);
    if (!seen || (c.version ?? 1) > (seen.version ?? 1)) latest.set(c.id, c);
  }
  const eventsBy = new Map<string, { name: string; t: number; props: Record<string, unknown> }[]>();
  for (const e of data.events) {
    const t = Date.parse(e.ts);
    if (t > nowMs) continue;
    const list = eventsBy.get(e.contact) ?? [];
    list.push({ name: e.name, t, props: e.properties ?? {} });
    eventsBy.set(e.contact, list);
  }
  const sendsBy = new Map<
    string,
    { campaign: string; template: string; t: number; outcome: string; statuses: Set<string> }[]
  >();
  for (const s of data.sends) {
    const t = Date.parse(s.sent_at);
    if (t > nowMs) continue;
    const statuses = new Set(
      s.pmid ? (s.statuses ?? []).filter((st) => Date.parse(st.ts) <= nowMs).map((st) => st.status) : [],
    );
    const list = sendsBy.get(s.contact) ?? [];
    list.push({ campaign: s.campaign ?? '', template: s.template ?? '', t, outcome: s.outcome, statuses });
    sendsBy.set(s.contact, list);
  }

  const result = { latest, eventsBy, sendsBy };
  byNow.set(nowMs, result);
  return result;
}

export function evaluate(ast: SegmentAst, data: Dataset, now: Date): string[] {
  const nowMs = now.getTime();
  const { latest, eventsBy, sendsBy } = indexed(data, nowMs);

  // Dates are midnight in the workspace zone; date-times without an offset are workspace-local.
  const instants = new Map<string, number>();
  const instant = (literal: Literal): number => {
    const key = String(literal.value);
    let at = instants.get(key);
    if (at === undefined) {
      at = DateTime.fromISO(key, { zone: data.timezone }).toMillis();
      instants.set(key, at);
    }
    return at;
  };

  const inWindow = (t: number, w: Window | undefined): boolean => {
    if (!w) return true;
    switch (w.kind) {
      case 'in-last':
        return nowMs - ms(w.duration) < t && t <= nowMs;
      case 'more-than-ago':
        return t < nowMs - ms(w.duration);
      case 'since':
        return t >= instant(w.at);
      case 'before':
        return t < instant(w.at);
      case 'between':
        return instant(w.from) <= t && t < instant(w.to);
    }
  };

  const compare = (a: number | string | boolean, op: string, b: number | string | boolean): boolean => {
    switch (op) {
      case '=':
        return a === b;
      case '!=':
        return a !== b;
      case '<':
        return a < b;
      case '<=':
        return a <= b;
      case '>':
        return a > b;
      default:
        return a >= b;
    }
  };

  /** A predicate on a present value of a known type. */
  const test = (value: unknown, type: AttributeType, p: Predicate, contact?: ContactRow): boolean => {
    const time = type === 'date' || type === 'datetime';
    const asInstant = () =>
      type === 'date' ? instant({ type: 'date', value: String(value) }) : Date.parse(String(value));
    switch (p.op) {
      case '=':
      case '!=':
      case '<':
      case '<=':
      case '>':
      case '>=':
        if (time) return compare(asInstant(), p.op, instant(p.value));
        return compare(value as number, p.op, p.value.value as number);
      case 'in':
        return p.values.some((v) => v.value === value);
      case 'not-in':
        return !p.values.some((v) => v.value === value);
      case 'between':
        return (value as number) >= (p.from.value as number) && (value as number) <= (p.to.value as number);
      case 'contains':
        return String(value).toLowerCase().includes(String(p.value.value).toLowerCase());
      case 'starts-with':
        return String(value).startsWith(String(p.value.value));
      case 'ends-with':
        return String(value).endsWith(String(p.value.value));
      case 'matches':
        return new RegExp(String(p.value.value)).test(String(value));
      case 'has':
        return (value as string[]).includes(String(p.value.value));
      case 'window':
        return inWindow(asInstant(), p.window);
      case 'anniversary-today':
      case 'anniversary-next': {
        const span = monthDays(contact?.timezone, p.op === 'anniversary-today' ? 1 : p.days);
        const [month, day] =
          type === 'date'
            ? String(value).slice(5).split('-').map(Number)
            : (() => {
                const d = DateTime.fromMillis(Date.parse(String(value)), { zone: data.timezone });
                return [d.month, d.day];
              })();
        return span.has(month! * 100 + day!);
      }
      default:
        return false;
    }
  };

  const attribute = (c: ContactRow, name: string): { type: AttributeType; value: unknown } | undefined => {
    const builtins: Record<string, [AttributeType, unknown]> = {
      phone: ['string', c.phone ?? ''],
      country: ['string', c.country ?? ''],
      language: ['string', c.language ?? ''],
      timezone: ['string', c.timezone ?? ''],
      created_at: ['datetime', c.created_at],
      last_seen_at: ['datetime', c.last_seen_at ?? undefined],
    };
    let type: AttributeType;
    let value: unknown;
    if (name in builtins) [type, value] = builtins[name]!;
    else {
      type = data.attributes[name]!;
      const maps: Record<AttributeType, Record<string, unknown> | undefined> = {
        string: c.strings,
        number: c.numbers,
        boolean: c.booleans,
        date: c.dates,
        datetime: c.datetimes,
        string_list: c.lists,
      };
      value = maps[type]?.[name];
    }
    if (value === undefined || value === null || value === '') return undefined;
    if (Array.isArray(value) && value.length === 0) return undefined;
    return { type, value };
  };

  const propertyMatches = (props: Record<string, unknown>, expr: PropertyExpr): boolean => {
    if (expr.kind === 'and') return expr.items.every((i) => propertyMatches(props, i));
    if (expr.kind === 'or') return expr.items.some((i) => propertyMatches(props, i));
    if (expr.kind === 'not') return !propertyMatches(props, expr.item);
    const value = Object.hasOwn(props, expr.property) ? props[expr.property] : undefined;
    const set = value !== undefined && value !== null && value !== '';
    if (expr.op === 'is-set') return set;
    if (expr.op === 'is-not-set') return !set;
    const literal =
      'value' in expr ? expr.value : 'values' in expr ? expr.values[0]! : (expr as { from: Literal }).from;
    if (typeof value !== literal.type) return false;
    return test(value, literal.type as AttributeType, expr);
  };

  // The contact's own zone when it is a valid one, else the workspace's.
  const todays = new Map<string, DateTime>();
  const todayIn = (zone: string | undefined): DateTime => {
    const key = zone ?? '';
    let today = todays.get(key);
    if (!today) {
      const valid = zone && DateTime.fromMillis(nowMs, { zone }).isValid;
      today = DateTime.fromMillis(nowMs, { zone: valid ? zone : data.timezone }).startOf('day');
      todays.set(key, today);
    }
    return today;
  };

  const spans = new Map<string, Set<number>>();
  /** month * 100 + day of each of the `days` local days from today on. */
  const monthDays = (zone: string | undefined, days: number): Set<number> => {
    const key = `${zone ?? ''}|${days}`;
    let set = spans.get(key);
    if (!set) {
      const today = todayIn(zone);
      set = new Set(
        Array.from({ length: days }, (_, k) => today.plus({ days: k })).map((d) => d.month * 100 + d.day),
      );
      spans.set(key, set);
    }
    return set;
  };

  const evalExpr = (expr: SegmentExpr, c: ContactRow): boolean => {
    const events = eventsBy.get(c.id) ?? [];
    const matching = (name: string, where: PropertyExpr | undefined) =>
      events.filter((e) => e.name === name && (!where || propertyMatches(e.props, where)));
    switch (expr.kind) {
      case 'and':
        return expr.items.every((i) => evalExpr(i, c));
      case 'or':
        return expr.items.some((i) => evalExpr(i, c));
      case 'not':
        return !evalExpr(expr.item, c);
      case 'constant':
        return expr.value;
      case 'attribute': {
        const found = attribute(c, expr.attribute);
        if (expr.op === 'is-set') return found !== undefined;
        if (expr.op === 'is-not-set') return found === undefined;
        return found !== undefined && test(found.value, found.type, expr, c);
      }
      case 'tagged':
        return (c.tags ?? []).includes(expr.tag);
      case 'in-list':
        return (c.memberOf ?? []).includes(expr.list);
      case 'in-segment':
        return evalExpr(data.segments[expr.segment]!.root, c);
      case 'consent':
        return (
          c.consent?.[`${expr.channel}.${expr.purpose}`] ===
          (expr.state === 'subscribed' ? 'opted_in' : 'opted_out')
        );
      case 'sample': {
        const x = createHash('sha256').update(`${expr.seed}:${c.id}`).digest().readBigUInt64BE(0);
        return Number(x % 1_000_000n) < Math.round(expr.percent * 10_000);
      }
      case 'event': {
        const n = matching(expr.event, expr.where).filter((e) => inWindow(e.t, expr.window)).length;
        return expr.count.op === 'at-least'
          ? n >= expr.count.value
          : expr.count.op === 'at-most'
            ? n <= expr.count.value
            : n === expr.count.value;
      }
      case 'event-time': {
        const times = matching(expr.event, expr.where).map((e) => e.t);
        if (!times.length) return false;
        return inWindow(expr.which === 'first' ? Math.min(...times) : Math.max(...times), expr.window);
      }
      case 'event-aggregate': {
        const inScope = matching(expr.event, expr.where).filter((e) => inWindow(e.t, expr.window));
        const cmp = (v: number) => compare(v, expr.op, expr.value);
        if (expr.fn === 'count-distinct') {
          const values = new Set(
            inScope
              .map((e) => e.props[expr.property])
              .filter((v) => v !== undefined && v !== null)
              .map((v) => JSON.stringify(v)),
          );
          return cmp(values.size);
        }
        const numbers = inScope
          .map((e) => e.props[expr.property])
          .filter((v): v is number => typeof v === 'number');
        if (expr.fn === 'sum') return cmp(numbers.reduce((a, b) => a + b, 0));
        if (!numbers.length) return false;
        if (expr.fn === 'avg') return cmp(numbers.reduce((a, b) => a + b, 0) / numbers.length);
        return cmp(expr.fn === 'min' ? Math.min(...numbers) : Math.max(...numbers));
      }
      case 'event-sequence': {
        const firsts = matching(expr.first.event, expr.first.where).filter((e) => inWindow(e.t, expr.window));
        const nexts = matching(expr.next.event, expr.next.where);
        const d = ms(expr.within);
        const followed = (a: number) => nexts.some((b) => b.t > a && b.t <= a + d);
        return expr.negated
          ? firsts.some((a) => a.t + d <= nowMs && !followed(a.t))
          : firsts.some((a) => followed(a.t));
      }
      case 'last-seen': {
        if (events.some((e) => inWindow(e.t, expr.window))) return true;
        return !!c.last_seen_at && inWindow(Date.parse(c.last_seen_at), expr.window);
      }
      case 'message': {
        const reached = (s: { outcome: string; statuses: Set<string> }) => {
          switch (expr.action) {
            case 'received':
              return (
                s.outcome === 'accepted' ||
                ['sent', 'delivered', 'read', 'replied'].some((x) => s.statuses.has(x))
              );
            case 'read':
              return s.statuses.has('read') || s.statuses.has('replied');
            case 'replied':
              return s.statuses.has('replied');
            case 'failed':
              return s.outcome === 'failed' || s.statuses.has('failed');
          }
        };
        const target = expr.target;
        const n = (sendsBy.get(c.id) ?? []).filter(
          (s) =>
            reached(s) &&
            (target.type === 'any' ||
              (target.type === 'campaign' ? s.campaign === target.name : s.template === target.name)) &&
            inWindow(s.t, expr.window),
        ).length;
        return expr.count.op === 'at-least'
          ? n >= expr.count.value
          : expr.count.op === 'at-most'
            ? n <= expr.count.value
            : n === expr.count.value;
      }
    }
  };

  return [...latest.values()]
    .filter((c) => !c.deleted && evalExpr(ast.root, c))
    .map((c) => c.id)
    .sort();
}
