// Front end and compiler without a database: every contract example parses to what it says, the
// checker's diagnostics, the AST's JSON form, and SQL-plus-parameter snapshots.
import { describe, expect, it } from 'vitest';
import { stripLocations } from '../engine/segments/ast.ts';
import { validateAst } from '../engine/segments/ast-validate.ts';
import { compileSegment, parseSegment } from '../engine/segments/index.ts';
import type { SegmentSchema } from '../engine/segments/schema.ts';
import { CONTRACT_EXAMPLES, SCHEMA } from './helpers/segment-examples.ts';

const NOW = new Date('2026-03-15T12:00:00Z');
const compile = (text: string) => compileSegment(text, SCHEMA, { workspaceId: 'ws_1', now: NOW });

describe('parser', () => {
  it.each(CONTRACT_EXAMPLES)('parses, checks and compiles: %s', (text) => {
    const result = compile(text);
    expect(result.diagnostics).toEqual([]);
    expect(result.compiled?.sql).toContain('FROM chorus.contacts AS c FINAL');
    expect(validateAst(stripLocations(result.ast))).toEqual([]);
  });

  it('reads each construct as the contract says', () => {
    const root = (text: string) => stripLocations(parseSegment(text).ast!.root);
    expect(root('age between 18 and 30')).toEqual({
      kind: 'attribute',
      attribute: 'age',
      op: 'between',
      from: { type: 'number', value: 18 },
      to: { type: 'number', value: 30 },
    });
    expect(root('did not "app_open" in last 14 days')).toEqual({
      kind: 'event',
      event: 'app_open',
      count: { op: 'exactly', value: 0 },
      window: { kind: 'in-last', duration: { amount: 14, unit: 'days' } },
    });
    expect(root('did "purchase"')).toMatchObject({ count: { op: 'at-least', value: 1 } });
    expect(
      root('did "purchase" where amount > 100 and currency = "INR" at least 2 times in last 30 days'),
    ).toMatchObject({
      where: { kind: 'and', items: [{ property: 'amount' }, { property: 'currency' }] },
      count: { op: 'at-least', value: 2 },
    });
    // `not` binds tighter than `and`, which binds tighter than `or`.
    expect(root('not tagged "a" and tagged "b" or tagged "c"')).toEqual({
      kind: 'or',
      items: [
        {
          kind: 'and',
          items: [
            { kind: 'not', item: { kind: 'tagged', tag: 'a' } },
            { kind: 'tagged', tag: 'b' },
          ],
        },
        { kind: 'tagged', tag: 'c' },
      ],
    });
    expect(root('DID "x" IN LAST 30d AND Tagged "y"')).toMatchObject({ kind: 'and' });
    for (const [text, unit, amount] of [
      ['30 minutes', 'minutes', 30],
      ['1 minute', 'minutes', 1],
      ['12h', 'hours', 12],
      ['1 hour', 'hours', 1],
      ['30d', 'days', 30],
      ['2 weeks', 'weeks', 2],
      ['1w', 'weeks', 1],
      ['5m', 'minutes', 5],
    ] as const) {
      expect(root(`did "x" in last ${text}`)).toMatchObject({ window: { duration: { amount, unit } } });
    }
    expect(root('name = "say \\"hi\\" \\\\ bye"')).toMatchObject({
      value: { type: 'string', value: 'say "hi" \\ bye' },
    });
    expect(root('`weird name!` = -3.5')).toMatchObject({
      attribute: 'weird name!',
      value: { type: 'number', value: -3.5 },
    });
    expect(root('sample 12.5% seed "s"')).toEqual({ kind: 'sample', percent: 12.5, seed: 's' });
    expect(root('created_at before 2026-01-31T10:00:00Z')).toMatchObject({
      window: { kind: 'before', at: { type: 'datetime', value: '2026-01-31T10:00:00Z' } },
    });
    expect(root('did "a" then "b" within 2 days in last 30 days')).toMatchObject({
      kind: 'event-sequence',
      negated: false,
      window: { kind: 'in-last' },
    });
    expect(root('count distinct sku over "purchase" >= 3')).toMatchObject({
      fn: 'count-distinct',
      property: 'sku',
    });
  });

  it('the AST is frozen JSON that round-trips', () => {
    const { ast } = parseSegment('did "purchase" in last 30 days and not tagged "x"');
    expect(Object.isFrozen(ast)).toBe(true);
    expect(Object.isFrozen(ast!.root)).toBe(true);
    const json = JSON.parse(JSON.stringify(stripLocations(ast)));
    expect(validateAst(json)).toEqual([]);
    expect(compileSegment(json, SCHEMA, { workspaceId: 'w', now: NOW }).compiled?.sql).toBe(
      compile('did "purchase" in last 30 days and not tagged "x"').compiled?.sql,
    );
  });
});

describe('diagnostics', () => {
  const diagnostics = (text: string) => compile(text).diagnostics;

  it('collects every problem at once, with codes, positions and suggestions', () => {
    const found = diagnostics(
      'agee >= 25 and plan = 3\n  and did "purchse" in last 7 days and tagd "x" and country = "IN"',
    );
    expect(found.map((d) => [d.code, d.line, d.column, d.didYouMean])).toEqual([
      ['unexpected-token', 2, 40, 'tagged'],
    ]);
    // Parse errors come first; a text that parses reports all its type errors together.
    const typed = diagnostics(
      'agee >= 25 and plan = 3\n  and did "purchse" in last 7 days and country = "IN"',
    );
    expect(typed.map((d) => [d.code, d.severity, d.line, d.column, d.didYouMean])).toEqual([
      ['unknown-attribute', 'error', 1, 1, 'age'],
      ['type-mismatch', 'error', 1, 16, undefined],
      ['unknown-event', 'warning', 2, 7, 'purchase'],
    ]);
    expect(typed[1]!.expected).toEqual(['string']);
  });

  it.each([
    ['name contain "x"', 'unexpected-token', 'contains'],
    ['did "x" in lst 3 days', 'unexpected-token', 'last'],
    ['subscribed to whatsap marketing', 'unknown-channel', 'whatsapp'],
    ['subscribed to whatsapp marketting', 'unknown-purpose', 'marketing'],
    ['did "x" in last 3 dayz', 'invalid-duration', 'days'],
    ['in segment "high_valu"', 'unknown-segment', 'high_value'],
    ['sum of amount over "purchase" where currncy = "INR" > 5', 'unknown-property', 'currency'],
  ])('%s → %s, did you mean %s', (text, code, suggestion) => {
    const found = diagnostics(text);
    expect(found[0]).toMatchObject({ code, didYouMean: suggestion });
    expect(found[0]!.message).toContain(`did you mean ${suggestion}?`);
  });

  it.each([
    ['age = "x"', 'type-mismatch'],
    ['plan > 3', 'operator-not-allowed'],
    ['interests = "a"', 'operator-not-allowed'],
    ['city matches "(?=x)"', 'invalid-regex'],
    ['city matches "("', 'invalid-regex'],
    ['created_at between 2026-02-01 and 2026-01-01', 'invalid-range'],
    ['created_at before 2026-02-30', 'invalid-date'],
    ['did "x" at least 1.5 times', 'invalid-count'],
    ['sample 0% seed "x"', 'invalid-percentage'],
    ['sample 150% seed "x"', 'invalid-percentage'],
    ['plan in ()', 'empty-list'],
    ['name = "abc', 'unterminated-string'],
    ['name = "a\\nb"', 'invalid-escape'],
    ['`abc = 1', 'unterminated-identifier'],
    ['age > 3 @@ 4', 'unexpected-character'],
    ['', 'unexpected-end'],
    ['age >', 'unexpected-end'],
    ['sum of currency over "purchase" > 3', 'type-mismatch'],
    ['birthday anniversary in next 3 hours', 'invalid-duration'],
    ['age is anniversary today', 'operator-not-allowed'],
  ])('%s → %s', (text, code) => {
    const found = diagnostics(text);
    expect(found.map((d) => d.code)).toContain(code);
    const error = found.find((d) => d.code === code)!;
    expect(error.line).toBeGreaterThanOrEqual(1);
    expect(error.column).toBeGreaterThanOrEqual(1);
    expect(compile(text).compiled).toBeUndefined();
  });

  it('refuses cycles between saved segments', () => {
    const schema: SegmentSchema = {
      ...SCHEMA,
      segments: {
        a: { version: 1, root: { kind: 'in-segment', segment: 'b' } },
        b: {
          version: 1,
          root: {
            kind: 'or',
            items: [
              { kind: 'tagged', tag: 'x' },
              { kind: 'in-segment', segment: 'a' },
            ],
          },
        },
      },
    };
    const result = compileSegment('in segment "a"', schema, { workspaceId: 'w', now: NOW });
    expect(result.diagnostics.map((d) => d.code)).toContain('segment-cycle');
    expect(result.compiled).toBeUndefined();
  });

  it('an AST from elsewhere is validated field by field', () => {
    expect(
      validateAst({ version: 1, root: { kind: 'event', event: 3, count: { op: 'sometimes', value: -1 } } }),
    ).toEqual([
      { path: '/root/event', message: 'must be a string of at most 1000 characters' },
      { path: '/root/count/op', message: 'must be at-least, at-most or exactly' },
      { path: '/root/count/value', message: 'must be a whole number' },
    ]);
    expect(
      validateAst({ version: 1, root: { kind: 'attribute', attribute: 'age', op: 'drop table' } })[0],
    ).toEqual({ path: '/root/op', message: 'is not a known operator' });
    expect(validateAst('nope')).toHaveLength(1);
  });
});

describe('compiled SQL and parameters (snapshots)', () => {
  it.each([
    'country = "IN" and age between 18 and 30',
    'plan not in ("free") or email ends with "@gmail.com"',
    'did "purchase" where amount > 100 and currency = "INR" at least 2 times in last 30 days and not did "app_open" in last 14 days',
    'first did "purchase" in last 7 days',
    'sum of amount over "purchase" in last 90 days > 5000',
    'did "add_to_cart" then not "purchase" within 1 hour',
    'received template "order_update" at least 3 times in last 7 days and subscribed to whatsapp marketing',
    'sample 10% seed "exp-42" and tagged "vip" and in list "newsletter"',
  ])('%s', (text) => {
    const raw = compileSegment(text, SCHEMA, { workspaceId: 'ws_1', now: NOW, path: 'raw' }).compiled!;
    const auto = compileSegment(text, SCHEMA, { workspaceId: 'ws_1', now: NOW }).compiled!;
    expect({ sql: raw.sql, params: raw.params }).toMatchSnapshot('raw');
    expect({ sql: auto.sql, params: auto.params, plan: auto.plan }).toMatchSnapshot('auto');
  });

  it('event conditions of one segment share one grouped scan', () => {
    const text =
      'did "a" in last 3 days and did "b" at least 2 times in last 10 days and sum of x over "c" in last 5 days > 1 and did "a" then "b" within 1 day in last 2 days';
    const compiled = compileSegment(text, SCHEMA, { workspaceId: 'w', now: NOW, path: 'raw' }).compiled!;
    expect(compiled.sql.match(/FROM chorus\.events\b/g)).toHaveLength(1);
    expect(compiled.sql.match(/GROUP BY contact_key/g)).toHaveLength(1);
    // The widest positive window is in WHERE: rows older than 10 days are never read.
    expect(compiled.sql).toMatch(
      /WHERE workspace_id = \{p0:String\} AND ts <= \{p1:DateTime64\(3, 'UTC'\)\} AND ts >= \{p\d+:/,
    );
  });

  it('the rollup answers whole days; property filters and sequences stay raw', () => {
    expect(compile('did "purchase" at least 2 times in last 30 days').compiled!.plan).toMatchObject({
      rollup: true,
    });
    expect(compile('did "purchase" at least 2 times in last 1 day').compiled!.plan).toMatchObject({
      rollup: false,
    });
    expect(compile('did "purchase" where amount > 1 in last 30 days').compiled!.plan).toMatchObject({
      rollup: false,
    });
    expect(compile('did "a" then "b" within 7 days').compiled!.plan).toMatchObject({ rollup: false });
    const forced = compileSegment('did "purchase" at least 2 times in last 30 days', SCHEMA, {
      workspaceId: 'w',
      now: NOW,
      path: 'raw',
    });
    expect(forced.compiled!.plan.rollup).toBe(false);
  });

  it('did, did not, first and last did, and all-time counts read one row per contact and name', () => {
    for (const text of [
      'did "purchase"',
      'did "purchase" exactly 2 times',
      'did "purchase" in last 30 days',
      'did "purchase" since 2026-01-01',
      'did not "app_open" in last 14 days',
      'did "app_open" at most 0 times in last 14 days',
      'first did "purchase" in last 7 days',
      'first did "purchase" between 2026-01-01 and 2026-02-01',
      'last did "purchase" more than 60 days ago',
      'last did "purchase" in last 60 days',
    ]) {
      expect(compile(text).compiled!.plan, text).toMatchObject({ summary: true, events: false });
      const raw = compileSegment(text, SCHEMA, { workspaceId: 'w', now: NOW, path: 'raw' }).compiled!;
      expect(raw.plan, text).toMatchObject({ summary: false, events: true });
    }
    for (const text of [
      'did "purchase" at least 2 times in last 30 days',
      'did "purchase" between 2026-01-01 and 2026-02-01',
      'did "purchase" where amount > 1',
      'first did "purchase" where amount > 1 in last 7 days',
    ])
      expect(compile(text).compiled!.plan, text).toMatchObject({ summary: false });
    // Contacts with events after `now` (a past now) are read from raw events by the late scan.
    expect(compile('did "purchase"').compiled!.sql).toContain('last_event_at > {p1:');
  });

  it('last seen in a window reaching now reads contact_activity, except on the raw path', () => {
    expect(compile('last seen in last 7 days').compiled!.plan).toMatchObject({ activity: true });
    expect(compile('last seen since 2026-01-01').compiled!.plan).toMatchObject({ activity: true });
    expect(compile('last seen more than 7 days ago').compiled!.plan).toMatchObject({ activity: false });
    const forced = compileSegment('last seen in last 7 days', SCHEMA, {
      workspaceId: 'w',
      now: NOW,
      path: 'raw',
    });
    expect(forced.compiled!.plan).toMatchObject({ activity: false, events: true });
  });

  it('one scan of one condition is a set of contact keys; otherwise scans join as condition bits', () => {
    for (const [text, source] of [
      ['did "purchase" in last 30 days', 'summary'],
      ['sum of amount over "purchase" in last 90 days > 500 or tagged "b2b"', 'events'],
      ['last seen in last 7 days and email is set', 'activity'],
      ['received campaign "diwali_sale"', 'messages'],
    ]) {
      const { sql } = compile(text!).compiled!;
      expect(sql, text).toContain(`cityHash64(c.contact_id) IN scan_${source}`);
      expect(sql, text).not.toMatch(/\bJOIN\b/);
    }
    const text =
      '(plan in ("pro", "business") or tagged "b2b") and sum of amount over "purchase" in last 90 days > 500 and received campaign "diwali_sale" and not replied to campaign "diwali_sale" and did "purchase" and last seen in last 7 days';
    const { sql } = compile(text).compiled!;
    expect(sql).not.toContain(' IN scan_');
    for (const source of ['events', 'summary', 'activity', 'messages'])
      expect(sql).toContain(`LEFT JOIN scan_${source} AS joined_${source} ON joined_${source}.contact_key`);
    // Two conditions on one scan: one GROUP BY, one row per contact where either differs.
    expect(sql).toContain('(bitTest(joined_messages.mask0, 0) = 1)');
    expect(sql).toContain('(NOT (bitTest(joined_messages.mask0, 1) = 1))');
    expect(sql).toContain('HAVING mask0 != 0');
    expect(sql.match(/FROM chorus\.sends FINAL/g)).toHaveLength(1);
    // More than 64 conditions on one scan take a second mask.
    const many = Array.from({ length: 70 }, (_, i) => `did "e${i}" in last ${i + 1} days`).join(' or ');
    const wide = compile(many).compiled!.sql;
    expect(wide).toContain('bitTest(joined_summary.mask1, 5)');
    expect(wide).not.toContain('mask2');
  });

  it('a condition true for a contact without events tests non-membership', () => {
    // Zero purchases satisfy "at most 3": the set holds the contacts with more.
    const atMost = compile('did "purchase" at most 3 times since 2026-01-01').compiled!.sql;
    expect(atMost).toContain('NOT (cityHash64(c.contact_id) IN scan_');
    expect(atMost).toMatch(/HAVING NOT \(v\d+ <= \{p\d+:UInt64\}\)/);
    const atLeast = compile('did "purchase" at least 2 times in last 30 days').compiled!.sql;
    expect(atLeast).not.toContain('NOT (cityHash64');
    expect(compile('sum of amount over "purchase" in last 9 days < 10').compiled!.sql).toContain(
      'NOT (cityHash64(c.contact_id) IN scan_events)',
    );
  });

  it('existence tests read rows without grouping them', () => {
    for (const text of ['did "purchase" in last 30 days', 'did "purchase"', 'last seen in last 7 days']) {
      const { sql } = compile(text).compiled!;
      expect(sql, text).not.toContain('GROUP BY');
    }
    expect(compile('did "purchase" where amount > 5 in last 3 days').compiled!.sql).not.toContain('GROUP BY');
    expect(compile('did "purchase" exactly 1 time').compiled!.sql).toContain('GROUP BY contact_key');
  });
});

describe('the published JSON Schema of the tree', () => {
  it('accepts every parsed contract example and refuses malformed trees', async () => {
    // ajv ships with fastify; the 2020-12 build reads the schema as published.
    const { default: Ajv2020 } = (await import('ajv/dist/2020.js')) as unknown as {
      default: new (
        options: object,
      ) => { compile(schema: object): ((data: unknown) => boolean) & { errors?: unknown } };
    };
    const schema = (await import('../engine/segments/ast.schema.json', { with: { type: 'json' } })).default;
    const validate = new Ajv2020({ allErrors: true, strict: false }).compile(schema);
    for (const text of [
      ...CONTRACT_EXAMPLES,
      'avg of amount over "purchase" where not (currency = "INR" or amount < 3) > 2',
    ]) {
      const tree = stripLocations(parseSegment(text).ast!);
      expect(validate(tree), `${text}: ${JSON.stringify(validate.errors)}`).toBe(true);
    }
    for (const bad of [
      { version: 1, root: { kind: 'tagged' } },
      { version: 1, root: { kind: 'event', event: 'x', count: { op: 'sometimes', value: 1 } } },
      { version: 2, root: { kind: 'constant', value: true } },
      {
        version: 1,
        root: { kind: 'attribute', attribute: 'age', op: '=', value: { type: 'sql', value: '1' } },
      },
    ]) {
      expect(validate(bad)).toBe(false);
      expect(validateAst(bad).length).toBeGreaterThan(0);
    }
  });
});
