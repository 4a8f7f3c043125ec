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
  private readonly queue: { item: Item; done: (result: Result | undefined, error?: unknown) => void }[] = [];
  private active = 0;
  private readonly process: (items: Item[]) => Promise<Result[]>;
  private readonly weight: (item: Item) => number;
  private readonly maxWeight: number;
  private readonly concurrency: number;

  constructor(
    process: (items: Item[]) => Promise<Result[]>,
    options: { weight: (item: Item) => number; maxWeight: number; concurrency?: number },
  ) {
    this.process = process;
    this.weight = options.weight;
    this.maxWeight = options.maxWeight;
    this.concurrency = options.concurrency ?? 1;
  }

  submit(item: Item): Promise<Result> {
    return new Promise((resolve, reject) => {
      this.queue.push({
        item,
        done: (result, error) => (error === undefined ? resolve(result as Result) : reject(error)),
      });
      this.pump();
    });
  }

  private pump(): void {
    while (this.active < this.concurrency && this.queue.length) {
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
