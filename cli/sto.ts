import { SingleBar } from 'cli-progress';
import type { Command } from 'commander';
import { evaluateSendTime, formatEvaluation, saveEvaluation } from '../engine/sto/evaluate.ts';
import { fitSendTime } from '../engine/sto/fit.ts';
import { type CohortKind, getStoSettings, type StoSettings, setStoSettings } from '../engine/sto/settings.ts';
import { simulatedPopulation, writeSimulatedHistory } from '../engine/sto/simulation.ts';
import type { QuietHours } from '../engine/sto/slots.ts';
import { print, withRuntime } from './core.ts';

const FIT_STEPS = ['zones', 'features', 'priors', 'contact prior'];

function parseDate(value: string | undefined, flag: string): Date | undefined {
  if (value === undefined) return undefined;
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) throw new Error(`${flag} must be an ISO date-time, got ${value}`);
  return date;
}

/** A whole number in [min, max] from a flag, or a clear error (Number('abc') is NaN, which the model would carry). */
function parseCount(value: string | undefined, flag: string, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || n < min || n > max)
    throw new Error(`${flag} must be a whole number from ${min} to ${max}, got ${value}`);
  return n;
}

function parseQuiet(value: string): QuietHours | null {
  if (value === 'none') return null;
  const match = /^(\d{1,2})-(\d{1,2})$/.exec(value);
  const start = Number(match?.[1]);
  const end = Number(match?.[2]);
  if (!match || start > 23 || end > 23 || start === end)
    throw new Error(`--quiet must be START-END local hours (e.g. 21-9) or none, got ${value}`);
  return { start, end };
}

export function registerStoCommands(program: Command): void {
  const sto = program
    .command('sto')
    .description('Send-time optimisation: fit, evaluate and configure the model');

  sto
    .command('fit')
    .description('Fit the send-time model of a workspace now (the nightly sto-fit job does the same)')
    .requiredOption('--workspace <id>', 'workspace id')
    .option('--until <time>', 'end of the history used (ISO date-time); default now')
    .option('--lookback-days <n>', 'days of history; default the workspace setting (90)')
    .option('--cohort <kind>', 'prior cohort: timezone or country; default the workspace setting')
    .action(
      async (options: { workspace: string; until?: string; lookbackDays?: string; cohort?: string }) => {
        if (options.cohort && !['timezone', 'country'].includes(options.cohort))
          throw new Error('--cohort must be timezone or country');
        await withRuntime(async (runtime) => {
          const bar = new SingleBar({ format: 'fit [{bar}] {step}', hideCursor: true });
          bar.start(FIT_STEPS.length, 0, { step: '' });
          try {
            const result = await fitSendTime(runtime, options.workspace, {
              until: parseDate(options.until, '--until'),
              lookbackDays: parseCount(options.lookbackDays, '--lookback-days', 7, 730),
              cohort: options.cohort as CohortKind | undefined,
              onProgress: (step) => bar.update(FIT_STEPS.indexOf(step), { step }),
            });
            bar.update(FIT_STEPS.length, { step: 'done' });
            bar.stop();
            print(result);
          } finally {
            bar.stop();
          }
        });
      },
    );

  sto
    .command('evaluate')
    .description(
      'Offline evaluation: temporal split, replay/IPS/SNIPS per policy, lift over baselines with CIs',
    )
    .requiredOption('--workspace <id>', 'workspace id')
    .option('--until <time>', 'end of the evaluated history (ISO date-time); default now')
    .option('--test-days <n>', 'days at the end held out for testing', '14')
    .option('--lookback-days <n>', 'days of training history before the split; default the workspace setting')
    .option('--quiet <hours>', 'local quiet hours the policies avoid, START-END or none; default the setting')
    .option('--bootstrap <n>', 'bootstrap resamples for the intervals', '500')
    .option('--json', 'print the report as JSON (the dashboards read the same)')
    .option('--no-save', 'do not keep the report for GET /v1/send-time/evaluation')
    .action(
      async (options: {
        workspace: string;
        until?: string;
        testDays: string;
        lookbackDays?: string;
        quiet?: string;
        bootstrap: string;
        json?: boolean;
        save: boolean;
      }) => {
        await withRuntime(async (runtime) => {
          const { fit: _fit, ...report } = await evaluateSendTime(runtime, options.workspace, {
            until: parseDate(options.until, '--until'),
            testDays: parseCount(options.testDays, '--test-days', 1, 365),
            lookbackDays: parseCount(options.lookbackDays, '--lookback-days', 7, 730),
            quietHours: options.quiet === undefined ? undefined : parseQuiet(options.quiet),
            bootstrap: parseCount(options.bootstrap, '--bootstrap', 1, 100_000),
          });
          if (options.save) await saveEvaluation(runtime, report);
          print(options.json ? report : formatEvaluation(report));
        });
      },
    );

  sto
    .command('settings')
    .description("Show or change a workspace's send-time settings")
    .requiredOption('--workspace <id>', 'workspace id')
    .option(
      '--events <names>',
      'comma-separated events that count as engagement (e.g. app_open,click); "" for none',
    )
    .option('--quiet <hours>', 'local quiet hours START-END (e.g. 21-9), or none')
    .option('--exploration <share>', 'share of sends at a random allowed hour (0-1), e.g. 0.05')
    .option('--lookback-days <n>', 'days of history a fit uses')
    .option('--cohort <kind>', 'prior cohort: timezone or country')
    .action(
      async (options: {
        workspace: string;
        events?: string;
        quiet?: string;
        exploration?: string;
        lookbackDays?: string;
        cohort?: string;
      }) => {
        const patch: Partial<StoSettings> = {};
        if (options.events !== undefined)
          patch.engagementEvents = options.events
            .split(',')
            .map((e) => e.trim())
            .filter(Boolean);
        if (options.quiet !== undefined) patch.quietHours = parseQuiet(options.quiet);
        if (options.exploration !== undefined) {
          const share = Number(options.exploration);
          if (!(share >= 0 && share <= 1)) throw new Error('--exploration must be between 0 and 1');
          patch.explorationShare = share;
        }
        if (options.lookbackDays !== undefined) {
          const days = Number(options.lookbackDays);
          if (!Number.isInteger(days) || days < 7 || days > 730)
            throw new Error('--lookback-days must be 7-730');
          patch.lookbackDays = days;
        }
        if (options.cohort !== undefined) {
          if (!['timezone', 'country'].includes(options.cohort))
            throw new Error('--cohort must be timezone or country');
          patch.cohort = options.cohort as CohortKind;
        }
        await withRuntime(async (runtime) => {
          print(
            Object.keys(patch).length
              ? await setStoSettings(runtime.pg, options.workspace, patch)
              : await getStoSettings(runtime.pg, options.workspace),
          );
        });
      },
    );

  sto
    .command('simulate')
    .description(
      'Write a simulated send history (simulator recipients, exploration sends) for demos and benchmarks',
    )
    .requiredOption('--workspace <id>', 'workspace id')
    .option('--contacts <n>', 'population size', '2000')
    .option('--days <n>', 'days of history before --until', '90')
    .option('--send-chance <p>', 'chance a contact gets a send on a given day', '0.8')
    .option('--until <time>', 'end of the history; default now')
    .option('--seed <seed>', 'simulator seed', 'chorus')
    .action(
      async (options: {
        workspace: string;
        contacts: string;
        days: string;
        sendChance: string;
        until?: string;
        seed: string;
      }) => {
        await withRuntime(async (runtime) => {
          const population = simulatedPopulation(
            options.seed,
            parseCount(options.contacts, '--contacts', 1, 10_000_000)!,
          );
          const bar = new SingleBar({ format: 'history [{bar}] {value}/{total} contacts', hideCursor: true });
          bar.start(population.length, 0);
          const written = await writeSimulatedHistory(runtime, population, {
            workspaceId: options.workspace,
            until: parseDate(options.until, '--until') ?? new Date(),
            days: parseCount(options.days, '--days', 1, 730)!,
            sendChance: Number(options.sendChance),
            quietHours: (await getStoSettings(runtime.pg, options.workspace)).quietHours ?? {
              start: 21,
              end: 8,
            },
            seed: options.seed,
            onProgress: (done) => bar.update(done),
          });
          bar.stop();
          print({ contacts: population.length, ...written });
        });
      },
    );
}
