// `npm run bench [-- names...] [--size small|full] [options of the benchmarks]`: runs each benchmark in its own process
// (chdb binds one data directory per process) and prints where its results went.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const dir = fileURLToPath(new URL('.', import.meta.url));
const args = process.argv.slice(2);
const sizeIndex = args.indexOf('--size');
const size = sizeIndex >= 0 ? args[sizeIndex + 1] : 'small';
const all = readdirSync(dir)
  .filter((file) => file.endsWith('.bench.ts'))
  .map((file) => file.replace(/\.bench\.ts$/, ''))
  .sort();
// Benchmark names anywhere in the arguments; every other argument but `--size` is passed on
// (options a benchmark takes, such as `--phase query`).
const isSize = (i: number) => sizeIndex >= 0 && (i === sizeIndex || i === sizeIndex + 1);
const names = args.filter((arg, i) => all.includes(arg) && !isSize(i));
const passed = args.filter((arg, i) => !all.includes(arg) && !isSize(i));
const chosen = names.length ? all.filter((name) => names.includes(name)) : all;
let failed = 0;
for (const name of chosen) {
  process.stdout.write(`\n== bench ${name} (size ${size}) ==\n`);
  const run = spawnSync(process.execPath, [`${dir}${name}.bench.ts`, '--size', String(size), ...passed], {
    stdio: 'inherit',
  });
  if (run.status !== 0) failed++;
}
process.stdout.write(
  `\n${chosen.length - failed} benchmarks ran, ${failed} failed; results in bench/results/\n`,
);
process.exit(failed ? 1 : 0);
