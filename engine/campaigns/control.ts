/** Pause, resume, cancel and progress of a launched campaign. */
import type { PostgresStore, Sql } from '../stores/postgres.ts';
import { requireCampaign, transition } from './model.ts';
import type { Campaign } from './types.ts';

/** Workers see the new state before their next batch; sends already in flight finish. */
export async function pauseCampaign(
  sql: Sql,
  workspaceId: string,
  id: string,
  actor: string,
  reason?: string,
) {
  return transition(sql, workspaceId, id, 'pause', actor, { reason: reason ?? 'paused by user' });
}

export async function resumeCampaign(
  sql: PostgresStore,
  workspaceId: string,
  id: string,
  actor: string,
): Promise<Campaign> {
  return sql.transaction(async (tx) => {
    const campaign = await transition(tx, workspaceId, id, 'resume', actor);
    // Everything still queued is offered to the workers again at once.
    await tx.query('DELETE FROM dispatch_batches WHERE campaign_id = $1', [id]);
    return campaign;
  });
}

/** Queued sends are skipped for good; sends already handed to the provider keep their outcome. */
export async function cancelCampaign(
  sql: PostgresStore,
  workspaceId: string,
  id: string,
  actor: string,
  reason?: string,
) {
  return sql.transaction(async (tx) => {
    const campaign = await transition(tx, workspaceId, id, 'cancel', actor, {
      reason: reason ?? 'cancelled by user',
    });
    await tx.query(
      `UPDATE campaign_sends SET state = 'skipped', skip_reason = 'cancelled', final_at = now(), updated_at = now()
        WHERE campaign_id = $1 AND state = 'queued'`,
      [id],
    );
    return campaign;
  });
}

export interface Progress {
  campaign_id: string;
  state: Campaign['state'];
  state_reason: string | null;
  total: number;
  counts: Record<'queued' | 'sending' | 'accepted' | 'delivered' | 'read' | 'failed' | 'skipped', number>;
  /** Why queued sends are waiting: quiet_hours, pair_rate, tier, warmup, retry. */
  held: Record<string, number>;
  skipped: Record<string, number>;
  /** Sends settled in the last 10 seconds, per second. */
  rate_per_second: number;
  /** Seconds to send what is queued at the current rate; null when idle or unknown. */
  eta_seconds: number | null;
  launched_at: string | null;
  finished_at: string | null;
}

export async function campaignProgress(sql: Sql, workspaceId: string, id: string): Promise<Progress> {
  const campaign = await requireCampaign(sql, workspaceId, id);
  const { rows } = await sql.query<{ state: string; reason: string | null; n: string }>(
    `SELECT state, skip_reason AS reason, count(*) AS n FROM campaign_sends WHERE campaign_id = $1
      GROUP BY state, skip_reason`,
    [id],
  );
  const counts = { queued: 0, sending: 0, accepted: 0, delivered: 0, read: 0, failed: 0, skipped: 0 };
  const held: Record<string, number> = {};
  const skipped: Record<string, number> = {};
  let total = 0;
  for (const row of rows) {
    const n = Number(row.n);
    total += n;
    counts[row.state as keyof typeof counts] += n;
    if (row.state === 'queued' && row.reason) held[row.reason] = (held[row.reason] ?? 0) + n;
    if (row.state === 'skipped')
      skipped[row.reason ?? 'unknown'] = (skipped[row.reason ?? 'unknown'] ?? 0) + n;
  }
  const { rows: recent } = await sql.query<{ n: string }>(
    `SELECT count(*) AS n FROM campaign_sends WHERE campaign_id = $1 AND final_at > now() - interval '10 seconds'`,
    [id],
  );
  const rate = Number(recent[0]?.n ?? 0) / 10;
  const open = counts.queued + counts.sending;
  return {
    campaign_id: id,
    state: campaign.state,
    state_reason: campaign.state_reason,
    total,
    counts,
    held,
    skipped,
    rate_per_second: Math.round(rate * 10) / 10,
    eta_seconds: open === 0 ? 0 : rate > 0 ? Math.ceil(open / rate) : null,
    launched_at: campaign.launched_at,
    finished_at: campaign.finished_at,
  };
}
