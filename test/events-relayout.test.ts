// Migration 0100 rebuilds `events` in a new sort order on a database that already holds events: every
// row survives, the derived tables fed by materialized views are not fed twice by the copy, inserts
// after it still feed them, and running its statements again (a migration stopped halfway) is safe.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClickHouseStore } from '../engine/stores/clickhouse.ts';
import { type MigrationScratch, openMigrationScratch } from './helpers/migrations.ts';

const RELAYOUT = 100;

describe('migration 0100: events sorted by day, with a contact key', () => {
  let ch: ClickHouseStore;
  let scratch: MigrationScratch;
  const run = (version: (v: number) => boolean) => scratch.run(version);
  const snapshot = async () => ({
    events: await ch.rows(
      `SELECT name, contact_id, toString(ts) AS ts, event_id, properties FROM ${ch.database}.events
       ORDER BY event_id`,
    ),
    daily: await ch.rows(
      `SELECT name, contact_id, toString(day) AS day, sum(events) AS events FROM ${ch.database}.events_daily
       GROUP BY name, contact_id, day ORDER BY name, contact_id, day`,
    ),
    activity: await ch.rows(
      `SELECT contact_id, toString(max(last_event_at)) AS last FROM ${ch.database}.contact_activity
       GROUP BY contact_id ORDER BY contact_id`,
    ),
  });
  const insertEvents = (from: number, count: number) =>
    ch.insert(
      'events',
      Array.from({ length: count }, (_, i) => ({
        workspace_id: 'ws',
        name: ['app_open', 'purchase', 'signup'][(from + i) % 3],
        contact_id: `ct_${(from + i) % 17}`,
        // spread over three months, so the copy crosses partitions
        ts: new Date(Date.UTC(2026, 0, 1) + (from + i) * 3_600_000 * 7).toISOString().replace('Z', ''),
        event_id: `ev_${from + i}`,
        properties: JSON.stringify({ amount: from + i }),
      })),
    );

  beforeAll(async () => {
    scratch = await openMigrationScratch('relayout');
    ch = scratch.ch;
    await run((v) => v < RELAYOUT);
    await insertEvents(0, 300);
  });
  afterAll(async () => {
    await scratch?.close();
  });

  it('keeps every event and feeds no derived table twice; a second run changes nothing', async () => {
    const before = await snapshot();
    expect(before.events).toHaveLength(300);
    await run((v) => v === RELAYOUT);
    const [table] = await ch.rows<{ sorting_key: string }>(
      `SELECT sorting_key FROM system.tables WHERE database = {db:String} AND name = 'events'`,
      { db: ch.database },
    );
    expect(table!.sorting_key).toBe('workspace_id, name, toDate(ts), contact_key, ts, event_id');
    expect(await snapshot()).toEqual(before);
    const keys = await ch.rows<{ wrong: string }>(
      `SELECT countIf(contact_key != cityHash64(contact_id)) AS wrong FROM ${ch.database}.events`,
    );
    expect(Number(keys[0]!.wrong)).toBe(0);
    await run((v) => v === RELAYOUT);
    expect(await snapshot()).toEqual(before);
    const tables = await ch.rows<{ name: string }>(
      `SELECT name FROM system.tables WHERE database = {db:String} AND name LIKE 'events%' ORDER BY name`,
      { db: ch.database },
    );
    expect(tables.map((t) => t.name)).toEqual(['events', 'events_daily', 'events_daily_mv']);
  });

  it('inserts after the rebuild still feed the rollup, the activity and the event ids', async () => {
    await insertEvents(300, 30);
    const after = await snapshot();
    expect(after.events).toHaveLength(330);
    const daily = after.daily.reduce((sum, row) => sum + Number((row as { events: string }).events), 0);
    expect(daily).toBe(330);
    const ids = await ch.rows<{ n: string }>(`SELECT count() AS n FROM ${ch.database}.event_ids FINAL`);
    expect(Number(ids[0]!.n)).toBe(330);
    const [activity] = await ch.rows<{ last: string }>(
      `SELECT toString(max(last_event_at)) AS last FROM ${ch.database}.contact_activity`,
    );
    const [latest] = await ch.rows<{ last: string }>(
      `SELECT toString(max(ts)) AS last FROM ${ch.database}.events`,
    );
    expect(activity!.last).toBe(latest!.last);
  });
});
