// Generated data and generated segments for the differential test: small domains, so that generated
// conditions split the contacts instead of selecting all or none, and times on window edges.
import fc from 'fast-check';
import type {
  Duration,
  Literal,
  Predicate,
  PropertyExpr,
  SegmentAst,
  SegmentExpr,
  Window,
} from '../../engine/segments/ast.ts';
import type { ContactRow, EventRow, SendRow } from './segment-data.ts';
import type { Dataset } from './segment-evaluator.ts';

export const NOW = new Date('2026-03-15T12:34:56.789Z');
const DAY = 86_400_000;
const ZONES = [
  'Asia/Kolkata',
  'America/New_York',
  'Pacific/Kiritimati',
  'Pacific/Pago_Pago',
  'Europe/London',
  '',
];
export const EVENT_NAMES = ['purchase', 'app_open', 'signup', 'add_to_cart'];
const PLANS = ['free', 'pro', 'team', 'Pro', 'enterprise'];
const NAMES = ['Ravi Kumar', 'anita', 'ARJUN kumar', 'Zoya', 'Bob', 'Ana María'];
const INTERESTS = ['cricket', 'music', 'football'];
const CURRENCIES = ['INR', 'USD', 'inr'];

function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const iso = (ms: number) => new Date(ms).toISOString();

/** One dataset per test file: contacts with versions and deletions, events around `now`, sends. */
export function generateDataset(contactCount = 250, seed = 42): Dataset {
  const r = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const chance = (p: number) => r() < p;
  const nowMs = NOW.getTime();
  // Times cluster on whole days and hours before now, so window edges are hit exactly.
  const time = (): number => {
    const roll = r();
    if (roll < 0.25) return nowMs - Math.floor(r() * 100) * DAY;
    if (roll < 0.4) return nowMs - Math.floor(r() * 72) * 3_600_000;
    if (roll < 0.5) return Math.floor((nowMs - r() * 100 * DAY) / DAY) * DAY;
    if (roll < 0.53) return nowMs + Math.floor(r() * 3 * DAY);
    return Math.floor(nowMs - r() * 120 * DAY);
  };
  const contacts: ContactRow[] = [];
  const events: EventRow[] = [];
  const sends: SendRow[] = [];
  for (let i = 0; i < contactCount; i++) {
    const id = `c${String(i).padStart(4, '0')}`;
    const base: ContactRow = {
      id,
      country: pick(['IN', 'US', 'GB', '']),
      timezone: pick(ZONES),
      language: pick(['en', 'hi', '']),
      phone: chance(0.9) ? `+9198${String(i).padStart(8, '0')}` : '',
      created_at: iso(time()),
      last_seen_at: chance(0.6) ? iso(time()) : null,
      strings: {
        ...(chance(0.8) ? { plan: pick(PLANS) } : {}),
        ...(chance(0.7)
          ? { email: chance(0.1) ? '' : `u${i}@${pick(['gmail.com', 'yahoo.com', 'GMAIL.com'])}` }
          : {}),
        ...(chance(0.8) ? { name: pick(NAMES) } : {}),
      },
      numbers: chance(0.8) ? { age: 15 + Math.floor(r() * 50) } : {},
      booleans: chance(0.7) ? { vip: chance(0.3) } : {},
      dates: chance(0.8)
        ? {
            birthday: `19${70 + Math.floor(r() * 30)}-${chance(0.6) ? '03' : pick(['02', '04', '12'])}-${String(1 + Math.floor(r() * 28)).padStart(2, '0')}`,
          }
        : {},
      datetimes: chance(0.7) ? { signup_at: iso(time()) } : {},
      lists: chance(0.7) ? { interests: INTERESTS.filter(() => chance(0.4)) } : {},
      tags: ['vip', 'beta', 'churn_risk'].filter(() => chance(0.3)),
      memberOf: ['newsletter', 'beta_testers'].filter(() => chance(0.4)),
      consent: Object.fromEntries(
        ['whatsapp.marketing', 'whatsapp.utility', 'sms.marketing']
          .filter(() => chance(0.6))
          .map((key) => [key, chance(0.7) ? 'opted_in' : 'opted_out'] as const),
      ),
      version: 1,
    };
    contacts.push(base);
    if (chance(0.15))
      contacts.push({ ...base, version: 2, strings: { ...base.strings, plan: pick(PLANS) }, tags: ['vip'] });
    if (chance(0.05)) contacts.push({ ...base, version: 3, deleted: true });
    const eventCount = Math.floor(r() * 30);
    for (let j = 0; j < eventCount; j++) {
      const name = pick(EVENT_NAMES);
      const properties: Record<string, unknown> = {};
      // Nested keys of the same names, placed first, and text that looks like JSON keys: only the
      // top-level property counts (the compiler reads flat documents by a faster path than these).
      if (chance(0.1)) properties.meta = { amount: 999, currency: pick(CURRENCIES), list: [1] };
      if (chance(0.05)) properties.label = chance(0.5) ? 'say "amount":250 \\ {' : '[amount]';
      if (chance(0.85))
        properties.amount = chance(0.9) ? Math.floor(r() * 300) : String(Math.floor(r() * 300));
      if (chance(0.8)) properties.currency = pick(CURRENCIES);
      if (chance(0.5)) properties.coupon = chance(0.5);
      if (chance(0.1)) properties.note = chance(0.5) ? '' : null;
      events.push({ contact: id, name, ts: iso(time()), properties });
      // Pairs for sequences, at the window's exact edge sometimes.
      if (name === 'add_to_cart' || name === 'signup') {
        const gap = pick([3_600_000, 3_600_000 - 1, 3_600_000 + 1, DAY, 7 * DAY, 30 * 60_000]);
        if (chance(0.5))
          events.push({
            contact: id,
            name: 'purchase',
            ts: iso(Date.parse(events.at(-1)!.ts) + gap),
            properties: { amount: 10 },
          });
      }
    }
    const sendCount = Math.floor(r() * 4);
    for (let j = 0; j < sendCount; j++) {
      const sent = time();
      const pmid = chance(0.9) ? `pm_${id}_${j}` : '';
      const statuses = pmid
        ? ['sent', 'delivered', 'read', 'replied', 'failed']
            .filter(() => chance(0.4))
            .map((status) => ({ status, ts: iso(sent + Math.floor(r() * 2 * DAY)) }))
        : [];
      sends.push({
        contact: id,
        campaign: pick(['diwali_sale', 'new_year', '']),
        template: pick(['promo', 'order_update']),
        outcome: pmid && chance(0.9) ? 'accepted' : 'failed',
        sent_at: iso(sent),
        pmid,
        statuses,
      });
    }
  }
  const segments: Record<string, SegmentAst> = {
    engaged: {
      version: 1,
      root: {
        kind: 'event',
        event: 'app_open',
        count: { op: 'at-least', value: 1 },
        window: { kind: 'in-last', duration: { amount: 14, unit: 'days' } },
      },
    },
    buyers: {
      version: 1,
      root: {
        kind: 'or',
        items: [
          { kind: 'in-segment', segment: 'engaged' },
          { kind: 'tagged', tag: 'vip' },
        ],
      },
    },
  };
  return {
    timezone: 'Asia/Kolkata',
    attributes: {
      plan: 'string',
      email: 'string',
      name: 'string',
      age: 'number',
      vip: 'boolean',
      birthday: 'date',
      signup_at: 'datetime',
      interests: 'string_list',
    },
    contacts,
    events,
    sends,
    segments,
  };
}

// ---- segments ----

const dayLiteral = fc
  .integer({ min: -150, max: 10 })
  .map(
    (d): Literal => ({ type: 'date', value: new Date(NOW.getTime() + d * DAY).toISOString().slice(0, 10) }),
  );
const timeLiteral = fc.oneof(
  dayLiteral,
  fc.integer({ min: -150 * 24, max: 24 }).map(
    (h): Literal => ({
      type: 'datetime',
      value: new Date(Math.floor(NOW.getTime() / 3_600_000 + h) * 3_600_000)
        .toISOString()
        .replace('.000Z', 'Z'),
    }),
  ),
);
const duration: fc.Arbitrary<Duration> = fc.oneof(
  fc.record({ amount: fc.integer({ min: 1, max: 100 }), unit: fc.constant('days' as const) }),
  fc.record({ amount: fc.integer({ min: 1, max: 72 }), unit: fc.constant('hours' as const) }),
  fc.record({ amount: fc.integer({ min: 1, max: 12 }), unit: fc.constant('weeks' as const) }),
  fc.record({ amount: fc.integer({ min: 1, max: 600 }), unit: fc.constant('minutes' as const) }),
);
export const windowArb: fc.Arbitrary<Window> = fc.oneof(
  duration.map((d): Window => ({ kind: 'in-last', duration: d })),
  duration.map((d): Window => ({ kind: 'more-than-ago', duration: d })),
  timeLiteral.map((at): Window => ({ kind: 'since', at })),
  timeLiteral.map((at): Window => ({ kind: 'before', at })),
  fc.tuple(fc.integer({ min: -150, max: 5 }), fc.integer({ min: 1, max: 60 })).map(([from, len]): Window => {
    const day = (d: number) => new Date(NOW.getTime() + d * DAY).toISOString().slice(0, 10);
    return {
      kind: 'between',
      from: { type: 'date', value: day(from) },
      to: { type: 'date', value: day(from + len) },
    };
  }),
);
const str = (value: string): Literal => ({ type: 'string', value });
const num = (value: number): Literal => ({ type: 'number', value });
const compareOp = fc.constantFrom('=', '!=', '<', '<=', '>', '>=' as const);
const count = fc.record({
  op: fc.constantFrom('at-least', 'at-most', 'exactly' as const),
  value: fc.integer({ min: 0, max: 4 }),
});

const stringPredicate = (values: string[]): fc.Arbitrary<Predicate> =>
  fc.oneof(
    fc.record({ op: fc.constantFrom('=', '!=' as const), value: fc.constantFrom(...values).map(str) }),
    fc.record({
      op: fc.constantFrom('in', 'not-in' as const),
      values: fc.subarray(values, { minLength: 1 }).map((vs) => vs.map(str)),
    }),
    fc.record({
      op: fc.constantFrom('contains', 'starts-with', 'ends-with' as const),
      value: fc.constantFrom('r', 'R', 'pro', 'kumar', 'a', '.com', 'Ana').map(str),
    }),
    fc.record({
      op: fc.constant('matches' as const),
      value: fc.constantFrom('^A', 'a$', 'um|un', '^(pro|team)$', '[0-9]').map(str),
    }),
    fc.record({ op: fc.constantFrom('is-set', 'is-not-set' as const) }),
  );
const numberPredicate: fc.Arbitrary<Predicate> = fc.oneof(
  fc.record({ op: compareOp, value: fc.integer({ min: 10, max: 300 }).map(num) }),
  fc
    .tuple(fc.integer({ min: 10, max: 70 }), fc.integer({ min: 0, max: 30 }))
    .map(([a, b]): Predicate => ({ op: 'between', from: num(a), to: num(a + b) })),
  fc.record({
    op: fc.constantFrom('in', 'not-in' as const),
    values: fc.array(fc.integer({ min: 15, max: 64 }).map(num), { minLength: 1, maxLength: 4 }),
  }),
  fc.record({ op: fc.constantFrom('is-set', 'is-not-set' as const) }),
);
const timePredicate: fc.Arbitrary<Predicate> = fc.oneof(
  windowArb.map((window): Predicate => ({ op: 'window', window })),
  fc.record({ op: compareOp, value: timeLiteral }),
  fc.record({ op: fc.constantFrom('is-set', 'is-not-set' as const) }),
  fc.constant<Predicate>({ op: 'anniversary-today' }),
  fc.integer({ min: 1, max: 40 }).map((days): Predicate => ({ op: 'anniversary-next', days })),
);

const attributeArb: fc.Arbitrary<SegmentExpr> = fc.oneof(
  stringPredicate(PLANS).map((p) => ({ kind: 'attribute', attribute: 'plan', ...p }) as SegmentExpr),
  stringPredicate(NAMES).map((p) => ({ kind: 'attribute', attribute: 'name', ...p }) as SegmentExpr),
  stringPredicate(['u1@gmail.com', 'x']).map(
    (p) => ({ kind: 'attribute', attribute: 'email', ...p }) as SegmentExpr,
  ),
  stringPredicate(['IN', 'US', 'GB']).map(
    (p) => ({ kind: 'attribute', attribute: 'country', ...p }) as SegmentExpr,
  ),
  stringPredicate(['Asia/Kolkata', 'Europe/London']).map(
    (p) => ({ kind: 'attribute', attribute: 'timezone', ...p }) as SegmentExpr,
  ),
  numberPredicate.map((p) => ({ kind: 'attribute', attribute: 'age', ...p }) as SegmentExpr),
  fc
    .oneof(
      fc.record({
        op: fc.constantFrom('=', '!=' as const),
        value: fc.boolean().map((value): Literal => ({ type: 'boolean', value })),
      }),
      fc.record({ op: fc.constantFrom('is-set', 'is-not-set' as const) }),
    )
    .map((p) => ({ kind: 'attribute', attribute: 'vip', ...p }) as SegmentExpr),
  timePredicate.map((p) => ({ kind: 'attribute', attribute: 'birthday', ...p }) as SegmentExpr),
  timePredicate.map((p) => ({ kind: 'attribute', attribute: 'signup_at', ...p }) as SegmentExpr),
  timePredicate
    .filter((p) => p.op !== 'is-not-set')
    .map((p) => ({ kind: 'attribute', attribute: 'created_at', ...p }) as SegmentExpr),
  timePredicate.map((p) => ({ kind: 'attribute', attribute: 'last_seen_at', ...p }) as SegmentExpr),
  fc
    .oneof(
      fc.record({ op: fc.constant('has' as const), value: fc.constantFrom(...INTERESTS).map(str) }),
      fc.record({ op: fc.constantFrom('is-set', 'is-not-set' as const) }),
    )
    .map((p) => ({ kind: 'attribute', attribute: 'interests', ...p }) as SegmentExpr),
);

const propertyLeaf: fc.Arbitrary<PropertyExpr> = fc.oneof(
  numberPredicate.map((p) => ({ kind: 'property', property: 'amount', ...p }) as PropertyExpr),
  stringPredicate(CURRENCIES).map((p) => ({ kind: 'property', property: 'currency', ...p }) as PropertyExpr),
  fc
    .record({
      op: fc.constantFrom('=', '!=' as const),
      value: fc.boolean().map((value): Literal => ({ type: 'boolean', value })),
    })
    .map((p) => ({ kind: 'property', property: 'coupon', ...p }) as PropertyExpr),
  fc
    .constantFrom('is-set', 'is-not-set' as const)
    .map((op) => ({ kind: 'property', property: 'note', op }) as PropertyExpr),
);
const whereArb: fc.Arbitrary<PropertyExpr> = fc.oneof(
  { weight: 3, arbitrary: propertyLeaf },
  {
    weight: 1,
    arbitrary: fc
      .array(propertyLeaf, { minLength: 2, maxLength: 3 })
      .map((items): PropertyExpr => ({ kind: 'and', items })),
  },
  {
    weight: 1,
    arbitrary: fc
      .array(propertyLeaf, { minLength: 2, maxLength: 3 })
      .map((items): PropertyExpr => ({ kind: 'or', items })),
  },
  { weight: 1, arbitrary: propertyLeaf.map((item): PropertyExpr => ({ kind: 'not', item })) },
);
const eventName = fc.constantFrom(...EVENT_NAMES, 'never_seen');
const optional = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined, freq: 2 });
const clean = <T extends object>(node: T): T => JSON.parse(JSON.stringify(node)) as T;

const behaviourArb: fc.Arbitrary<SegmentExpr> = fc.oneof(
  fc
    .record({ event: eventName, where: optional(whereArb), count, window: optional(windowArb) })
    .map((r) => clean({ kind: 'event', ...r }) as SegmentExpr),
  fc
    .record({
      which: fc.constantFrom('first', 'last' as const),
      event: eventName,
      where: optional(whereArb),
      window: optional(windowArb),
    })
    .map((r) => clean({ kind: 'event-time', ...r }) as SegmentExpr),
  fc
    .record({
      fn: fc.constantFrom('sum', 'avg', 'min', 'max', 'count-distinct' as const),
      property: fc.constantFrom('amount', 'amount', 'currency'),
      event: eventName,
      where: optional(whereArb),
      window: optional(windowArb),
      op: compareOp,
      value: fc.integer({ min: 0, max: 600 }),
    })
    .map(
      (r) =>
        clean({
          kind: 'event-aggregate',
          ...r,
          value: r.fn === 'count-distinct' ? r.value % 4 : r.value,
        }) as SegmentExpr,
    ),
  fc
    .record({
      first: fc.record({ event: eventName, where: optional(whereArb) }),
      next: fc.record({ event: eventName, where: optional(whereArb) }),
      negated: fc.boolean(),
      within: duration,
      window: optional(windowArb),
    })
    .map((r) => clean({ kind: 'event-sequence', ...r }) as SegmentExpr),
  windowArb.map((window): SegmentExpr => ({ kind: 'last-seen', window })),
);
const messageArb: fc.Arbitrary<SegmentExpr> = fc
  .record({
    action: fc.constantFrom('received', 'read', 'replied', 'failed' as const),
    target: fc.oneof(
      fc.constantFrom('diwali_sale', 'new_year').map((name) => ({ type: 'campaign' as const, name })),
      fc.constantFrom('promo', 'order_update').map((name) => ({ type: 'template' as const, name })),
      fc.constant({ type: 'any' as const }),
    ),
    count,
    window: optional(windowArb),
  })
  .map((r) => clean({ kind: 'message', ...r }) as SegmentExpr);
const membershipArb: fc.Arbitrary<SegmentExpr> = fc.oneof(
  fc.constantFrom('vip', 'beta', 'nope').map((tag): SegmentExpr => ({ kind: 'tagged', tag })),
  fc.constantFrom('newsletter', 'beta_testers').map((list): SegmentExpr => ({ kind: 'in-list', list })),
  fc.constantFrom('engaged', 'buyers').map((segment): SegmentExpr => ({ kind: 'in-segment', segment })),
  fc
    .record({
      state: fc.constantFrom('subscribed', 'unsubscribed' as const),
      channel: fc.constantFrom('whatsapp', 'sms' as const),
      purpose: fc.constantFrom('marketing', 'utility' as const),
    })
    .map((r): SegmentExpr => ({ kind: 'consent', ...r })),
  fc
    .record({ percent: fc.constantFrom(1, 10, 33.3, 50, 90, 100), seed: fc.constantFrom('exp-42', 'a', 'Ω') })
    .map((r): SegmentExpr => ({ kind: 'sample', ...r })),
);

const leafArb: fc.Arbitrary<SegmentExpr> = fc.oneof(
  { weight: 4, arbitrary: attributeArb },
  { weight: 5, arbitrary: behaviourArb },
  { weight: 2, arbitrary: messageArb },
  { weight: 2, arbitrary: membershipArb },
);

export const segmentArb: fc.Arbitrary<SegmentAst> = fc
  .letrec<{ expr: SegmentExpr }>((tie) => ({
    expr: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      { weight: 4, arbitrary: leafArb },
      {
        weight: 1,
        arbitrary: fc
          .array(tie('expr'), { minLength: 2, maxLength: 3 })
          .map((items): SegmentExpr => ({ kind: 'and', items })),
      },
      {
        weight: 1,
        arbitrary: fc
          .array(tie('expr'), { minLength: 2, maxLength: 3 })
          .map((items): SegmentExpr => ({ kind: 'or', items })),
      },
      { weight: 1, arbitrary: tie('expr').map((item): SegmentExpr => ({ kind: 'not', item })) },
    ),
  }))
  .expr.map((root) => ({ version: 1 as const, root }));
