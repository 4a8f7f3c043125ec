-- Campaigns, their audit log, the send ledger (exactly once) and the throttle state shared by
-- every dispatch worker process.
CREATE TABLE campaigns (
  id text PRIMARY KEY,
  workspace_id text NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
  name text NOT NULL,
  type text NOT NULL CHECK (type IN ('broadcast', 'drip', 'triggered')),
  channel text NOT NULL DEFAULT 'whatsapp' CHECK (channel IN ('whatsapp', 'sms', 'email')),
  sender_id text REFERENCES senders(id),
  -- {type: all|segment|tags|lists|csv, dsl?, segment_id?, tags?, lists?, list?}
  audience jsonb NOT NULL,
  -- {template: {name, language, category, variables, media?}} or {text: {body}}
  content jsonb NOT NULL,
  goal jsonb,
  holdout_percent numeric(5, 2) NOT NULL DEFAULT 0 CHECK (holdout_percent >= 0 AND holdout_percent < 100),
  -- {type: now} | {type: at, at, timezone} | {type: optimal, window_start, window_end}
  schedule jsonb NOT NULL DEFAULT '{"type":"now"}',
  -- quiet hours, frequency cap, auto-pause thresholds
  settings jsonb NOT NULL DEFAULT '{}',
  state text NOT NULL DEFAULT 'draft'
    CHECK (state IN ('draft', 'scheduled', 'running', 'paused', 'completed', 'cancelled', 'failed')),
  state_reason text,
  audience_count integer,
  created_by text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  launched_at timestamptz,
  finished_at timestamptz,
  UNIQUE (workspace_id, name)
);
CREATE INDEX campaigns_state ON campaigns (state) WHERE state IN ('scheduled', 'running');

-- Who changed what, when: every create, edit and state change.
CREATE TABLE campaign_audit (
  id bigserial PRIMARY KEY,
  workspace_id text NOT NULL,
  campaign_id text NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
  actor text NOT NULL,
  action text NOT NULL,
  from_state text,
  to_state text,
  changes jsonb,
  reason text,
  at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX campaign_audit_campaign ON campaign_audit (campaign_id, id);

-- The send ledger: one row per (campaign, contact), the single source of truth for exactly once.
-- queued -> sending -> accepted -> delivered|read|failed; or queued -> skipped; sending -> failed.
CREATE TABLE campaign_sends (
  send_id text PRIMARY KEY,
  workspace_id text NOT NULL,
  campaign_id text NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
  contact_id text NOT NULL,
  phone text NOT NULL,
  country text NOT NULL DEFAULT '',
  timezone text NOT NULL DEFAULT '',
  state text NOT NULL CHECK (state IN ('queued', 'sending', 'accepted', 'delivered', 'read', 'failed', 'skipped')),
  not_before timestamptz NOT NULL,
  attempts integer NOT NULL DEFAULT 0,
  lease_owner text,
  lease_until timestamptz,
  enqueued_at timestamptz,
  sending_at timestamptz,
  provider_message_id text,
  error_code integer,
  error_title text,
  skip_reason text,
  -- the message as rendered for this contact at launch (provider-neutral RenderedContent)
  rendered jsonb NOT NULL,
  exploration boolean NOT NULL DEFAULT false,
  propensity double precision NOT NULL DEFAULT 1,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  final_at timestamptz,
  -- written to ClickHouse `sends` (a crash before that is repaired by the sweeper; sends dedupes)
  reported boolean NOT NULL DEFAULT false,
  UNIQUE (campaign_id, contact_id)
);
CREATE INDEX campaign_sends_final ON campaign_sends (campaign_id, final_at DESC) WHERE final_at IS NOT NULL;
CREATE INDEX campaign_sends_unreported ON campaign_sends (campaign_id) WHERE reported = false AND state IN ('accepted', 'failed');
CREATE INDEX campaign_sends_due ON campaign_sends (campaign_id, not_before) WHERE state = 'queued';
CREATE INDEX campaign_sends_sending ON campaign_sends (lease_until) WHERE state = 'sending';
CREATE INDEX campaign_sends_provider ON campaign_sends (provider_message_id) WHERE provider_message_id IS NOT NULL;

-- Messages per second per sender: the next free send slot (virtual scheduling, GCRA-like).
-- A reservation moves next_slot_at forward; it never waits on a window, so it never sleeps forever.
CREATE TABLE throttle_sender_slots (
  sender_id text PRIMARY KEY,
  next_slot_at timestamptz NOT NULL,
  penalty_until timestamptz
);

-- Unique recipients per rolling 24 h per business portfolio (the messaging tier).
CREATE TABLE throttle_portfolio_recipients (
  portfolio_id text NOT NULL,
  recipient text NOT NULL,
  last_at timestamptz NOT NULL,
  PRIMARY KEY (portfolio_id, recipient)
);
CREATE INDEX throttle_portfolio_recipients_window ON throttle_portfolio_recipients (portfolio_id, last_at);

-- Per contact: the last message (pair rate) and recent marketing sends (frequency caps across campaigns).
CREATE TABLE throttle_contacts (
  workspace_id text NOT NULL,
  contact_id text NOT NULL,
  last_sent_at timestamptz,
  marketing_sent_at timestamptz[] NOT NULL DEFAULT '{}',
  PRIMARY KEY (workspace_id, contact_id)
);

-- Messages per sender per UTC day, for the warm-up ramp of new senders.
CREATE TABLE throttle_sender_days (
  sender_id text NOT NULL,
  day date NOT NULL,
  sent integer NOT NULL DEFAULT 0,
  PRIMARY KEY (sender_id, day)
);
