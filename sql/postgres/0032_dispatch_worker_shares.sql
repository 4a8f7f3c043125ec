-- Worker processes sending for the same sender split its per-second limit: each one active on the
-- sender (seen in the last few seconds) keeps its own sends under an equal share of the limit, so
-- the shares add up to the provider's limit whatever each process's timing does.
CREATE TABLE throttle_sender_workers (
  sender_id text NOT NULL,
  worker_id text NOT NULL,
  seen_at timestamptz NOT NULL,
  PRIMARY KEY (sender_id, worker_id)
);
