-- The contract between dispatch (which writes sends and audiences) and analytics, segments and
-- send-time (which read them). Views in later migrations join these for data teams.

-- Frozen audiences: the exact contact ids a segment matched, for a campaign or an export.
CREATE TABLE IF NOT EXISTS {db}.audience_snapshots (
  workspace_id LowCardinality(String),
  snapshot_id String,
  contact_id String,
  created_at DateTime64(3, 'UTC') DEFAULT now64(3)
) ENGINE = ReplacingMergeTree
ORDER BY (workspace_id, snapshot_id, contact_id);

-- Every contact of a launched campaign, with its deterministic holdout draw.
CREATE TABLE IF NOT EXISTS {db}.campaign_audience (
  workspace_id LowCardinality(String),
  campaign_id String,
  contact_id String,
  holdout UInt8,
  -- why a contact in the snapshot was not sent to: '' (eligible), 'holdout', 'no_consent', 'frequency_cap', ...
  excluded_reason LowCardinality(String) DEFAULT '',
  launched_at DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree
ORDER BY (workspace_id, campaign_id, contact_id);

-- One row per send attempt the provider accepted (or refused at once), written by dispatch.
CREATE TABLE IF NOT EXISTS {db}.sends (
  workspace_id LowCardinality(String),
  send_id String,
  campaign_id String DEFAULT '',
  campaign_name String DEFAULT '',
  template_name LowCardinality(String) DEFAULT '',
  template_category LowCardinality(String) DEFAULT '',
  channel LowCardinality(String) DEFAULT 'whatsapp',
  sender_id LowCardinality(String) DEFAULT '',
  contact_id String,
  phone String DEFAULT '',
  country LowCardinality(String) DEFAULT '',
  timezone LowCardinality(String) DEFAULT '',
  provider_message_id String DEFAULT '',
  -- 'accepted' when the provider took it, 'failed' when it refused at once (error_code set)
  outcome LowCardinality(String),
  error_code UInt32 DEFAULT 0,
  sent_at DateTime64(3, 'UTC'),
  -- send-time model bookkeeping: 1 when the hour was drawn at random, with its probability
  exploration UInt8 DEFAULT 0,
  propensity Float64 DEFAULT 1,
  INDEX provider_message_id_bloom provider_message_id TYPE bloom_filter GRANULARITY 4
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(sent_at)
ORDER BY (workspace_id, campaign_id, contact_id, send_id);

-- Provider status reports, one row per (message, status): a duplicate report collapses into one row.
-- Statuses whose send is not known yet are kept; they join to `sends` once it appears.
CREATE TABLE IF NOT EXISTS {db}.message_statuses (
  workspace_id LowCardinality(String),
  provider_message_id String,
  -- our send id when the provider echoed it (biz_opaque_callback_data)
  send_id String DEFAULT '',
  -- sent, delivered, read, failed, played, replied
  status LowCardinality(String),
  ts DateTime64(3, 'UTC'),
  recipient String DEFAULT '',
  error_code UInt32 DEFAULT 0,
  error_title String DEFAULT '',
  pricing_category LowCardinality(String) DEFAULT '',
  billable UInt8 DEFAULT 0,
  received_at DateTime64(3, 'UTC') DEFAULT now64(3)
) ENGINE = ReplacingMergeTree(received_at)
PARTITION BY toYYYYMM(ts)
ORDER BY (workspace_id, provider_message_id, status);
