// A dispatch worker process for the crash test and bench/dispatch: real Postgres from DATABASE_URL, its
// own chdb, the simulator's ground truth to resolve in-doubt sends (no webhooks there). Leases and
// timeouts are short by default (the crash test); the benchmark passes production ones. Prints
// "ready" once it is taking jobs.
import pino from 'pino';
import { groundTruthLookup } from '../../engine/campaigns/dispatch.ts';
import { openRuntime } from '../../engine/runtime.ts';
import { startBoss } from '../../jobs/boss.ts';
import { startDispatcher } from '../../jobs/dispatch/index.ts';

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
await startDispatcher(runtime, boss, {
  lookup: groundTruthLookup(process.env.SIM_URL!),
  leaseMs: Number(process.env.LEASE_MS ?? 3_000),
  requestTimeoutMs: Number(process.env.REQUEST_TIMEOUT_MS ?? 1_000),
  staleMs: Number(process.env.STALE_MS ?? 2_000),
  pumpIntervalMs: 200,
  localConcurrency: Number(process.env.LOCAL_CONCURRENCY ?? 4),
});
process.stdout.write('ready\n');
// A normal exit on SIGTERM, so `--cpu-prof` (bench/dispatch with WORKER_PROF) writes its profile.
process.once('SIGTERM', () => process.exit(0));
