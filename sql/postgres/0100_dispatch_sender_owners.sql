-- Sender affinity: a sender one process can carry is sent by one worker process at a time, so its
-- limit is not split between processes that get its batches unevenly. Each worker process has its
-- own job queue and a heartbeat here; the pump routes a sender's batches to its owner's queue and
-- gives a sender whose owner stopped beating to the least loaded live worker. Safety does not rest
-- on this (two processes on one sender still split its limit, throttle_sender_workers); speed does.
CREATE TABLE dispatch_workers (
  worker_id text PRIMARY KEY,
  queue text NOT NULL,
  seen_at timestamptz NOT NULL
);

CREATE TABLE dispatch_sender_owners (
  sender_id text PRIMARY KEY,
  worker_id text NOT NULL,
  since timestamptz NOT NULL
);
