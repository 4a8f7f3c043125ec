-- Webhook inbox: every verified provider payload is stored here before the provider gets its 200,
-- then processed in batches into ClickHouse. A payload delivered twice (provider retries) is one row.
CREATE TABLE webhook_inbox (
  id bigserial PRIMARY KEY,
  workspace_id text NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
  sender_id text NOT NULL,
  channel text NOT NULL DEFAULT 'whatsapp',
  body bytea NOT NULL,
  body_sha256 text NOT NULL,
  received_at timestamptz NOT NULL DEFAULT now(),
  -- processing bookkeeping: a worker leases a batch until claimed_until; processed_at ends it
  attempts integer NOT NULL DEFAULT 0,
  claimed_until timestamptz,
  processed_at timestamptz,
  -- 'ok', or 'dead' when the body could not be parsed (kept for inspection, never retried)
  outcome text,
  events integer,
  last_error text
);
CREATE UNIQUE INDEX webhook_inbox_body ON webhook_inbox (sender_id, body_sha256);
CREATE INDEX webhook_inbox_pending ON webhook_inbox (id) WHERE processed_at IS NULL;
CREATE INDEX webhook_inbox_processed ON webhook_inbox (processed_at) WHERE processed_at IS NOT NULL;

-- Per-workspace messaging settings for inbound processing; absent row = the defaults in code.
CREATE TABLE messaging_settings (
  workspace_id text PRIMARY KEY REFERENCES workspaces(id) ON DELETE CASCADE,
  reply_window_hours integer NOT NULL DEFAULT 72 CHECK (reply_window_hours BETWEEN 1 AND 720),
  opt_out_keywords text[],
  opt_out_confirmation text,
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- What the provider charges per delivered template message, by category and recipient country,
-- from valid_from on. workspace_id NULL rows ship with Chorus; a workspace's own rows override them.
CREATE TABLE message_rates (
  id bigserial PRIMARY KEY,
  workspace_id text REFERENCES workspaces(id) ON DELETE CASCADE,
  category text NOT NULL CHECK (category IN ('MARKETING', 'UTILITY', 'AUTHENTICATION', 'SERVICE')),
  -- ISO 3166 alpha-2, or '*' for every country without its own row
  country text NOT NULL CHECK (country = '*' OR country ~ '^[A-Z]{2}$'),
  currency text NOT NULL DEFAULT 'USD' CHECK (currency ~ '^[A-Z]{3}$'),
  price numeric(14, 6) NOT NULL CHECK (price >= 0),
  valid_from date NOT NULL,
  source text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE NULLS NOT DISTINCT (workspace_id, category, country, valid_from)
);

-- Shipped defaults: rough USD figures from partners [3P] as gathered in the WhatsApp facts page
-- (Meta pricing since 1 July 2025, per delivered template message); edit per workspace.
INSERT INTO message_rates (workspace_id, category, country, price, valid_from, source) VALUES
  (NULL, 'MARKETING', 'IN', 0.0120, '2025-07-01', 'Meta per-message pricing, partner figures [3P] (India marketing 0.011-0.013 USD), gathered 2026-11'),
  (NULL, 'UTILITY', 'IN', 0.0015, '2025-07-01', 'Meta per-message pricing, partner figures [3P], gathered 2026-11'),
  (NULL, 'AUTHENTICATION', 'IN', 0.0015, '2025-07-01', 'Meta per-message pricing, partner figures [3P], gathered 2026-11'),
  (NULL, 'MARKETING', 'US', 0.0250, '2025-07-01', 'Meta per-message pricing, partner figures [3P], gathered 2026-11'),
  (NULL, 'UTILITY', 'US', 0.0040, '2025-07-01', 'Meta per-message pricing, partner figures [3P], gathered 2026-11'),
  (NULL, 'MARKETING', 'BR', 0.0625, '2025-07-01', 'Meta per-message pricing, partner figures [3P], gathered 2026-11'),
  (NULL, 'UTILITY', 'BR', 0.0080, '2025-07-01', 'Meta per-message pricing, partner figures [3P], gathered 2026-11'),
  (NULL, 'SERVICE', '*', 0, '2025-07-01', 'Meta: service (non-template) messages are free');
