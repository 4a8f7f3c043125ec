-- Per (workspace, event name, contact): how many events, the first and the last time, kept by a
-- materialized view at ingest. Segments answer `did`, `did not`, `first did`, `last did` and all-time
-- counts from one row per contact and name instead of every event (engine/segments/README.md).
-- Keyed by the 64-bit contact key the segment scans join on; the contact id is kept for erasure.
-- Rebuilt whole when run again (a migration stopped halfway).
DROP TABLE IF EXISTS {db}.events_by_contact_mv SYNC;

DROP TABLE IF EXISTS {db}.events_by_contact SYNC;

CREATE TABLE {db}.events_by_contact (
  workspace_id LowCardinality(String),
  name LowCardinality(String),
  contact_key UInt64,
  contact_id String,
  events SimpleAggregateFunction(sum, UInt64),
  first_ts SimpleAggregateFunction(min, DateTime64(3, 'UTC')),
  last_ts SimpleAggregateFunction(max, DateTime64(3, 'UTC'))
) ENGINE = AggregatingMergeTree
ORDER BY (workspace_id, name, contact_key, contact_id);

-- Events stored so far, then the view for every insert from now on (migrations run at start, before
-- ingest, like 0100: no insert falls between the two).
INSERT INTO {db}.events_by_contact
SELECT workspace_id, name, cityHash64(contact_id), contact_id, count(), min(ts), max(ts)
FROM {db}.events
GROUP BY workspace_id, name, contact_id;

CREATE MATERIALIZED VIEW {db}.events_by_contact_mv TO {db}.events_by_contact AS
SELECT workspace_id, name, cityHash64(contact_id) AS contact_key, contact_id,
  count() AS events, min(ts) AS first_ts, max(ts) AS last_ts
FROM {db}.events
GROUP BY workspace_id, name, contact_id;
