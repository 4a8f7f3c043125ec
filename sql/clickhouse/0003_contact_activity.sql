-- Last activity per contact, kept by ClickHouse as events arrive, so ingesting events never rewrites
-- contact rows. A contact's last_seen_at is the later of this and the contacts.last_seen_at column.
CREATE TABLE IF NOT EXISTS {db}.contact_activity (
  workspace_id LowCardinality(String),
  contact_id String,
  last_event_at SimpleAggregateFunction(max, DateTime64(3, 'UTC'))
) ENGINE = AggregatingMergeTree
ORDER BY (workspace_id, contact_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.contact_activity_mv TO {db}.contact_activity AS
SELECT workspace_id, contact_id, max(ts) AS last_event_at
FROM {db}.events
GROUP BY workspace_id, contact_id;
