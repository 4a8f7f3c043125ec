// Segment count latency (p50/p95) and compile time, raw events vs the daily rollup, on data
// generated inside ClickHouse with INSERT ... SELECT FROM numbers(). `--size small` (default) is
// 20k contacts / 1M events; `--size full` runs 1M / 100M and 10M / 500M (long: run on an idle machine).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { openRuntime, type Runtime } from '../engine/runtime.ts';
import { loadSchema } from '../engine/segments/audiences.ts';
import type { EventPath } from '../engine/segments/compiler.ts';
import { compileSegment, parseSegment } from '../engine/segments/index.ts';
import { insertSegment } from '../engine/segments/store.ts';
import { createWorkspace } from '../engine/workspaces.ts';

const args = process.argv.slice(2);
const size = args[args.indexOf('--size') + 1] === 'full' ? 'full' : 'small';
const SIZES =
  size === 'full'
    ? [
        { contacts: 1_000_000, events: 100_000_000 },
        { contacts: 10_000_000, events: 500_000_000 },
      ]
    : [{ contacts: 20_000, events: 1_000_000 }];
const RUNS = size === 'full' ? 7 : 7;
const NOW = new Date('2026-03-15T12:00:00Z');

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
    'country = "IN" and age between 25 and 45 and did "purchase" at least 2 times in last 30 days and not did "app_open" in last 14 days and subscribed to whatsapp marketing',
  'composite B (value, messages, consent)':
    '(plan in ("pro", "team") or tagged "vip") and sum of amount over "purchase" in last 90 days > 500 and received campaign "diwali_sale" and not replied to campaign "diwali_sale" and subscribed to whatsapp marketing',
  'composite C (recency, sequence, messages)':
    'last seen in last 7 days and did "add_to_cart" then not "purchase" within 1 hour in last 3 days and not unsubscribed from whatsapp marketing and received any message in last 30 days and email is set',
};

async function generate(runtime: Runtime, ws: string, contacts: number, events: number): Promise<void> {
  const db = runtime.ch.database;
  const params = { ws, n: contacts, now: '2026-03-15 12:00:00' };
  await runtime.ch.command(
    `INSERT INTO ${db}.contacts (workspace_id, contact_id, phone, country, language, timezone, attr_strings, attr_numbers, attr_dates, attr_lists, tags, lists, consent, created_at, last_seen_at, updated_at, version)
     SELECT {ws:String}, concat('c', toString(number)), concat('+9198', leftPad(toString(number), 8, '0')),
       ['IN', 'IN', 'IN', 'US', 'GB', 'AE'][number % 6 + 1], ['en', 'hi', 'ta'][number % 3 + 1],
       ['Asia/Kolkata', 'Asia/Kolkata', 'America/New_York', 'Europe/London', ''][number % 5 + 1],
       map('plan', ['free', 'pro', 'team', 'free'][number % 4 + 1], 'email', if(number % 3 = 0, '', concat('u', toString(number), ['@gmail.com', '@yahoo.com'][number % 2 + 1])),
           'name', ['Ravi Kumar', 'Anita', 'Arjun', 'Zoya'][number % 4 + 1], 'city', ['Mumbai', 'Pune', 'Delhi'][number % 3 + 1]),
       map('age', toFloat64(18 + cityHash64(number, 1) % 50)),
       map('birthday', toDate32('1970-01-01') + toInt32(cityHash64(number, 2) % 18000)),
       map('interests', arraySlice(['cricket', 'music', 'football'], 1 + number % 3, 1 + number % 2)),
       if(number % 10 = 0, ['vip'], []), if(number % 4 = 0, ['newsletter'], []),
       map('whatsapp.marketing', ['opted_in', 'opted_in', 'opted_out'][number % 3 + 1]),
       toDateTime64({now:String}, 3, 'UTC') - toIntervalSecond(cityHash64(number, 3) % (400 * 86400)),
       toDateTime64({now:String}, 3, 'UTC') - toIntervalSecond(cityHash64(number, 4) % (60 * 86400)),
       toDateTime64({now:String}, 3, 'UTC'), 1
     FROM numbers({n:UInt64})`,
    params,
  );
  const chunk = 50_000_000;
  for (let start = 0; start < events; start += chunk) {
    await runtime.ch.command(
      `INSERT INTO ${db}.events (workspace_id, name, contact_id, ts, event_id, properties)
       SELECT {ws:String}, ['purchase', 'app_open', 'app_open', 'view', 'add_to_cart', 'signup'][cityHash64(number, 5) % 6 + 1],
         concat('c', toString(cityHash64(number, 6) % {n:UInt64})),
         toDateTime64({now:String}, 3, 'UTC') - toIntervalSecond(cityHash64(number, 7) % (200 * 86400)),
         toString(number),
         concat('{"amount":', toString(cityHash64(number, 8) % 1000), ',"currency":"', ['INR', 'USD'][number % 2 + 1], '"}')
       FROM numbers({start:UInt64}, {count:UInt64})`,
      { ...params, start, count: Math.min(chunk, events - start) },
    );
  }
  const sends = Math.max(1, Math.floor(contacts / 2));
  await runtime.ch.command(
    `INSERT INTO ${db}.sends (workspace_id, send_id, campaign_name, template_name, contact_id, provider_message_id, outcome, sent_at)
     SELECT {ws:String}, toString(number), ['diwali_sale', 'new_year', ''][number % 3 + 1], ['promo', 'order_update'][number % 2 + 1],
       concat('c', toString(cityHash64(number, 9) % {n:UInt64})), concat('wamid.', toString(number)), if(number % 20 = 0, 'failed', 'accepted'),
       toDateTime64({now:String}, 3, 'UTC') - toIntervalSecond(cityHash64(number, 10) % (60 * 86400))
     FROM numbers({sends:UInt64})`,
    { ...params, sends },
  );
  await runtime.ch.command(
    `INSERT INTO ${db}.message_statuses (workspace_id, provider_message_id, status, ts)
     SELECT {ws:String}, concat('wamid.', toString(intDiv(number, 3))), ['sent', 'delivered', ['read', 'replied', 'failed'][cityHash64(intDiv(number, 3)) % 3 + 1]][number % 3 + 1],
       toDateTime64({now:String}, 3, 'UTC') - toIntervalSecond(cityHash64(number, 11) % (60 * 86400))
     FROM numbers({statuses:UInt64})`,
    { ...params, statuses: sends * 3 },
  );
  await runtime.ch.command(`OPTIMIZE TABLE ${db}.contacts FINAL`);
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

const results: Record<string, unknown>[] = [];
for (const { contacts, events } of SIZES) {
  const dataDir = mkdtempSync(join(tmpdir(), 'chorus-bench-segments-'));
  const runtime = await openRuntime({
    config: { dataDir, logLevel: 'silent' },
    log: pino({ level: 'silent' }),
  });
  try {
    const workspace = await createWorkspace(runtime.pg, { name: 'Bench', timezone: 'Asia/Kolkata' });
    const ws = workspace.id;
    for (const [name, type] of Object.entries({
      age: 'number',
      plan: 'string',
      email: 'string',
      name: 'string',
      city: 'string',
      interests: 'string_list',
      birthday: 'date',
    })) {
      await runtime.pg.query('INSERT INTO attribute_schemas (workspace_id, name, type) VALUES ($1, $2, $3)', [
        ws,
        name,
        type,
      ]);
    }
    const highValue = 'sum of amount over "purchase" in last 90 days > 5000 or tagged "vip"';
    await insertSegment(runtime.pg, ws, {
      name: 'high_value',
      dsl: highValue,
      ast: parseSegment(highValue).ast!,
    });
    const loadStart = performance.now();
    await generate(runtime, ws, contacts, events);
    const loadSeconds = (performance.now() - loadStart) / 1000;
    process.stdout.write(
      `${contacts} contacts / ${events} events generated in ${loadSeconds.toFixed(1)} s\n`,
    );
    const schema = await loadSchema(runtime.pg, ws);

    const segments = [...EXAMPLES.map((dsl) => [dsl, dsl] as const), ...Object.entries(COMPOSITES)];
    for (const [label, dsl] of segments) {
      // Compile time: warm, averaged over many compiles (parse + check + compile).
      const compileRuns = 300;
      const t0 = performance.now();
      for (let i = 0; i < compileRuns; i++)
        compileSegment(dsl, schema, { workspaceId: ws, now: NOW, database: runtime.ch.database });
      const compileMs = (performance.now() - t0) / compileRuns;
      const row: Record<string, unknown> = {
        size: `${contacts}/${events}`,
        segment: label,
        compile_ms: Number(compileMs.toFixed(3)),
      };
      const auto = compileSegment(dsl, schema, { workspaceId: ws, now: NOW, database: runtime.ch.database })
        .compiled!;
      const paths: EventPath[] = auto.plan.rollup ? ['raw', 'rollup'] : ['raw'];
      for (const path of paths) {
        const compiled = compileSegment(dsl, schema, {
          workspaceId: ws,
          now: NOW,
          database: runtime.ch.database,
          path,
        }).compiled!;
        const sql = `SELECT count() AS count FROM (${compiled.sql})`;
        const times: number[] = [];
        let count = 0;
        for (let i = 0; i <= RUNS; i++) {
          const start = performance.now();
          const rows = await runtime.ch.rows<{ count: string }>(sql, compiled.params);
          if (i > 0) times.push(performance.now() - start);
          count = Number(rows[0]!.count);
        }
        row[`${path}_count`] = count;
        row[`${path}_p50_ms`] = Math.round(percentile(times, 50));
        row[`${path}_p95_ms`] = Math.round(percentile(times, 95));
      }
      results.push(row);
      process.stdout.write(
        `${label.slice(0, 70).padEnd(72)} compile ${compileMs.toFixed(3)} ms  raw p50 ${row.raw_p50_ms} p95 ${row.raw_p95_ms} ms${row.rollup_p50_ms !== undefined ? `  rollup p50 ${row.rollup_p50_ms} p95 ${row.rollup_p95_ms} ms` : ''}  count ${row.raw_count}\n`,
      );
      if (row.rollup_count !== undefined && row.rollup_count !== row.raw_count)
        throw new Error(`rollup and raw disagree on ${label}`);
    }
  } finally {
    await runtime.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}
const dir = new URL('./results/', import.meta.url).pathname;
mkdirSync(dir, { recursive: true });
writeFileSync(
  join(dir, 'segments.json'),
  `${JSON.stringify({ size, now: NOW.toISOString(), runs: RUNS, results }, null, 2)}\n`,
);
process.stdout.write(`results in bench/results/segments.json\n`);
