// Two compilers on one data set, alternating: each bench segment (bench/segments-list.ts) compiled by
// the segment engine of another checkout (`--old`, e.g. a `git worktree` of the base commit) and by
// this one, each query run once to warm up and then `runs` times in turns (old first, then new first),
// in one process on one chdb, so both see the same caches and load. Prints a markdown table row
// per segment: p50 wall ms (p50 process CPU ms) for old and new, and the count (both must agree).
// Usage: node bench/segments-ab.ts --old <checkout> --data <data set dir> [--runs 5] [--only regex]
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import pino from 'pino';
import { openRuntime } from '../engine/runtime.ts';
import { loadSchema, rollupCompresses } from '../engine/segments/audiences.ts';
import { compileSegment as compileNew } from '../engine/segments/index.ts';
import { BENCH_SEGMENTS, NOW } from './segments-list.ts';

const args = process.argv.slice(2);
const option = (name: string) =>
  args.includes(`--${name}`) ? args[args.indexOf(`--${name}`) + 1] : undefined;
const oldCheckout = option('old');
const dataDir = option('data');
if (!oldCheckout || !dataDir)
  throw new Error('usage: node bench/segments-ab.ts --old <checkout> --data <dir>');
const runs = Number(option('runs') ?? 5);
const only = option('only');
const { compileSegment: compileOld } = (await import(
  pathToFileURL(resolve(oldCheckout, 'engine/segments/index.ts')).href
)) as { compileSegment: typeof compileNew };
const runtime = await openRuntime({
  config: { dataDir, logLevel: 'silent' },
  log: pino({ level: 'silent' }),
});
const meta = JSON.parse(readFileSync(`${dataDir}/bench-meta.json`, 'utf8'));
const segs = BENCH_SEGMENTS.map(([, dsl]) => dsl).filter((s) => !only || new RegExp(only).test(s));
const schema = await loadSchema(runtime.pg, meta.workspaceId, runtime.ch);
const compresses = await rollupCompresses(runtime);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
try {
  for (const seg of segs) {
    const out: Record<string, { wall: number[]; cpu: number[]; count?: string }> = {
      old: { wall: [], cpu: [] },
      new: { wall: [], cpu: [] },
    };
    const opts = {
      workspaceId: meta.workspaceId,
      now: NOW,
      database: runtime.ch.database,
      rollupCompresses: compresses,
    };
    const q = { old: compileOld(seg, schema, opts).compiled!, new: compileNew(seg, schema, opts).compiled! };
    if (!q.old || !q.new) continue;
    for (let i = 0; i <= runs; i++)
      for (const k of (i % 2 ? ['old', 'new'] : ['new', 'old']) as ('old' | 'new')[]) {
        const t = performance.now();
        const c = process.cpuUsage();
        const rows = await runtime.ch.rows<{ n: string }>(
          `SELECT count() AS n FROM (${q[k].sql})`,
          q[k].params,
        );
        const u = process.cpuUsage(c);
        if (i > 0) {
          out[k]!.wall.push(performance.now() - t);
          out[k]!.cpu.push((u.user + u.system) / 1000);
        }
        if (out[k]!.count !== undefined && out[k]!.count !== rows[0]!.n) process.exitCode = 1;
        out[k]!.count = rows[0]!.n;
      }
    if (out.old!.count !== out.new!.count) process.exitCode = 1;
    const g = (k: string) => `${Math.round(median(out[k]!.wall))} (${Math.round(median(out[k]!.cpu))})`;
    console.log(
      `| \`${seg.replaceAll('|', '\\|')}\` | ${g('old')} | ${g('new')} | ${out.old!.count === out.new!.count ? Number(out.new!.count).toLocaleString('en-US') : `DIFF ${out.old!.count} ${out.new!.count}`} |`,
    );
  }
} finally {
  await runtime.close();
}
