import type { Command } from 'commander';
import { toCsv } from '../engine/metrics/csv.ts';
import {
  campaignMetrics,
  DIMENSIONS,
  type Dimension,
  metricsBreakdown,
  syncCampaignGoals,
} from '../engine/metrics/index.ts';
import { formatSql, runReadOnlySql } from '../engine/metrics/sql.ts';
import { inboxStats, processInbox } from '../engine/webhooks/index.ts';
import { print, withRuntime } from './core.ts';

export function registerAnalyticsCommands(program: Command): void {
  program
    .command('sql')
    .argument('<query>', 'one read-only statement (SELECT, SHOW, DESCRIBE, ...); quote it for the shell')
    .description(
      'Run a read-only SQL query on the analytics database (views: campaign_sends, message_funnel, campaign_daily, conversions, ...; see docs/analytics.md)',
    )
    .option('--format <format>', 'output: table, csv or json', 'table')
    .option('--timeout <seconds>', 'server-side time limit in seconds', '30')
    .option('--max-rows <n>', 'fail rather than return more rows than this', '100000')
    .action(async (query: string, options: { format: string; timeout: string; maxRows: string }) => {
      if (!['table', 'csv', 'json'].includes(options.format))
        throw new Error('--format must be table, csv or json');
      await withRuntime(async (runtime) => {
        // Goals live in Postgres; the conversions view reads ClickHouse's copy.
        await syncCampaignGoals(runtime);
        const result = await runReadOnlySql(runtime, query, {
          timeoutSeconds: Number(options.timeout),
          maxRows: Number(options.maxRows),
        });
        process.stdout.write(formatSql(result, options.format as 'table'));
      });
    });

  const metrics = program.command('metrics').description('Campaign analytics');
  metrics
    .command('campaign')
    .argument('<campaign_id>', 'campaign id (cmp_...)')
    .description('A campaign report: funnel, failures, time to read, conversions, cost, ROI, holdout lift')
    .requiredOption('--workspace <id>', 'workspace id')
    .action(async (campaignId: string, options: { workspace: string }) => {
      await withRuntime(async (runtime) =>
        print(await campaignMetrics(runtime, options.workspace, campaignId)),
      );
    });
  metrics
    .command('breakdown')
    .description('Funnel counts and rates by campaign, template, sender, country, day or hour')
    .requiredOption('--workspace <id>', 'workspace id')
    .requiredOption('--by <dimension>', `one of ${DIMENSIONS.join(', ')}`)
    .option('--campaign <id>', 'only this campaign')
    .option('--timezone <zone>', 'IANA zone for day and hour buckets', 'UTC')
    .option('--csv', 'print CSV instead of JSON')
    .action(
      async (options: {
        workspace: string;
        by: string;
        campaign?: string;
        timezone: string;
        csv?: boolean;
      }) => {
        if (!DIMENSIONS.includes(options.by as Dimension))
          throw new Error(`--by must be one of ${DIMENSIONS.join(', ')}`);
        await withRuntime(async (runtime) => {
          const rows = await metricsBreakdown(runtime, options.workspace, options.by as Dimension, {
            campaignId: options.campaign,
            timezone: options.timezone,
          });
          if (!options.csv) return print(rows);
          const columns = ['key', 'label', 'attempted', 'sent', 'delivered', 'read', 'replied', 'failed'];
          columns.push('delivery_rate', 'read_rate', 'reply_rate', 'failure_rate');
          process.stdout.write(toCsv(columns, rows as unknown as Record<string, unknown>[]));
        });
      },
    );

  const webhooks = program.command('webhooks').description('Provider webhook inbox');
  webhooks
    .command('status')
    .description('Payloads pending, processed and dead-lettered')
    .option('--workspace <id>', 'only this workspace')
    .action(async (options: { workspace?: string }) => {
      await withRuntime(async (runtime) => print(await inboxStats(runtime, options.workspace)));
    });
  webhooks
    .command('process')
    .description('Process the pending inbox now (workers do this continuously)')
    .action(async () => {
      await withRuntime(async (runtime) => print(await processInbox(runtime)));
    });
}
