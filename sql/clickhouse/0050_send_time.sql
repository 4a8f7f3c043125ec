-- Send-time optimisation (engine/sto). Local time needs per-row time zones, which ClickHouse only
-- takes as constants; so each zone's UTC offsets are written here (from the IANA database, by the
-- fit) and sends find their offset with an ASOF JOIN.
CREATE TABLE IF NOT EXISTS {db}.sto_tz_offsets (
  timezone LowCardinality(String),
  valid_from DateTime64(3, 'UTC'),
  offset_seconds Int32
) ENGINE = ReplacingMergeTree
ORDER BY (timezone, valid_from);

-- One fit's features: per contact and local slot (weekend * 24 + local hour), the sends (exposures)
-- and the sends engaged within 24 h (read, replied, or a configured event). Partitioned by fit, so
-- an old fit is dropped whole once a newer one has been written.
CREATE TABLE IF NOT EXISTS {db}.sto_contact_slots (
  workspace_id LowCardinality(String),
  fit_id String,
  contact_id String,
  slot UInt8,
  sends UInt32,
  engaged UInt32,
  -- the contact's latest zone and country seen on its sends (its cohort)
  timezone LowCardinality(String),
  country LowCardinality(String),
  last_sent_at DateTime64(3, 'UTC'),
  -- the latest engagement in this slot and its local hour (for the last-active-hour baseline)
  last_engaged_at Nullable(DateTime64(3, 'UTC')),
  last_engaged_hour Int8 DEFAULT -1
) ENGINE = MergeTree
PARTITION BY fit_id
ORDER BY (workspace_id, fit_id, contact_id, slot);

-- One fit's cohort priors: per cohort (a zone or a country, '' = everyone) and slot, the counts and
-- the empirical-Bayes rates (slot: 0-47 as above; hour: 0-23 pooled over weekday and weekend).
CREATE TABLE IF NOT EXISTS {db}.sto_cohort_slots (
  workspace_id LowCardinality(String),
  fit_id String,
  cohort String,
  slot UInt8,
  sends UInt64,
  engaged UInt64,
  slot_rate Float64,
  hour_rate Float64
) ENGINE = MergeTree
PARTITION BY fit_id
ORDER BY (workspace_id, fit_id, cohort, slot);
