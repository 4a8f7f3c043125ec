import type { Command } from 'commander';
import { buildServer } from '../api/server.ts';
import { openRuntime, type Runtime } from '../engine/runtime.ts';
import { createApiKey, createWorkspace } from '../engine/workspaces.ts';
import { startBoss, startWorkers } from '../jobs/boss.ts';
import { startDispatcher } from '../jobs/dispatch/index.ts';
import { queues } from '../jobs/queues.ts';

/** Opens the stores for one command and closes them after, whatever happens. */
export async function withRuntime<T>(fn: (runtime: Runtime) => Promise<T>, quiet = true): Promise<T> {
  const runtime = await openRuntime(quiet ? { config: { logLevel: process.env.LOG_LEVEL ?? 'warn' } } : {});
  try {
    return await fn(runtime);
  } finally {
    await runtime.close();
  }
}

export function print(value: unknown): void {
  process.stdout.write(`${typeof value === 'string' ? value : JSON.stringify(value, null, 2)}\n`);
}

export function registerCoreCommands(program: Command): void {
  program
    .command('serve')
    .description('Start the HTTP API (embedded mode also runs the workers in this process)')
    .option('--port <port>', 'port to listen on', process.env.PORT ?? '3000')
    .option('--host <host>', 'address to bind', process.env.HOST ?? '127.0.0.1')
    .option('--no-workers', 'do not run job workers in this process')
    .action(async (options: { port: string; host: string; workers: boolean }) => {
      const runtime = await openRuntime();
      const app = await buildServer(runtime);
      // chdb and PGlite live inside one process, so embedded mode must run the workers here.
      const embedded = runtime.ch.mode === 'embedded' || runtime.pg.mode === 'embedded';
      const boss = options.workers || embedded ? await startBoss(runtime) : undefined;
      if (boss) await startWorkers(runtime, boss, queues);
      // Campaign dispatch: the job handler plus the pump that feeds it (jobs/dispatch).
      if (boss) await startDispatcher(runtime, boss);
      await app.listen({ port: Number(options.port), host: options.host });
      const stop = async () => {
        await app.close();
        await boss?.stop({ graceful: true, timeout: 10_000 });
        await runtime.close();
        process.exit(0);
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });

  program
    .command('worker')
    .description('Run job workers (server mode: run as many processes as you like)')
    .action(async () => {
      const runtime = await openRuntime();
      const boss = await startBoss(runtime);
      await startWorkers(runtime, boss, queues);
      await startDispatcher(runtime, boss);
      const stop = async () => {
        await boss.stop({ graceful: true, timeout: 30_000 });
        await runtime.close();
        process.exit(0);
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });

  program
    .command('migrate')
    .description('Apply ClickHouse and Postgres migrations (also applied on every start)')
    .action(async () => {
      await withRuntime(async () => print('migrations applied'), true);
    });

  const workspace = program.command('workspace').description('Manage workspaces');
  workspace
    .command('create')
    .description('Create a workspace and its first API key')
    .requiredOption('--name <name>', 'workspace name')
    .option('--region <region>', 'default phone region (ISO 3166 alpha-2)', 'IN')
    .option('--timezone <zone>', 'workspace time zone (IANA)', 'UTC')
    .action(async (options: { name: string; region: string; timezone: string }) => {
      await withRuntime(async (runtime) => {
        const created = await createWorkspace(runtime.pg, {
          name: options.name,
          defaultRegion: options.region,
          timezone: options.timezone,
        });
        const key = await createApiKey(runtime.pg, created.id);
        print({ workspace: created, api_key: key.key, note: 'the key is shown once; store it now' });
      });
    });

  const key = program.command('key').description('Manage API keys');
  key
    .command('create')
    .description('Create an API key for a workspace (shown once)')
    .requiredOption('--workspace <id>', 'workspace id')
    .option('--name <name>', 'key name', 'default')
    .action(async (options: { workspace: string; name: string }) => {
      await withRuntime(async (runtime) => {
        const created = await createApiKey(runtime.pg, options.workspace, options.name);
        print({ ...created, note: 'the key is shown once; store it now' });
      });
    });
}
