-- Analytics for data teams: named views over sends, message_statuses, events and campaign_audience.
-- Every view deduplicates by grouping, so provider duplicates and unmerged parts never double count.
-- Definitions are documented in docs/analytics.md; engine/metrics computes the same figures.

-- Each campaign's conversion goal, copied from Postgres campaigns (the latest updated_at wins).
CREATE TABLE IF NOT EXISTS {db}.campaign_goals (
  workspace_id LowCardinality(String),
  campaign_id String,
  goal_event String,
  window_seconds UInt32,
  revenue_property String DEFAULT 'revenue',
  updated_at DateTime64(3, 'UTC') DEFAULT now64(3)
) ENGINE = ReplacingMergeTree(updated_at)
ORDER BY (workspace_id, campaign_id);

-- One row per provider message: its final state by status rank. failed beats delivered (a failure
-- can be reported after a delivery); read (or played, or a reply) beats both and implies delivered.
CREATE VIEW IF NOT EXISTS {db}.message_state AS
SELECT
  workspace_id,
  provider_message_id,
  anyIf(send_id, send_id != '') AS echoed_send_id,
  max(status = 'sent') AS has_sent,
  max(status = 'delivered') AS has_delivered,
  max(status IN ('read', 'played')) AS has_read,
  max(status = 'failed') AS has_failed,
  max(status = 'replied') AS has_replied,
  toUInt8(has_read OR has_replied OR (has_delivered AND NOT has_failed)) AS is_delivered,
  toUInt8(has_read OR has_replied) AS is_read,
  toUInt8(has_replied) AS is_replied,
  toUInt8(has_failed AND NOT has_read AND NOT has_replied) AS is_failed,
  multiIf(is_read, 'read', is_failed, 'failed', is_delivered, 'delivered', has_sent, 'sent', 'unknown') AS final_status,
  minIfOrNull(ts, status = 'sent') AS sent_status_at,
  minIfOrNull(ts, status IN ('delivered', 'read', 'played', 'replied')) AS delivered_at,
  minIfOrNull(ts, status IN ('read', 'played', 'replied')) AS read_at,
  minIfOrNull(ts, status = 'replied') AS replied_at,
  minIfOrNull(ts, status = 'failed') AS failed_at,
  maxIf(error_code, status = 'failed') AS failure_code,
  anyIf(error_title, status = 'failed') AS failure_title,
  anyIf(pricing_category, pricing_category != '') AS priced_category,
  -- charged unless the provider reported the message as not billable
  toUInt8(if(countIf(pricing_category != '') = 0, 1, max(billable))) AS is_billable
FROM (
  SELECT workspace_id, provider_message_id, send_id, CAST(status AS String) AS status, ts, error_code, error_title,
    CAST(pricing_category AS String) AS pricing_category, billable
  FROM {db}.message_statuses
)
GROUP BY workspace_id, provider_message_id;

-- One row per send attempt with its message's final state; the grain of every campaign metric.
CREATE VIEW IF NOT EXISTS {db}.campaign_sends AS
SELECT
  s.workspace_id AS workspace_id,
  s.send_id AS send_id,
  s.campaign_id AS campaign_id,
  s.campaign_name AS campaign_name,
  s.template_name AS template_name,
  s.template_category AS template_category,
  s.sender_id AS sender_id,
  s.contact_id AS contact_id,
  s.phone AS phone,
  s.country AS country,
  s.provider_message_id AS provider_message_id,
  s.send_outcome AS outcome,
  s.sent_at AS sent_at,
  toUInt8(s.send_outcome = 'accepted') AS is_sent,
  toUInt8(s.send_outcome = 'accepted' AND m.is_delivered = 1) AS is_delivered,
  toUInt8(s.send_outcome = 'accepted' AND m.is_read = 1) AS is_read,
  toUInt8(s.send_outcome = 'accepted' AND m.is_replied = 1) AS is_replied,
  toUInt8(s.send_outcome = 'failed' OR (s.send_outcome = 'accepted' AND m.is_failed = 1)) AS is_failed,
  if(s.send_outcome = 'failed', s.error_code, if(m.is_failed = 1, m.failure_code, 0)) AS error_code,
  if(s.send_outcome = 'accepted', m.final_status, 'failed') AS final_status,
  m.delivered_at AS delivered_at,
  m.read_at AS read_at,
  m.replied_at AS replied_at,
  if(m.read_at IS NULL, NULL, greatest(0, dateDiff('second', s.sent_at, m.read_at))) AS seconds_to_read,
  toUInt8(m.is_billable = 1 OR m.provider_message_id = '') AS is_billable,
  m.priced_category AS priced_category
FROM (
  SELECT workspace_id, send_id, campaign_id, campaign_name, template_name, template_category, sender_id,
    contact_id, phone, country, provider_message_id, CAST(outcome AS String) AS send_outcome, error_code, sent_at
  FROM {db}.sends FINAL
) AS s
LEFT JOIN {db}.message_state AS m
  ON m.workspace_id = s.workspace_id AND m.provider_message_id = s.provider_message_id
SETTINGS join_use_nulls = 0;

-- Funnel counts and rates per campaign, template, sender and recipient country.
CREATE VIEW IF NOT EXISTS {db}.message_funnel AS
SELECT
  workspace_id, campaign_id, any(campaign_name) AS campaign_name, template_name, sender_id, country,
  count() AS attempted,
  sum(is_sent) AS sent,
  sum(is_delivered) AS delivered,
  sum(is_read) AS read,
  sum(is_replied) AS replied,
  sum(is_failed) AS failed,
  if(sent = 0, NULL, delivered / sent) AS delivery_rate,
  if(delivered = 0, NULL, read / delivered) AS read_rate,
  if(delivered = 0, NULL, replied / delivered) AS reply_rate,
  if(attempted = 0, NULL, failed / attempted) AS failure_rate
FROM {db}.campaign_sends
GROUP BY workspace_id, campaign_id, template_name, sender_id, country;

-- The same funnel per campaign and UTC day of sending.
CREATE VIEW IF NOT EXISTS {db}.campaign_daily AS
SELECT
  workspace_id, campaign_id, toDate(sent_at) AS day,
  count() AS attempted,
  sum(is_sent) AS sent,
  sum(is_delivered) AS delivered,
  sum(is_read) AS read,
  sum(is_replied) AS replied,
  sum(is_failed) AS failed,
  if(sent = 0, NULL, delivered / sent) AS delivery_rate,
  if(delivered = 0, NULL, read / delivered) AS read_rate,
  if(delivered = 0, NULL, replied / delivered) AS reply_rate,
  if(attempted = 0, NULL, failed / attempted) AS failure_rate
FROM {db}.campaign_sends
GROUP BY workspace_id, campaign_id, day;

-- Failures by provider error code.
CREATE VIEW IF NOT EXISTS {db}.failures_by_code AS
SELECT workspace_id, campaign_id, error_code, count() AS failed
FROM {db}.campaign_sends
WHERE is_failed = 1
GROUP BY workspace_id, campaign_id, error_code;

-- Conversions, last touch: a goal event is credited to the latest accepted send to that contact at
-- or before the event, among campaigns whose goal is that event, when the event falls within that
-- campaign's window (sent_at <= ts <= sent_at + window). Revenue is the event's revenue property.
CREATE VIEW IF NOT EXISTS {db}.conversions AS
WITH goals AS (
  SELECT workspace_id, campaign_id,
    argMax(goal_event, updated_at) AS goal_event,
    argMax(window_seconds, updated_at) AS window_seconds,
    argMax(revenue_property, updated_at) AS revenue_property
  FROM {db}.campaign_goals
  GROUP BY workspace_id, campaign_id
)
SELECT
  e.workspace_id AS workspace_id,
  t.campaign_id AS campaign_id,
  t.send_id AS send_id,
  e.contact_id AS contact_id,
  e.event_id AS event_id,
  e.name AS event_name,
  e.ts AS converted_at,
  t.sent_at AS sent_at,
  dateDiff('second', t.sent_at, e.ts) AS seconds_after_send,
  JSONExtractFloat(e.properties, t.revenue_property) AS revenue
FROM (
  SELECT workspace_id, CAST(name AS String) AS name, contact_id, ts, event_id, any(properties) AS properties
  FROM {db}.events
  WHERE name IN (SELECT goal_event FROM goals)
  GROUP BY workspace_id, name, contact_id, ts, event_id
) AS e
ASOF INNER JOIN (
  SELECT s.workspace_id AS workspace_id, s.contact_id AS contact_id, g.goal_event AS goal_event,
    s.sent_at AS sent_at, s.campaign_id AS campaign_id, s.send_id AS send_id,
    g.window_seconds AS window_seconds, g.revenue_property AS revenue_property
  FROM {db}.sends AS s FINAL
  INNER JOIN goals AS g ON g.workspace_id = s.workspace_id AND g.campaign_id = s.campaign_id
  WHERE s.outcome = 'accepted'
) AS t
  ON e.workspace_id = t.workspace_id AND e.contact_id = t.contact_id AND e.name = t.goal_event
  AND e.ts >= t.sent_at
WHERE e.ts <= t.sent_at + toIntervalSecond(t.window_seconds);
