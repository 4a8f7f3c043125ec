// Segment count latency (p50/p95) and compile time, raw events vs the daily rollup, on the demo
// generator's data built inside ClickHouse (bench/segments-data.ts). Sizes: `--size small` (default,
// 20k contacts / ~1M events), `1m` (1M / ~100M), `10m` (10M / ~500M), `full` (both), or any
// `<contacts>x<days>` such as `5000000x52`. Big data sets are built once and kept in
// `--data <dir>` (default data/bench, or CHORUS_BENCH_DATA), one directory per size and
// seed: `--phase generate` builds them (run it outside the bench lock), `--phase query` times the
// queries, `--only <regex>` picks segments and `--runs <n>` sets the measured runs. Each segment is
// timed on `auto` (what audiences run) and, where their SQL differs, on the forced `raw` and `rollup`
// paths (`--paths raw,rollup`, the default, or `none`); all must give the same count.

import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { defineDemoSchema } from '../engine/demo/generate.ts';
import { openRuntime, type Runtime } from '../engine/runtime.ts';
import { loadSchema, rollupCompresses } from '../engine/segments/audiences.ts';
import type { EventPath } from '../engine/segments/compiler.ts';
import { compileSegment, parseSegment } from '../engine/segments/index.ts';
import { insertSegment } from '../engine/segments/store.ts';
import { createWorkspace } from '../engine/workspaces.ts';
import { generateBenchData } from './segments-data.ts';
import { BENCH_SEGMENTS, HIGH_VALUE, NOW } from './segments-list.ts';

const args = process.argv.slice(2);
const option = (name: string) =>
  args.includes(`--${name}`) ? args[args.indexOf(`--${name}`) + 1] : undefined;
const size = option('size') ?? 'small';
const phase = option('phase') ?? 'all';
const only = option('only') ? new RegExp(option('only')!) : undefined;
const seed = Number(option('seed') ?? 1);
const dataRoot = option('data') ?? process.env.CHORUS_BENCH_DATA ?? 'data/bench';
// Days of history per size: the demo model makes about 0.95 events per contact per day, so these
// give ~100 events per contact at 1M (100M) and ~50 at 10M (500M).
const NAMED: Record<string, { contacts: number; days: number }[]> = {
  small: [{ contacts: 20_000, days: 52 }],
  '1m': [{ contacts: 1_000_000, days: 105 }],
  '10m': [{ contacts: 10_000_000, days: 52 }],
  full: [
    { contacts: 1_000_000, days: 105 },
    { contacts: 10_000_000, days: 52 },
  ],
};
const custom = /^(\d+)x(\d+)$/.exec(size);
const SIZES =
  NAMED[size] ?? (custom ? [{ contacts: Number(custom[1]), days: Number(custom[2]) }] : undefined);
if (!SIZES) throw new Error(`unknown --size ${size}`);
const RUNS = Number(option('runs') ?? 7);
// Forced paths timed besides `auto` where their SQL differs (`--paths raw,rollup`, the default, or `none`).
const forcedPaths = (option('paths') ?? 'raw,rollup').split(',');
function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

interface Meta {
  workspaceId: string;
  contacts: number;
  days: number;
  seed: number;
  events: number;
  eventsDaily: number;
  bytesOnDisk: number;
  generateSeconds: number;
  generateCpuSeconds: number;
}

const setupSegments = async (runtime: Runtime): Promise<string> => {
  const workspace = await createWorkspace(runtime.pg, { name: 'Bench', timezone: 'Asia/Kolkata' });
  await defineDemoSchema(runtime.pg, workspace.id, [
    { name: 'email', type: 'string', description: 'email address' },
    { name: 'name', type: 'string', description: 'full name' },
  ]);
  await insertSegment(runtime.pg, workspace.id, {
    name: 'high_value',
    dsl: HIGH_VALUE,
    ast: parseSegment(HIGH_VALUE).ast!,
  });
  return workspace.id;
};

/** Waits until background merges have settled, so timings do not include a merge storm. */
const settle = async (runtime: Runtime) => {
  const db = runtime.ch.database;
  for (const table of [
    'events',
    'events_daily',
    'events_by_contact',
    'contact_activity',
    'contacts',
    'sends',
    'message_statuses',
  ])
    await runtime.ch.command(`OPTIMIZE TABLE ${db}.${table} FINAL`);
};

const open = (dataDir: string) =>
  openRuntime({ config: { dataDir, logLevel: 'silent' }, log: pino({ level: 'silent' }) });

async function generateSize(dataDir: string, contacts: number, days: number): Promise<Meta> {
  rmSync(dataDir, { recursive: true, force: true });
  mkdirSync(dataDir, { recursive: true });
  const runtime = await open(dataDir);
  try {
    const workspaceId = await setupSegments(runtime);
    const wall = performance.now();
    const cpu = process.cpuUsage();
    await generateBenchData(runtime, { workspaceId, contacts, days, seed, until: NOW }, (message) =>
      process.stdout.write(`  ${message} (${((performance.now() - wall) / 1000).toFixed(0)} s)\n`),
    );
    await settle(runtime);
    const used = process.cpuUsage(cpu);
    const parts = await runtime.ch.rows<{ table: string; rows: string; bytes: string }>(
      `SELECT table, sum(rows) AS rows, sum(bytes_on_disk) AS bytes FROM system.parts
       WHERE database = {db:String} AND active GROUP BY table`,
      { db: runtime.ch.database },
    );
    const rowsOf = (table: string) => Number(parts.find((p) => p.table === table)?.rows ?? 0);
    const meta: Meta = {
      workspaceId,
      contacts,
      days,
      seed,
      events: rowsOf('events'),
      eventsDaily: rowsOf('events_daily'),
      bytesOnDisk: parts.reduce((sum, p) => sum + Number(p.bytes), 0),
      generateSeconds: Math.round((performance.now() - wall) / 100) / 10,
      generateCpuSeconds: Math.round((used.user + used.system) / 100_000) / 10,
    };
    writeFileSync(join(dataDir, 'bench-meta.json'), `${JSON.stringify(meta, null, 2)}\n`);
    return meta;
  } finally {
    await runtime.close();
  }
}

const results: Record<string, unknown>[] = [];
const machine = {
  cores: cpus().length,
  cpu: cpus()[0]?.model,
  loadavg_start: loadavg()
    .map((l) => l.toFixed(2))
    .join(' '),
};
for (const { contacts, days } of SIZES) {
  const persistent = size !== 'small';
  const dataDir = persistent
    ? join(dataRoot, `segments-${contacts}x${days}-seed${seed}`)
    : mkdtempSync(join(tmpdir(), 'chorus-bench-segments-'));
  const metaFile = join(dataDir, 'bench-meta.json');
  let meta: Meta | undefined = existsSync(metaFile)
    ? (JSON.parse(readFileSync(metaFile, 'utf8')) as Meta)
    : undefined;
  if (!meta || phase === 'generate') {
    if (phase === 'query') throw new Error(`no data in ${dataDir}: run with --phase generate first`);
    process.stdout.write(`generating ${contacts} contacts x ${days} days into ${dataDir}\n`);
    meta = await generateSize(dataDir, contacts, days);
    process.stdout.write(`${JSON.stringify(meta)}\n`);
  }
  if (phase === 'generate') continue;
  const runtime = await open(dataDir);
  try {
    const ws = meta.workspaceId;
    const schema = await loadSchema(runtime.pg, ws);
    const compresses = await rollupCompresses(runtime);
    const label = `${contacts}/${meta.events}`;
    process.stdout.write(
      `${label}: ${meta.eventsDaily} rollup rows (${(meta.eventsDaily / meta.events).toFixed(2)} per event, auto uses the rollup: ${compresses}), ${(meta.bytesOnDisk / 1e9).toFixed(2)} GB on disk, load ${loadavg()[0]!.toFixed(2)}\n`,
    );
    const segments = BENCH_SEGMENTS.filter(([name]) => !only || only.test(name));
    for (const [name, dsl] of segments) {
      const options = {
        workspaceId: ws,
        now: NOW,
        database: runtime.ch.database,
        rollupCompresses: compresses,
      };
      // Compile time: warm, averaged over many compiles (parse + check + compile).
      const compileRuns = 300;
      const t0 = performance.now();
      for (let i = 0; i < compileRuns; i++) compileSegment(dsl, schema, options);
      const compileMs = (performance.now() - t0) / compileRuns;
      const row: Record<string, unknown> = {
        size: label,
        segment: name,
        compile_ms: Number(compileMs.toFixed(3)),
      };
      const auto = compileSegment(dsl, schema, options).compiled!;
      row.auto_path =
        [
          auto.plan.rollup ? 'rollup' : '',
          auto.plan.summary ? 'summary' : '',
          auto.plan.activity ? 'activity' : '',
        ]
          .filter(Boolean)
          .join('+') || 'raw';
      // `auto` (what counts, previews and snapshots run) always; the forced paths where they differ.
      const paths: EventPath[] = ['auto'];
      for (const path of ['raw', 'rollup'] as const) {
        const forced = compileSegment(dsl, schema, { ...options, path }).compiled!;
        if (forcedPaths.includes(path) && forced.sql !== auto.sql) paths.push(path);
      }
      for (const path of paths) {
        const compiled = compileSegment(dsl, schema, { ...options, path }).compiled!;
        const sql = `SELECT count() AS count FROM (${compiled.sql})`;
        const times: number[] = [];
        const cpuTimes: number[] = [];
        let count = 0;
        for (let i = 0; i <= RUNS; i++) {
          const start = performance.now();
          const cpu = process.cpuUsage();
          const rows = await runtime.ch.rows<{ count: string }>(sql, compiled.params);
          const used = process.cpuUsage(cpu);
          if (i > 0) {
            times.push(performance.now() - start);
            cpuTimes.push((used.user + used.system) / 1000);
          }
          count = Number(rows[0]!.count);
        }
        row[`${path}_count`] = count;
        row[`${path}_p50_ms`] = Math.round(percentile(times, 50));
        row[`${path}_p95_ms`] = Math.round(percentile(times, 95));
        row[`${path}_cpu_p50_ms`] = Math.round(percentile(cpuTimes, 50));
      }
      row.loadavg = loadavg()[0]!.toFixed(2);
      results.push(row);
      process.stdout.write(
        `${name.slice(0, 70).padEnd(72)} compile ${compileMs.toFixed(3)} ms  auto (${row.auto_path}) p50 ${row.auto_p50_ms} p95 ${row.auto_p95_ms} ms (cpu ${row.auto_cpu_p50_ms})${paths
          .slice(1)
          .map(
            (path) =>
              `  ${path} p50 ${row[`${path}_p50_ms`]} p95 ${row[`${path}_p95_ms`]} ms (cpu ${row[`${path}_cpu_p50_ms`]})`,
          )
          .join('')}  count ${row.auto_count}  load ${row.loadavg}\n`,
      );
      for (const path of paths.slice(1))
        if (row[`${path}_count`] !== row.auto_count) throw new Error(`${path} and auto disagree on ${name}`);
    }
  } finally {
    await runtime.close();
    if (!persistent) rmSync(dataDir, { recursive: true, force: true });
  }
}
if (phase !== 'generate') {
  const dir = new URL('./results/', import.meta.url).pathname;
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `segments-${size}${only ? '-partial' : ''}.json`);
  writeFileSync(
    file,
    `${JSON.stringify(
      {
        size,
        now: NOW.toISOString(),
        runs: RUNS,
        machine: {
          ...machine,
          loadavg_end: loadavg()
            .map((l) => l.toFixed(2))
            .join(' '),
        },
        results,
      },
      null,
      2,
    )}\n`,
  );
  process.stdout.write(`results in ${file}\n`);
}
