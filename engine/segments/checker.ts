import { DateTime } from 'luxon';
import type { Literal, Loc, Predicate, PropertyExpr, SegmentAst, SegmentExpr, Window } from './ast.ts';
import { closest, type Diagnostic } from './diagnostics.ts';
import {
  type AttributeType,
  attributeType,
  BUILTIN_ATTRIBUTES,
  type PropertyType,
  type SegmentSchema,
} from './schema.ts';

type ValueType = AttributeType | 'any';

const STRING_OPS = [
  '=',
  '!=',
  'in',
  'not-in',
  'is-set',
  'is-not-set',
  'contains',
  'starts-with',
  'ends-with',
  'matches',
];
const NUMBER_OPS = ['=', '!=', '<', '<=', '>', '>=', 'in', 'not-in', 'between', 'is-set', 'is-not-set'];
const BOOLEAN_OPS = ['=', '!=', 'is-set', 'is-not-set'];
const TIME_OPS = [
  '=',
  '!=',
  '<',
  '<=',
  '>',
  '>=',
  'is-set',
  'is-not-set',
  'window',
  'anniversary-today',
  'anniversary-next',
];
const LIST_OPS = ['has', 'is-set', 'is-not-set'];
const OPS_BY_TYPE: Record<AttributeType, string[]> = {
  string: STRING_OPS,
  number: NUMBER_OPS,
  boolean: BOOLEAN_OPS,
  date: TIME_OPS,
  datetime: TIME_OPS,
  string_list: LIST_OPS,
};

/**
 * Types every condition against the workspace schema and collects all problems at once. Unknown
 * events are warnings (an event may simply not have arrived yet); everything else is an error.
 */
export function checkSegment(ast: SegmentAst, schema: SegmentSchema): Diagnostic[] {
  const diagnostics: Diagnostic[] = [];
  const report = (
    loc: Loc | undefined,
    code: Diagnostic['code'],
    message: string,
    extra: { expected?: string[]; didYouMean?: string; severity?: 'error' | 'warning' } = {},
  ) =>
    diagnostics.push({
      code,
      severity: extra.severity ?? 'error',
      message: extra.didYouMean ? `${message}; did you mean ${extra.didYouMean}?` : message,
      line: loc?.line ?? 1,
      column: loc?.column ?? 1,
      offset: loc?.offset ?? 0,
      length: loc?.length ?? 0,
      ...(extra.expected ? { expected: extra.expected } : {}),
      ...(extra.didYouMean ? { didYouMean: extra.didYouMean } : {}),
    });

  const attributeNames = [...Object.keys(BUILTIN_ATTRIBUTES), ...Object.keys(schema.attributes)];
  const eventNames = schema.events ? Object.keys(schema.events) : [];

  const checkLiteral = (loc: Loc | undefined, literal: Literal, type: ValueType, what: string): void => {
    if (literal.type === 'date' || literal.type === 'datetime') checkTimeLiteral(loc, literal);
    if (type === 'any') return;
    const accepted: string[] =
      type === 'date' || type === 'datetime'
        ? ['date', 'datetime']
        : type === 'string_list'
          ? ['string']
          : [type];
    if (!accepted.includes(literal.type)) {
      report(
        loc,
        'type-mismatch',
        `${what} is ${describeType(type)}, but ${show(literal)} is ${describeType(literal.type)}`,
        {
          expected: accepted,
        },
      );
    }
  };

  const checkTimeLiteral = (loc: Loc | undefined, literal: Literal): void => {
    if (literal.type !== 'date' && literal.type !== 'datetime') {
      report(loc, 'type-mismatch', `expected a date or date-time, found ${show(literal)}`, {
        expected: ['date', 'datetime'],
      });
      return;
    }
    if (!toInstant(literal, schema.timezone))
      report(loc, 'invalid-date', `${literal.value} is not a valid ${literal.type}`);
  };

  const checkWindow = (loc: Loc | undefined, window: Window): void => {
    if (window.kind === 'since' || window.kind === 'before') checkTimeLiteral(loc, window.at);
    if (window.kind === 'between') {
      checkTimeLiteral(loc, window.from);
      checkTimeLiteral(loc, window.to);
      const from = toInstant(window.from, schema.timezone);
      const to = toInstant(window.to, schema.timezone);
      if (from && to && from >= to)
        report(loc, 'invalid-range', 'the start of a between must come before its end');
    }
  };

  const checkPredicate = (
    loc: Loc | undefined,
    name: string,
    type: ValueType,
    predicate: Predicate,
  ): void => {
    if (type !== 'any' && !OPS_BY_TYPE[type].includes(predicate.op)) {
      report(
        loc,
        'operator-not-allowed',
        `${opName(predicate)} does not apply to ${name}, which is ${describeType(type)}`,
        {
          expected: OPS_BY_TYPE[type].map((op) => op.replaceAll('-', ' ')),
        },
      );
      return;
    }
    switch (predicate.op) {
      case '=':
      case '!=':
      case '<':
      case '<=':
      case '>':
      case '>=':
      case 'contains':
      case 'starts-with':
      case 'ends-with':
      case 'has':
        checkLiteral(loc, predicate.value, type, name);
        if (
          type === 'any' &&
          predicate.op !== '=' &&
          predicate.op !== '!=' &&
          predicate.op.length <= 2 &&
          predicate.value.type !== 'number'
        ) {
          report(loc, 'operator-not-allowed', `${predicate.op} compares numbers only`, {
            expected: ['a number'],
          });
        }
        if (
          ['contains', 'starts-with', 'ends-with'].includes(predicate.op) &&
          predicate.value.type !== 'string'
        ) {
          report(loc, 'type-mismatch', `${opName(predicate)} takes a string`, { expected: ['string'] });
        }
        break;
      case 'matches':
        if (predicate.value.type !== 'string')
          report(loc, 'type-mismatch', 'matches takes a regular expression string', { expected: ['string'] });
        else {
          const problem = regexProblem(predicate.value.value);
          if (problem)
            report(loc, 'invalid-regex', `invalid regular expression: ${problem}`, {
              expected: ['an RE2 regular expression'],
            });
        }
        break;
      case 'in':
      case 'not-in': {
        for (const value of predicate.values) checkLiteral(loc, value, type, name);
        const kinds = new Set(predicate.values.map((v) => v.type));
        if (kinds.size > 1)
          report(loc, 'type-mismatch', 'all values of a list have one type', { expected: [...kinds] });
        if (type === 'any' && ![...kinds].every((k) => k === 'string' || k === 'number')) {
          report(loc, 'type-mismatch', 'a list holds strings or numbers', { expected: ['string', 'number'] });
        }
        break;
      }
      case 'between':
        checkLiteral(loc, predicate.from, type === 'any' ? 'number' : type, name);
        checkLiteral(loc, predicate.to, type === 'any' ? 'number' : type, name);
        if (
          predicate.from.type === 'number' &&
          predicate.to.type === 'number' &&
          predicate.from.value > predicate.to.value
        ) {
          report(loc, 'invalid-range', 'the low end of a between comes first', { severity: 'warning' });
        }
        break;
      case 'window':
        checkWindow(loc, predicate.window);
        break;
    }
  };

  const checkWhere = (expr: PropertyExpr | undefined, event: string): void => {
    if (!expr) return;
    if (expr.kind === 'and' || expr.kind === 'or') {
      for (const item of expr.items) checkWhere(item, event);
      return;
    }
    if (expr.kind === 'not') {
      checkWhere(expr.item, event);
      return;
    }
    const known = schema.events?.[event];
    let type: ValueType = 'any';
    if (known) {
      const types = Object.hasOwn(known, expr.property) ? known[expr.property]! : undefined;
      if (!types) {
        report(
          expr.loc,
          'unknown-property',
          `event ${JSON.stringify(event)} has never had a property ${expr.property}`,
          {
            severity: 'warning',
            didYouMean: closest(expr.property, Object.keys(known)),
          },
        );
      } else if (types.length === 1) {
        type = types[0]!;
      } else {
        type = literalTypeOf(expr) ?? 'any';
        if (type !== 'any' && !types.includes(type as PropertyType)) type = types[0]!;
      }
    }
    if (
      expr.op === 'window' ||
      expr.op === 'anniversary-today' ||
      expr.op === 'anniversary-next' ||
      expr.op === 'has'
    ) {
      report(expr.loc, 'operator-not-allowed', `${opName(expr)} does not apply to event properties`);
      return;
    }
    checkPredicate(expr.loc, expr.property, type, expr);
  };

  const checkEvent = (loc: Loc | undefined, event: string): void => {
    if (schema.events && !Object.hasOwn(schema.events, event)) {
      report(loc, 'unknown-event', `no event ${JSON.stringify(event)} has been seen in this workspace`, {
        severity: 'warning',
        didYouMean: closest(event, eventNames),
      });
    }
  };

  const visit = (expr: SegmentExpr, path: string[]): void => {
    switch (expr.kind) {
      case 'and':
      case 'or':
        for (const item of expr.items) visit(item, path);
        return;
      case 'not':
        visit(expr.item, path);
        return;
      case 'attribute': {
        const type = attributeType(schema, expr.attribute);
        if (!type) {
          report(expr.loc, 'unknown-attribute', `unknown attribute ${expr.attribute}`, {
            expected: ['an attribute of the workspace schema'],
            didYouMean: closest(expr.attribute, attributeNames),
          });
          return;
        }
        checkPredicate(expr.loc, expr.attribute, type, expr);
        if (
          (expr.op === 'anniversary-today' || expr.op === 'anniversary-next') &&
          type !== 'date' &&
          type !== 'datetime'
        ) {
          report(expr.loc, 'type-mismatch', 'anniversaries apply to dates', {
            expected: ['date', 'datetime'],
          });
        }
        return;
      }
      case 'event':
        checkEvent(expr.loc, expr.event);
        checkWhere(expr.where, expr.event);
        if (expr.window) checkWindow(expr.loc, expr.window);
        return;
      case 'event-time':
        checkEvent(expr.loc, expr.event);
        checkWhere(expr.where, expr.event);
        if (expr.window) checkWindow(expr.loc, expr.window);
        return;
      case 'event-aggregate': {
        checkEvent(expr.loc, expr.event);
        checkWhere(expr.where, expr.event);
        if (expr.window) checkWindow(expr.loc, expr.window);
        const types = schema.events?.[expr.event]?.[expr.property];
        if (expr.fn !== 'count-distinct' && types && !types.includes('number')) {
          report(
            expr.loc,
            'type-mismatch',
            `${expr.fn} needs a number property; ${expr.property} is ${types.join(' or ')}`,
            {
              expected: ['number'],
            },
          );
        } else if (schema.events?.[expr.event] && !types) {
          report(
            expr.loc,
            'unknown-property',
            `event ${JSON.stringify(expr.event)} has never had a property ${expr.property}`,
            {
              severity: 'warning',
              didYouMean: closest(expr.property, Object.keys(schema.events[expr.event]!)),
            },
          );
        }
        return;
      }
      case 'event-sequence':
        checkEvent(expr.loc, expr.first.event);
        checkEvent(expr.loc, expr.next.event);
        checkWhere(expr.first.where, expr.first.event);
        checkWhere(expr.next.where, expr.next.event);
        if (expr.window) checkWindow(expr.loc, expr.window);
        return;
      case 'last-seen':
      case 'message':
        if (expr.window) checkWindow(expr.loc, expr.window);
        return;
      case 'in-segment': {
        const segments = schema.segments ?? {};
        if (!Object.hasOwn(segments, expr.segment)) {
          report(expr.loc, 'unknown-segment', `no segment named ${JSON.stringify(expr.segment)}`, {
            expected: ['the name of a saved segment'],
            didYouMean: closest(expr.segment, Object.keys(segments)),
          });
          return;
        }
        if (path.includes(expr.segment)) {
          report(
            expr.loc,
            'segment-cycle',
            `segments refer to each other in a cycle: ${[...path, expr.segment].join(' → ')}`,
          );
          return;
        }
        const referenced = segments[expr.segment]!;
        // Problems inside a referenced segment are reported once, at the reference.
        const inner = checkSegment(referenced, { ...schema, segments: {} }).filter(
          (d) => d.severity === 'error' && d.code !== 'unknown-segment',
        );
        if (inner.length) {
          report(
            expr.loc,
            inner[0]!.code,
            `segment ${JSON.stringify(expr.segment)} no longer checks: ${inner[0]!.message}`,
          );
        }
        visitReferences(referenced.root, [...path, expr.segment]);
        return;
      }
      default:
        return;
    }
  };

  // Cycles through saved segments: walk references only, reporting at the outermost reference.
  const visitReferences = (expr: SegmentExpr, path: string[]): void => {
    if (expr.kind === 'and' || expr.kind === 'or') for (const item of expr.items) visitReferences(item, path);
    else if (expr.kind === 'not') visitReferences(expr.item, path);
    else if (expr.kind === 'in-segment') {
      if (path.includes(expr.segment)) {
        if (!diagnostics.some((d) => d.code === 'segment-cycle'))
          report(
            undefined,
            'segment-cycle',
            `segments refer to each other in a cycle: ${[...path, expr.segment].join(' → ')}`,
          );
        return;
      }
      const next = schema.segments?.[expr.segment];
      if (next) visitReferences(next.root, [...path, expr.segment]);
    }
  };

  visit(ast.root, []);
  return diagnostics.sort((a, b) => a.offset - b.offset);
}

function literalTypeOf(predicate: Predicate): PropertyType | undefined {
  const literal =
    'value' in predicate
      ? predicate.value
      : 'values' in predicate
        ? predicate.values[0]
        : 'from' in predicate
          ? predicate.from
          : undefined;
  return literal && (literal.type === 'string' || literal.type === 'number' || literal.type === 'boolean')
    ? literal.type
    : undefined;
}

/** The instant a date or date-time literal names; dates are midnight in the workspace zone. */
export function toInstant(literal: Literal, zone: string): Date | undefined {
  if (literal.type !== 'date' && literal.type !== 'datetime') return undefined;
  const parsed = DateTime.fromISO(literal.value, { zone, setZone: false });
  return parsed.isValid ? parsed.toJSDate() : undefined;
}

/** Rejects what RE2 (ClickHouse's engine) cannot run, so a pattern never fails at query time. */
export function regexProblem(pattern: string): string | undefined {
  if (pattern.length > 1000) return 'longer than 1000 characters';
  if (/\(\?<?[=!]/.test(pattern)) return 'lookarounds are not supported (RE2)';
  if (/\\[1-9]/.test(pattern)) return 'backreferences are not supported (RE2)';
  if (/\\[pPkgGzZ]|\(\?<[a-zA-Z]|\(\?[a-zA-Z]*[^a-zA-Z:)]|\(\?[^:ismU-]/.test(pattern))
    return 'unsupported syntax for RE2';
  try {
    // RE2 takes leading inline flags such as (?i); JavaScript does not, so test the rest.
    new RegExp(pattern.replace(/^\(\?[imsU]+\)/, ''));
  } catch (error) {
    return (error as Error).message.replace(/^Invalid regular expression: /, '');
  }
  return undefined;
}

function opName(predicate: Predicate): string {
  return predicate.op === 'window' ? 'a time window' : predicate.op.replaceAll('-', ' ');
}

function describeType(type: string): string {
  return type === 'string_list' ? 'a string list' : type === 'any' ? 'any type' : `a ${type}`;
}

function show(literal: Literal): string {
  return literal.type === 'string' ? JSON.stringify(literal.value) : String(literal.value);
}
