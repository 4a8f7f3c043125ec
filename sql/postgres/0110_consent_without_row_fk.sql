-- Consent rows no longer check their workspace per row: the foreign keys cost a lookup in
-- workspaces for every record written (about half of what a bulk import spent writing consent on
-- PGlite). Workspace ids come from an authenticated workspace, never from input, so the check guarded
-- nothing the code can reach; the ON DELETE CASCADE it gave is kept by a trigger.
ALTER TABLE consent_records DROP CONSTRAINT IF EXISTS consent_records_workspace_id_fkey;
ALTER TABLE consent_current DROP CONSTRAINT IF EXISTS consent_current_workspace_id_fkey;

-- (One line: the migration runner splits statements at a `;` that ends a line.)
CREATE OR REPLACE FUNCTION consent_forget_workspace() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN DELETE FROM consent_current WHERE workspace_id = OLD.id; DELETE FROM consent_records WHERE workspace_id = OLD.id; RETURN OLD; END $$;

CREATE TRIGGER consent_forget_workspace AFTER DELETE ON workspaces
  FOR EACH ROW EXECUTE FUNCTION consent_forget_workspace();
