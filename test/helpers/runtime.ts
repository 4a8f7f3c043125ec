import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { buildServer } from '../../api/server.ts';
import { openRuntime, type Runtime } from '../../engine/runtime.ts';
import { createApiKey, createWorkspace, type Workspace } from '../../engine/workspaces.ts';

/** Which Postgres the transactional tests run on: PGlite always, the real server when DATABASE_URL is set. */
export const postgresTargets: { name: string; url?: string }[] = [
  { name: 'pglite' },
  ...(process.env.DATABASE_URL ? [{ name: 'postgres', url: process.env.DATABASE_URL }] : []),
];

export interface TestRuntime extends Runtime {
  dataDir: string;
}

let counter = 0;

/**
 * Stores isolated for one test file: a fresh data directory for chdb and PGlite, and a fresh schema
 * and ClickHouse database name when real servers are used.
 */
export async function openTestRuntime(options: { postgresUrl?: string } = {}): Promise<TestRuntime> {
  const dataDir = mkdtempSync(join(tmpdir(), 'chorus-test-'));
  const suffix = `${process.pid}_${Date.now().toString(36)}_${counter++}`;
  const runtime = await openRuntime({
    config: {
      dataDir,
      databaseUrl: options.postgresUrl,
      postgresSchema: options.postgresUrl ? `t_${suffix}` : 'chorus',
      clickhouseUrl: process.env.CLICKHOUSE_URL || undefined,
      clickhouseDatabase: process.env.CLICKHOUSE_URL ? `t_${suffix}` : 'chorus',
      logLevel: process.env.LOG_LEVEL ?? 'silent',
    },
    log: pino({ level: process.env.LOG_LEVEL ?? 'silent' }),
  });
  const close = runtime.close;
  return {
    ...runtime,
    dataDir,
    async close() {
      if (options.postgresUrl)
        await runtime.pg
          .exec(
            `DROP SCHEMA IF EXISTS ${runtime.pg.schema} CASCADE; DROP SCHEMA IF EXISTS ${runtime.pg.schema}_boss CASCADE`,
          )
          .catch(() => {});
      if (runtime.ch.mode === 'server')
        await runtime.ch.command(`DROP DATABASE IF EXISTS ${runtime.ch.database}`).catch(() => {});
      await close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export interface TestApi {
  runtime: TestRuntime;
  app: FastifyInstance;
  workspace: Workspace;
  key: string;
  /** Headers carrying the workspace key. */
  auth: { authorization: string };
  close(): Promise<void>;
}

/** A server on isolated stores with one workspace and its key. */
export async function openTestApi(options: { postgresUrl?: string; region?: string } = {}): Promise<TestApi> {
  const runtime = await openTestRuntime(options);
  const app = await buildServer(runtime, { logger: false });
  await app.ready();
  const workspace = await createWorkspace(runtime.pg, {
    name: 'Test',
    defaultRegion: options.region ?? 'IN',
  });
  const { key } = await createApiKey(runtime.pg, workspace.id);
  return {
    runtime,
    app,
    workspace,
    key,
    auth: { authorization: `Bearer ${key}` },
    async close() {
      await app.close();
      await runtime.close();
    },
  };
}
