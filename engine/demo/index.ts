import type { Runtime } from '../runtime.ts';
import { assertIdentifier } from '../stores/clickhouse.ts';
import { createWorkspace, getWorkspace, type Workspace } from '../workspaces.ts';
import type { DemoSummary } from './generate.ts';

export {
  DEMO_ATTRIBUTES,
  DEMO_COUNTRIES,
  type DemoOptions,
  type DemoSummary,
  generateDemo,
} from './generate.ts';

export const DEMO_WORKSPACE_ID = 'ws_demo';

/**
 * What later features add to the demo (senders, templates, campaigns, dashboards...). Each step runs
 * after the contacts and events exist and returns what it made, which `chorus demo` prints. Add a
 * step by appending to `demoSteps` in engine/demo/steps.ts.
 */
export interface DemoStep {
  name: string;
  run(
    runtime: Runtime,
    context: { workspace: Workspace; summary: DemoSummary; seed: number },
  ): Promise<Record<string, unknown>>;
}

export async function ensureDemoWorkspace(
  runtime: Runtime,
): Promise<{ workspace: Workspace; created: boolean }> {
  const existing = await getWorkspace(runtime.pg, DEMO_WORKSPACE_ID);
  if (existing) return { workspace: existing, created: false };
  const workspace = await createWorkspace(runtime.pg, {
    id: DEMO_WORKSPACE_ID,
    name: 'Chorus demo',
    defaultRegion: 'IN',
    timezone: 'Asia/Kolkata',
  });
  return { workspace, created: true };
}

/** Contacts and events already in a workspace. */
export async function workspaceCounts(
  runtime: Runtime,
  workspaceId: string,
): Promise<{ contacts: number; events: number }> {
  const { ch } = runtime;
  const [contacts, events] = await Promise.all([
    ch.rows<{ n: string }>(
      `SELECT count() AS n FROM ${ch.database}.contacts FINAL WHERE workspace_id = {ws:String}`,
      { ws: workspaceId },
    ),
    ch.rows<{ n: string }>(
      `SELECT count() AS n FROM ${ch.database}.events WHERE workspace_id = {ws:String}`,
      { ws: workspaceId },
    ),
  ]);
  return { contacts: Number(contacts[0]?.n ?? 0), events: Number(events[0]?.n ?? 0) };
}

/** Empties a workspace's contact data (ClickHouse tables and consent) so the demo can be rebuilt. */
export async function clearWorkspaceData(runtime: Runtime, workspaceId: string): Promise<void> {
  const { ch, pg } = runtime;
  const tables = await ch.rows<{ table: string }>(
    `SELECT c.table AS table FROM system.columns c JOIN system.tables t ON t.database = c.database AND t.name = c.table
      WHERE c.database = {db:String} AND c.name = 'workspace_id' AND t.engine LIKE '%MergeTree%'`,
    { db: ch.database },
  );
  for (const { table } of tables)
    await ch.command(
      `DELETE FROM ${ch.database}.${assertIdentifier(table, 'table')} WHERE workspace_id = {ws:String}`,
      {
        ws: workspaceId,
      },
    );
  await pg.transaction(async (tx) => {
    for (const table of ['consent_current', 'consent_records', 'event_properties', 'tags', 'lists'])
      await tx.query(`DELETE FROM ${table} WHERE workspace_id = $1`, [workspaceId]);
  });
}
