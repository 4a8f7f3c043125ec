-- What an import did to contacts, and how far through the file it is (bytes), for progress bars.
ALTER TABLE import_jobs ADD COLUMN contacts_created bigint NOT NULL DEFAULT 0;
ALTER TABLE import_jobs ADD COLUMN contacts_updated bigint NOT NULL DEFAULT 0;
ALTER TABLE import_jobs ADD COLUMN contacts_unchanged bigint NOT NULL DEFAULT 0;
ALTER TABLE import_jobs ADD COLUMN bytes_read bigint NOT NULL DEFAULT 0;
ALTER TABLE import_jobs ADD COLUMN bytes_total bigint;
CREATE INDEX import_jobs_workspace ON import_jobs (workspace_id, created_at DESC);
