// Migrations 0110 (typed property maps on events) and 0111 (events_by_contact) on a database that
// already holds events: existing rows are backfilled, inserts after them are fed at ingest, and
// running a migration's statements again (one stopped halfway) changes nothing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClickHouseStore } from '../engine/stores/clickhouse.ts';
import { type MigrationScratch, openMigrationScratch } from './helpers/migrations.ts';

const PROPERTY_MAPS = 110;
const BY_CONTACT = 111;

const PROPERTIES: Record<string, unknown>[] = [
  { amount: 120, currency: 'INR', items: 2 },
  { amount: '150', currency: 'USD', note: null, coupon: true },
  { meta: { amount: 999, currency: 'EUR' }, amount: -0.5, label: 'say "amount":250 \\ {' },
  { 'we"ird\\key': 7, ключ: 'значение', big: 1e21, tiny: 1.5e-7, empty: '' },
  { list: [1, 2], amount: 12345678901234 },
  {},
];

/** What the maps must hold: top-level numbers and strings, as JSON.parse reads them. */
function expected(properties: Record<string, unknown>) {
  const numbers: Record<string, number> = {};
  const strings: Record<string, string> = {};
  for (const [key, value] of Object.entries(properties)) {
    if (typeof value === 'number') numbers[key] = value;
    if (typeof value === 'string') strings[key] = value;
  }
  return { numbers, strings };
}

describe('segment tables: property maps and per-contact event summaries', () => {
  let ch: ClickHouseStore;
  let scratch: MigrationScratch;
  const run = (version: (v: number) => boolean) => scratch.run(version);
  const insertEvents = (from: number, count: number) =>
    ch.insert(
      'events',
      Array.from({ length: count }, (_, i) => ({
        workspace_id: 'ws',
        name: ['app_open', 'purchase', 'signup'][(from + i) % 3],
        contact_id: `ct_${(from + i) % 17}`,
        ts: new Date(Date.UTC(2026, 0, 1) + (from + i) * 3_600_000 * 7).toISOString().replace('Z', ''),
        event_id: `ev_${from + i}`,
        properties: JSON.stringify(PROPERTIES[(from + i) % PROPERTIES.length]),
      })),
    );
  const maps = async () =>
    (
      await ch.rows<{ event_id: string; properties: string; numbers: string; strings: string }>(
        `SELECT event_id, properties, toJSONString(prop_numbers) AS numbers, toJSONString(prop_strings) AS strings
         FROM ${ch.database}.events ORDER BY event_id`,
      )
    ).map((row) => ({
      event_id: row.event_id,
      numbers: JSON.parse(row.numbers) as Record<string, number>,
      strings: JSON.parse(row.strings) as Record<string, string>,
      expected: expected(JSON.parse(row.properties) as Record<string, unknown>),
    }));
  const summary = async () =>
    ch.rows(
      `SELECT name, contact_key, contact_id, sum(events) AS events, toString(min(first_ts)) AS first,
         toString(max(last_ts)) AS last
       FROM ${ch.database}.events_by_contact GROUP BY name, contact_key, contact_id ORDER BY name, contact_id`,
    );
  const fromEvents = async () =>
    ch.rows(
      `SELECT name, cityHash64(contact_id) AS contact_key, contact_id, count() AS events,
         toString(min(ts)) AS first, toString(max(ts)) AS last
       FROM ${ch.database}.events GROUP BY name, contact_id ORDER BY name, contact_id`,
    );

  beforeAll(async () => {
    scratch = await openMigrationScratch('segtables');
    ch = scratch.ch;
    await run((v) => v < PROPERTY_MAPS);
    await insertEvents(0, 120);
  });
  afterAll(async () => {
    await scratch?.close();
  });

  it('backfills the maps of stored events, and again changes nothing', async () => {
    await run((v) => v === PROPERTY_MAPS);
    const rows = await maps();
    expect(rows).toHaveLength(120);
    for (const row of rows) {
      expect(row.numbers, row.event_id).toEqual(row.expected.numbers);
      expect(row.strings, row.event_id).toEqual(row.expected.strings);
    }
    // The backfill is done (not computed on read): no mutation of events is left.
    const pending = await ch.rows<{ n: string }>(
      `SELECT count() AS n FROM system.mutations WHERE database = {db:String} AND table = 'events' AND NOT is_done`,
      { db: ch.database },
    );
    expect(Number(pending[0]!.n)).toBe(0);
    await run((v) => v === PROPERTY_MAPS);
    expect(await maps()).toEqual(rows);
  });

  it('backfills the per-contact summary once, and a second run rebuilds the same rows', async () => {
    await run((v) => v === BY_CONTACT);
    const expectedRows = await fromEvents();
    expect(expectedRows.length).toBeGreaterThan(17);
    expect(await summary()).toEqual(expectedRows);
    await run((v) => v === BY_CONTACT);
    expect(await summary()).toEqual(expectedRows);
  });

  it('inserts after the migrations feed the maps and the summary', async () => {
    await insertEvents(120, 60);
    const rows = await maps();
    expect(rows).toHaveLength(180);
    for (const row of rows) {
      expect(row.numbers, row.event_id).toEqual(row.expected.numbers);
      expect(row.strings, row.event_id).toEqual(row.expected.strings);
    }
    expect(await summary()).toEqual(await fromEvents());
  });
});
