import type { Sql } from '../stores/postgres.ts';
import type { QuietHours } from './slots.ts';

export type CohortKind = 'timezone' | 'country';

/** A workspace's send-time settings; every field has a default until the workspace sets it. */
export interface StoSettings {
  engagementEvents: string[];
  lookbackDays: number;
  cohort: CohortKind;
  explorationShare: number;
  quietHours: QuietHours | null;
}

export const DEFAULT_STO_SETTINGS: StoSettings = {
  engagementEvents: [],
  lookbackDays: 90,
  cohort: 'timezone',
  explorationShare: 0.05,
  quietHours: null,
};

interface SettingsRow {
  engagement_events: string[];
  lookback_days: number;
  cohort: CohortKind;
  exploration_share: number;
  quiet_start: number | null;
  quiet_end: number | null;
}

export async function getStoSettings(sql: Sql, workspaceId: string): Promise<StoSettings> {
  const { rows } = await sql.query<SettingsRow>(
    `SELECT engagement_events, lookback_days, cohort, exploration_share, quiet_start, quiet_end
     FROM sto_settings WHERE workspace_id = $1`,
    [workspaceId],
  );
  const row = rows[0];
  if (!row) return { ...DEFAULT_STO_SETTINGS };
  return {
    engagementEvents: row.engagement_events,
    lookbackDays: row.lookback_days,
    cohort: row.cohort,
    explorationShare: Number(row.exploration_share),
    quietHours:
      row.quiet_start === null || row.quiet_end === null
        ? null
        : { start: row.quiet_start, end: row.quiet_end },
  };
}

export async function setStoSettings(
  sql: Sql,
  workspaceId: string,
  patch: Partial<StoSettings>,
): Promise<StoSettings> {
  const next = { ...(await getStoSettings(sql, workspaceId)), ...patch };
  await sql.query(
    `INSERT INTO sto_settings (workspace_id, engagement_events, lookback_days, cohort, exploration_share, quiet_start, quiet_end)
     VALUES ($1, $2, $3, $4, $5, $6, $7)
     ON CONFLICT (workspace_id) DO UPDATE SET engagement_events = EXCLUDED.engagement_events,
       lookback_days = EXCLUDED.lookback_days, cohort = EXCLUDED.cohort,
       exploration_share = EXCLUDED.exploration_share, quiet_start = EXCLUDED.quiet_start,
       quiet_end = EXCLUDED.quiet_end, updated_at = now()`,
    [
      workspaceId,
      next.engagementEvents,
      next.lookbackDays,
      next.cohort,
      next.explorationShare,
      next.quietHours?.start ?? null,
      next.quietHours?.end ?? null,
    ],
  );
  return next;
}
