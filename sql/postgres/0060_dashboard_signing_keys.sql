-- Secret that signs short-lived dashboard tokens (HMAC-SHA256). One row, created on first use, shared by
-- every API process so a token minted by one verifies on another. Rotating it (DELETE the row) revokes
-- every outstanding dashboard token at once.
CREATE TABLE dashboard_signing_keys (
  id text PRIMARY KEY,
  secret text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
