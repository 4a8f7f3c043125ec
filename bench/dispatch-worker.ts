// A dispatch worker process for bench/dispatch on PostgreSQL: what `chorus worker` runs for campaigns
// (the pg-boss job handler and the pump), with production leases and timeouts. Prints "ready".
import pino from 'pino';
import { groundTruthLookup } from '../engine/campaigns/dispatch.ts';
import { openRuntime } from '../engine/runtime.ts';
import { startBoss } from '../jobs/boss.ts';
import { startDispatcher } from '../jobs/dispatch/index.ts';

const runtime = await openRuntime({
  config: {
    dataDir: process.env.CHORUS_DATA_DIR!,
    databaseUrl: process.env.DATABASE_URL!,
    postgresSchema: process.env.CHORUS_POSTGRES_SCHEMA!,
    logLevel: 'warn',
  },
  log: pino({ level: process.env.LOG_LEVEL ?? 'warn' }),
});
const boss = await startBoss(runtime);
const dispatcher = await startDispatcher(runtime, boss, {
  // No webhooks in this benchmark: a send left in doubt is resolved from the simulator's log.
  lookup: groundTruthLookup(process.env.SIM_URL!),
  pumpIntervalMs: 200,
  localConcurrency: Number(process.env.BENCH_LOCAL_CONCURRENCY ?? 32),
});
process.stdout.write('ready\n');
process.once('SIGTERM', async () => {
  await dispatcher.stop();
  await boss.stop({ graceful: false });
  await runtime.close();
  process.exit(0);
});
