import { readdirSync, readFileSync } from 'node:fs';

// CPU seconds of this process's threads by name (/proc): the main thread, V8's helpers (GC),
// Node worker threads (event checks, phone parsing), libuv's pool and ClickHouse's (chdb) threads.
export function threadCpu(): Map<string, number> {
  const out = new Map<string, number>();
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const key = tid === String(process.pid) ? 'main' : name.replace(/[-_ ]?[0-9]+$/, '');
      out.set(key, (out.get(key) ?? 0) + (Number(fields[11]) + Number(fields[12])) / 100);
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return out;
}
