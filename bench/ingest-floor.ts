// The ClickHouse floor under event ingest: the bench's events, already serialized as the
// TabSeparated rows the event path sends, inserted straight into chdb's `events` table (with its
// materialized views and materialized columns) in groups like the event queue's, with no HTTP,
// no validation and no contact lookups. CPU per event by thread, as in bench/ingest.bench.ts.
// Usage: node bench/ingest-floor.ts [--events N] [--group N] [--variant V]
//   [--table-settings 'name=value' --tables events,event_ids,...] (MergeTree settings to try)
// The CPU is counted while inserting, then until background merges settle.
//   variants (schema changes applied after the migrations, to measure what each part costs):
//   current (default); no-maps (prop_numbers/prop_strings dropped); no-views (every materialized
//   view on `events` dropped); bare (both).
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { openClickHouse } from '../engine/stores/clickhouse.ts';
import { migrateClickHouse } from '../engine/stores/migrate.ts';
import { threadCpu } from './thread-cpu.ts';

const args = process.argv.slice(2);
const option = (name: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const EVENTS = Number(option('--events') ?? 2_000_000);
const GROUP = Number(option('--group') ?? 100_000);
const VARIANT = option('--variant') ?? 'current';
const CONTACTS = 200_000;

const dir = mkdtempSync(join(process.env.BENCH_DATA_DIR ?? tmpdir(), 'chorus-floor-'));
const ch = await openClickHouse({ dataDir: dir, database: 'floor' });
try {
  await migrateClickHouse(ch);
  const db = ch.database;
  if (VARIANT === 'no-maps' || VARIANT === 'bare')
    for (const column of ['prop_numbers', 'prop_strings'])
      await ch.command(`ALTER TABLE ${db}.events DROP COLUMN ${column}`);
  if (VARIANT === 'no-views' || VARIANT === 'bare')
    for (const view of ['contact_activity_mv', 'event_ids_mv', 'events_daily_mv', 'events_by_contact_mv'])
      await ch.command(`DROP VIEW IF EXISTS ${db}.${view}`);
  const tableSettings = option('--table-settings');
  if (tableSettings)
    for (const table of (option('--tables') ?? 'events').split(','))
      await ch.command(`ALTER TABLE ${db}.${table} MODIFY SETTING ${tableSettings}`);
  const views = await ch.rows<{ name: string }>(
    `SELECT name FROM system.tables WHERE database = {db:String} AND engine = 'MaterializedView'`,
    { db },
  );
  // The bench's events (bench/ingest-load.ts), as the check worker serializes them.
  const names = ['app_open', 'app_open', 'app_open', 'add_to_cart', 'purchase'];
  const base = Date.parse('2026-01-01T00:00:00Z');
  const contactIds = Array.from({ length: CONTACTS }, (_, i) => `c_${i.toString(36).padStart(20, 'x')}`);
  const body = (from: number, count: number) => {
    let text = '';
    for (let n = from; n < from + count; n++) {
      const iso = new Date(base + n * 1_000).toISOString();
      const properties = n % 5 === 4 ? `{"amount":${n % 1000},"currency":"INR"}` : '{"platform":"android"}';
      text += `ws_bench\t${contactIds[n % CONTACTS]}\t${names[n % names.length]}\t${iso.slice(0, 10)} ${iso.slice(11, 23)}\tev-${n}\t${properties}\n`;
    }
    return text;
  };
  const bodies: string[] = [];
  for (let n = 0; n < EVENTS; n += GROUP) bodies.push(body(n, Math.min(GROUP, EVENTS - n)));
  const columns = ['workspace_id', 'contact_id', 'name', 'ts', 'event_id', 'properties'];
  const load = loadavg().map((l) => Math.round(l * 100) / 100);
  const before = threadCpu();
  const started = performance.now();
  for (const text of bodies) await ch.insertTsv('events', columns, text);
  const seconds = (performance.now() - started) / 1000;
  const insertCpu = [...threadCpu()].reduce((sum, [name, cpu]) => sum + cpu - (before.get(name) ?? 0), 0);
  // Then until background merges settle (none running for 3 s, at most 90 s): their whole cost.
  const settleStart = performance.now();
  for (let quiet = 0; quiet < 6 && performance.now() - settleStart < 90_000; ) {
    await new Promise((r) => setTimeout(r, 500));
    const [m] = await ch.rows<{ n: string }>(
      `SELECT count() AS n FROM system.merges WHERE database = {db:String}`,
      { db },
    );
    quiet = Number(m?.n) === 0 ? quiet + 1 : 0;
  }
  const parts = await ch.rows<{ table: string; n: string }>(
    `SELECT table, count() AS n FROM system.parts WHERE database = {db:String} AND active GROUP BY table ORDER BY table`,
    { db },
  );
  const byThread: Record<string, number> = {};
  let total = 0;
  for (const [name, cpu] of threadCpu()) {
    const used = cpu - (before.get(name) ?? 0);
    total += used;
    if (used > 0.01) byThread[name] = Math.round((used * 1e7) / EVENTS) / 10;
  }
  process.stdout.write(
    `${JSON.stringify({
      variant: VARIANT,
      views: views.map((v) => v.name),
      events: EVENTS,
      group: GROUP,
      seconds: Math.round(seconds * 10) / 10,
      per_second: Math.round(EVENTS / seconds),
      insert_cpu_us_per_event: Math.round((insertCpu * 1e7) / EVENTS) / 10,
      settled_cpu_us_per_event: Math.round((total * 1e7) / EVENTS) / 10,
      settle_seconds: Math.round((performance.now() - settleStart) / 1000),
      active_parts: Object.fromEntries(
        parts.filter((p) => Number(p.n) > 1).map((p) => [p.table, Number(p.n)]),
      ),
      cpu_us_per_event_by_thread: byThread,
      loadavg_before: load,
      loadavg_after: loadavg().map((l) => Math.round(l * 100) / 100),
    })}\n`,
  );
} finally {
  await ch.close();
  rmSync(dir, { recursive: true, force: true });
}
