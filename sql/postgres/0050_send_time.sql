-- Send-time optimisation: per-workspace settings and the record of every fit.
CREATE TABLE sto_settings (
  workspace_id text PRIMARY KEY REFERENCES workspaces(id) ON DELETE CASCADE,
  -- events that count as engagement within 24 h of a send, besides read and replied statuses
  engagement_events text[] NOT NULL DEFAULT '{}',
  lookback_days integer NOT NULL DEFAULT 90 CHECK (lookback_days BETWEEN 7 AND 730),
  cohort text NOT NULL DEFAULT 'timezone' CHECK (cohort IN ('timezone', 'country')),
  exploration_share double precision NOT NULL DEFAULT 0.05 CHECK (exploration_share >= 0 AND exploration_share <= 1),
  -- local quiet hours [start, end): no send; NULL start/end = none
  quiet_start smallint CHECK (quiet_start BETWEEN 0 AND 23),
  quiet_end smallint CHECK (quiet_end BETWEEN 0 AND 23),
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE sto_fits (
  id text PRIMARY KEY,
  workspace_id text NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
  status text NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
  -- 'serve' fits answer campaigns and the API; 'evaluate' fits are an evaluation's training half
  purpose text NOT NULL DEFAULT 'serve' CHECK (purpose IN ('serve', 'evaluate')),
  -- features cover sends in [since, until - 24 h), engagements before until
  since timestamptz NOT NULL,
  until timestamptz NOT NULL,
  cohort text NOT NULL,
  engagement_events text[] NOT NULL,
  -- prior strengths fitted by the method of moments
  kappa_contact double precision,
  kappa_cohort double precision,
  contacts bigint,
  sends bigint,
  engaged bigint,
  error text,
  started_at timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz,
  -- when its ClickHouse partitions were dropped (a newer fit replaced it)
  dropped_at timestamptz
);
CREATE INDEX sto_fits_latest ON sto_fits (workspace_id, purpose, status, finished_at DESC);
