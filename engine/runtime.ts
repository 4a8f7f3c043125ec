import pino, { type Logger } from 'pino';
import { type ChorusConfig, clickhouseDataDir, loadConfig, postgresDataDir } from './config.ts';
import { type ClickHouseStore, openClickHouse } from './stores/clickhouse.ts';
import { migrateClickHouse, migratePostgres } from './stores/migrate.ts';
import { openPostgres, type PostgresStore } from './stores/postgres.ts';

/** The stores and logger every part of Chorus runs on. */
export interface Runtime {
  config: ChorusConfig;
  ch: ClickHouseStore;
  pg: PostgresStore;
  log: Logger;
  close(): Promise<void>;
}

export interface OpenRuntimeOptions {
  config?: Partial<ChorusConfig>;
  /** Apply migrations on open (the default: Chorus migrates on start). */
  migrate?: boolean;
  log?: Logger;
}

export async function openRuntime(options: OpenRuntimeOptions = {}): Promise<Runtime> {
  const config = { ...loadConfig(), ...options.config };
  const log = options.log ?? pino({ level: config.logLevel, base: { service: 'chorus' } });
  const pg = await openPostgres({
    url: config.databaseUrl,
    dataDir: postgresDataDir(config),
    schema: config.postgresSchema,
  });
  const ch = await openClickHouse({
    url: config.clickhouseUrl,
    dataDir: clickhouseDataDir(config),
    database: config.clickhouseDatabase,
  });
  if (options.migrate !== false) {
    const reports = [await migratePostgres(pg), await migrateClickHouse(ch)];
    for (const report of reports) {
      if (report.applied.length)
        log.info({ store: report.store, applied: report.applied }, 'migrations applied');
    }
  }
  return {
    config,
    ch,
    pg,
    log,
    async close() {
      await Promise.allSettled([ch.close(), pg.close()]);
    },
  };
}
