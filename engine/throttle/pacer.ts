/**
 * Local pacing for one sender inside one process. Slots reserved in Postgres say when each send may
 * start; timers in a busy event loop fire late and then all at once, which would bunch sends and
 * trip the provider's per-second limit. The pacer fires sends in slot order, from a token bucket
 * refilled at `minGapMs` per token holding at most `burst` tokens (so a late timer catches up in
 * small clumps, never a burst), and never more than `capacity` within any `windowMs` of actual
 * firing times (the provider's own rule, with a margin for the trip there).
 */
export interface PacedItem<T> {
  /** performance.now() time of the reserved slot. */
  slotAt: number;
  /** Called just before the send; false gives the slot up without using spacing. */
  ready: () => Promise<boolean> | boolean;
  fire: () => Promise<T>;
  /** Resolves with fire()'s result, or `skipped` when ready() said no. */
  resolve: (value: T | typeof SKIPPED) => void;
}

export const SKIPPED = Symbol('skipped');

export class SenderPacer {
  private queue: PacedItem<unknown>[] = [];
  private ring: number[] = [];
  private ringIndex = 0;
  private running = false;
  windowMs = 1_100;
  /** Fires are at least this far apart, so catching up after a stall is a brisk walk, not a burst. */
  minGapMs = 0;
  burst = 1;
  /** Requests allowed in flight at once: a slow provider gets fewer, not a pile of timeouts. */
  maxInFlight = 100;
  private inFlight = 0;
  /** The token bucket as a virtual time: a token is free when `virtual <= now`. */
  private virtual = Number.NEGATIVE_INFINITY;

  constructor(capacity: number) {
    this.resize(capacity);
  }

  /** Sends waiting for their turn in this process. */
  get backlog(): number {
    return this.queue.length;
  }

  resize(capacity: number): void {
    const size = Math.max(1, Math.floor(capacity));
    if (size === this.ring.length) return;
    this.ring = new Array(size).fill(Number.NEGATIVE_INFINITY);
    this.ringIndex = 0;
  }

  schedule<T>(
    slotAt: number,
    ready: () => Promise<boolean> | boolean,
    fire: () => Promise<T>,
  ): Promise<T | typeof SKIPPED> {
    return new Promise((resolve) => {
      const item = { slotAt, ready, fire, resolve } as PacedItem<unknown>;
      // Keep slot order; batches arrive mostly in order, so search from the end.
      let i = this.queue.length;
      while (i > 0 && this.queue[i - 1]!.slotAt > slotAt) i--;
      this.queue.splice(i, 0, item);
      void this.run();
    });
  }

  private async run(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      while (this.queue.length) {
        const item = this.queue[0]!;
        const due = Math.max(item.slotAt, this.ring[this.ringIndex]! + this.windowMs, this.virtual);
        const wait = this.inFlight >= this.maxInFlight ? 5 : due - performance.now();
        if (wait > 0) {
          // Sleep in short steps so an earlier slot arriving meanwhile, or a stop, is noticed.
          await new Promise((r) => setTimeout(r, Math.min(wait, 100)));
          if (wait > 100 && !(await item.ready())) {
            this.queue.splice(this.queue.indexOf(item), 1);
            item.resolve(SKIPPED);
          }
          continue;
        }
        this.queue.splice(this.queue.indexOf(item), 1);
        if (!(await item.ready())) {
          item.resolve(SKIPPED);
          continue;
        }
        const fired = performance.now();
        // Spend a token: the bucket never holds more than `burst`, so idle time buys no big burst.
        this.virtual = Math.max(this.virtual, fired - (this.burst - 1) * this.minGapMs) + this.minGapMs;
        this.ring[this.ringIndex] = fired;
        this.ringIndex = (this.ringIndex + 1) % this.ring.length;
        this.inFlight++;
        item
          .fire()
          .then(item.resolve, () => item.resolve(SKIPPED))
          .finally(() => this.inFlight--);
      }
    } finally {
      this.running = false;
    }
  }
}

const pacers = new Map<string, SenderPacer>();

/** The pacer of a sender whose provider limit is `limitPerSecond` (kept one under it, for jitter). */
export function pacerFor(senderId: string, limitPerSecond: number): SenderPacer {
  const capacity = Math.max(1, Math.floor(limitPerSecond) - 1);
  let pacer = pacers.get(senderId);
  if (!pacer) {
    pacer = new SenderPacer(capacity);
    pacers.set(senderId, pacer);
  }
  pacer.resize(capacity);
  pacer.minGapMs = 750 / limitPerSecond;
  pacer.burst = Math.max(2, Math.round(limitPerSecond / 40));
  pacer.maxInFlight = Math.max(10, Math.round(limitPerSecond / 10));
  return pacer;
}
