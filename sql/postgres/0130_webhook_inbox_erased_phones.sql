-- Phones (digits, as providers write them) whose contact was erased while this payload was still
-- unprocessed: the processor drops the events about them and empties the body once it is done, so a
-- payload received before an erase cannot bring the erased person back (engine/contacts/erase.ts).
ALTER TABLE webhook_inbox ADD COLUMN IF NOT EXISTS erased_phones text[];
