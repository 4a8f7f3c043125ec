-- A sender is one business phone number (WhatsApp) or one sending identity of another channel.
CREATE TABLE senders (
  id text PRIMARY KEY,
  workspace_id text NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
  channel text NOT NULL DEFAULT 'whatsapp' CHECK (channel IN ('whatsapp', 'sms', 'email')),
  name text NOT NULL,
  -- WhatsApp Cloud API: where and how to call it
  base_url text NOT NULL DEFAULT 'https://graph.facebook.com',
  api_version text NOT NULL DEFAULT 'v23.0',
  phone_number_id text,
  display_phone_number text,
  -- the business portfolio whose messaging tier this number shares
  portfolio_id text NOT NULL,
  access_token text,
  app_secret text,
  verify_token text,
  -- limits as Chorus knows them; updated from quality webhooks
  throughput_mps integer NOT NULL DEFAULT 80 CHECK (throughput_mps BETWEEN 1 AND 1000),
  tier text NOT NULL DEFAULT 'TIER_250' CHECK (tier IN ('TIER_250', 'TIER_2K', 'TIER_10K', 'TIER_100K', 'TIER_UNLIMITED')),
  quality text NOT NULL DEFAULT 'GREEN' CHECK (quality IN ('GREEN', 'YELLOW', 'RED', 'UNKNOWN')),
  status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'paused', 'stopped')),
  status_reason text,
  -- warm-up: new numbers ramp their daily volume from this moment
  warmup_started_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (workspace_id, name)
);
CREATE UNIQUE INDEX senders_phone_number_id ON senders (phone_number_id) WHERE phone_number_id IS NOT NULL;
