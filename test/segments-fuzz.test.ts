// Bad input: random and adversarial text never crashes the front end or the compiler, always ends in
// diagnostics or a query, and no input text reaches the SQL (values travel only as parameters).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { SegmentAst } from '../engine/segments/ast.ts';
import { compileSegment, parseSegment } from '../engine/segments/index.ts';
import { CONTRACT_EXAMPLES, SCHEMA } from './helpers/segment-examples.ts';

const NOW = new Date('2026-03-15T12:00:00Z');
const compile = (input: string | SegmentAst) =>
  compileSegment(input, SCHEMA, { workspaceId: 'ws_1', now: NOW });

/**
 * The same tree with every user-supplied name and string renamed (equal strings to equal names, so
 * the compiler may still use which names are equal, e.g. one event on both sides of `then`): the
 * SQL text must not change.
 */
function neutralize(ast: SegmentAst): SegmentAst {
  const renamed = new Map<string, string>();
  const rename = (text: string) => {
    if (!renamed.has(text)) renamed.set(text, `v${renamed.size}`);
    return renamed.get(text)!;
  };
  return JSON.parse(
    JSON.stringify(ast, (key, value) => {
      if (key === 'loc') return undefined;
      if (typeof value === 'string' && ['event', 'tag', 'list', 'seed', 'name', 'property'].includes(key))
        return rename(value);
      if (value && typeof value === 'object' && value.type === 'string' && typeof value.value === 'string')
        return { ...value, value: rename(value.value) };
      return value;
    }),
  ) as SegmentAst;
}

function assertSafe(input: string): void {
  const result = compile(input);
  expect(Array.isArray(result.diagnostics)).toBe(true);
  for (const d of result.diagnostics) {
    expect(d.code).toMatch(/^[a-z]+(-[a-z]+)*$/);
    expect(d.line).toBeGreaterThanOrEqual(1);
    expect(d.column).toBeGreaterThanOrEqual(1);
  }
  if (result.compiled) {
    expect(result.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
    // In-segment references are inlined by name; neutralizing them would change what is compiled.
    if (!JSON.stringify(result.ast).includes('in-segment')) {
      expect(compile(neutralize(result.ast!)).compiled!.sql).toBe(result.compiled.sql);
    }
  } else {
    expect(result.diagnostics.some((d) => d.severity === 'error')).toBe(true);
  }
}

const PAYLOADS = [
  `'; DROP TABLE contacts; --`,
  '") OR 1=1 --',
  '`; SELECT * FROM system.users',
  '{p0:String}',
  '\\"',
  '\u0000\u202e\ud83d\ude00',
  "ZQ' UNION ALL SELECT password FROM users --",
  ') FORMAT JSON SETTINGS max_threads=1000 --',
];

describe('fuzzing the segment front end', () => {
  it('random text never crashes and always ends in diagnostics or SQL', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 200 }),
          fc.string({ unit: 'binary', maxLength: 200 }),
          fc.string({ unit: 'grapheme', maxLength: 100 }),
        ),
        (text) => {
          assertSafe(text);
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('mutated contract examples never crash', () => {
    const tokens = [
      '(',
      ')',
      '"',
      '`',
      '\\',
      'and',
      'or',
      'not',
      '--',
      '\n',
      ' in last ',
      ' 30d',
      '%',
      '-',
      '2026-13-45',
      ' then ',
      ' where ',
      ...PAYLOADS,
    ];
    fc.assert(
      fc.property(
        fc.constantFrom(...CONTRACT_EXAMPLES),
        fc.array(fc.tuple(fc.nat(), fc.nat(3), fc.constantFrom(...tokens)), { maxLength: 4 }),
        (example, edits) => {
          let text = example;
          for (const [at, drop, insert] of edits) {
            const i = at % (text.length + 1);
            text = text.slice(0, i) + insert + text.slice(i + drop);
          }
          assertSafe(text);
        },
      ),
      { numRuns: 3000 },
    );
  });

  it.each(PAYLOADS)('an injection attempt in every string position stays a parameter: %s', (payload) => {
    const quoted = JSON.stringify(payload);
    const backquoted = `\`${payload.replaceAll('\\', '\\\\').replaceAll('`', '\\`')}\``;
    const texts = [
      `country = ${quoted}`,
      `plan in (${quoted}, "x")`,
      `name contains ${quoted} or name starts with ${quoted} or name ends with ${quoted}`,
      `tagged ${quoted} and in list ${quoted}`,
      `did ${quoted} where ${backquoted} = ${quoted} at least 2 times in last 3 days`,
      `sum of ${backquoted} over ${quoted} > 3`,
      `did ${quoted} then not ${quoted} within 1 hour`,
      `received campaign ${quoted} or received template ${quoted}`,
      `sample 10% seed ${quoted}`,
      `${backquoted} = "x"`,
    ];
    for (const text of texts) {
      const result = compile(text);
      assertSafe(text);
      if (result.compiled) {
        const sql = result.compiled.sql;
        // The same segment with a harmless value in every position: a fragment the query itself
        // uses (the summary scan's UNION ALL) must not appear once more.
        const harmlessTwin = compile(text.replaceAll(quoted, '"x"').replaceAll(backquoted, '`x`'));
        expect(harmlessTwin.compiled, `the harmless twin of ${text} compiles`).toBeDefined();
        const harmless = harmlessTwin.compiled!.sql;
        for (const fragment of [
          'DROP',
          'system.users',
          'UNION',
          'password',
          'FORMAT',
          'max_threads',
          'OR 1=1',
          '\u202e',
        ]) {
          expect(sql.split(fragment).length, fragment).toBe(harmless.split(fragment).length);
        }
        expect(Object.values(result.compiled.params).flat()).toContain(payload);
      }
    }
  });

  it('deep nesting gets one too-deep diagnostic, not a stack overflow', () => {
    for (const depth of [100, 10_000, 200_000]) {
      for (const text of [
        '('.repeat(depth) + 'tagged "x"' + ')'.repeat(depth),
        'not '.repeat(depth) + 'tagged "x"',
        `did "x" where ${'('.repeat(depth)}a = 1${')'.repeat(depth)}`,
      ]) {
        const result = compile(text);
        expect(result.compiled).toBeUndefined();
        expect(result.diagnostics.map((d) => d.code)).toContain('too-deep');
      }
    }
    expect(compile('('.repeat(30) + 'tagged "x"' + ')'.repeat(30)).compiled).toBeDefined();
  });

  it('a 1 MB input is handled: diagnostics or a query, quickly enough', () => {
    const big = Array.from({ length: 40_000 }, (_, i) => `tagged "t${i}"`).join(' or ');
    expect(big.length).toBeLessThanOrEqual(1_000_000);
    const ok = compile(big);
    expect(ok.compiled).toBeDefined();
    const garbage = 'x'.repeat(1_000_000);
    expect(compile(garbage).diagnostics[0]!.code).toBe('unexpected-end');
    const strings = '"'.repeat(999_999);
    expect(compile(strings).compiled).toBeUndefined();
    expect(compile('a'.repeat(1_000_001)).diagnostics[0]!.code).toBe('too-long');
    const errors = compile(Array.from({ length: 50_000 }, () => 'agee = 1').join(' and ')).diagnostics;
    expect(errors.length).toBe(50_000);
  });

  it('parses a long segment with many diagnostics in one pass', () => {
    const result = parseSegment('tagd "a" and nme contain "b" and did "x" in lst 3 days or plan = ');
    expect(result.diagnostics.length).toBeGreaterThanOrEqual(3);
  });
});
