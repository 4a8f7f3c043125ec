-- Typed event properties for segments: each event's top-level JSON numbers and strings as maps,
-- computed from `properties` when a row is written, so property filters and sums read a number or a
-- string by key instead of parsing JSON text (engine/segments/README.md). Keys are the unescaped
-- top-level keys; `prop_numbers` holds the values whose JSON type is a number, `prop_strings` those
-- that are strings (unescaped); nested objects, arrays, booleans and nulls are in neither.
-- Existing rows are backfilled by MATERIALIZE COLUMN (a mutation writing only the new column); until
-- it reaches a part, reads compute the value from `properties`, so answers are the same either way.
-- Every statement is safe to run again.
ALTER TABLE {db}.events ADD COLUMN IF NOT EXISTS prop_numbers Map(String, Float64) MATERIALIZED
  CAST(arrayMap(kv -> (kv.1, toFloat64OrZero(kv.2)),
    arrayFilter(kv -> match(kv.2, '^-?[0-9]'), JSONExtractKeysAndValuesRaw(properties))), 'Map(String, Float64)');

ALTER TABLE {db}.events ADD COLUMN IF NOT EXISTS prop_strings Map(String, String) MATERIALIZED
  CAST(arrayMap(kv -> (kv.1, JSONExtractString(kv.2)),
    arrayFilter(kv -> startsWith(kv.2, '"'), JSONExtractKeysAndValuesRaw(properties))), 'Map(String, String)');

ALTER TABLE {db}.events MATERIALIZE COLUMN prop_numbers SETTINGS mutations_sync = 2;

ALTER TABLE {db}.events MATERIALIZE COLUMN prop_strings SETTINGS mutations_sync = 2;
