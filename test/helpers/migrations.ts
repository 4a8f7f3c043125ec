// A scratch ClickHouse database for migration tests: chdb in a temporary folder, or a database of
// its own on CLICKHOUSE_URL, and a way to apply some of the migrations' statements by hand.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ClickHouseStore, openClickHouse } from '../../engine/stores/clickhouse.ts';
import { loadMigrations, splitStatements } from '../../engine/stores/migrate.ts';

export interface MigrationScratch {
  ch: ClickHouseStore;
  /** Runs every statement of the migrations whose version passes, unrecorded, as a stopped run would. */
  run(version: (v: number) => boolean): Promise<void>;
  close(): Promise<void>;
}

export async function openMigrationScratch(name: string): Promise<MigrationScratch> {
  const dataDir = mkdtempSync(join(tmpdir(), `chorus-${name}-`));
  const ch = process.env.CLICKHOUSE_URL
    ? await openClickHouse({
        url: process.env.CLICKHOUSE_URL,
        database: `t_${name.replaceAll('-', '_')}_${process.pid}`,
      })
    : await openClickHouse({ dataDir, database: 'chorus' });
  return {
    ch,
    async run(version) {
      for (const migration of loadMigrations('clickhouse').filter((m) => version(m.version)))
        for (const statement of splitStatements(migration.text))
          await ch.command(statement.replaceAll('{db}', ch.database));
    },
    async close() {
      if (ch.mode === 'server') await ch.command(`DROP DATABASE IF EXISTS ${ch.database}`);
      await ch.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
