// The simulator in its own process, started the way users start it (`chorus sim ...`), so a benchmark's
// load generator or workers never share its event loop or its core.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export interface SimulatorProcess {
  url: string;
  pid: number;
  /** The simulator's own CPU time so far (µs), from GET /_sim/stats. */
  cpuMicros(): Promise<number>;
  stop(): void;
}

export async function startSimulatorProcess(args: string[]): Promise<SimulatorProcess> {
  const cli = fileURLToPath(new URL('../cli/main.ts', import.meta.url));
  const child = spawn(
    process.execPath,
    [
      ...(process.env.SIM_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.SIM_PROF}`] : []),
      cli,
      'sim',
      '--port',
      '0',
      ...args,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const match = /"url": "([^"]+)"/.exec(out);
      if (match) resolve(match[1]!);
    });
    child.once('exit', (code) => reject(new Error(`simulator exited with ${code}`)));
  });
  return {
    url,
    pid: child.pid!,
    async cpuMicros() {
      const stats = (await (await fetch(`${url}/_sim/stats`)).json()) as { cpuMicros: number };
      return stats.cpuMicros;
    },
    stop: () => void child.kill('SIGTERM'),
  };
}

/** CPU seconds (user + system) a process of this machine has used so far, from /proc. */
export function processCpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime are fields 14 and 15 of the line, in clock ticks (100 per second on Linux).
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return Number.NaN;
  }
}
