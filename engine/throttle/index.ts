/**
 * Throttles that hold across worker processes: all their state is in Postgres and every decision is
 * taken inside the caller's transaction, under row locks (or an advisory lock for a portfolio).
 *
 * - rate: messages per second per sender, as reserved send slots (virtual scheduling)
 * - tier: unique recipients per rolling 24 h per business portfolio
 * - pair: one message per recipient per `pairIntervalMs`
 * - frequency: at most N marketing messages per contact per D days, across campaigns
 * - quiet hours: no sends in a local-time window; held until it opens
 * - warm-up: a new sender's daily volume ramps up
 */
import type { Sql } from '../stores/postgres.ts';

export const TIER_LIMITS: Record<string, number> = {
  TIER_250: 250,
  TIER_2K: 2_000,
  TIER_10K: 10_000,
  TIER_100K: 100_000,
  TIER_UNLIMITED: Number.POSITIVE_INFINITY,
};

/** Meta: 1 message every 6 s to the same user. */
export const PAIR_INTERVAL_MS = 6_000;
const DAY_MS = 86_400_000;

/** Daily volume a sender may send on day `d` (0-based) of its warm-up; Infinity once ramped. */
export function warmupDailyCap(day: number): number {
  const ramp = [1_000, 2_000, 5_000, 10_000, 25_000, 50_000, 100_000];
  return day < ramp.length ? ramp[day]! : Number.POSITIVE_INFINITY;
}

export interface SenderLimits {
  id: string;
  portfolio_id: string;
  throughput_mps: number;
  tier: string;
  warmup_started_at: Date | string | null;
}

export interface Candidate {
  send_id: string;
  contact_id: string;
  phone: string;
  timezone: string;
}

export interface GatePolicy {
  workspaceId: string;
  channel: string;
  /** Consent purpose the message needs: marketing, utility or authentication. */
  purpose: string;
  quietHours: { start: number; end: number } | null;
  frequencyCap: { max: number; days: number } | null;
  /** Zone for contacts without one. */
  defaultTimezone: string;
  /** The policy clock (tests shift it to cross quiet hours). */
  now: Date;
}

export interface GateResult {
  send: Candidate[];
  hold: { send_id: string; until: Date; reason: string }[];
  skip: { send_id: string; reason: string }[];
}

/** Local hour (0-23) and minutes of an instant in a zone. */
export function localTime(at: Date, zone: string): { hour: number; minute: number } {
  let parts: Intl.DateTimeFormatPart[];
  try {
    parts = new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      hourCycle: 'h23',
      hour: '2-digit',
      minute: '2-digit',
    }).formatToParts(at);
  } catch {
    parts = new Intl.DateTimeFormat('en-US', {
      timeZone: 'UTC',
      hourCycle: 'h23',
      hour: '2-digit',
      minute: '2-digit',
    }).formatToParts(at);
  }
  return {
    hour: Number(parts.find((p) => p.type === 'hour')?.value),
    minute: Number(parts.find((p) => p.type === 'minute')?.value),
  };
}

/** When quiet hours end for a contact, or undefined when `at` is outside them. */
export function quietUntil(at: Date, zone: string, quiet: { start: number; end: number }): Date | undefined {
  const { hour, minute } = localTime(at, zone);
  const inside =
    quiet.start < quiet.end
      ? hour >= quiet.start && hour < quiet.end
      : hour >= quiet.start || hour < quiet.end;
  if (!inside) return undefined;
  const hoursLeft = (quiet.end - hour + 24) % 24 || 24;
  // Step to the hour boundary, then confirm against the zone (a DST change can move it by an hour).
  let until = new Date(at.getTime() + hoursLeft * 3_600_000 - minute * 60_000 - (at.getTime() % 60_000));
  for (let i = 0; i < 3 && localTime(until, zone).hour !== quiet.end; i++) {
    until = new Date(until.getTime() + (localTime(until, zone).hour < quiet.end ? 3_600_000 : -3_600_000));
  }
  return until;
}

/**
 * Decides, inside the caller's transaction, which candidates may be sent now, which are held (and
 * until when), and which are skipped for good; records what the sent ones use up of the tier and
 * the warm-up. The caller then records the contacts with their slot times (`recordContactSends`),
 * which confirms the pair rate and the frequency cap.
 */
export async function gate(
  tx: Sql,
  sender: SenderLimits,
  candidates: Candidate[],
  policy: GatePolicy,
): Promise<GateResult> {
  const result: GateResult = { send: [], hold: [], skip: [] };
  if (candidates.length === 0) return result;
  const now = policy.now;
  const ids = candidates.map((c) => c.contact_id);

  // Consent, read again right before the send (the latest record wins), and each contact's pacing:
  // one statement for the batch. The pacing is read without a lock: `recordContactSends` writes it
  // back only where it still allows the send, which is what settles a race with another campaign.
  const { rows: known } = await tx.query<{
    contact_id: string;
    status: string | null;
    last_sent_at: Date | null;
    marketing_sent_at: Date[] | null;
  }>(
    // One primary-key probe per contact in each table, whatever the planner believes of their sizes
    // (OFFSET 0 keeps each lateral subquery a per-row lookup: as plain joins, a ledger launched
    // before autovacuum's first ANALYZE was planned as one materialized scan of the workspace's
    // consent, compared with every contact of the batch).
    `SELECT u.contact_id, cc.status, t.last_sent_at, t.marketing_sent_at
       FROM unnest($4::text[]) AS u(contact_id)
       LEFT JOIN LATERAL (SELECT status FROM consent_current
                           WHERE workspace_id = $1 AND contact_id = u.contact_id AND channel = $2 AND purpose = $3
                          OFFSET 0) cc ON true
       LEFT JOIN LATERAL (SELECT last_sent_at, marketing_sent_at FROM throttle_contacts
                           WHERE workspace_id = $1 AND contact_id = u.contact_id OFFSET 0) t ON true`,
    [policy.workspaceId, policy.channel, policy.purpose, [...new Set(ids)]],
    { name: 'throttle-gate-read' },
  );
  const byContact = new Map(known.map((r) => [r.contact_id, r]));

  let remaining: Candidate[] = [];
  for (const c of candidates) {
    if (byContact.get(c.contact_id)?.status !== 'opted_in') {
      result.skip.push({ send_id: c.send_id, reason: 'no_consent' });
      continue;
    }
    const until = policy.quietHours
      ? quietUntil(now, c.timezone || policy.defaultTimezone, policy.quietHours)
      : undefined;
    if (until) result.hold.push({ send_id: c.send_id, until, reason: 'quiet_hours' });
    else remaining.push(c);
  }
  if (remaining.length === 0) return result;

  // Pair rate and frequency caps.
  const marketing = policy.purpose === 'marketing';
  const next: Candidate[] = [];
  const seen = new Set<string>();
  for (const c of remaining) {
    const row = byContact.get(c.contact_id);
    const last = row?.last_sent_at ? new Date(row.last_sent_at).getTime() : Number.NEGATIVE_INFINITY;
    // The cap is final, so it is checked before the pair rate (which only delays).
    if (marketing && policy.frequencyCap) {
      const since = now.getTime() - policy.frequencyCap.days * DAY_MS;
      const recent = (row?.marketing_sent_at ?? []).filter((t) => new Date(t).getTime() > since).length;
      if (recent >= policy.frequencyCap.max) {
        result.skip.push({ send_id: c.send_id, reason: 'frequency_cap' });
        continue;
      }
    }
    if (seen.has(c.contact_id) || now.getTime() - last < PAIR_INTERVAL_MS) {
      const until = new Date(Math.max(last, now.getTime()) + PAIR_INTERVAL_MS);
      result.hold.push({ send_id: c.send_id, until, reason: 'pair_rate' });
      continue;
    }
    seen.add(c.contact_id);
    next.push(c);
  }
  remaining = next;

  // Warm-up: a new sender's daily volume ramps; the excess waits for the next UTC day.
  if (sender.warmup_started_at && remaining.length) {
    const day = Math.floor((now.getTime() - new Date(sender.warmup_started_at).getTime()) / DAY_MS);
    const cap = warmupDailyCap(Math.max(0, day));
    if (Number.isFinite(cap)) {
      const today = now.toISOString().slice(0, 10);
      await tx.query(
        'INSERT INTO throttle_sender_days (sender_id, day) VALUES ($1, $2) ON CONFLICT DO NOTHING',
        [sender.id, today],
      );
      const { rows } = await tx.query<{ sent: number }>(
        'SELECT sent FROM throttle_sender_days WHERE sender_id = $1 AND day = $2 FOR UPDATE',
        [sender.id, today],
      );
      const room = Math.max(0, cap - Number(rows[0]?.sent ?? 0));
      const tomorrow = new Date(`${today}T00:00:00Z`).getTime() + DAY_MS;
      for (const c of remaining.slice(room))
        result.hold.push({ send_id: c.send_id, until: new Date(tomorrow), reason: 'warmup' });
      remaining = remaining.slice(0, room);
    }
  }

  // Tier: unique recipients per rolling 24 h, shared by every number of the portfolio.
  const limit = TIER_LIMITS[sender.tier] ?? 250;
  if (Number.isFinite(limit) && remaining.length) {
    await tx.query("SELECT pg_advisory_xact_lock(hashtext('chorus.tier.' || $1))", [sender.portfolio_id]);
    const windowStart = new Date(now.getTime() - DAY_MS);
    const phones = remaining.map((c) => c.phone);
    const { rows: counted } = await tx.query<{ n: string; oldest: Date | null }>(
      `SELECT count(*) AS n, min(last_at) AS oldest FROM throttle_portfolio_recipients
       WHERE portfolio_id = $1 AND last_at > $2`,
      [sender.portfolio_id, windowStart],
    );
    const { rows: known } = await tx.query<{ recipient: string }>(
      `SELECT recipient FROM throttle_portfolio_recipients
       WHERE portfolio_id = $1 AND last_at > $2 AND recipient = ANY($3::text[])`,
      [sender.portfolio_id, windowStart, phones],
    );
    const inWindow = new Set(known.map((r) => r.recipient));
    let used = Number(counted[0]?.n ?? 0);
    const oldest = counted[0]?.oldest ? new Date(counted[0].oldest).getTime() : now.getTime();
    const allowed: Candidate[] = [];
    for (const c of remaining) {
      if (inWindow.has(c.phone)) allowed.push(c);
      else if (used < limit) {
        used++;
        inWindow.add(c.phone);
        allowed.push(c);
      } else
        result.hold.push({
          send_id: c.send_id,
          until: new Date(Math.max(oldest + DAY_MS, now.getTime() + 60_000)),
          reason: 'tier',
        });
    }
    remaining = allowed;
    if (remaining.length)
      await tx.query(
        `INSERT INTO throttle_portfolio_recipients (portfolio_id, recipient, last_at)
         SELECT $1, unnest($2::text[]), $3
         ON CONFLICT (portfolio_id, recipient) DO UPDATE SET last_at = EXCLUDED.last_at`,
        [sender.portfolio_id, [...new Set(remaining.map((c) => c.phone))], now],
      );
  }

  if (remaining.length) {
    if (sender.warmup_started_at)
      await tx.query('UPDATE throttle_sender_days SET sent = sent + $3 WHERE sender_id = $1 AND day = $2', [
        sender.id,
        now.toISOString().slice(0, 10),
        remaining.length,
      ]);
  }
  result.send = remaining;
  return result;
}

/**
 * Records, for contacts `gate` let through, when their message goes (`delayMs` after the policy
 * clock: the pair rate counts from the slot, not the claim) and, for marketing, that it used one of
 * the frequency cap's messages. One statement for the batch, which writes a contact only if its row
 * still allows the send (another campaign's batch may have sent to it since `gate` read it): the row
 * is locked and checked again there. Returns the contacts recorded; the others must not be sent now.
 */
export async function recordContactSends(
  tx: Sql,
  policy: Pick<GatePolicy, 'workspaceId' | 'purpose' | 'frequencyCap' | 'now'>,
  sends: [contactId: string, delayMs: number][],
): Promise<Set<string>> {
  if (sends.length === 0) return new Set();
  const marketing = policy.purpose === 'marketing';
  const cap = marketing ? policy.frequencyCap : null;
  // In contact order, so batches lock shared contacts in one order and never deadlock.
  const sorted = [...sends].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const { rows } = await tx.query<{ contact_id: string }>(
    `INSERT INTO throttle_contacts AS t (workspace_id, contact_id, last_sent_at, marketing_sent_at)
     SELECT $1, u.contact_id, $2::timestamptz + make_interval(secs => u.delay / 1000),
            CASE WHEN $3 THEN ARRAY[$2::timestamptz] ELSE '{}'::timestamptz[] END
       FROM unnest($4::text[], $5::float8[]) WITH ORDINALITY AS u(contact_id, delay, n) ORDER BY u.n
     ON CONFLICT (workspace_id, contact_id) DO UPDATE
        SET last_sent_at = EXCLUDED.last_sent_at,
            marketing_sent_at = CASE WHEN $3 THEN
              array_append(ARRAY(SELECT x FROM unnest(t.marketing_sent_at) x WHERE x > $2::timestamptz - interval '90 days'), $2::timestamptz)
              ELSE t.marketing_sent_at END
      WHERE (t.last_sent_at IS NULL OR t.last_sent_at <= $2::timestamptz - make_interval(secs => $6::float8 / 1000))
        AND ($7::int IS NULL OR
             (SELECT count(*) FROM unnest(t.marketing_sent_at) x WHERE x > $2::timestamptz - make_interval(days => $8::int)) < $7::int)
     RETURNING t.contact_id`,
    [
      policy.workspaceId,
      policy.now,
      marketing,
      sorted.map((s) => s[0]),
      sorted.map((s) => s[1]),
      PAIR_INTERVAL_MS,
      cap?.max ?? null,
      cap?.days ?? null,
    ],
    { name: 'throttle-record-contacts' },
  );
  return new Set(rows.map((r) => r.contact_id));
}

/** A worker not seen on a sender for this long no longer holds a share of its limit. */
export const SHARE_ACTIVE_MS = 3_000;
/** A worker joining a sender others send for waits this long: they shrink their shares meanwhile. */
export const SHARE_SYNC_MS = 600;

export interface Reservation {
  /** Delay from now (the database clock) to each slot, in ms. */
  delays: number[];
  /** Worker processes active on the sender, this one included: each keeps to 1/share of the limit. */
  share: number;
  /** This worker just joined others on the sender: its first send waits this long (ms). */
  holdMs: number;
}

/**
 * Reserves `n` consecutive send slots for a sender at `ratePerSecond`, inside the caller's
 * transaction, and records this worker as active on the sender. Returns the delay from now (the
 * database clock) to each slot, so callers on other hosts are immune to clock skew, and how many
 * workers share the sender's limit. The next free slot only moves forward by what is reserved, so a
 * reservation always succeeds and waits are bounded by the work already reserved.
 */
export async function reserveSlots(
  tx: Sql,
  senderId: string,
  workerId: string,
  n: number,
  ratePerSecond: number,
): Promise<Reservation> {
  if (n === 0) return { delays: [], share: 1, holdMs: 0 };
  const intervalUs = Math.ceil(1_000_000 / ratePerSecond);
  await tx.query(
    'INSERT INTO throttle_sender_slots (sender_id, next_slot_at) VALUES ($1, clock_timestamp()) ON CONFLICT DO NOTHING',
    [senderId],
  );
  const { rows } = await tx.query<{ first_ms: number }>(
    `WITH now_ AS (SELECT clock_timestamp() AS t),
     moved AS (
       UPDATE throttle_sender_slots s
          SET next_slot_at = GREATEST(s.next_slot_at, now_.t, coalesce(s.penalty_until, now_.t))
                             + make_interval(secs => $2::float8 * $3::float8 / 1e6)
         FROM now_ WHERE s.sender_id = $1
       RETURNING s.next_slot_at, now_.t)
     SELECT extract(epoch FROM (next_slot_at - make_interval(secs => $2::float8 * $3::float8 / 1e6) - t)) * 1000 AS first_ms
       FROM moved`,
    [senderId, n, intervalUs],
  );
  // Under the sender's row lock (taken just above), so two workers never both join unseen.
  const { rows: peers } = await tx.query<{ others: string; active: boolean | null }>(
    `SELECT count(*) FILTER (WHERE worker_id <> $2) AS others, bool_or(worker_id = $2) AS active
       FROM throttle_sender_workers
      WHERE sender_id = $1 AND seen_at > clock_timestamp() - make_interval(secs => $3::float8 / 1000)`,
    [senderId, workerId, SHARE_ACTIVE_MS],
  );
  await tx.query(
    `INSERT INTO throttle_sender_workers (sender_id, worker_id, seen_at) VALUES ($1, $2, clock_timestamp())
     ON CONFLICT (sender_id, worker_id) DO UPDATE SET seen_at = EXCLUDED.seen_at`,
    [senderId, workerId],
  );
  const others = Number(peers[0]?.others ?? 0);
  const first = Math.max(0, Number(rows[0]?.first_ms ?? 0));
  return {
    delays: Array.from({ length: n }, (_, i) => first + (i * intervalUs) / 1000),
    share: others + 1,
    holdMs: !peers[0]?.active && others > 0 ? SHARE_SYNC_MS : 0,
  };
}

/**
 * Keeps this worker's share of a sender while it still has sends for it (or sent in the last
 * second), and tells how many workers share it now, this one included.
 */
export async function refreshShare(sql: Sql, senderId: string, workerId: string): Promise<number> {
  const { rows } = await sql.query<{ n: string }>(
    `WITH seen AS (
       UPDATE throttle_sender_workers SET seen_at = clock_timestamp()
        WHERE sender_id = $1 AND worker_id = $2 RETURNING worker_id)
     SELECT count(*) AS n FROM throttle_sender_workers
      WHERE sender_id = $1 AND worker_id <> $2
        AND seen_at > clock_timestamp() - make_interval(secs => $3::float8 / 1000)`,
    [senderId, workerId, SHARE_ACTIVE_MS],
  );
  return Number(rows[0]?.n ?? 0) + 1;
}

/**
 * Gives this worker's share back, unless a claim renewed it in the last `quietMs` (then it is still
 * needed). True when it was given back.
 */
export async function releaseShare(
  sql: Sql,
  senderId: string,
  workerId: string,
  quietMs: number,
): Promise<boolean> {
  await sql.query(
    `DELETE FROM throttle_sender_workers WHERE sender_id = $1 AND worker_id = $2
        AND seen_at < clock_timestamp() - make_interval(secs => $3::float8 / 1000)`,
    [senderId, workerId, quietMs],
  );
  const { rows } = await sql.query<{ kept: boolean }>(
    'SELECT EXISTS (SELECT 1 FROM throttle_sender_workers WHERE sender_id = $1 AND worker_id = $2) AS kept',
    [senderId, workerId],
  );
  return !rows[0]?.kept;
}

/** Forgets workers gone for an hour (their rows only matter for a few seconds). */
export async function pruneShares(sql: Sql): Promise<void> {
  await sql.query(
    "DELETE FROM throttle_sender_workers WHERE seen_at < clock_timestamp() - interval '1 hour'",
  );
}

/** After a throughput error: no slot starts before `ms` from now, for every process. */
export async function penalize(sql: Sql, senderId: string, ms: number): Promise<void> {
  await sql.query(
    `UPDATE throttle_sender_slots SET penalty_until = GREATEST(coalesce(penalty_until, clock_timestamp()),
       clock_timestamp() + make_interval(secs => $2::float8 / 1000)) WHERE sender_id = $1`,
    [senderId, ms],
  );
}
