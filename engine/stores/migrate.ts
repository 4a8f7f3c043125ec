import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ClickHouseStore } from './clickhouse.ts';
import type { PostgresStore } from './postgres.ts';

const SQL_DIR = new URL('../../sql/', import.meta.url).pathname;

export interface Migration {
  version: number;
  name: string;
  text: string;
  checksum: string;
}

export interface MigrationReport {
  store: 'postgres' | 'clickhouse';
  applied: string[];
}

/** Migration files are `NNNN_name.sql`, applied in version order, each once. */
export function loadMigrations(kind: 'postgres' | 'clickhouse', dir = join(SQL_DIR, kind)): Migration[] {
  return readdirSync(dir)
    .filter((file) => /^\d{4}_[a-z0-9_]+\.sql$/.test(file))
    .sort()
    .map((file) => {
      const text = readFileSync(join(dir, file), 'utf8');
      return {
        version: Number(file.slice(0, 4)),
        name: file.replace(/\.sql$/, ''),
        text,
        checksum: createHash('sha256').update(text).digest('hex'),
      };
    });
}

/** Splits a migration on statement-ending semicolons (a `;` that ends a line). */
export function splitStatements(text: string): string[] {
  return text
    .split(/;[ \t]*(?:\r?\n|$)/)
    .map((statement) => statement.replace(/^\s*--.*$/gm, '').trim())
    .filter((statement) => statement.length > 0);
}

function assertUnchanged(applied: Map<number, string>, migration: Migration): boolean {
  const checksum = applied.get(migration.version);
  if (checksum === undefined) return false;
  if (checksum !== migration.checksum) {
    throw new Error(
      `migration ${migration.name} was changed after it was applied; add a new migration instead`,
    );
  }
  return true;
}

export async function migratePostgres(pg: PostgresStore): Promise<MigrationReport> {
  await pg.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now())`);
  const report: MigrationReport = { store: 'postgres', applied: [] };
  await pg.transaction(async (tx) => {
    // Serializes concurrent starters (API and workers) on a server; a no-op cost on PGlite.
    await tx.query('SELECT pg_advisory_xact_lock(742001)');
    const { rows } = await tx.query<{ version: number; checksum: string }>(
      'SELECT version, checksum FROM schema_migrations',
    );
    const applied = new Map(rows.map((row) => [row.version, row.checksum]));
    for (const migration of loadMigrations('postgres')) {
      if (assertUnchanged(applied, migration)) continue;
      for (const statement of splitStatements(migration.text)) await tx.query(statement);
      await tx.query('INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)', [
        migration.version,
        migration.name,
        migration.checksum,
      ]);
      report.applied.push(migration.name);
    }
  });
  return report;
}

/** ClickHouse migrations name tables as `{db}.table`; `{db}` is the validated database identifier. */
export async function migrateClickHouse(ch: ClickHouseStore): Promise<MigrationReport> {
  const db = ch.database;
  await ch.command(`CREATE TABLE IF NOT EXISTS ${db}.schema_migrations (
    version UInt32, name String, checksum String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3))
    ENGINE = ReplacingMergeTree ORDER BY version`);
  const rows = await ch.rows<{ version: number; checksum: string }>(
    `SELECT version, argMax(checksum, applied_at) AS checksum FROM ${db}.schema_migrations GROUP BY version`,
  );
  const applied = new Map(rows.map((row) => [Number(row.version), row.checksum]));
  const report: MigrationReport = { store: 'clickhouse', applied: [] };
  for (const migration of loadMigrations('clickhouse')) {
    if (assertUnchanged(applied, migration)) continue;
    // ClickHouse DDL is not transactional: each statement is written to be idempotent (IF NOT EXISTS).
    for (const statement of splitStatements(migration.text)) {
      await ch.command(statement.replaceAll('{db}', db));
    }
    await ch.insert('schema_migrations', [
      { version: migration.version, name: migration.name, checksum: migration.checksum },
    ]);
    report.applied.push(migration.name);
  }
  return report;
}
