// The segments bench/segments.bench.ts times and bench/segments-ab.ts compares: every example of
// ../shared/segment-dsl.md that the bench data can answer, and three composites of five or more
// conditions; `now` is fixed so every run and every size answers the same question.

/** The instant every bench segment is evaluated at (the generated data ends here). */
export const NOW = new Date('2026-03-15T12:00:00Z');

const EXAMPLES = [
  'country = "IN"',
  'age >= 25 and age < 40',
  'age between 18 and 30',
  'plan in ("pro", "team")',
  'plan not in ("free")',
  'email is set',
  'email is not set',
  'name contains "kumar"',
  'email ends with "@gmail.com"',
  'name starts with "A"',
  'city matches "^(Mum|Pun)"',
  'interests has "cricket"',
  'created_at in last 30 days',
  'created_at more than 90 days ago',
  'created_at before 2026-01-01',
  'created_at between 2026-01-01 and 2026-02-01',
  'birthday is anniversary today',
  'birthday anniversary in next 7 days',
  'not (plan = "pro")',
  'tagged "vip"',
  'in list "newsletter"',
  'in segment "high_value"',
  'subscribed to whatsapp marketing',
  'unsubscribed from whatsapp marketing',
  'did "purchase"',
  'did "purchase" in last 30 days',
  'did "purchase" where amount > 100 and currency = "INR" at least 2 times in last 30 days',
  'did "purchase" exactly 1 time',
  'did "purchase" at most 3 times since 2026-01-01',
  'did "purchase" between 2026-01-01 and 2026-02-01',
  'did not "app_open" in last 14 days',
  'first did "purchase" in last 7 days',
  'last did "purchase" more than 60 days ago',
  'sum of amount over "purchase" in last 90 days > 5000',
  'did "signup" then "purchase" within 7 days',
  'did "add_to_cart" then not "purchase" within 1 hour',
  'last seen in last 7 days',
  'received campaign "diwali_sale"',
  'read campaign "diwali_sale"',
  'replied to campaign "diwali_sale"',
  'failed campaign "diwali_sale"',
  'received template "order_update" at least 3 times in last 7 days',
  'received any message in last 24 hours',
  'sample 10% seed "exp-42"',
];
const COMPOSITES: Record<string, string> = {
  'composite A (attributes, behaviour, consent)':
    'country = "IN" and age between 25 and 45 and did "purchase" at least 2 times in last 30 days and not did "app_open" in last 7 days and subscribed to whatsapp marketing',
  'composite B (value, messages, consent)':
    '(plan in ("pro", "business") or tagged "b2b") and sum of amount over "purchase" in last 90 days > 500 and received campaign "diwali_sale" and not replied to campaign "diwali_sale" and subscribed to whatsapp marketing',
  'composite C (recency, sequence, messages)':
    'last seen in last 7 days and did "add_to_cart" then not "purchase" within 1 hour in last 3 days and not unsubscribed from whatsapp marketing and received any message in last 30 days and email is set',
};

/** The named segment `in segment "high_value"` refers to. */
export const HIGH_VALUE = 'sum of amount over "purchase" in last 90 days > 5000 or tagged "b2b"';

/** Every bench segment as [label, DSL]; the examples are their own label. */
export const BENCH_SEGMENTS: (readonly [string, string])[] = [
  ...EXAMPLES.map((dsl) => [dsl, dsl] as const),
  ...Object.entries(COMPOSITES),
];
