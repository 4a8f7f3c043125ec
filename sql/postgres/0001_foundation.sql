-- Workspaces, keys, attribute schemas, tags, lists, consent and import jobs.
CREATE TABLE workspaces (
  id text PRIMARY KEY,
  name text NOT NULL,
  default_region text NOT NULL DEFAULT 'IN',
  timezone text NOT NULL DEFAULT 'UTC',
  created_at timestamptz NOT NULL DEFAULT now()
);

-- Only a SHA-256 of each key is kept; the key itself is shown once, at creation.
CREATE TABLE api_keys (
  id text PRIMARY KEY,
  workspace_id text NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
  name text NOT NULL,
  prefix text NOT NULL,
  key_hash text NOT NULL UNIQUE,
  created_at timestamptz NOT NULL DEFAULT now(),
  last_used_at timestamptz,
  revoked_at timestamptz
);

CREATE TABLE attribute_schemas (
  workspace_id text NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
  name text NOT NULL,
  type text NOT NULL CHECK (type IN ('string', 'number', 'boolean', 'date', 'datetime', 'string_list')),
  description text,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (workspace_id, name)
);

CREATE TABLE tags (
  workspace_id text NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
  name text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (workspace_id, name)
);

CREATE TABLE lists (
  workspace_id text NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
  name text NOT NULL,
  description text,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (workspace_id, name)
);

-- Every consent change ever made; the current state is the latest record per (contact, channel, purpose).
CREATE TABLE consent_records (
  id bigserial PRIMARY KEY,
  workspace_id text NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
  contact_id text NOT NULL,
  channel text NOT NULL CHECK (channel IN ('whatsapp', 'sms', 'email')),
  purpose text NOT NULL CHECK (purpose IN ('marketing', 'utility', 'authentication')),
  status text NOT NULL CHECK (status IN ('opted_in', 'opted_out')),
  source text NOT NULL,
  proof text,
  actor text NOT NULL,
  recorded_at timestamptz NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX consent_records_contact ON consent_records (workspace_id, contact_id, channel, purpose, recorded_at DESC, id DESC);

-- Current consent, kept in the same transaction as each record, for fast checks before every send.
CREATE TABLE consent_current (
  workspace_id text NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
  contact_id text NOT NULL,
  channel text NOT NULL,
  purpose text NOT NULL,
  status text NOT NULL,
  recorded_at timestamptz NOT NULL,
  record_id bigint NOT NULL,
  PRIMARY KEY (workspace_id, contact_id, channel, purpose)
);

CREATE TABLE import_jobs (
  id text PRIMARY KEY,
  workspace_id text NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
  kind text NOT NULL CHECK (kind IN ('contacts', 'events')),
  status text NOT NULL CHECK (status IN ('queued', 'running', 'completed', 'failed')),
  file_name text,
  mapping jsonb,
  rows_total bigint,
  rows_processed bigint NOT NULL DEFAULT 0,
  rows_imported bigint NOT NULL DEFAULT 0,
  rows_rejected bigint NOT NULL DEFAULT 0,
  error text,
  created_at timestamptz NOT NULL DEFAULT now(),
  started_at timestamptz,
  finished_at timestamptz
);

CREATE TABLE import_errors (
  job_id text NOT NULL REFERENCES import_jobs(id) ON DELETE CASCADE,
  row_number bigint NOT NULL,
  column_name text,
  reason text NOT NULL,
  PRIMARY KEY (job_id, row_number, column_name)
);

-- Property types seen per event name, so the segment checker can type `where` clauses.
CREATE TABLE event_properties (
  workspace_id text NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
  event_name text NOT NULL,
  property text NOT NULL,
  type text NOT NULL CHECK (type IN ('string', 'number', 'boolean')),
  first_seen_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (workspace_id, event_name, property, type)
);
