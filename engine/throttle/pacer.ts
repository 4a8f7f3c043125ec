/**
 * Local pacing for one sender inside one process. Slots reserved in Postgres say when each send may
 * start; timers in a busy event loop fire late and then all at once, which would bunch sends and
 * trip the provider's per-second limit. The pacer fires sends in slot order and holds two rules:
 *
 * - The provider's own rule, judged by the provider's clock: it counts a message at some moment
 *   between our request leaving and its answer arriving. So a send may start only once the send
 *   `capacity` places before it has been *answered* at least `windowMs` ago; then, however late or
 *   bunched the provider's timestamps are (a stalled provider, a slow network), no window of
 *   `windowMs` holds more than `capacity` of ours. This rule is exact, so the slots can be reserved
 *   within a percent or two of the limit.
 * - A token bucket refilled every `minGapMs` holding at most `burst` tokens, so a late timer (or a
 *   stalled worker) catches up in small clumps, never a burst that crowds other processes' slots.
 */
export interface PacedItem<T> {
  /** performance.now() time of the reserved slot. */
  slotAt: number;
  /** Called just before the send; false gives the slot up without using spacing. */
  ready: () => Promise<boolean> | boolean;
  fire: () => Promise<T>;
  /** Resolves with fire()'s result, or `skipped` when ready() said no. */
  resolve: (value: T | typeof SKIPPED) => void;
  /** When ready() was last asked while the send waited (performance.now()). */
  checkedAt: number;
}

export const SKIPPED = Symbol('skipped');

/** How long a send is counted by the provider: Meta's limit is per second. */
export const PROVIDER_WINDOW_MS = 1_000;

export class SenderPacer {
  private queue: PacedItem<unknown>[] = [];
  /**
   * When each of the last `capacity` requests was answered (a ring in firing order): +Infinity while
   * one is in flight, since the provider may count it at any moment until it answers.
   */
  private answered: number[] = [];
  /** Sends fired so far: send number `n` keeps its answer time at `answered[n % capacity]`. */
  private fired = 0;
  private running = false;
  windowMs = PROVIDER_WINDOW_MS;
  /** Fires are at least this far apart, so catching up after a stall is a brisk walk, not a burst. */
  minGapMs = 0;
  burst = 1;
  /** Requests allowed in flight at once: a slow provider gets fewer, not a pile of timeouts. */
  maxInFlight = 100;
  private inFlight = 0;
  /** The token bucket as a virtual time: a token is free when `virtual <= now`. */
  private virtual = Number.NEGATIVE_INFINITY;
  /** No send starts before this (performance.now()): set when the provider says it is over its limit. */
  private heldUntil = Number.NEGATIVE_INFINITY;
  /** Wakes the run loop early when an answer frees the send that was waiting on it. */
  private wake: (() => void) | undefined;

  constructor(capacity: number) {
    this.resize(capacity);
  }

  /** Sends waiting for their turn in this process. */
  get backlog(): number {
    return this.queue.length;
  }

  /** Nothing waiting and nothing in flight. */
  get idle(): boolean {
    return this.queue.length === 0 && this.inFlight === 0;
  }

  get capacity(): number {
    return this.answered.length;
  }

  /**
   * A new capacity (the sender's share changed): the most recent answers are kept in firing order, so
   * shrinking holds the next send until the window drains to the new capacity; growing counts the
   * added, older places as answered when the oldest known one was (a moment's caution).
   */
  resize(capacity: number): void {
    const size = Math.max(1, Math.floor(capacity));
    const old = this.answered;
    if (size === old.length) return;
    const next = new Array<number>(size);
    const known = Math.min(old.length, this.fired);
    const first = known ? old[(this.fired - known) % old.length]! : Number.NEGATIVE_INFINITY;
    // An added place has no request to answer it: one still in flight is taken as answered now.
    const oldest = first === Number.POSITIVE_INFINITY ? performance.now() : first;
    for (let seq = this.fired - size; seq < this.fired; seq++) {
      const kept = seq >= 0 && seq >= this.fired - known;
      next[((seq % size) + size) % size] = kept ? old[seq % old.length]! : oldest;
    }
    this.answered = next;
  }

  schedule<T>(
    slotAt: number,
    ready: () => Promise<boolean> | boolean,
    fire: () => Promise<T>,
  ): Promise<T | typeof SKIPPED> {
    return new Promise((resolve) => {
      const item = { slotAt, ready, fire, resolve, checkedAt: performance.now() } as PacedItem<unknown>;
      // Keep slot order; batches arrive mostly in order, so search from the end.
      let i = this.queue.length;
      while (i > 0 && this.queue[i - 1]!.slotAt > slotAt) i--;
      this.queue.splice(i, 0, item);
      this.wake?.();
      void this.run();
    });
  }

  /**
   * The provider answered "over the limit" (another process shares the sender, or counted traffic we
   * do not see): stop firing into the full window for a moment instead of collecting more refusals.
   */
  holdFor(ms: number): void {
    this.heldUntil = Math.max(this.heldUntil, performance.now() + ms);
  }

  /** The earliest moment the next send may start by the provider's rule (Infinity: wait for an answer). */
  private providerDue(): number {
    return this.answered[this.fired % this.answered.length]! + this.windowMs;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = () => {
        this.wake = undefined;
        done();
      };
    });
  }

  private async run(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      while (this.queue.length) {
        const item = this.queue[0]!;
        const due = Math.max(item.slotAt, this.providerDue(), this.virtual, this.heldUntil);
        const wait = this.inFlight >= this.maxInFlight ? 5 : due - performance.now();
        if (wait > 0) {
          // A send still far off is asked every 100 ms whether it is wanted (a pause, a cancel), so
          // a stopped batch drains at once instead of one sleep per send.
          const now = performance.now();
          if (wait > 100 && Number.isFinite(wait) && now - item.checkedAt >= 100) {
            item.checkedAt = now;
            if (!(await item.ready())) {
              this.queue.splice(this.queue.indexOf(item), 1);
              item.resolve(SKIPPED);
              continue;
            }
          }
          // Sleep in short steps so an earlier slot arriving meanwhile, or a stop, is noticed.
          await this.sleep(Math.min(wait, 100));
          this.wake = undefined;
          continue;
        }
        this.queue.splice(this.queue.indexOf(item), 1);
        if (!(await item.ready())) {
          item.resolve(SKIPPED);
          continue;
        }
        const firedAt = performance.now();
        // Spend a token: the bucket never holds more than `burst`, so idle time buys no big burst.
        this.virtual = Math.max(this.virtual, firedAt - (this.burst - 1) * this.minGapMs) + this.minGapMs;
        const seq = this.fired++;
        this.answered[seq % this.answered.length] = Number.POSITIVE_INFINITY;
        this.inFlight++;
        item
          .fire()
          .then(item.resolve, () => item.resolve(SKIPPED))
          .finally(() => {
            this.inFlight--;
            // The provider counted it by now at the latest (a timeout counts as an answer too).
            const ring = this.answered;
            if (seq >= this.fired - ring.length) ring[seq % ring.length] = performance.now();
            this.wake?.();
          });
      }
    } finally {
      this.running = false;
    }
  }
}

const pacers = new Map<string, SenderPacer>();

/**
 * The pacer of a sender whose provider limit is `limitPerSecond`, in a process holding `share`-th of
 * it (the worker processes active on the sender split it evenly). One place is left for what the
 * provider counts that we do not send (inbound messages count against the same limit).
 */
export function pacerFor(senderId: string, limitPerSecond: number, share = 1): SenderPacer {
  const ownLimit = limitPerSecond / Math.max(1, share);
  const capacity = Math.max(1, Math.floor((limitPerSecond - 1) / Math.max(1, share)));
  let pacer = pacers.get(senderId);
  if (!pacer) {
    pacer = new SenderPacer(capacity);
    pacers.set(senderId, pacer);
  }
  pacer.resize(capacity);
  // Catch-up at most a third above the rate, in clumps of a fortieth of a second's sends.
  pacer.minGapMs = 750 / ownLimit;
  pacer.burst = Math.max(2, Math.round(ownLimit / 40));
  pacer.maxInFlight = Math.max(10, Math.round(ownLimit / 10));
  return pacer;
}
