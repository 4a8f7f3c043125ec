import type { Runtime } from '../runtime.ts';

const UNMATCHED_STATUS_COLUMNS = `echoed_send_id, has_sent, has_delivered, has_read, has_failed, has_replied,
  sent_status_at, delivered_at, read_at, replied_at, failed_at, failure_code, failure_title, priced_category,
  has_pricing, billable`;

/**
 * Moves statuses that were stored before their send (`message_rollup_unmatched`) under the send's
 * campaign in `message_rollup`, then drops them from the unmatched set. The materialized views do
 * this as the send arrives; this covers a status and its send stored at the same moment, when
 * neither view sees the other. Reports read both tables, so it only keeps the unmatched set small.
 * Copying is idempotent (max/min aggregates), so a crash between the two statements is harmless.
 */
export async function repairMessageRollup(runtime: Runtime): Promise<number> {
  const db = runtime.ch.database;
  const matched = await runtime.ch.rows<{ workspace_id: string; provider_message_id: string }>(
    `SELECT u.workspace_id AS workspace_id, u.provider_message_id AS provider_message_id
       FROM (SELECT DISTINCT workspace_id, provider_message_id FROM ${db}.message_rollup_unmatched) AS u
       INNER JOIN (
         SELECT DISTINCT workspace_id, provider_message_id FROM ${db}.message_campaigns
          WHERE (workspace_id, provider_message_id) IN
                (SELECT workspace_id, provider_message_id FROM ${db}.message_rollup_unmatched)) AS c
         ON c.workspace_id = u.workspace_id AND c.provider_message_id = u.provider_message_id
      LIMIT 100000`,
  );
  if (!matched.length) return 0;
  const keys = {
    ws: matched.map((m) => m.workspace_id),
    ids: matched.map((m) => m.provider_message_id),
  };
  const picked = `(workspace_id, provider_message_id) IN
    (SELECT tupleElement(t, 1), tupleElement(t, 2) FROM (SELECT arrayJoin(arrayZip({ws:Array(String)}, {ids:Array(String)})) AS t))`;
  await runtime.ch.command(
    `INSERT INTO ${db}.message_rollup (workspace_id, campaign_id, message_key, ${UNMATCHED_STATUS_COLUMNS})
     SELECT u.workspace_id, c.campaign_id, cityHash64(u.provider_message_id), ${UNMATCHED_STATUS_COLUMNS.split(
       ',',
     )
       .map((column) => `u.${column.trim()}`)
       .join(', ')}
       FROM (SELECT * FROM ${db}.message_rollup_unmatched WHERE ${picked}) AS u
       INNER JOIN (
         SELECT workspace_id, provider_message_id, any(campaign_id) AS campaign_id FROM ${db}.message_campaigns
          WHERE ${picked} GROUP BY workspace_id, provider_message_id) AS c
         ON c.workspace_id = u.workspace_id AND c.provider_message_id = u.provider_message_id`,
    keys,
  );
  await runtime.ch.command(`DELETE FROM ${db}.message_rollup_unmatched WHERE ${picked}`, keys);
  return matched.length;
}
