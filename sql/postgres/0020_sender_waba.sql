-- The WhatsApp Business Account a number belongs to: templates are created and reviewed per WABA.
ALTER TABLE senders ADD COLUMN IF NOT EXISTS waba_id text;
