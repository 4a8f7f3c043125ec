import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatSql, runReadOnlySql } from '../engine/metrics/sql.ts';
import { insertSends } from './helpers/analytics-fixtures.ts';
import { openTestRuntime, type TestRuntime } from './helpers/runtime.ts';

// `chorus sql` leaves an embedded session read-only, so this file has a process of its own.
describe('chorus sql: read-only analyst queries', () => {
  let runtime: TestRuntime;
  beforeAll(async () => {
    runtime = await openTestRuntime();
    await insertSends(runtime, 'ws_sql', [
      { send_id: 's1', contact_id: 'c1', provider_message_id: 'w1', sent_at: '2026-11-01T10:00:00Z' },
      {
        send_id: 's2',
        contact_id: 'c2, "quoted"',
        provider_message_id: 'w2',
        sent_at: '2026-11-01T10:00:00Z',
      },
    ]);
    await runtime.ch.insert('message_statuses', [
      { workspace_id: 'ws_sql', provider_message_id: 'w1', status: 'read', ts: '2026-11-01 10:01:00' },
    ]);
  });
  afterAll(async () => runtime?.close());

  it('reads the named views by their short names', async () => {
    const result = await runReadOnlySql(
      runtime,
      "SELECT campaign_id, sent, delivered, read FROM message_funnel WHERE workspace_id = 'ws_sql';",
    );
    expect(result.columns.map((c) => c.name)).toEqual(['campaign_id', 'sent', 'delivered', 'read']);
    expect(result.rows.map((r) => r.map(String))).toEqual([['cmp_1', '2', '1', '1']]);
    expect(formatSql(result, 'table')).toContain('(1 row)');
  });

  it('runs every example query of docs/analytics.md, and every view has the columns the docs list', async () => {
    const doc = readFileSync(new URL('../docs/analytics.md', import.meta.url), 'utf8');
    const examples = [...doc.matchAll(/chorus sql "([^"]+)"/g)].map((m) =>
      m[1]!.replaceAll("'ws_...'", "'ws_sql'").replaceAll("'cmp_...'", "'cmp_1'"),
    );
    expect(examples.length).toBeGreaterThanOrEqual(5);
    for (const query of examples) {
      const result = await runReadOnlySql(runtime, query);
      expect(result.columns.length, query).toBeGreaterThan(0);
    }
    const table = doc.slice(doc.indexOf('## Views'), doc.indexOf('### Example queries'));
    const views = [...table.matchAll(/^\| `([a-z_]+)` +\|[^|]+\| ([^|]+)\|/gm)];
    expect(views.map((v) => v[1])).toEqual(
      expect.arrayContaining(['campaign_sends', 'message_funnel', 'campaign_daily', 'conversions']),
    );
    for (const [, view, columns] of views) {
      const actual = (await runReadOnlySql(runtime, `DESCRIBE TABLE ${view}`)).rows.map((r) => String(r[0]));
      for (const column of columns!.matchAll(/`([^`]+)`/g)) {
        for (const name of column[1]!.split(',').map((c) => c.trim())) {
          if (name.endsWith('*'))
            expect(
              actual.some((a) => a.startsWith(name.slice(0, -1))),
              `${view}.${name}`,
            ).toBe(true);
          else expect(actual, `${view}.${name}`).toContain(name);
        }
      }
    }
  });

  it('writes CSV with quoting', async () => {
    const result = await runReadOnlySql(
      runtime,
      "SELECT contact_id FROM campaign_sends WHERE workspace_id = 'ws_sql' ORDER BY contact_id",
    );
    expect(formatSql(result, 'csv')).toBe('contact_id\r\nc1\r\n"c2, ""quoted"""\r\n');
  });

  it.each([
    [
      'an insert',
      "INSERT INTO sends (workspace_id, send_id, contact_id, outcome, sent_at) VALUES ('x', 'y', 'z', 'accepted', now())",
    ],
    ['a drop', 'DROP TABLE sends'],
    ['a settings change', 'SELECT 1 SETTINGS readonly = 0'],
    ['two statements', 'SELECT 1; DROP TABLE sends'],
  ])('refuses %s', async (_label, query) => {
    await expect(runReadOnlySql(runtime, query)).rejects.toThrow();
    const rows = await runReadOnlySql(runtime, 'SELECT count() AS n FROM sends');
    expect(Number(rows.rows[0]![0])).toBe(2);
  });

  it('stops a query at its time limit and at its row limit', async () => {
    await expect(runReadOnlySql(runtime, 'SELECT sleep(2)', { timeoutSeconds: 1 })).rejects.toThrow(
      /Timeout/i,
    );
    await expect(
      runReadOnlySql(runtime, 'SELECT number FROM numbers(1000)', { maxRows: 10 }),
    ).rejects.toThrow(/limit/i);
  });
});
