-- campaign_sends (and so message_funnel, campaign_daily and failures_by_code, which read it) over
-- the pre-aggregated message_rollup instead of grouping every status report: same name, columns and
-- definitions as 0040_analytics.sql, about one row read per message; statuses stored before their
-- send and not yet filed under it come from message_rollup_unmatched.
CREATE OR REPLACE VIEW {db}.campaign_sends AS
SELECT
  workspace_id, send_id, campaign_id, campaign_name, template_name, template_category, sender_id, contact_id,
  phone, country, provider_message_id,
  if(accepted = 1, 'accepted', 'failed') AS outcome,
  sent_at,
  toUInt8(accepted) AS is_sent,
  toUInt8(accepted = 1 AND (has_read OR has_replied OR (has_delivered AND NOT has_failed))) AS is_delivered,
  toUInt8(accepted = 1 AND (has_read OR has_replied)) AS is_read,
  toUInt8(accepted = 1 AND has_replied) AS is_replied,
  toUInt8(accepted = 0 OR (has_failed AND NOT has_read AND NOT has_replied)) AS is_failed,
  if(accepted = 0, send_error_code, if(is_failed = 1, failure_code, 0)) AS error_code,
  if(accepted = 0, 'failed',
    multiIf(is_read = 1, 'read', is_failed = 1, 'failed', is_delivered = 1, 'delivered', has_sent = 1, 'sent', 'unknown')
  ) AS final_status,
  delivered_at, read_at, replied_at,
  if(read_at IS NULL, NULL, greatest(0, dateDiff('second', sent_at, read_at))) AS seconds_to_read,
  toUInt8(has_pricing = 0 OR billable = 1) AS is_billable,
  priced_category
FROM (
  SELECT
    r.workspace_id AS workspace_id, r.send_id AS send_id, r.campaign_id AS campaign_id,
    r.campaign_name AS campaign_name, r.template_name AS template_name, r.template_category AS template_category,
    r.sender_id AS sender_id, r.contact_id AS contact_id, r.phone AS phone, r.country AS country,
    r.provider_message_id AS provider_message_id, r.accepted AS accepted, r.send_error_code AS send_error_code,
    r.sent_at AS sent_at,
    greatest(r.has_sent, u.has_sent) AS has_sent, greatest(r.has_delivered, u.has_delivered) AS has_delivered,
    greatest(r.has_read, u.has_read) AS has_read, greatest(r.has_failed, u.has_failed) AS has_failed,
    greatest(r.has_replied, u.has_replied) AS has_replied, greatest(r.failure_code, u.failure_code) AS failure_code,
    if(u.delivered_at IS NULL, r.delivered_at,
      if(r.delivered_at IS NULL, u.delivered_at, least(r.delivered_at, u.delivered_at))) AS delivered_at,
    if(u.read_at IS NULL, r.read_at, if(r.read_at IS NULL, u.read_at, least(r.read_at, u.read_at))) AS read_at,
    if(u.replied_at IS NULL, r.replied_at,
      if(r.replied_at IS NULL, u.replied_at, least(r.replied_at, u.replied_at))) AS replied_at,
    greatest(r.has_pricing, u.has_pricing) AS has_pricing, greatest(r.billable, u.billable) AS billable,
    greatest(r.priced_category, u.priced_category) AS priced_category
  FROM (SELECT * FROM {db}.message_rollup FINAL WHERE has_send = 1) AS r
  LEFT JOIN (
    SELECT workspace_id, message_key, max(has_sent) AS has_sent, max(has_delivered) AS has_delivered,
      max(has_read) AS has_read, max(has_failed) AS has_failed, max(has_replied) AS has_replied,
      min(delivered_at) AS delivered_at, min(read_at) AS read_at, min(replied_at) AS replied_at,
      max(failure_code) AS failure_code, max(priced_category) AS priced_category,
      max(has_pricing) AS has_pricing, max(billable) AS billable
    FROM {db}.message_rollup_unmatched
    GROUP BY workspace_id, message_key
  ) AS u ON u.workspace_id = r.workspace_id AND u.message_key = r.message_key
  SETTINGS join_use_nulls = 0
);
