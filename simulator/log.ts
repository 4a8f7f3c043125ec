/**
 * The simulator's ground-truth log, held as a ring of columns: one array per field instead of one
 * object (or JSON string) per entry. A send adds a handful of entries, so at thousands of requests a
 * second this is the simulator's biggest allocation; columns of small integers, doubles and strings
 * the simulator already holds (ids, phones) cost the garbage collector next to nothing, and an entry
 * object is built only when someone reads the log.
 */

export interface SimLogEntry {
  seq: number;
  /** Simulated time, ISO 8601 UTC with milliseconds. */
  at: string;
  /** The same instant in ms since the epoch. */
  atMs: number;
  kind: string;
  phoneNumberId?: string;
  to?: string;
  wamid?: string;
  sendId?: string;
  code?: number;
  status?: string;
  detail?: unknown;
}

export type SimLogRecord = Omit<SimLogEntry, 'seq' | 'at' | 'atMs'>;

export class GroundTruthLog {
  private readonly capacity: number;
  /** Sequence number of the next entry; entries [next - size, next) are kept. */
  private next = 0;
  private readonly kindNames: string[] = [];
  private readonly kindIndex = new Map<string, number>();
  private readonly kinds: number[] = [];
  private readonly atMs: number[] = [];
  private readonly codes: (number | undefined)[] = [];
  private readonly phoneNumberIds: (string | undefined)[] = [];
  private readonly tos: (string | undefined)[] = [];
  private readonly wamids: (string | undefined)[] = [];
  private readonly sendIds: (string | undefined)[] = [];
  private readonly statuses: (string | undefined)[] = [];
  /** Details are fresh values handed over by the recorder and never changed afterwards. */
  private readonly details: unknown[] = [];
  private cache: { first: number; next: number; entries: SimLogEntry[] } | undefined;

  constructor(capacity: number) {
    if (!(capacity >= 1)) throw new Error('the log keeps at least one entry');
    this.capacity = Math.floor(capacity);
  }

  /** Entries kept (at most the capacity). */
  get size(): number {
    return Math.min(this.next, this.capacity);
  }

  /** Entries ever recorded, dropped ones included. */
  get recorded(): number {
    return this.next;
  }

  get dropped(): number {
    return this.next - this.size;
  }

  append(atMs: number, entry: SimLogRecord): void {
    let kind = this.kindIndex.get(entry.kind);
    if (kind === undefined) {
      kind = this.kindNames.push(entry.kind) - 1;
      this.kindIndex.set(entry.kind, kind);
    }
    const slot = this.next % this.capacity;
    if (this.next < this.capacity) {
      this.kinds.push(kind);
      this.atMs.push(atMs);
      this.codes.push(entry.code);
      this.phoneNumberIds.push(entry.phoneNumberId);
      this.tos.push(entry.to);
      this.wamids.push(entry.wamid);
      this.sendIds.push(entry.sendId);
      this.statuses.push(entry.status);
      this.details.push(entry.detail);
    } else {
      this.kinds[slot] = kind;
      this.atMs[slot] = atMs;
      this.codes[slot] = entry.code;
      this.phoneNumberIds[slot] = entry.phoneNumberId;
      this.tos[slot] = entry.to;
      this.wamids[slot] = entry.wamid;
      this.sendIds[slot] = entry.sendId;
      this.statuses[slot] = entry.status;
      this.details[slot] = entry.detail;
    }
    this.next++;
  }

  /** Every entry kept, oldest first; cached until the next append. */
  all(): SimLogEntry[] {
    const first = this.next - this.size;
    if (this.cache && this.cache.first === first && this.cache.next === this.next) return this.cache.entries;
    const entries = this.select(first);
    this.cache = { first, next: this.next, entries };
    return entries;
  }

  /** Entries with seq >= since, of one kind when given, oldest first: no object for the others. */
  select(since = 0, kind?: string | null): SimLogEntry[] {
    const wanted = kind ? this.kindIndex.get(kind) : undefined;
    if (kind && wanted === undefined) return [];
    const out: SimLogEntry[] = [];
    for (let seq = Math.max(since, this.next - this.size); seq < this.next; seq++) {
      const slot = seq % this.capacity;
      if (wanted !== undefined && this.kinds[slot] !== wanted) continue;
      out.push(this.entryAt(seq, slot));
    }
    return out;
  }

  private entryAt(seq: number, slot: number): SimLogEntry {
    const atMs = this.atMs[slot]!;
    const entry: SimLogEntry = {
      seq,
      at: new Date(atMs).toISOString(),
      atMs,
      kind: this.kindNames[this.kinds[slot]!]!,
    };
    // Absent fields stay absent, as they were when the log was JSON.
    const phoneNumberId = this.phoneNumberIds[slot];
    if (phoneNumberId !== undefined) entry.phoneNumberId = phoneNumberId;
    const to = this.tos[slot];
    if (to !== undefined) entry.to = to;
    const wamid = this.wamids[slot];
    if (wamid !== undefined) entry.wamid = wamid;
    const sendId = this.sendIds[slot];
    if (sendId !== undefined) entry.sendId = sendId;
    const code = this.codes[slot];
    if (code !== undefined) entry.code = code;
    const status = this.statuses[slot];
    if (status !== undefined) entry.status = status;
    const detail = this.details[slot];
    if (detail !== undefined) entry.detail = detail;
    return entry;
  }
}
