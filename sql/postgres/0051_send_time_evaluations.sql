-- Offline evaluations of the send-time model (`chorus sto evaluate`), kept for dashboards.
CREATE TABLE sto_evaluations (
  id bigserial PRIMARY KEY,
  workspace_id text NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
  report jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sto_evaluations_latest ON sto_evaluations (workspace_id, created_at DESC);
