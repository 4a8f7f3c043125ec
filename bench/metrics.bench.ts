// Metrics of one big campaign: sends, statuses (with duplicates), goal events and a holdout audience
// generated with INSERT ... SELECT, then campaignMetrics (everything a report shows), a breakdown by
// day and a view query timed. `--size small` (100k sends) or `--size full` (1M sends).
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import {
  campaignConversions,
  campaignGoal,
  campaignMetrics,
  funnel,
  holdoutLift,
  metricsBreakdown,
  setCampaignGoal,
} from '../engine/metrics/index.ts';
import { openRuntime } from '../engine/runtime.ts';
import { createWorkspace } from '../engine/workspaces.ts';

const size = process.argv.includes('--size') ? process.argv[process.argv.indexOf('--size') + 1] : 'small';
const N = size === 'full' ? 1_000_000 : 100_000;
// BENCH_DATA_DIR keeps the generated data between runs (generate once outside the bench lock).
const keep = process.env.BENCH_DATA_DIR ? join(process.env.BENCH_DATA_DIR, `metrics-${N}`) : undefined;
const dataDir = keep ?? mkdtempSync(join(tmpdir(), 'chorus-bench-metrics-'));
const runtime = await openRuntime({ config: { dataDir, logLevel: 'warn' }, log: pino({ level: 'warn' }) });
const db = runtime.ch.database;
const campaign = 'cmp_big';
const base = '2026-11-01 00:00:00';
const existing = await runtime.pg.query<{ id: string }>(
  `SELECT id FROM workspaces WHERE name = 'bench' LIMIT 1`,
);
const ws = existing.rows[0]?.id ?? (await createWorkspace(runtime.pg, { name: 'bench' })).id;

const t0 = performance.now();
if (!existing.rows.length) await generate();
async function generate() {
  await runtime.ch.command(
    `INSERT INTO ${db}.sends (workspace_id, send_id, campaign_id, campaign_name, template_name, template_category,
     sender_id, contact_id, phone, country, provider_message_id, outcome, error_code, sent_at)
   SELECT {ws:String}, concat('s', toString(number)), {c:String}, 'Big campaign', 'promo', 'MARKETING', 'snd',
     concat('c', toString(number)), concat('+9198', toString(10000000 + number)),
     ['IN', 'US', 'BR'][number % 3 + 1],
     if(number % 50 = 0, '', concat('w', toString(number))),
     if(number % 50 = 0, 'failed', 'accepted'), if(number % 50 = 0, 131026, 0),
     toDateTime64({base:String}, 3, 'UTC') + toIntervalMillisecond(number * 10)
   FROM numbers({n:UInt64})`,
    { ws, c: campaign, n: N, base },
  );
  // Statuses: sent for all, delivered for 90 %, read for half of those, failed for 10 %, 5 % reported twice,
  // replies for 3 %.
  await runtime.ch.command(
    `INSERT INTO ${db}.message_statuses (workspace_id, provider_message_id, status, ts, error_code, pricing_category, billable)
   SELECT {ws:String}, concat('w', toString(n)), status,
     toDateTime64({base:String}, 3, 'UTC') + toIntervalMillisecond(n * 10) + toIntervalSecond(delay),
     if(status = 'failed', 131026, 0), 'marketing', 1
   FROM (
     SELECT number AS n, arrayJoin(multiIf(
       number % 10 = 1, ['sent', 'failed'],
       number % 2 = 0, ['sent', 'delivered', 'read'],
       ['sent', 'delivered'])) AS status,
       multiIf(status = 'sent', 1, status = 'delivered', 5, status = 'read', 60 + number % 7200, 10) AS delay
     FROM numbers({n:UInt64}) WHERE number % 50 != 0
     UNION ALL SELECT number, 'delivered', 5 FROM numbers({n:UInt64}) WHERE number % 20 = 2
     UNION ALL SELECT number, 'replied', 9000 FROM numbers({n:UInt64}) WHERE number % 33 = 4
   )`,
    { ws, n: N, base },
  );
  await runtime.ch.command(
    `INSERT INTO ${db}.events (workspace_id, name, contact_id, ts, event_id, properties)
   SELECT {ws:String}, 'purchase', concat('c', toString(number)),
     toDateTime64({base:String}, 3, 'UTC') + toIntervalMillisecond(number * 10) + toIntervalSecond(number % 100000),
     concat('e', toString(number)), concat('{"revenue":', toString(number % 100), '}')
   FROM numbers({n:UInt64}) WHERE number % 20 = 0`,
    { ws, n: N, base },
  );
  await runtime.ch.command(
    `INSERT INTO ${db}.campaign_audience (workspace_id, campaign_id, contact_id, holdout, launched_at)
   SELECT {ws:String}, {c:String}, concat(if(number % 10 = 0, 'h', 'c'), toString(number)), number % 10 = 0,
     toDateTime64({base:String}, 3, 'UTC')
   FROM numbers({n:UInt64})`,
    { ws, c: campaign, n: N, base },
  );
  await setCampaignGoal(runtime, ws, campaign, { event: 'purchase', windowSeconds: 86_400 });
  // Parts as a live system would have them after background merges.
  for (const table of [
    'sends',
    'message_statuses',
    'events',
    'campaign_audience',
    'message_rollup',
    'message_campaigns',
    'contact_touches',
  ])
    await runtime.ch.command(`OPTIMIZE TABLE ${db}.${table} FINAL`);
}
const generated = (performance.now() - t0) / 1000;
if (process.argv.includes('--generate-only')) {
  await runtime.close();
  process.exit(0);
}

// Wall time, and CPU time of the whole process (chdb runs in it): on a shared machine the CPU figure
// says what the work costs, the wall figure what this run happened to get.
async function timed<T>(
  runs: number,
  fn: () => Promise<T>,
): Promise<{ ms: number[]; median: number; cpu_ms_median: number; value: T }> {
  const ms: number[] = [];
  const cpu: number[] = [];
  let value: T | undefined;
  for (let i = 0; i < runs; i++) {
    const start = performance.now();
    const cpuStart = process.cpuUsage();
    value = await fn();
    const used = process.cpuUsage(cpuStart);
    cpu.push((used.user + used.system) / 1000);
    ms.push(performance.now() - start);
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  return { ms, median: median(ms), cpu_ms_median: median(cpu), value: value as T };
}

const report = await timed(5, () => campaignMetrics(runtime, ws, campaign));
// The report's parts alone, to see where its time goes.
const goal = (await campaignGoal(runtime, ws, campaign))!;
const funnelOnly = await timed(5, () => funnel(runtime, ws, { campaignId: campaign }));
const conversionsOnly = await timed(5, () => campaignConversions(runtime, ws, campaign));
const holdoutOnly = await timed(5, () => holdoutLift(runtime, ws, campaign, goal));
const byDay = await timed(5, () => metricsBreakdown(runtime, ws, 'hour', { campaignId: campaign }));
const view = await timed(5, () =>
  runtime.ch.rows(
    `SELECT country, sum(delivered) AS d, sum(sent) AS s FROM ${db}.message_funnel WHERE workspace_id = {ws:String} GROUP BY country`,
    { ws },
  ),
);
const m = report.value;
const result = {
  size,
  sends: N,
  generate_seconds: generated,
  campaign_metrics_ms: report.ms,
  campaign_metrics_median_ms: report.median,
  campaign_metrics_cpu_ms_median: report.cpu_ms_median,
  load_average: readFileSync('/proc/loadavg', 'utf8').trim(),
  funnel_median_ms: funnelOnly.median,
  funnel_cpu_ms_median: funnelOnly.cpu_ms_median,
  conversions_median_ms: conversionsOnly.median,
  conversions_cpu_ms_median: conversionsOnly.cpu_ms_median,
  holdout_median_ms: holdoutOnly.median,
  holdout_cpu_ms_median: holdoutOnly.cpu_ms_median,
  breakdown_by_hour_median_ms: byDay.median,
  breakdown_by_hour_cpu_ms_median: byDay.cpu_ms_median,
  message_funnel_view_median_ms: view.median,
  message_funnel_view_cpu_ms_median: view.cpu_ms_median,
  figures: {
    sent: m.sent,
    delivered: m.delivered,
    read: m.read,
    replied: m.replied,
    failed: m.failed,
    conversions: m.conversions,
    cost: m.cost,
    roi: m.roi,
    lift: m.holdout?.lift,
    time_to_read_p50: m.time_to_read.p50_seconds,
  },
};
process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
await runtime.close();
if (!keep) rmSync(dataDir, { recursive: true, force: true });
mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
writeFileSync(new URL('./results/metrics.json', import.meta.url), JSON.stringify(result, null, 2));
