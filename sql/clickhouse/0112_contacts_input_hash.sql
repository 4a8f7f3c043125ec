-- A digest of the bulk-upsert input (an import's row) that produced a contact version; '' for a
-- version written any other way (API upsert, consent, memberships, erase). A re-import reads it by id
-- (one narrow column, no FINAL) and leaves a contact whose latest version came from the very same
-- input without reading or rebuilding its full row (engine/contacts/upsert.ts).
ALTER TABLE {db}.contacts ADD COLUMN IF NOT EXISTS input_hash String DEFAULT '';
