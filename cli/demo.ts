import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import { type RunningDemo, runCampaignDemo } from '../dashboards/demo.ts';
import {
  clearWorkspaceData,
  ensureDemoWorkspace,
  generateDemo,
  workspaceCounts,
} from '../engine/demo/index.ts';
import { demoSteps } from '../engine/demo/steps.ts';
import type { Runtime } from '../engine/runtime.ts';
import { createApiKey, type Workspace } from '../engine/workspaces.ts';
import { print, withRuntime } from './core.ts';
import { resolveWorkspace } from './workspace.ts';

interface GenerateOptions {
  contacts?: string;
  days?: string;
  seed?: string;
  until?: string;
  workspace?: string;
  reset?: boolean;
}

async function generate(runtime: Runtime, workspace: Workspace, options: GenerateOptions) {
  const contacts = Number(options.contacts ?? 20_000);
  const days = Number(options.days ?? 60);
  const seed = Number(options.seed ?? 42);
  if (!Number.isInteger(contacts) || contacts < 1 || contacts > 10_000_000)
    throw new Error('--contacts must be 1 to 10,000,000');
  if (!Number.isInteger(days) || days < 1 || days > 730) throw new Error('--days must be 1 to 730');
  if (!Number.isInteger(seed)) throw new Error('--seed must be an integer');
  const until = options.until ? new Date(options.until) : undefined;
  if (until && Number.isNaN(until.getTime())) throw new Error('--until must be a date, e.g. 2026-03-01');
  if (options.reset) await clearWorkspaceData(runtime, workspace.id);
  const progress = process.stderr.isTTY
    ? new cliProgress.SingleBar(
        { format: 'demo [{bar}] {value}/{total} contacts | {eta}s left', hideCursor: true },
        cliProgress.Presets.shades_classic,
      )
    : undefined;
  progress?.start(contacts, 0);
  const summary = await generateDemo(runtime, workspace, {
    contacts,
    days,
    seed,
    until,
    onProgress: (done) => progress?.update(done),
  });
  progress?.stop();
  const steps: Record<string, unknown> = {};
  for (const step of demoSteps) steps[step.name] = await step.run(runtime, { workspace, summary, seed });
  return { summary, steps };
}

export function registerDemoCommands(program: Command): void {
  const demo = program
    .command('demo')
    .description('Build the demo workspace, run a broadcast through the simulator and serve its dashboard')
    .option('--contacts <n>', 'contacts to generate (default 20000)')
    .option('--days <n>', 'days of event history (default 60)')
    .option('--seed <n>', 'random seed; the same seed and day give the same data (default 42)')
    .option('--reset', 'delete the demo data first and build it again')
    .option('--no-campaign', 'only build the data: no simulator, broadcast or dashboard')
    .option('--no-serve', 'exit after printing the dashboard URL instead of serving it until Ctrl-C')
    .option('--port <port>', 'port of the API and dashboards', process.env.PORT ?? '3000')
    .action(async (options: GenerateOptions & { campaign: boolean; serve: boolean; port: string }) => {
      let live: RunningDemo | undefined;
      await withRuntime(async (runtime) => {
        const { workspace, created } = await ensureDemoWorkspace(runtime);
        const before = await workspaceCounts(runtime, workspace.id);
        let made: Awaited<ReturnType<typeof generate>> | undefined;
        if (before.contacts === 0 || options.reset) made = await generate(runtime, workspace, options);
        const counts = await workspaceCounts(runtime, workspace.id);
        const key = await createApiKey(runtime.pg, workspace.id, 'demo');
        const port = process.env.PORT ?? '3000';
        print({
          workspace: { id: workspace.id, name: workspace.name, created },
          generated: made ? made.summary : 'the demo data already exists (use --reset to rebuild it)',
          ...(made && Object.keys(made.steps).length ? { steps: made.steps } : {}),
          totals: counts,
          api_key: key.key,
          next: [
            'npm run chorus -- serve',
            `curl -H "Authorization: Bearer ${key.key}" "http://127.0.0.1:${port}/v1/contacts?limit=3"`,
            `open http://127.0.0.1:${port}/docs`,
          ],
        });
        if (!options.campaign) return;
        // The live part (dashboards/demo.ts): simulator, sender, broadcast, statuses, dashboard URL.
        live = await runCampaignDemo(runtime, workspace, { port: Number(options.port) });
        process.stdout.write(`\nDashboard: ${live.url}\n`);
        if (!options.serve) {
          // Once the URL is out the demo is over: a close that hangs must not keep the process alive.
          setTimeout(() => {
            process.stderr.write('chorus demo: shutting down took over 10 s; exiting\n');
            process.exit(0);
          }, 10_000).unref();
          await live.close();
          return;
        }
        process.stdout.write('Serving the API and the dashboard; Ctrl-C to stop.\n');
        await new Promise<void>((resolve) => {
          process.once('SIGINT', resolve);
          process.once('SIGTERM', resolve);
        });
        await live.close();
      });
    });

  demo
    .command('generate')
    .description('Generate deterministic demo contacts and events into a workspace')
    .option('--contacts <n>', 'contacts to generate (default 20000)')
    .option('--days <n>', 'days of event history, ending at the start of today, UTC (default 60)')
    .option('--seed <n>', 'random seed (default 42)')
    .option('--until <date>', 'end of the history window (default: start of today, UTC)')
    .option('--workspace <id>', 'workspace to fill (default: the demo workspace, created if missing)')
    .option('--reset', "delete the workspace's contacts, events and consent first")
    .action(async (own: GenerateOptions) => {
      // Options shared with `demo` are parsed by the parent command; take them from there too.
      const options = {
        ...own,
        ...Object.fromEntries(Object.entries(demo.opts()).filter(([, v]) => v !== undefined)),
      } as GenerateOptions;
      await withRuntime(async (runtime) => {
        const workspace = options.workspace
          ? await resolveWorkspace(runtime, options.workspace)
          : (await ensureDemoWorkspace(runtime)).workspace;
        const made = await generate(runtime, workspace, options);
        print({ ...made.summary, ...(Object.keys(made.steps).length ? { steps: made.steps } : {}) });
      });
    });
}
