-- Contacts: every change appends a full row with a higher version; the latest version wins.
-- `deleted = 1` marks an erase; queries read the latest version and skip deleted contacts.
CREATE TABLE IF NOT EXISTS {db}.contacts (
  workspace_id LowCardinality(String),
  contact_id String,
  external_id String DEFAULT '',
  phone String DEFAULT '',
  country LowCardinality(String) DEFAULT '',
  language LowCardinality(String) DEFAULT '',
  timezone LowCardinality(String) DEFAULT '',
  attr_strings Map(String, String),
  attr_numbers Map(String, Float64),
  attr_booleans Map(String, Bool),
  attr_dates Map(String, Date32),
  attr_datetimes Map(String, DateTime64(3, 'UTC')),
  attr_lists Map(String, Array(String)),
  tags Array(String),
  lists Array(String),
  -- current consent per 'channel.purpose' ('whatsapp.marketing' -> 'opted_in'); history lives in Postgres
  consent Map(String, LowCardinality(String)),
  created_at DateTime64(3, 'UTC'),
  last_seen_at Nullable(DateTime64(3, 'UTC')),
  updated_at DateTime64(3, 'UTC'),
  version UInt64,
  deleted UInt8 DEFAULT 0
) ENGINE = ReplacingMergeTree(version, deleted)
ORDER BY (workspace_id, contact_id);

-- Identity keys (phone, external id) to contact id, for upserts by either key.
CREATE TABLE IF NOT EXISTS {db}.contact_identities (
  workspace_id LowCardinality(String),
  kind LowCardinality(String),
  value String,
  contact_id String,
  version UInt64,
  deleted UInt8 DEFAULT 0
) ENGINE = ReplacingMergeTree(version, deleted)
ORDER BY (workspace_id, kind, value);

-- Events: partitioned by month and sorted by name first, so windowed behaviour scans stay narrow.
CREATE TABLE IF NOT EXISTS {db}.events (
  workspace_id LowCardinality(String),
  name LowCardinality(String),
  contact_id String,
  ts DateTime64(3, 'UTC'),
  event_id String,
  properties String,
  received_at DateTime64(3, 'UTC') DEFAULT now64(3),
  INDEX event_id_bloom event_id TYPE bloom_filter GRANULARITY 4
) ENGINE = ReplacingMergeTree(received_at)
PARTITION BY toYYYYMM(ts)
ORDER BY (workspace_id, name, contact_id, ts, event_id);
