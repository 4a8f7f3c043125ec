import { join, resolve } from 'node:path';

/** Runtime configuration, from the environment; every value has a zero-setup default. */
export interface ChorusConfig {
  dataDir: string;
  clickhouseUrl?: string;
  clickhouseDatabase: string;
  databaseUrl?: string;
  postgresSchema: string;
  host: string;
  port: number;
  logLevel: string;
  /** Public base URL of this API, used in printed links. */
  publicUrl?: string;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): ChorusConfig {
  return {
    dataDir: resolve(env.CHORUS_DATA_DIR ?? './data'),
    clickhouseUrl: env.CLICKHOUSE_URL || undefined,
    clickhouseDatabase: env.CHORUS_CLICKHOUSE_DATABASE ?? 'chorus',
    databaseUrl: env.DATABASE_URL || undefined,
    postgresSchema: env.CHORUS_POSTGRES_SCHEMA ?? 'chorus',
    host: env.HOST ?? '127.0.0.1',
    port: Number(env.PORT ?? 3000),
    logLevel: env.LOG_LEVEL ?? 'info',
    publicUrl: env.CHORUS_PUBLIC_URL || undefined,
  };
}

export function clickhouseDataDir(config: ChorusConfig): string {
  return join(config.dataDir, 'clickhouse');
}

export function postgresDataDir(config: ChorusConfig): string {
  return join(config.dataDir, 'pg');
}
