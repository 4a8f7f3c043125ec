-- Events re-sorted by day within each event name (0001 sorted them by contact within each name), so
-- a time window prunes by the primary key inside a month's partition, not only by whole months; and
-- a 64-bit contact key (cityHash64 of the contact id) stored with every event, so segments group and
-- join events per contact by an integer instead of a string (engine/segments/README.md).
-- Rebuilt by copy, because a sort key cannot be altered: a new table, INSERT SELECT, EXCHANGE, drop
-- the old one. The materialized views reading `events` (rollups, activity, event ids) follow the name
-- and see no copied row. Run at start, before ingest, like every migration; every statement is safe
-- to run again if the migration stops halfway (a leftover copy is dropped and the copy redone).
-- SYNC frees the old parts at once (an Atomic database otherwise keeps them for minutes).
DROP TABLE IF EXISTS {db}.events_relayout SYNC;

CREATE TABLE {db}.events_relayout (
  workspace_id LowCardinality(String),
  name LowCardinality(String),
  contact_id String,
  ts DateTime64(3, 'UTC'),
  event_id String,
  properties String,
  received_at DateTime64(3, 'UTC') DEFAULT now64(3),
  contact_key UInt64 MATERIALIZED cityHash64(contact_id),
  INDEX event_id_bloom event_id TYPE bloom_filter GRANULARITY 4
) ENGINE = ReplacingMergeTree(received_at)
PARTITION BY toYYYYMM(ts)
ORDER BY (workspace_id, name, toDate(ts), contact_key, ts, event_id);

INSERT INTO {db}.events_relayout (workspace_id, name, contact_id, ts, event_id, properties, received_at)
SELECT workspace_id, name, contact_id, ts, event_id, properties, received_at FROM {db}.events
SETTINGS max_partitions_per_insert_block = 100000;

EXCHANGE TABLES {db}.events AND {db}.events_relayout;

DROP TABLE {db}.events_relayout SYNC;
