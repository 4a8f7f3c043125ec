-- Message templates: WhatsApp templates reviewed by Meta, and free-form content for other channels.
CREATE TABLE templates (
  id text PRIMARY KEY,
  workspace_id text NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
  name text NOT NULL,
  language text NOT NULL,
  category text NOT NULL CHECK (category IN ('MARKETING', 'UTILITY', 'AUTHENTICATION')),
  channel text NOT NULL DEFAULT 'whatsapp' CHECK (channel IN ('whatsapp', 'sms', 'email')),
  sender_id text REFERENCES senders(id) ON DELETE SET NULL,
  parameter_format text NOT NULL DEFAULT 'POSITIONAL' CHECK (parameter_format IN ('POSITIONAL', 'NAMED')),
  header jsonb,
  body text,
  footer text,
  buttons jsonb NOT NULL DEFAULT '[]',
  content jsonb,
  variables jsonb NOT NULL DEFAULT '{}',
  status text NOT NULL DEFAULT 'DRAFT',
  status_reason text,
  provider_template_id text,
  submitted_at timestamptz,
  status_updated_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (workspace_id, channel, name, language)
);
CREATE INDEX templates_provider_id ON templates (provider_template_id) WHERE provider_template_id IS NOT NULL;

-- Every review or quality event Meta sent about a template, in arrival order.
CREATE TABLE template_status_events (
  id bigserial PRIMARY KEY,
  template_id text NOT NULL REFERENCES templates(id) ON DELETE CASCADE,
  workspace_id text NOT NULL,
  event text NOT NULL,
  reason text,
  other_info text,
  received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX template_status_events_template ON template_status_events (template_id, id);
