/**
 * Simulated time. Every delay, pair window and 24 h window in the simulator reads `now()` from here,
 * so tests either drive time by hand (`manual`: nothing happens until `advance`) or run it faster
 * than the wall clock (`speed`).
 */
export interface ClockOptions {
  /** Simulated start time (ms since epoch); default the wall clock at start. */
  start?: number;
  /** Time moves only through advance() (tests). */
  manual?: boolean;
  /** Simulated ms per real ms when not manual; default 1. */
  speed?: number;
}

interface Task {
  at: number;
  seq: number;
  run: () => unknown;
}

/** A binary min-heap on (at, seq): events at the same moment run in the order they were scheduled. */
class TaskHeap {
  private items: Task[] = [];
  get size() {
    return this.items.length;
  }
  peek(): Task | undefined {
    return this.items[0];
  }
  // Sift with a moving hole (one write per level, no swaps): the heap holds every pending status of
  // every message, so push and pop are on the send path's budget.
  push(task: Task) {
    const items = this.items;
    let i = items.length;
    items.push(task);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const above = items[parent]!;
      if (above.at < task.at || (above.at === task.at && above.seq < task.seq)) break;
      items[i] = above;
      i = parent;
    }
    items[i] = task;
  }
  pop(): Task | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    const size = items.length;
    if (size === 0 || last === undefined) return top;
    let i = 0;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= size) break;
      let smaller = items[child]!;
      const right = child + 1 < size ? items[child + 1]! : undefined;
      if (right && (right.at < smaller.at || (right.at === smaller.at && right.seq < smaller.seq))) {
        child++;
        smaller = right;
      }
      if (last.at < smaller.at || (last.at === smaller.at && last.seq < smaller.seq)) break;
      items[i] = smaller;
      i = child;
    }
    items[i] = last;
    return top;
  }
  clear() {
    this.items = [];
  }
}

export class SimClock {
  readonly manual: boolean;
  readonly speed: number;
  private readonly heap = new TaskHeap();
  private seq = 0;
  private manualNow: number;
  private readonly realStart = Date.now();
  private readonly simStart: number;
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Number.POSITIVE_INFINITY;
  private readonly inFlight = new Set<Promise<unknown>>();
  private closed = false;

  constructor(options: ClockOptions = {}) {
    this.manual = options.manual ?? false;
    this.speed = options.speed ?? 1;
    if (!(this.speed > 0)) throw new Error('speed must be positive');
    this.simStart = options.start ?? Date.now();
    this.manualNow = this.simStart;
  }

  now(): number {
    return this.manual ? this.manualNow : this.simStart + (Date.now() - this.realStart) * this.speed;
  }

  /** Runs `run` at simulated time `at` (at once if that is past). */
  at(at: number, run: () => unknown): void {
    if (this.closed) return;
    this.heap.push({ at, seq: this.seq++, run });
    if (!this.manual && at < this.timerAt) this.arm();
  }

  after(ms: number, run: () => unknown): void {
    this.at(this.now() + Math.max(0, ms), run);
  }

  /** Manual clock: moves time forward by ms, running every task due on the way, in order. */
  async advance(ms: number): Promise<void> {
    if (!this.manual) throw new Error('advance() needs a manual clock');
    const target = this.manualNow + ms;
    for (let task = this.heap.peek(); task && task.at <= target; task = this.heap.peek()) {
      this.heap.pop();
      this.manualNow = Math.max(this.manualNow, task.at);
      await task.run();
    }
    this.manualNow = target;
    await this.settle();
  }

  /** Waits for tasks started by the real-time loop. */
  async settle(): Promise<void> {
    while (this.inFlight.size) await Promise.allSettled([...this.inFlight]);
  }

  /** Tasks not yet run. */
  get pending(): number {
    return this.heap.size;
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.heap.clear();
  }

  private arm(): void {
    if (this.timer) clearTimeout(this.timer);
    const next = this.heap.peek();
    if (!next || this.closed) {
      this.timer = undefined;
      this.timerAt = Number.POSITIVE_INFINITY;
      return;
    }
    this.timerAt = next.at;
    const wait = Math.min(2 ** 31 - 1, Math.max(0, (next.at - this.now()) / this.speed));
    this.timer = setTimeout(() => this.runDue(), wait);
    this.timer.unref?.();
  }

  private runDue(): void {
    this.timerAt = Number.POSITIVE_INFINITY;
    const now = this.now();
    for (let task = this.heap.peek(); task && task.at <= now; task = this.heap.peek()) {
      this.heap.pop();
      try {
        const result = task.run();
        if (result instanceof Promise) {
          const tracked = result.catch(() => {}).finally(() => this.inFlight.delete(tracked));
          this.inFlight.add(tracked);
        }
      } catch {
        // A task's failure is its own; the clock keeps going.
      }
    }
    this.arm();
  }
}
