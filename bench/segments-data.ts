// The demo generator (engine/demo/generate.ts) rewritten as ClickHouse INSERT ... SELECT, so the
// segment benchmark can build 100M-500M events in minutes instead of hours through JSON inserts.
// Same model, draw for draw in distribution: countries, cities and zones by weight; plan, age,
// birthday, interests, lists, consent; a signup day skewed early; a personal chronotype peak and
// activity level; per local day min(6, Poisson(activity)) app_opens around the peak (so app_open
// repeats within days), 15% of opens add to cart 2-20 min later, 30% (free) or 50% (paid) of carts
// purchase 3-30 min later with amount = price x items in the country's currency. Contact ids are
// the ids upsert gives demo contacts (stableId of the external id `demo-<index>`). What it adds for
// the spec's examples: `email` and `name` attributes, and sends with statuses (the demo's broadcast).
import { DateTime } from 'luxon';
import {
  DEMO_CHRONOTYPES as CHRONOTYPES,
  DEMO_COUNTRIES,
  DEMO_INTERESTS as INTERESTS,
  DEMO_PLATFORMS as PLATFORMS,
  DEMO_PRODUCTS as PRODUCTS,
  DEMO_SOURCES as SOURCES,
} from '../engine/demo/generate.ts';
import type { Runtime } from '../engine/runtime.ts';

const NAMES = [
  'Ravi Kumar',
  'Anita Sharma',
  'Arjun Mehta',
  'Zoya Khan',
  'Ana Souza',
  'Budi Santoso',
  'Maria Lopez',
  'John Smith',
];
const DOMAINS = ['@gmail.com', '@gmail.com', '@yahoo.com', '@outlook.com'];

export interface BenchData {
  workspaceId: string;
  contacts: number;
  days: number;
  seed: number;
  until: Date;
}

const cumulative = (weights: number[]) => {
  const total = weights.reduce((a, b) => a + b, 0);
  let sum = 0;
  return weights.map((w) => {
    sum += w;
    return sum / total;
  });
};

/** Static model parameters, passed as query parameters (the SQL text holds no data). */
export function modelParams(data: BenchData): Record<string, unknown> {
  const from = new Date(data.until.getTime() - data.days * 86_400_000);
  const cities = DEMO_COUNTRIES.flatMap((country, ci) =>
    country.cities.map((city) => ({ ...city, country: ci + 1 })),
  );
  const zones = [...new Set(cities.map((c) => c.zone))];
  // Local midnights per zone and day, exactly as the demo computes them with luxon.
  const stride = data.days + 2;
  const midnights = zones.flatMap((zone) => {
    const first = DateTime.fromJSDate(from, { zone }).startOf('day');
    return Array.from({ length: stride }, (_, d) => first.plus({ days: d }).toMillis());
  });
  return {
    ws: data.workspaceId,
    seed: data.seed,
    days: data.days,
    from_ms: from.getTime(),
    until_ms: data.until.getTime(),
    until_year: data.until.getUTCFullYear(),
    stride,
    country_cum: cumulative(DEMO_COUNTRIES.map((c) => c.weight)),
    country_code: DEMO_COUNTRIES.map((c) => c.code),
    country_currency: DEMO_COUNTRIES.map((c) => c.currency),
    country_usd: DEMO_COUNTRIES.map((c) => c.usd),
    country_basket: DEMO_COUNTRIES.map((c) => c.basket),
    country_languages: DEMO_COUNTRIES.map((c) => c.languages),
    city_country: cities.map((c) => c.country),
    city_cum: cities.map((c) => {
      const siblings = cities.filter((s) => s.country === c.country);
      const total = siblings.reduce((a, s) => a + s.weight, 0);
      return siblings.slice(0, siblings.indexOf(c) + 1).reduce((a, s) => a + s.weight, 0) / total;
    }),
    city_name: cities.map((c) => c.name),
    city_zone: cities.map((c) => zones.indexOf(c.zone)),
    city_prefix: cities.map((c) => c.prefix),
    city_digits: cities.map((c) => c.digits),
    zone_name: zones,
    midnights,
    chrono_cum: cumulative(CHRONOTYPES.map(([, w]) => w)),
    chrono_peak: CHRONOTYPES.map(([h]) => h),
    interests: INTERESTS,
    platforms: PLATFORMS,
    products: PRODUCTS,
    sources: SOURCES,
    names: NAMES,
    domains: DOMAINS,
  };
}

// Uniform [0,1) and standard normal draws keyed by (seed, contact, stream...): deterministic and
// independent of how contacts are chunked, like the demo's per-contact generator.
const U = (...keys: string[]) => `(cityHash64({seed:UInt64}, ${keys.join(', ')}) / 18446744073709551616.0)`;
const N = (...keys: string[]) =>
  `(sqrt(-2 * log(greatest(${U(...keys, "'n1'")}, 1e-12))) * cos(2 * pi() * ${U(...keys, "'n2'")}))`;

/** The id upsert gives contact `idx` of the demo: stableId('ct', ws, 'external_id', 'demo-<idx>'). */
const CONTACT_ID = `concat('ct_', arrayStringConcat(arrayMap(i -> substring('0123456789abcdefghijklmnopqrstuvwxyz',
    reinterpretAsUInt8(substring(SHA256(concat({ws:String}, '\\0external_id\\0demo-', toString(idx))), i, 1)) % 36 + 1, 1),
    range(1, 21))))`;

/** Per-contact draws, as columns of a subquery over numbers(); `idx` is the contact index. */
const CONTACT_COLUMNS = `
  number AS idx,
  ${CONTACT_ID} AS cid,
  arrayFirstIndex(w -> ${U('idx', "'country'")} < w, {country_cum:Array(Float64)}) AS country,
  arrayFirstIndex((c, w) -> c = country AND ${U('idx', "'city'")} < w, {city_country:Array(UInt8)}, {city_cum:Array(Float64)}) AS city,
  {city_zone:Array(UInt8)}[city] AS zone,
  toUInt8(least(75, 18 + toInt64(floor(abs(${N('idx', "'age'")}) * 14 + ${U('idx', "'age2'")} * 10)))) AS age,
  multiIf(${U('idx', "'plan'")} < 0.6, 'free', ${U('idx', "'plan'")} < 0.9, 'pro', 'business') AS plan,
  toUInt32(least({days:UInt32} - 1, toInt64(floor({days:UInt32} * pow(${U('idx', "'signup'")}, 2))))) AS signup_day,
  {chrono_peak:Array(Float64)}[arrayFirstIndex(w -> ${U('idx', "'chrono'")} < w, {chrono_cum:Array(Float64)})] + ${N('idx', "'peak'")} * 0.8 AS peak,
  exp(${N('idx', "'activity'")} * 0.7) * if(plan = 'free', 0.7, 1.3) AS activity,
  toInt64(least(greatest({midnights:Array(Int64)}[zone * {stride:UInt32} + signup_day + 1] + toInt64(floor((peak + ${N('idx', "'signup_at'")}) * 3600000)), {from_ms:Int64}), {until_ms:Int64} - 60000)) AS signup_ms`;

const OPENS = `least(6, if(indexOf(arrayMap(c -> ${U('idx', 'd', "'opens'")} < c, cdf), 1) AS first = 0, 12, first - 1))`;

/** Signups of contacts [start, start + count): one per contact, at the contact's created_at. */
function signupsSql(db: string): string {
  return `INSERT INTO ${db}.events (workspace_id, name, contact_id, ts, event_id, properties)
SELECT {ws:String}, 'signup', cid, fromUnixTimestamp64Milli(signup_ms, 'UTC'), concat('demo-', toString({seed:UInt64}), '-', toString(idx), '-s'),
  concat('{"source":"', {sources:Array(String)}[1 + toUInt32(${U('idx', "'source'")} * 4)], '"}')
FROM (SELECT ${CONTACT_COLUMNS} FROM numbers({start:UInt64}, {count:UInt64}))`;
}

/** App opens, carts and purchases of contacts [start, start + count): the demo's day loop as ARRAY JOINs. */
export function activitySql(db: string): string {
  return `INSERT INTO ${db}.events (workspace_id, name, contact_id, ts, event_id, properties)
SELECT {ws:String}, ev.1, cid, fromUnixTimestamp64Milli(ev.2, 'UTC'), concat('demo-', toString({seed:UInt64}), '-', toString(idx), '-', toString(d), '.', toString(k), ev.4), ev.3
FROM (
  SELECT idx, cid, d, k,
    {midnights:Array(Int64)}[zone * {stride:UInt32} + d + 1] + toInt64(floor(least(23.99, greatest(0, peak + ${N('idx', 'd', 'k', "'hour'")} * 1.3)) * 3600000)) AS open_ms,
    ${U('idx', 'd', 'k', "'cart'")} < 0.15 AS carted,
    {products:Array(String)}[1 + toUInt32(${U('idx', 'd', 'k', "'product'")} * 8)] AS product,
    toInt64(round({country_basket:Array(Float64)}[country] * exp(${N('idx', 'd', 'k', "'price'")} * 0.5))) AS price,
    open_ms + toInt64(floor((2 + ${U('idx', 'd', 'k', "'cart_at'")} * 18) * 60000)) AS cart_ms,
    ${U('idx', 'd', 'k', "'buy'")} < if(plan = 'free', 0.3, 0.5) AS bought,
    1 + toUInt32(${U('idx', 'd', 'k', "'items'")} * 3) AS items,
    cart_ms + toInt64(floor((3 + ${U('idx', 'd', 'k', "'buy_at'")} * 27) * 60000)) AS buy_ms,
    arrayConcat(
      [tuple('app_open', open_ms, concat('{"platform":"', {platforms:Array(String)}[1 + toUInt32(${U('idx', 'd', 'k', "'platform'")} * 5)], '"}'), '.o')],
      if(carted, [tuple('add_to_cart', cart_ms, concat('{"product":"', product, '","price":', toString(price), '}'), '.c')], []),
      if(carted AND bought, [tuple('purchase', buy_ms, concat('{"amount":', toString(price * items), ',"currency":"', {country_currency:Array(String)}[country], '","items":', toString(items), '}'), '.p')], [])) AS open_events
  FROM (
    SELECT *, arrayJoin(range(${OPENS})) AS k
    FROM (
      SELECT *, arrayJoin(range(signup_day, {days:UInt32})) AS d,
        arrayCumSum(arrayMap(j -> exp(-activity) * pow(activity, j) / factorial(j), range(12))) AS cdf
      FROM (SELECT ${CONTACT_COLUMNS} FROM numbers({start:UInt64}, {count:UInt64}))
    )
  )
  -- an open at or before signup is skipped with its cart and purchase, as in the demo
  WHERE open_ms > signup_ms
)
ARRAY JOIN open_events AS ev
WHERE ev.2 >= {from_ms:Int64} AND ev.2 < {until_ms:Int64}
-- ARRAY JOINs multiply a block ~50x: small input blocks keep them out of mmap-sized allocations
-- (system time was 70% of the generator's CPU with the default 65,536), squashed again for the parts
SETTINGS max_block_size = 1024, min_insert_block_size_rows = 1048576`;
}

/** Contacts [start, start + count), with lifetime_value from their purchases (run after events). */
function contactsSql(db: string): string {
  return `INSERT INTO ${db}.contacts (workspace_id, contact_id, external_id, phone, country, language, timezone,
  attr_strings, attr_numbers, attr_dates, attr_lists, tags, lists, consent, created_at, last_seen_at, updated_at, version)
SELECT {ws:String}, cid, concat('demo-', toString(idx)),
  concat({city_prefix:Array(String)}[city], leftPad(toString((idx * 7919 + 104729) % intExp10({city_digits:Array(UInt8)}[city])), {city_digits:Array(UInt8)}[city], '0')),
  {country_code:Array(String)}[country],
  {country_languages:Array(Array(String))}[country][1 + toUInt32(${U('idx', "'language'")} * length({country_languages:Array(Array(String))}[country]))],
  {zone_name:Array(String)}[zone + 1],
  map('plan', plan, 'city', {city_name:Array(String)}[city],
      'name', {names:Array(String)}[1 + toUInt32(${U('idx', "'name'")} * length({names:Array(String)}))],
      'email', if(${U('idx', "'email'")} < 0.7, concat('user', toString(idx), {domains:Array(String)}[1 + toUInt32(${U('idx', "'domain'")} * length({domains:Array(String)}))]), '')),
  map('age', toFloat64(age), 'lifetime_value', round(p.amount * {country_usd:Array(Float64)}[country], 2)),
  map('birthday', toDate32(makeDate({until_year:UInt16} - age, 1, 1) + toUInt32(${U('idx', "'birthday'")} * 365))),
  map('interests', arraySlice(arrayFilter((x, i) -> ${U('idx', "'interest'", 'i')} < 0.22, {interests:Array(String)}, range(10)), 1, 4)),
  if(plan = 'business', ['b2b'], []),
  if(${U('idx', "'newsletter'")} < 0.3, ['newsletter'], []),
  if(${U('idx', "'consent'")} < 0.93,
    map('whatsapp.marketing', if(${U('idx', "'consent'")} < 0.82, 'opted_in', 'opted_out'), 'whatsapp.utility', 'opted_in'),
    map('whatsapp.utility', 'opted_in')),
  fromUnixTimestamp64Milli(signup_ms, 'UTC'), NULL, now64(3, 'UTC'), 1
FROM (SELECT ${CONTACT_COLUMNS} FROM numbers({start:UInt64}, {count:UInt64})) AS g
LEFT JOIN (
  SELECT contact_id, sum(JSONExtractFloat(properties, 'amount')) AS amount FROM ${db}.events
  WHERE workspace_id = {ws:String} AND name = 'purchase' GROUP BY contact_id
) AS p ON p.contact_id = g.cid`;
}

/** Sends of the demo's broadcasts (one per two contacts) and their statuses. */
function sendsSql(db: string): string {
  return `INSERT INTO ${db}.sends (workspace_id, send_id, campaign_id, campaign_name, template_name, contact_id, provider_message_id, outcome, sent_at)
SELECT {ws:String}, concat('s', toString(number)), campaign, campaign, template, cid, concat('wamid.', toString(number)),
  if(${U('number', "'refused'")} < 0.03, 'failed', 'accepted'),
  fromUnixTimestamp64Milli({until_ms:Int64} - toInt64(${U('number', "'sent_at'")} * 60 * 86400000), 'UTC')
FROM (
  SELECT number, ['diwali_sale', 'new_year', 'restock'][1 + number % 3] AS campaign, ['promo', 'order_update'][1 + intDiv(number, 3) % 2] AS template,
    toUInt64(${U('number', "'who'")} * {contacts:UInt64}) AS idx,
    ${CONTACT_ID} AS cid
  FROM numbers({sends:UInt64})
)`;
}

/** Statuses: every accepted send is sent and delivered; some are read, some replied, a few failed. */
function statusesSql(db: string): string {
  return `INSERT INTO ${db}.message_statuses (workspace_id, provider_message_id, status, ts)
SELECT workspace_id, provider_message_id, status, sent_at + toIntervalSecond(step * 60)
FROM (
  SELECT workspace_id, provider_message_id, sent_at, ${U('cityHash64(provider_message_id)', "'fate'")} AS fate,
    arrayJoin(multiIf(fate < 0.04, [('sent', 1), ('failed', 2)], fate < 0.45, [('sent', 1), ('delivered', 2)],
      fate < 0.9, [('sent', 1), ('delivered', 2), ('read', 30)], [('sent', 1), ('delivered', 2), ('read', 30), ('replied', 90)])) AS s,
    s.1 AS status, s.2 AS step
  FROM ${db}.sends WHERE workspace_id = {ws:String} AND outcome = 'accepted'
)
WHERE sent_at + toIntervalSecond(step * 60) < fromUnixTimestamp64Milli({until_ms:Int64}, 'UTC')`;
}

export async function generateBenchData(
  runtime: Runtime,
  data: BenchData,
  onProgress: (message: string) => void,
): Promise<void> {
  const db = runtime.ch.database;
  const params = { ...modelParams(data), contacts: data.contacts, sends: Math.floor(data.contacts / 2) };
  const chunk = 250_000;
  for (let start = 0; start < data.contacts; start += chunk) {
    const range = { start, count: Math.min(chunk, data.contacts - start) };
    await runtime.ch.command(signupsSql(db), { ...params, ...range });
    await runtime.ch.command(activitySql(db), { ...params, ...range });
    onProgress(`events of contacts ${start}..${start + range.count}`);
  }
  for (let start = 0; start < data.contacts; start += chunk) {
    const range = { start, count: Math.min(chunk, data.contacts - start) };
    await runtime.ch.command(contactsSql(db), { ...params, ...range });
  }
  onProgress('contacts');
  await runtime.ch.command(sendsSql(db), params);
  await runtime.ch.command(statusesSql(db), params);
  onProgress('sends and statuses');
}
