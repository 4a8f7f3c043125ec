-- Named segments: `in segment "name"` refers to them by name within a workspace.
CREATE TABLE segments (
  id text PRIMARY KEY,
  workspace_id text NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
  name text NOT NULL,
  description text,
  dsl text NOT NULL,
  -- the parsed tree without positions (engine/segments/ast.schema.json)
  ast jsonb NOT NULL,
  -- names of the segments this one refers to, for dependency lookups and cycle checks
  references_segments text[] NOT NULL DEFAULT '{}',
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (workspace_id, name)
);
CREATE INDEX segments_references ON segments USING gin (references_segments);
