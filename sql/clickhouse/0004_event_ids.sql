-- Event ids by hour of their timestamp, for deduplication that stays cheap at any table size:
-- a batch looks up only the hours its events fall in (the primary key prefix), not every event.
CREATE TABLE IF NOT EXISTS {db}.event_ids (
  workspace_id LowCardinality(String),
  hour DateTime('UTC'),
  event_id String,
  contact_id String,
  inserted_at DateTime('UTC') DEFAULT now()
) ENGINE = ReplacingMergeTree
ORDER BY (workspace_id, hour, event_id)
TTL inserted_at + INTERVAL 90 DAY;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.event_ids_mv TO {db}.event_ids AS
SELECT workspace_id, toStartOfHour(ts) AS hour, event_id, contact_id
FROM {db}.events;
