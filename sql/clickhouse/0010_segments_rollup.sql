-- Daily per-contact, per-event rollup for segments: windowed counts and first/last times over whole
-- UTC days read this instead of raw events (partial days at a window's edges still read raw events).
CREATE TABLE IF NOT EXISTS {db}.events_daily (
  workspace_id LowCardinality(String),
  name LowCardinality(String),
  contact_id String,
  day Date,
  events SimpleAggregateFunction(sum, UInt64),
  first_ts SimpleAggregateFunction(min, DateTime64(3, 'UTC')),
  last_ts SimpleAggregateFunction(max, DateTime64(3, 'UTC'))
) ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (workspace_id, name, contact_id, day);

-- Fed at ingest: every insert into events adds its rows' counts here.
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.events_daily_mv TO {db}.events_daily AS
SELECT workspace_id, name, contact_id, toDate(ts) AS day,
  count() AS events, min(ts) AS first_ts, max(ts) AS last_ts
FROM {db}.events
GROUP BY workspace_id, name, contact_id, day;

-- Events that arrived before the view existed (it only sees inserts after its creation).
INSERT INTO {db}.events_daily
SELECT workspace_id, name, contact_id, toDate(ts) AS day, count(), min(ts), max(ts)
FROM {db}.events
WHERE received_at < (
  SELECT any(metadata_modification_time) FROM system.tables
  WHERE database = '{db}' AND name = 'events_daily_mv'
)
GROUP BY workspace_id, name, contact_id, day;
