/**
 * Structural validation of a tree that did not come from the parser (a visual builder's JSON), so
 * the checker and compiler only ever see well-formed nodes. Mirrors ast.schema.json.
 */
import { CHANNELS, PURPOSES } from './ast.ts';
import { MAX_DEPTH } from './parser.ts';

export interface AstProblem {
  /** JSON pointer inside the tree. */
  path: string;
  message: string;
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const COMPARE = ['=', '!=', '<', '<=', '>', '>='];
const UNITS = ['minutes', 'hours', 'days', 'weeks'];

export function validateAst(tree: unknown): AstProblem[] {
  const problems: AstProblem[] = [];
  const fail = (path: string, message: string) => {
    if (problems.length < 50) problems.push({ path, message });
  };
  const keys = (node: Json, path: string, allowed: string[]) => {
    for (const key of Object.keys(node))
      if (!allowed.includes(key) && key !== 'loc') fail(`${path}/${key}`, 'is not a known field');
  };
  const str = (v: unknown, path: string, max = 1000) => {
    if (typeof v !== 'string' || v.length > max) fail(path, `must be a string of at most ${max} characters`);
  };
  const literal = (v: unknown, path: string) => {
    if (!isObject(v)) {
      fail(path, 'must be a literal {type, value}');
      return;
    }
    keys(v, path, ['type', 'value']);
    switch (v.type) {
      case 'string':
        str(v.value, `${path}/value`);
        return;
      case 'number':
        if (typeof v.value !== 'number' || !Number.isFinite(v.value))
          fail(`${path}/value`, 'must be a finite number');
        return;
      case 'boolean':
        if (typeof v.value !== 'boolean') fail(`${path}/value`, 'must be a boolean');
        return;
      case 'date':
        if (typeof v.value !== 'string' || !/^\d{4}-\d{2}-\d{2}$/.test(v.value))
          fail(`${path}/value`, 'must be YYYY-MM-DD');
        return;
      case 'datetime':
        if (
          typeof v.value !== 'string' ||
          !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2})?$/.test(v.value)
        )
          fail(`${path}/value`, 'must be an ISO 8601 date-time');
        return;
      default:
        fail(`${path}/type`, 'must be string, number, boolean, date or datetime');
    }
  };
  const duration = (v: unknown, path: string) => {
    if (!isObject(v)) {
      fail(path, 'must be a duration {amount, unit}');
      return;
    }
    keys(v, path, ['amount', 'unit']);
    if (!Number.isInteger(v.amount) || (v.amount as number) < 1 || (v.amount as number) > 100_000)
      fail(`${path}/amount`, 'must be a whole number from 1 to 100000');
    if (!UNITS.includes(v.unit as string)) fail(`${path}/unit`, `must be one of ${UNITS.join(', ')}`);
  };
  const window = (v: unknown, path: string) => {
    if (!isObject(v)) {
      fail(path, 'must be a window');
      return;
    }
    switch (v.kind) {
      case 'in-last':
      case 'more-than-ago':
        keys(v, path, ['kind', 'duration']);
        duration(v.duration, `${path}/duration`);
        return;
      case 'since':
      case 'before':
        keys(v, path, ['kind', 'at']);
        literal(v.at, `${path}/at`);
        return;
      case 'between':
        keys(v, path, ['kind', 'from', 'to']);
        literal(v.from, `${path}/from`);
        literal(v.to, `${path}/to`);
        return;
      default:
        fail(`${path}/kind`, 'must be in-last, more-than-ago, since, before or between');
    }
  };
  const predicate = (v: Json, path: string, base: string[]) => {
    const op = v.op as string;
    if (COMPARE.includes(op) || ['contains', 'starts-with', 'ends-with', 'matches', 'has'].includes(op)) {
      keys(v, path, [...base, 'op', 'value']);
      literal(v.value, `${path}/value`);
      return;
    }
    switch (op) {
      case 'in':
      case 'not-in':
        keys(v, path, [...base, 'op', 'values']);
        if (!Array.isArray(v.values) || v.values.length === 0 || v.values.length > 1000) {
          fail(`${path}/values`, 'must be 1 to 1000 literals');
          return;
        }
        for (const [i, item] of v.values.entries()) literal(item, `${path}/values/${i}`);
        return;
      case 'between':
        keys(v, path, [...base, 'op', 'from', 'to']);
        literal(v.from, `${path}/from`);
        literal(v.to, `${path}/to`);
        return;
      case 'is-set':
      case 'is-not-set':
      case 'anniversary-today':
        keys(v, path, [...base, 'op']);
        return;
      case 'anniversary-next':
        keys(v, path, [...base, 'op', 'days']);
        if (!Number.isInteger(v.days) || (v.days as number) < 1 || (v.days as number) > 366)
          fail(`${path}/days`, 'must be 1 to 366');
        return;
      case 'window':
        keys(v, path, [...base, 'op', 'window']);
        window(v.window, `${path}/window`);
        return;
      default:
        fail(`${path}/op`, 'is not a known operator');
    }
  };
  const property = (v: unknown, path: string, depth: number): void => {
    if (depth > MAX_DEPTH) {
      fail(path, 'is nested too deeply');
      return;
    }
    if (!isObject(v)) {
      fail(path, 'must be a property condition');
      return;
    }
    if (v.kind === 'and' || v.kind === 'or') {
      keys(v, path, ['kind', 'items']);
      if (!Array.isArray(v.items) || v.items.length < 1) {
        fail(`${path}/items`, 'must be a non-empty array');
        return;
      }
      for (const [i, item] of v.items.entries()) property(item, `${path}/items/${i}`, depth + 1);
      return;
    }
    if (v.kind === 'not') {
      keys(v, path, ['kind', 'item']);
      property(v.item, `${path}/item`, depth + 1);
      return;
    }
    if (v.kind !== 'property') {
      fail(`${path}/kind`, 'must be property, and, or or not');
      return;
    }
    str(v.property, `${path}/property`, 200);
    predicate(v, path, ['kind', 'property']);
  };
  const count = (v: unknown, path: string) => {
    if (!isObject(v)) {
      fail(path, 'must be a count {op, value}');
      return;
    }
    keys(v, path, ['op', 'value']);
    if (!['at-least', 'at-most', 'exactly'].includes(v.op as string))
      fail(`${path}/op`, 'must be at-least, at-most or exactly');
    if (!Number.isInteger(v.value) || (v.value as number) < 0 || (v.value as number) > 1_000_000_000)
      fail(`${path}/value`, 'must be a whole number');
  };
  const optional = (v: Json, key: string, path: string, check: (x: unknown, p: string) => void) => {
    if (v[key] !== undefined) check(v[key], `${path}/${key}`);
  };
  const expr = (v: unknown, path: string, depth: number): void => {
    if (depth > MAX_DEPTH) {
      fail(path, 'is nested too deeply');
      return;
    }
    if (!isObject(v)) {
      fail(path, 'must be a condition');
      return;
    }
    const where = (x: unknown, p: string) => property(x, p, depth + 1);
    switch (v.kind) {
      case 'and':
      case 'or':
        keys(v, path, ['kind', 'items']);
        if (!Array.isArray(v.items) || v.items.length < 1) {
          fail(`${path}/items`, 'must be a non-empty array');
          return;
        }
        for (const [i, item] of v.items.entries()) expr(item, `${path}/items/${i}`, depth + 1);
        return;
      case 'not':
        keys(v, path, ['kind', 'item']);
        expr(v.item, `${path}/item`, depth + 1);
        return;
      case 'constant':
        keys(v, path, ['kind', 'value']);
        if (typeof v.value !== 'boolean') fail(`${path}/value`, 'must be a boolean');
        return;
      case 'attribute':
        str(v.attribute, `${path}/attribute`, 200);
        predicate(v, path, ['kind', 'attribute']);
        return;
      case 'tagged':
        keys(v, path, ['kind', 'tag']);
        str(v.tag, `${path}/tag`);
        return;
      case 'in-list':
        keys(v, path, ['kind', 'list']);
        str(v.list, `${path}/list`);
        return;
      case 'in-segment':
        keys(v, path, ['kind', 'segment']);
        str(v.segment, `${path}/segment`);
        return;
      case 'consent':
        keys(v, path, ['kind', 'state', 'channel', 'purpose']);
        if (!['subscribed', 'unsubscribed'].includes(v.state as string))
          fail(`${path}/state`, 'must be subscribed or unsubscribed');
        if (!(CHANNELS as readonly string[]).includes(v.channel as string))
          fail(`${path}/channel`, `must be one of ${CHANNELS.join(', ')}`);
        if (!(PURPOSES as readonly string[]).includes(v.purpose as string))
          fail(`${path}/purpose`, `must be one of ${PURPOSES.join(', ')}`);
        return;
      case 'sample':
        keys(v, path, ['kind', 'percent', 'seed']);
        if (typeof v.percent !== 'number' || !(v.percent > 0 && v.percent <= 100))
          fail(`${path}/percent`, 'must be more than 0 and at most 100');
        str(v.seed, `${path}/seed`);
        return;
      case 'event':
        keys(v, path, ['kind', 'event', 'where', 'count', 'window']);
        str(v.event, `${path}/event`);
        count(v.count, `${path}/count`);
        optional(v, 'where', path, where);
        optional(v, 'window', path, window);
        return;
      case 'event-time':
        keys(v, path, ['kind', 'which', 'event', 'where', 'window']);
        if (v.which !== 'first' && v.which !== 'last') fail(`${path}/which`, 'must be first or last');
        str(v.event, `${path}/event`);
        optional(v, 'where', path, where);
        optional(v, 'window', path, window);
        return;
      case 'event-aggregate':
        keys(v, path, ['kind', 'fn', 'property', 'event', 'where', 'window', 'op', 'value']);
        if (!['sum', 'avg', 'min', 'max', 'count-distinct'].includes(v.fn as string))
          fail(`${path}/fn`, 'must be sum, avg, min, max or count-distinct');
        str(v.property, `${path}/property`, 200);
        str(v.event, `${path}/event`);
        if (!COMPARE.includes(v.op as string)) fail(`${path}/op`, 'must be a comparison');
        if (typeof v.value !== 'number' || !Number.isFinite(v.value))
          fail(`${path}/value`, 'must be a finite number');
        optional(v, 'where', path, where);
        optional(v, 'window', path, window);
        return;
      case 'event-sequence': {
        keys(v, path, ['kind', 'first', 'next', 'negated', 'within', 'window']);
        for (const step of ['first', 'next'] as const) {
          const s = v[step];
          if (!isObject(s)) {
            fail(`${path}/${step}`, 'must be a step {event, where?}');
            continue;
          }
          keys(s, `${path}/${step}`, ['event', 'where']);
          str(s.event, `${path}/${step}/event`);
          optional(s, 'where', `${path}/${step}`, where);
        }
        if (typeof v.negated !== 'boolean') fail(`${path}/negated`, 'must be a boolean');
        duration(v.within, `${path}/within`);
        optional(v, 'window', path, window);
        return;
      }
      case 'last-seen':
        keys(v, path, ['kind', 'window']);
        window(v.window, `${path}/window`);
        return;
      case 'message': {
        keys(v, path, ['kind', 'action', 'target', 'count', 'window']);
        if (!['received', 'read', 'replied', 'failed'].includes(v.action as string))
          fail(`${path}/action`, 'must be received, read, replied or failed');
        const t = v.target;
        if (!isObject(t) || !['campaign', 'template', 'any'].includes(t.type as string))
          fail(`${path}/target`, 'must be {type: campaign|template, name} or {type: any}');
        else if (t.type !== 'any') str(t.name, `${path}/target/name`);
        count(v.count, `${path}/count`);
        optional(v, 'window', path, window);
        return;
      }
      default:
        fail(`${path}/kind`, 'is not a known condition kind');
    }
  };
  if (!isObject(tree)) return [{ path: '', message: 'must be an object {version: 1, root}' }];
  keys(tree, '', ['version', 'root']);
  if (tree.version !== 1) fail('/version', 'must be 1');
  expr(tree.root, '/root', 0);
  return problems;
}
