import { createReadStream, readFileSync, statSync } from 'node:fs';
import { basename } from 'node:path';
import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import { uploadCampaignAudience } from '../engine/campaigns/audience-upload.ts';
import {
  campaignProgress,
  cancelCampaign,
  pauseCampaign,
  resumeCampaign,
} from '../engine/campaigns/control.ts';
import { launchCampaign, reviewCampaign } from '../engine/campaigns/launch.ts';
import { auditLog, createCampaign, listCampaigns, requireCampaign } from '../engine/campaigns/model.ts';
import { CampaignError, type CampaignInput } from '../engine/campaigns/types.ts';
import type { Runtime } from '../engine/runtime.ts';
import { startBoss } from '../jobs/boss.ts';
import { startDispatcher } from '../jobs/dispatch/index.ts';
import { importBar } from './contacts.ts';
import { print, withRuntime } from './core.ts';
import { resolveWorkspace } from './workspace.ts';

const ACTOR = `cli:${process.env.USER ?? 'user'}`;
const FINISHED = ['completed', 'cancelled', 'failed'];

/** Domain errors print their field list instead of a stack. */
async function run<T>(fn: (runtime: Runtime) => Promise<T>): Promise<T> {
  try {
    return await withRuntime(fn);
  } catch (error) {
    if (error instanceof CampaignError) {
      const lines = error.errors.map((e) => `  ${e.path}: ${e.message}`);
      throw new Error([error.message, ...lines].join('\n'));
    }
    throw error;
  }
}

/** A live bar until the campaign finishes or pauses (or, with `untilDone`, only finishes). */
async function watch(runtime: Runtime, workspace: string, id: string, untilDone = false): Promise<void> {
  const bar = new cliProgress.SingleBar(
    {
      format: ' {bar} {percentage}% | {value}/{total} settled | {state} | {rate}/s | ETA {eta_text} {held}',
      hideCursor: true,
    },
    cliProgress.Presets.shades_classic,
  );
  let progress = await campaignProgress(runtime.pg, workspace, id);
  const payload = (p: typeof progress) => ({
    state: p.state,
    rate: p.rate_per_second,
    eta_text: p.eta_seconds === null ? '?' : `${p.eta_seconds}s`,
    held: Object.keys(p.held).length ? `| held: ${JSON.stringify(p.held)}` : '',
  });
  const settled = (p: typeof progress) =>
    p.counts.accepted + p.counts.delivered + p.counts.read + p.counts.failed + p.counts.skipped;
  bar.start(progress.total, settled(progress), payload(progress));
  while (!FINISHED.includes(progress.state) && (untilDone || progress.state !== 'paused')) {
    await new Promise((r) => setTimeout(r, 500));
    progress = await campaignProgress(runtime.pg, workspace, id);
    bar.setTotal(progress.total);
    bar.update(settled(progress), payload(progress));
  }
  bar.stop();
  print({
    state: progress.state,
    reason: progress.state_reason,
    counts: progress.counts,
    skipped: progress.skipped,
  });
}

export function registerCampaignCommands(program: Command): void {
  const campaign = program.command('campaign').description('Create, launch and control campaigns');

  campaign
    .command('create')
    .description('Create a draft campaign from a JSON file (same body as POST /v1/campaigns) or flags')
    .requiredOption('--workspace <id>', 'workspace id')
    .option(
      '--file <path>',
      'JSON file with the campaign (name, sender_id, audience, content, schedule, ...)',
    )
    .option('--name <name>', 'campaign name (without --file)')
    .option('--sender <id>', 'sender id (without --file)')
    .option('--tags <tags>', 'audience: contacts with any of these comma-separated tags (without --file)')
    .option('--template <name>', 'approved template name (without --file)')
    .option('--language <code>', 'template language', 'en_US')
    .option('--holdout <percent>', 'holdout percentage', '0')
    .action(async (options: Record<string, string | undefined>) => {
      await run(async (runtime) => {
        const input: CampaignInput = options.file
          ? (JSON.parse(readFileSync(options.file, 'utf8')) as CampaignInput)
          : {
              name: options.name ?? '',
              sender_id: options.sender,
              audience: options.tags ? { type: 'tags', tags: options.tags.split(',') } : { type: 'all' },
              content: { template: { name: options.template ?? '', language: options.language ?? 'en_US' } },
              holdout_percent: Number(options.holdout ?? 0),
            };
        if (!input.name) throw new Error('give --file or --name');
        print(await createCampaign(runtime.pg, options.workspace!, input, ACTOR));
      });
    });

  campaign
    .command('audience')
    .description("Upload a CSV of contacts as a draft's audience: the rows are imported and become a list")
    .requiredOption('--workspace <id>', 'workspace id')
    .requiredOption('--id <campaign>', 'campaign id (a draft)')
    .requiredOption('--csv <file>', 'contacts CSV (header row first), as for `chorus import contacts`')
    .option('--map <mapping>', 'column=target pairs, as for `chorus import contacts`')
    .option('--list <name>', 'the list to fill (default campaign:<id>)')
    .action(async (options: { workspace: string; id: string; csv: string; map?: string; list?: string }) => {
      await run(async (runtime) => {
        const workspace = await resolveWorkspace(runtime, options.workspace);
        const size = statSync(options.csv).size;
        const progress = process.stderr.isTTY ? importBar('contacts', size) : undefined;
        const result = await uploadCampaignAudience(
          runtime,
          workspace,
          options.id,
          createReadStream(options.csv),
          {
            mapping: options.map,
            list: options.list,
            fileName: basename(options.csv),
            bytesTotal: size,
            onProgress: (j) => progress?.update(j.bytes_read, { rows: j.rows_processed }),
          },
          ACTOR,
        ).finally(() => progress?.stop());
        const job = result.import;
        print({
          campaign: options.id,
          audience: result.campaign.audience,
          import: job.id,
          imported: job.rows_imported,
          rejected: job.rows_rejected,
          errors: job.rows_rejected ? `GET /v1/imports/${job.id}/errors?format=csv` : undefined,
        });
      });
    });

  campaign
    .command('list')
    .description('List campaigns of a workspace, newest first')
    .requiredOption('--workspace <id>', 'workspace id')
    .option('--state <state>', 'only campaigns in this state')
    .action(async (options: { workspace: string; state?: string }) => {
      await run(async (runtime) => {
        const rows = await listCampaigns(runtime.pg, options.workspace, { state: options.state as never });
        print(
          rows.map((c) => ({ id: c.id, name: c.name, state: c.state, audience_count: c.audience_count })),
        );
      });
    });

  campaign
    .command('review')
    .description('Show what a launch would do: counts, preview, cost, warnings, errors')
    .requiredOption('--workspace <id>', 'workspace id')
    .requiredOption('--id <campaign>', 'campaign id')
    .action(async (options: { workspace: string; id: string }) => {
      await run(async (runtime) => print(await reviewCampaign(runtime, options.workspace, options.id)));
    });

  campaign
    .command('launch')
    .description('Launch a draft (refused with reasons if it would fail), then show live progress')
    .requiredOption('--workspace <id>', 'workspace id')
    .requiredOption('--id <campaign>', 'campaign id')
    .option('--no-watch', 'return at once instead of showing progress')
    .option('--send', 'also send from this process until done (embedded mode has no separate worker)')
    .action(async (options: { workspace: string; id: string; watch: boolean; send?: boolean }) => {
      await run(async (runtime) => {
        const { review } = await launchCampaign(runtime, options.workspace, options.id, ACTOR);
        for (const warning of review.warnings) process.stderr.write(`warning: ${warning.message}\n`);
        const embedded = runtime.pg.mode === 'embedded';
        if (!options.watch && !options.send)
          return print({ launched: options.id, eligible: review.eligible_count });
        const boss = options.send || embedded ? await startBoss(runtime) : undefined;
        const dispatcher = boss ? await startDispatcher(runtime, boss) : undefined;
        try {
          await watch(runtime, options.workspace, options.id, Boolean(dispatcher));
        } finally {
          await dispatcher?.stop();
          await boss?.stop({ graceful: true, timeout: 10_000 });
        }
      });
    });

  for (const [name, description] of [
    ['pause', 'Pause: no message starts after this; queued sends wait'],
    ['resume', 'Resume a paused campaign'],
    ['cancel', 'Cancel: queued sends are skipped for good'],
  ] as const) {
    campaign
      .command(name)
      .description(description)
      .requiredOption('--workspace <id>', 'workspace id')
      .requiredOption('--id <campaign>', 'campaign id')
      .option('--reason <text>', 'why (kept in the audit log)')
      .action(async (options: { workspace: string; id: string; reason?: string }) => {
        await run(async (runtime) => {
          const result =
            name === 'pause'
              ? await pauseCampaign(runtime.pg, options.workspace, options.id, ACTOR, options.reason)
              : name === 'resume'
                ? await resumeCampaign(runtime.pg, options.workspace, options.id, ACTOR)
                : await cancelCampaign(runtime.pg, options.workspace, options.id, ACTOR, options.reason);
          print({ id: result.id, state: result.state, reason: result.state_reason });
        });
      });
  }

  campaign
    .command('status')
    .description('Progress of a campaign: counts per state, why sends wait, rate, ETA (--watch: live bar)')
    .requiredOption('--workspace <id>', 'workspace id')
    .requiredOption('--id <campaign>', 'campaign id')
    .option('--watch', 'show a live progress bar until it finishes or pauses')
    .option('--audit', 'also print the audit log')
    .action(async (options: { workspace: string; id: string; watch?: boolean; audit?: boolean }) => {
      await run(async (runtime) => {
        await requireCampaign(runtime.pg, options.workspace, options.id);
        if (options.watch) await watch(runtime, options.workspace, options.id);
        else print(await campaignProgress(runtime.pg, options.workspace, options.id));
        if (options.audit) print(await auditLog(runtime.pg, options.workspace, options.id));
      });
    });
}
