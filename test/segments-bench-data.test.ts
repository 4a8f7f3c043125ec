// The segment benchmark's in-ClickHouse generator must produce the demo generator's data: the same
// contact ids, attribute and event names, properties and rates. Both write 1,500 contacts over 30
// days into two workspaces of one store; the per-name event rates, the share of contact-days with
// repeated app opens, the rollup's rows per event and the contact mix must agree within sampling error.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateBenchData } from '../bench/segments-data.ts';
import { generateDemo } from '../engine/demo/generate.ts';
import { stableId } from '../engine/ids.ts';
import { createWorkspace, type Workspace } from '../engine/workspaces.ts';
import { openTestRuntime, type TestRuntime } from './helpers/runtime.ts';

const CONTACTS = 1_500;
const DAYS = 30;
const UNTIL = new Date('2026-03-15T12:00:00Z');

interface Profile {
  perContact: Record<string, number>;
  repeatedOpenDays: number;
  rollupRowsPerEvent: number;
  countries: Record<string, number>;
  free: number;
  optedIn: number;
  properties: Record<string, string[]>;
}

describe('benchmark data follows the demo generator', () => {
  let runtime: TestRuntime;
  let demo: Workspace;
  let bench: Workspace;
  beforeAll(async () => {
    runtime = await openTestRuntime();
    demo = await createWorkspace(runtime.pg, { name: 'Demo', timezone: 'Asia/Kolkata' });
    bench = await createWorkspace(runtime.pg, { name: 'Bench', timezone: 'Asia/Kolkata' });
    await generateDemo(runtime, demo, { contacts: CONTACTS, days: DAYS, seed: 3, until: UNTIL });
    await generateBenchData(
      runtime,
      { workspaceId: bench.id, contacts: CONTACTS, days: DAYS, seed: 3, until: UNTIL },
      () => {},
    );
  }, 120_000);
  afterAll(async () => runtime?.close());

  async function profile(ws: string): Promise<Profile> {
    const db = runtime.ch.database;
    const q = <T>(sql: string) => runtime.ch.rows<T>(sql, { ws });
    const names = await q<{ name: string; n: string }>(
      `SELECT name, count() AS n FROM ${db}.events WHERE workspace_id = {ws:String} GROUP BY name`,
    );
    const [repeat] = await q<{ share: number }>(
      `SELECT avg(n > 1) AS share FROM (SELECT contact_id, toDate(ts), count() AS n FROM ${db}.events
       WHERE workspace_id = {ws:String} AND name = 'app_open' GROUP BY 1, 2)`,
    );
    const [rollup] = await q<{ rows: string }>(
      `SELECT count() AS rows FROM ${db}.events_daily FINAL WHERE workspace_id = {ws:String}`,
    );
    const contacts = await q<{ country: string; n: string; free: string; opted: string }>(
      `SELECT country, count() AS n, countIf(attr_strings['plan'] = 'free') AS free,
         countIf(consent['whatsapp.marketing'] = 'opted_in') AS opted
       FROM ${db}.contacts FINAL WHERE workspace_id = {ws:String} GROUP BY country`,
    );
    const keys = await q<{ name: string; keys: string[] }>(
      `SELECT name, arraySort(groupUniqArray(arrayJoin(JSONExtractKeys(properties)))) AS keys
       FROM ${db}.events WHERE workspace_id = {ws:String} GROUP BY name`,
    );
    const total = names.reduce((sum, r) => sum + Number(r.n), 0);
    const sum = (f: (r: (typeof contacts)[number]) => number) => contacts.reduce((s, r) => s + f(r), 0);
    return {
      perContact: Object.fromEntries(names.map((r) => [r.name, Number(r.n) / CONTACTS])),
      repeatedOpenDays: Number(repeat!.share),
      rollupRowsPerEvent: Number(rollup!.rows) / total,
      countries: Object.fromEntries(contacts.map((r) => [r.country, Number(r.n) / CONTACTS])),
      free: sum((r) => Number(r.free)) / CONTACTS,
      optedIn: sum((r) => Number(r.opted)) / CONTACTS,
      properties: Object.fromEntries(keys.map((r) => [r.name, r.keys])),
    };
  }

  it('has the same names, properties and rates', async () => {
    const [a, b] = [await profile(demo.id), await profile(bench.id)];
    expect(Object.keys(b.perContact).sort()).toEqual(Object.keys(a.perContact).sort());
    expect(b.properties).toEqual(a.properties);
    expect(b.perContact.signup).toBe(1);
    // Per-contact activity is heavy-tailed (lognormal), so rates agree to about 10% at this size.
    for (const name of ['app_open', 'add_to_cart', 'purchase'])
      expect(Math.abs(b.perContact[name]! / a.perContact[name]! - 1), name).toBeLessThan(0.15);
    expect(Math.abs(b.repeatedOpenDays - a.repeatedOpenDays)).toBeLessThan(0.05);
    expect(Math.abs(b.rollupRowsPerEvent - a.rollupRowsPerEvent)).toBeLessThan(0.05);
    expect(Object.keys(b.countries).sort()).toEqual(Object.keys(a.countries).sort());
    for (const country of Object.keys(a.countries))
      expect(Math.abs(b.countries[country]! - a.countries[country]!), country).toBeLessThan(0.04);
    expect(Math.abs(b.free - a.free)).toBeLessThan(0.05);
    expect(Math.abs(b.optedIn - a.optedIn)).toBeLessThan(0.05);
  });

  it('names contacts as upsert names demo contacts', async () => {
    const rows = await runtime.ch.rows<{ contact_id: string; external_id: string }>(
      `SELECT contact_id, external_id FROM ${runtime.ch.database}.contacts FINAL
       WHERE workspace_id = {ws:String} AND external_id IN ('demo-0', 'demo-1', 'demo-1499')`,
      { ws: bench.id },
    );
    expect(rows).toHaveLength(3);
    for (const row of rows)
      expect(row.contact_id).toBe(stableId('ct', bench.id, 'external_id', row.external_id));
    const [orphans] = await runtime.ch.rows<{ n: string }>(
      `SELECT count() AS n FROM ${runtime.ch.database}.events WHERE workspace_id = {ws:String}
       AND contact_id NOT IN (SELECT contact_id FROM ${runtime.ch.database}.contacts WHERE workspace_id = {ws:String})`,
      { ws: bench.id },
    );
    expect(Number(orphans!.n)).toBe(0);
  });
});
