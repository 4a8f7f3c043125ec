/**
 * Group commit: callers submit work items and wait for their own result; while a group is being
 * processed, the items that arrive meanwhile are gathered into the next group, processed in one go
 * (one lookup, one insert). ClickHouse spends far less per row on a few large inserts than on many
 * small ones: each insert writes a part per table and per materialized view, and every part must be
 * merged later. At most `concurrency` groups run at once (1 by default: then items of one process
 * never race each other). When a group fails, its items are retried one by one, so a failure is
 * reported only to the item behind it.
 */
export class GroupCommit<Item, Result> {
  private readonly queue: {
    item: Item;
    at: number;
    done: (result: Result | undefined, error?: unknown) => void;
  }[] = [];
  private active = 0;
  /** When a running group last finished: a group gathering items waits from then, not from its oldest item. */
  private freedAt = 0;
  private readonly lingerMs: number;
  private lingerTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly process: (items: Item[]) => Promise<Result[]>;
  private readonly weight: (item: Item) => number;
  private readonly maxWeight: number;
  private readonly concurrency: number;
  private readonly gatherWeight: number;
  private readonly moreComing: (() => boolean) | undefined;

  constructor(
    process: (items: Item[]) => Promise<Result[]>,
    options: {
      weight: (item: Item) => number;
      maxWeight: number;
      concurrency?: number;
      /**
       * A group waits until its oldest item is this old (ms), unless it already weighs `maxWeight`:
       * fewer, larger groups when items arrive spread out rather than while a group runs.
       */
      lingerMs?: number;
      /**
       * While `moreComing()` says items are on their way (e.g. requests still being validated), a
       * group waits for them until it weighs `gatherWeight`, at most `lingerMs` after its oldest item;
       * with nothing on its way it starts at once, so a lone item never waits.
       */
      moreComing?: () => boolean;
      gatherWeight?: number;
    },
  ) {
    this.process = process;
    this.weight = options.weight;
    this.maxWeight = options.maxWeight;
    this.concurrency = options.concurrency ?? 1;
    this.lingerMs = options.lingerMs ?? 0;
    this.moreComing = options.moreComing;
    this.gatherWeight = Math.min(options.gatherWeight ?? options.maxWeight, options.maxWeight);
  }

  submit(item: Item): Promise<Result> {
    return new Promise((resolve, reject) => {
      this.queue.push({
        item,
        at: performance.now(),
        done: (result, error) => (error === undefined ? resolve(result as Result) : reject(error)),
      });
      this.pump();
    });
  }

  /** Re-evaluates a lingering group: call when `moreComing()` may have turned false. */
  nudge(): void {
    this.pump();
  }

  private pump(): void {
    while (this.active < this.concurrency && this.queue.length) {
      if (this.lingerMs > 0) {
        const waited =
          performance.now() -
          (this.moreComing ? Math.max(this.queue[0]!.at, this.freedAt) : this.queue[0]!.at);
        const weight = this.queue.reduce((sum, q) => sum + this.weight(q.item), 0);
        const waiting = this.moreComing
          ? weight < this.gatherWeight && this.moreComing()
          : weight < this.maxWeight;
        if (waited < this.lingerMs && waiting) {
          this.lingerTimer ??= setTimeout(() => {
            this.lingerTimer = undefined;
            this.pump();
          }, this.lingerMs - waited);
          return;
        }
      }
      if (this.lingerTimer) {
        clearTimeout(this.lingerTimer);
        this.lingerTimer = undefined;
      }
      const group = [this.queue.shift()!];
      let weight = this.weight(group[0]!.item);
      while (this.queue.length && weight + this.weight(this.queue[0]!.item) <= this.maxWeight) {
        const next = this.queue.shift()!;
        weight += this.weight(next.item);
        group.push(next);
      }
      this.active++;
      void this.runGroup(group).finally(() => {
        this.active--;
        this.freedAt = performance.now();
        this.pump();
      });
    }
  }

  private async runGroup(group: typeof this.queue): Promise<void> {
    try {
      await this.run(group);
    } catch (error) {
      if (group.length === 1) return group[0]!.done(undefined, error ?? new Error('failed'));
      for (const entry of group) await this.run([entry]).catch((e: unknown) => entry.done(undefined, e));
    }
  }

  private async run(group: typeof this.queue): Promise<void> {
    const results = await this.process(group.map((g) => g.item));
    for (const [i, g] of group.entries()) g.done(results[i]);
  }
}
