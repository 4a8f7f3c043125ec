-- Dispatch jobs carry a count, not send ids: a worker claims that many due sends of the campaign itself
-- (FOR UPDATE SKIP LOCKED), so the pump no longer writes a row version per send to mark it enqueued
-- (one of three non-HOT ledger updates per send, with an index entry in every index it matched) nor
-- counts a campaign's queued sends to learn how many are enqueued. What is enqueued and not yet
-- claimed is one row per batch here; the claim deletes it, and a batch whose job died stops counting
-- after the pump's stale timeout.
CREATE TABLE dispatch_batches (
  batch_id text PRIMARY KEY,
  campaign_id text NOT NULL,
  size integer NOT NULL,
  enqueued_at timestamptz NOT NULL
);
CREATE INDEX dispatch_batches_campaign ON dispatch_batches (campaign_id);

ALTER TABLE campaign_sends DROP COLUMN IF EXISTS enqueued_at;
