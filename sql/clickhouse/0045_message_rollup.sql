-- Pre-aggregated per-message state, so a campaign report merges about one row per message instead of
-- grouping every status report and joining it to `sends` (engine/metrics reads these tables).
-- Every column is an idempotent aggregate (max, min), so a duplicate report, a send written twice, a
-- replayed backfill or a race that writes a row twice changes nothing.

-- Provider message id -> the send's campaign, for matching statuses to campaigns by primary key.
CREATE TABLE IF NOT EXISTS {db}.message_campaigns (
  workspace_id LowCardinality(String),
  provider_message_id String,
  campaign_id String
) ENGINE = ReplacingMergeTree
ORDER BY (workspace_id, provider_message_id);

-- One row per (campaign, message) once parts merge: the send's attributes (rows from `sends`) and the
-- message's status flags (rows from `message_statuses`). message_key is cityHash64 of the provider
-- message id, or of 'send:' || send_id for an attempt the provider refused (it has no message id).
CREATE TABLE IF NOT EXISTS {db}.message_rollup (
  workspace_id LowCardinality(String),
  campaign_id String,
  message_key UInt64,
  has_send SimpleAggregateFunction(max, UInt8),
  send_id SimpleAggregateFunction(max, String),
  provider_message_id SimpleAggregateFunction(max, String),
  campaign_name SimpleAggregateFunction(max, LowCardinality(String)),
  template_name SimpleAggregateFunction(max, LowCardinality(String)),
  template_category SimpleAggregateFunction(max, LowCardinality(String)),
  sender_id SimpleAggregateFunction(max, LowCardinality(String)),
  contact_id SimpleAggregateFunction(max, String),
  phone SimpleAggregateFunction(max, String),
  country SimpleAggregateFunction(max, LowCardinality(String)),
  accepted SimpleAggregateFunction(max, UInt8),
  refused SimpleAggregateFunction(max, UInt8),
  send_error_code SimpleAggregateFunction(max, UInt32),
  sent_at SimpleAggregateFunction(max, DateTime64(3, 'UTC')),
  echoed_send_id SimpleAggregateFunction(max, String),
  has_sent SimpleAggregateFunction(max, UInt8),
  has_delivered SimpleAggregateFunction(max, UInt8),
  has_read SimpleAggregateFunction(max, UInt8),
  has_failed SimpleAggregateFunction(max, UInt8),
  has_replied SimpleAggregateFunction(max, UInt8),
  sent_status_at SimpleAggregateFunction(min, Nullable(DateTime64(3, 'UTC'))),
  delivered_at SimpleAggregateFunction(min, Nullable(DateTime64(3, 'UTC'))),
  read_at SimpleAggregateFunction(min, Nullable(DateTime64(3, 'UTC'))),
  replied_at SimpleAggregateFunction(min, Nullable(DateTime64(3, 'UTC'))),
  failed_at SimpleAggregateFunction(min, Nullable(DateTime64(3, 'UTC'))),
  failure_code SimpleAggregateFunction(max, UInt32),
  failure_title SimpleAggregateFunction(max, String),
  priced_category SimpleAggregateFunction(max, LowCardinality(String)),
  has_pricing SimpleAggregateFunction(max, UInt8),
  billable SimpleAggregateFunction(max, UInt8)
) ENGINE = AggregatingMergeTree
ORDER BY (workspace_id, campaign_id, message_key);

-- Status state of messages whose send was not known when the status was stored. Reports merge these
-- in by message_key; `repairMessageRollup` (engine/metrics) copies them under their campaign once the
-- send is known, and they expire after a day.
CREATE TABLE IF NOT EXISTS {db}.message_rollup_unmatched (
  workspace_id LowCardinality(String),
  provider_message_id String,
  message_key SimpleAggregateFunction(max, UInt64),
  echoed_send_id SimpleAggregateFunction(max, String),
  has_sent SimpleAggregateFunction(max, UInt8),
  has_delivered SimpleAggregateFunction(max, UInt8),
  has_read SimpleAggregateFunction(max, UInt8),
  has_failed SimpleAggregateFunction(max, UInt8),
  has_replied SimpleAggregateFunction(max, UInt8),
  sent_status_at SimpleAggregateFunction(min, Nullable(DateTime64(3, 'UTC'))),
  delivered_at SimpleAggregateFunction(min, Nullable(DateTime64(3, 'UTC'))),
  read_at SimpleAggregateFunction(min, Nullable(DateTime64(3, 'UTC'))),
  replied_at SimpleAggregateFunction(min, Nullable(DateTime64(3, 'UTC'))),
  failed_at SimpleAggregateFunction(min, Nullable(DateTime64(3, 'UTC'))),
  failure_code SimpleAggregateFunction(max, UInt32),
  failure_title SimpleAggregateFunction(max, String),
  priced_category SimpleAggregateFunction(max, LowCardinality(String)),
  has_pricing SimpleAggregateFunction(max, UInt8),
  billable SimpleAggregateFunction(max, UInt8),
  stored_at SimpleAggregateFunction(max, DateTime)
) ENGINE = AggregatingMergeTree
ORDER BY (workspace_id, provider_message_id)
TTL stored_at + INTERVAL 1 DAY
SETTINGS merge_with_ttl_timeout = 3600;

-- Every send: its campaign by message id, and its row of attributes.
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.message_campaigns_from_sends TO {db}.message_campaigns AS
SELECT workspace_id, provider_message_id, campaign_id
FROM {db}.sends
WHERE provider_message_id != '';

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.message_rollup_from_sends TO {db}.message_rollup AS
SELECT workspace_id, campaign_id,
  if(provider_message_id = '', cityHash64(concat('send:', send_id)), cityHash64(provider_message_id)) AS message_key,
  toUInt8(1) AS has_send, send_id, provider_message_id, campaign_name,
  CAST(template_name AS String) AS template_name, CAST(template_category AS String) AS template_category,
  CAST(sender_id AS String) AS sender_id, contact_id, phone, CAST(country AS String) AS country,
  toUInt8(outcome = 'accepted') AS accepted, toUInt8(outcome = 'failed') AS refused,
  error_code AS send_error_code, sent_at
FROM {db}.sends;

-- Statuses stored before their send: copied under the send's campaign when the send arrives
-- (`sends` in the subquery is the inserted block).
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.message_rollup_from_early_statuses TO {db}.message_rollup AS
SELECT s.workspace_id AS workspace_id, s.campaign_id AS campaign_id, cityHash64(m.provider_message_id) AS message_key,
  m.send_id AS echoed_send_id,
  toUInt8(m.status = 'sent') AS has_sent, toUInt8(m.status = 'delivered') AS has_delivered,
  toUInt8(m.status IN ('read', 'played')) AS has_read, toUInt8(m.status = 'failed') AS has_failed,
  toUInt8(m.status = 'replied') AS has_replied,
  if(m.status = 'sent', m.ts, NULL) AS sent_status_at,
  if(m.status IN ('delivered', 'read', 'played', 'replied'), m.ts, NULL) AS delivered_at,
  if(m.status IN ('read', 'played', 'replied'), m.ts, NULL) AS read_at,
  if(m.status = 'replied', m.ts, NULL) AS replied_at,
  if(m.status = 'failed', m.ts, NULL) AS failed_at,
  if(m.status = 'failed', m.error_code, 0) AS failure_code,
  if(m.status = 'failed', m.error_title, '') AS failure_title,
  m.pricing_category AS priced_category, toUInt8(m.pricing_category != '') AS has_pricing, m.billable AS billable
FROM {db}.sends AS s
INNER JOIN (
  SELECT workspace_id, provider_message_id, send_id, CAST(status AS String) AS status, ts, error_code, error_title,
    CAST(pricing_category AS String) AS pricing_category, billable
  FROM {db}.message_statuses
  WHERE (workspace_id, provider_message_id) IN (
    SELECT workspace_id, provider_message_id FROM {db}.sends WHERE provider_message_id != '')
) AS m ON m.workspace_id = s.workspace_id AND m.provider_message_id = s.provider_message_id
WHERE s.provider_message_id != '';

-- Statuses whose send is known: under its campaign. The others: into the unmatched set.
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.message_rollup_from_statuses TO {db}.message_rollup AS
SELECT m.workspace_id AS workspace_id, c.campaign_id AS campaign_id, cityHash64(m.provider_message_id) AS message_key,
  m.send_id AS echoed_send_id,
  toUInt8(m.status = 'sent') AS has_sent, toUInt8(m.status = 'delivered') AS has_delivered,
  toUInt8(m.status IN ('read', 'played')) AS has_read, toUInt8(m.status = 'failed') AS has_failed,
  toUInt8(m.status = 'replied') AS has_replied,
  if(m.status = 'sent', m.ts, NULL) AS sent_status_at,
  if(m.status IN ('delivered', 'read', 'played', 'replied'), m.ts, NULL) AS delivered_at,
  if(m.status IN ('read', 'played', 'replied'), m.ts, NULL) AS read_at,
  if(m.status = 'replied', m.ts, NULL) AS replied_at,
  if(m.status = 'failed', m.ts, NULL) AS failed_at,
  if(m.status = 'failed', m.error_code, 0) AS failure_code,
  if(m.status = 'failed', m.error_title, '') AS failure_title,
  CAST(m.pricing_category AS String) AS priced_category, toUInt8(m.pricing_category != '') AS has_pricing,
  m.billable AS billable
FROM {db}.message_statuses AS m
INNER JOIN (
  SELECT workspace_id, provider_message_id, any(campaign_id) AS campaign_id
  FROM {db}.message_campaigns
  WHERE (workspace_id, provider_message_id) IN (SELECT workspace_id, provider_message_id FROM {db}.message_statuses)
  GROUP BY workspace_id, provider_message_id
) AS c ON c.workspace_id = m.workspace_id AND c.provider_message_id = m.provider_message_id;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.message_rollup_unmatched_from_statuses TO {db}.message_rollup_unmatched AS
SELECT workspace_id, provider_message_id, cityHash64(provider_message_id) AS message_key,
  send_id AS echoed_send_id,
  toUInt8(status = 'sent') AS has_sent, toUInt8(status = 'delivered') AS has_delivered,
  toUInt8(status IN ('read', 'played')) AS has_read, toUInt8(status = 'failed') AS has_failed,
  toUInt8(status = 'replied') AS has_replied,
  if(status = 'sent', ts, NULL) AS sent_status_at,
  if(status IN ('delivered', 'read', 'played', 'replied'), ts, NULL) AS delivered_at,
  if(status IN ('read', 'played', 'replied'), ts, NULL) AS read_at,
  if(status = 'replied', ts, NULL) AS replied_at,
  if(status = 'failed', ts, NULL) AS failed_at,
  if(status = 'failed', error_code, 0) AS failure_code,
  if(status = 'failed', error_title, '') AS failure_title,
  CAST(pricing_category AS String) AS priced_category, toUInt8(pricing_category != '') AS has_pricing,
  billable, now() AS stored_at
FROM {db}.message_statuses
WHERE (workspace_id, provider_message_id) NOT IN (
  SELECT workspace_id, provider_message_id FROM {db}.message_campaigns
  WHERE (workspace_id, provider_message_id) IN (SELECT workspace_id, provider_message_id FROM {db}.message_statuses));

-- Accepted sends by contact and time: the touches last-touch attribution looks up per converter.
-- Keyed by a 64-bit hash of the contact id, so looking up a set of converters compares integers.
CREATE TABLE IF NOT EXISTS {db}.contact_touches (
  workspace_id LowCardinality(String),
  contact_key UInt64,
  sent_at DateTime64(3, 'UTC'),
  campaign_id LowCardinality(String),
  send_id String,
  contact_id String
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(sent_at)
ORDER BY (workspace_id, contact_key, sent_at, campaign_id, send_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.contact_touches_from_sends TO {db}.contact_touches AS
SELECT workspace_id, cityHash64(contact_id) AS contact_key, sent_at, campaign_id, send_id, contact_id
FROM {db}.sends
WHERE outcome = 'accepted';

-- Backfill what was stored before this migration (the views above keep it current from now on;
-- rows written twice by the overlap merge away).
INSERT INTO {db}.message_campaigns
SELECT workspace_id, provider_message_id, campaign_id FROM {db}.sends WHERE provider_message_id != '';

INSERT INTO {db}.contact_touches
SELECT workspace_id, cityHash64(contact_id), sent_at, campaign_id, send_id, contact_id
FROM {db}.sends WHERE outcome = 'accepted';

INSERT INTO {db}.message_rollup (workspace_id, campaign_id, message_key, has_send, send_id, provider_message_id,
  campaign_name, template_name, template_category, sender_id, contact_id, phone, country, accepted, refused,
  send_error_code, sent_at)
SELECT workspace_id, campaign_id,
  if(provider_message_id = '', cityHash64(concat('send:', send_id)), cityHash64(provider_message_id)),
  1, send_id, provider_message_id, campaign_name, CAST(template_name AS String), CAST(template_category AS String),
  CAST(sender_id AS String), contact_id, phone, CAST(country AS String), outcome = 'accepted', outcome = 'failed',
  error_code, sent_at
FROM {db}.sends;

INSERT INTO {db}.message_rollup (workspace_id, campaign_id, message_key, echoed_send_id, has_sent, has_delivered,
  has_read, has_failed, has_replied, sent_status_at, delivered_at, read_at, replied_at, failed_at, failure_code,
  failure_title, priced_category, has_pricing, billable)
SELECT m.workspace_id, c.campaign_id, cityHash64(m.provider_message_id), m.send_id,
  m.status = 'sent', m.status = 'delivered', m.status IN ('read', 'played'), m.status = 'failed', m.status = 'replied',
  if(m.status = 'sent', m.ts, NULL), if(m.status IN ('delivered', 'read', 'played', 'replied'), m.ts, NULL),
  if(m.status IN ('read', 'played', 'replied'), m.ts, NULL), if(m.status = 'replied', m.ts, NULL),
  if(m.status = 'failed', m.ts, NULL), if(m.status = 'failed', m.error_code, 0),
  if(m.status = 'failed', m.error_title, ''), CAST(m.pricing_category AS String), m.pricing_category != '', m.billable
FROM {db}.message_statuses AS m
INNER JOIN (
  SELECT workspace_id, provider_message_id, any(campaign_id) AS campaign_id FROM {db}.message_campaigns
  GROUP BY workspace_id, provider_message_id
) AS c ON c.workspace_id = m.workspace_id AND c.provider_message_id = m.provider_message_id;
