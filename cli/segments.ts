import type { Command } from 'commander';
import type { Runtime } from '../engine/runtime.ts';
import {
  type AudienceInput,
  countAudience,
  createSnapshot,
  loadSchema,
  previewAudience,
  SegmentError,
} from '../engine/segments/audiences.ts';
import type { EventPath } from '../engine/segments/compiler.ts';
import type { Diagnostic } from '../engine/segments/diagnostics.ts';
import { compileSegment } from '../engine/segments/index.ts';
import { listWorkspaces } from '../engine/workspaces.ts';
import { print, withRuntime } from './core.ts';

interface SegmentOptions {
  workspace?: string;
  now?: string;
  segment?: string;
  path?: EventPath;
}

/** The workspace to use: the one named, or the only one there is. */
async function resolveWorkspace(runtime: Runtime, id: string | undefined): Promise<string> {
  if (id) return id;
  const all = await listWorkspaces(runtime.pg);
  if (all.length === 1) return all[0]!.id;
  throw new Error(
    all.length
      ? `several workspaces exist; pass --workspace (${all.map((w) => w.id).join(', ')})`
      : 'no workspace yet; run chorus workspace create',
  );
}

function parseNow(now: string | undefined): Date | undefined {
  if (!now) return undefined;
  const at = new Date(now);
  if (Number.isNaN(at.getTime())) throw new Error(`--now ${now} is not an ISO date-time`);
  return at;
}

function input(dsl: string | undefined, options: SegmentOptions): AudienceInput {
  if (options.segment) return { segment_id: options.segment };
  if (dsl === undefined) throw new Error('give the segment text, or --segment <id>');
  return { dsl };
}

/** `line:col code message (did you mean x?)`, then the source line and a caret under the spot. */
export function formatDiagnostics(source: string | undefined, diagnostics: Diagnostic[]): string {
  const lines = source?.split('\n') ?? [];
  return diagnostics
    .map((d) => {
      const head = `${d.line}:${d.column} ${d.severity} [${d.code}] ${d.message}`;
      const expected = d.expected?.length ? `\n  expected: ${d.expected.join(', ')}` : '';
      const text = lines[d.line - 1];
      const caret =
        text !== undefined && text.length < 300
          ? `\n  ${text}\n  ${' '.repeat(Math.max(0, d.column - 1))}${'^'.repeat(Math.max(1, Math.min(d.length, 60)))}`
          : '';
      return `${head}${expected}${caret}`;
    })
    .join('\n');
}

async function run<T>(dsl: string | undefined, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    if (error instanceof SegmentError && error.diagnostics.length) {
      process.stderr.write(`${formatDiagnostics(dsl, error.diagnostics)}\n`);
      process.exit(1);
    }
    throw error;
  }
}

export function registerSegmentCommands(program: Command): void {
  const segment = program
    .command('segment')
    .description('Count, preview, check and compile audiences in the segment language');
  const common = (command: Command) =>
    command
      .argument('[dsl]', 'the segment, e.g. \'did "purchase" in last 30 days and country = "IN"\'')
      .option('--workspace <id>', 'workspace id (default: the only workspace)')
      .option('--now <iso>', 'evaluate as of this instant (default: now), for reproducible answers')
      .option('--segment <id>', 'a saved segment instead of text')
      .option('--path <path>', 'event path: auto, raw or rollup', 'auto');

  common(segment.command('count').description('How many contacts match')).action(
    async (dsl: string | undefined, options: SegmentOptions) => {
      await withRuntime(async (runtime) => {
        const workspaceId = await resolveWorkspace(runtime, options.workspace);
        const now = parseNow(options.now) ?? new Date();
        const started = performance.now();
        const result = await run(dsl, () =>
          countAudience(runtime, workspaceId, input(dsl, options), { now, path: options.path ?? 'auto' }),
        );
        if (result.diagnostics.length)
          process.stderr.write(`${formatDiagnostics(dsl, result.diagnostics)}\n`);
        print({ count: result.count, now: now.toISOString(), ms: Math.round(performance.now() - started) });
      });
    },
  );

  common(segment.command('preview').description('A page of matching contacts with their attributes'))
    .option('--limit <n>', 'contacts per page (1 to 1000)', '20')
    .option('--after <id>', 'the last contact id of the previous page')
    .option('--attributes <names>', 'comma-separated custom attributes to show (default all)')
    .action(
      async (
        dsl: string | undefined,
        options: SegmentOptions & { limit: string; after?: string; attributes?: string },
      ) => {
        await withRuntime(async (runtime) => {
          const workspaceId = await resolveWorkspace(runtime, options.workspace);
          const result = await run(dsl, () =>
            previewAudience(runtime, workspaceId, input(dsl, options), {
              now: parseNow(options.now) ?? new Date(),
              path: options.path ?? 'auto',
              limit: Number(options.limit),
              ...(options.after ? { after: options.after } : {}),
              ...(options.attributes
                ? { attributes: options.attributes.split(',').map((a) => a.trim()) }
                : {}),
            }),
          );
          print({ contacts: result.contacts, next_cursor: result.next_cursor });
        });
      },
    );

  common(
    segment
      .command('snapshot')
      .description('Freeze the matching contact ids; prints the snapshot id and count'),
  )
    .option('--id <snapshotId>', 'snapshot id (default: a new one)')
    .action(async (dsl: string | undefined, options: SegmentOptions & { id?: string }) => {
      await withRuntime(async (runtime) => {
        const workspaceId = await resolveWorkspace(runtime, options.workspace);
        const result = await run(dsl, () =>
          createSnapshot(runtime, workspaceId, input(dsl, options), {
            now: parseNow(options.now) ?? new Date(),
            path: options.path ?? 'auto',
            ...(options.id ? { snapshotId: options.id } : {}),
          }),
        );
        print(result);
      });
    });

  common(segment.command('sql').description('Print the compiled ClickHouse SQL and its parameters')).action(
    async (dsl: string | undefined, options: SegmentOptions) => {
      await withRuntime(async (runtime) => {
        const workspaceId = await resolveWorkspace(runtime, options.workspace);
        const schema = await loadSchema(runtime.pg, workspaceId, runtime.ch);
        const started = performance.now();
        const result = compileSegment(dsl ?? '', schema, {
          workspaceId,
          now: parseNow(options.now) ?? new Date(),
          database: runtime.ch.database,
          path: options.path ?? 'auto',
        });
        const ms = performance.now() - started;
        if (result.diagnostics.length)
          process.stderr.write(`${formatDiagnostics(dsl, result.diagnostics)}\n`);
        if (!result.compiled) process.exit(1);
        print(
          `-- compiled in ${ms.toFixed(2)} ms; plan ${JSON.stringify(result.compiled.plan)}\n${result.compiled.sql}\n`,
        );
        print({ params: result.compiled.params });
      });
    },
  );

  common(
    segment
      .command('check')
      .description('Parse and type the segment; print every diagnostic with line:col and suggestions'),
  )
    .option('--json', 'print diagnostics and the tree as JSON')
    .action(async (dsl: string | undefined, options: SegmentOptions & { json?: boolean }) => {
      await withRuntime(async (runtime) => {
        const workspaceId = await resolveWorkspace(runtime, options.workspace);
        const schema = await loadSchema(runtime.pg, workspaceId, runtime.ch);
        const result = compileSegment(dsl ?? '', schema, {
          workspaceId,
          now: parseNow(options.now) ?? new Date(),
          database: runtime.ch.database,
        });
        const errors = result.diagnostics.filter((d) => d.severity === 'error').length;
        if (options.json) {
          print({ valid: errors === 0, diagnostics: result.diagnostics, ast: result.ast });
        } else {
          print(
            result.diagnostics.length ? formatDiagnostics(dsl, result.diagnostics) : 'ok: no problems found',
          );
        }
        if (errors) process.exitCode = 1;
      });
    });
}
