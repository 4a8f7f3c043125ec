/** The campaign model as the API, the CLI and dispatch see it. */
export type CampaignType = 'broadcast' | 'drip' | 'triggered';
export type CampaignState =
  | 'draft'
  | 'scheduled'
  | 'running'
  | 'paused'
  | 'completed'
  | 'cancelled'
  | 'failed';
export type TemplateCategory = 'MARKETING' | 'UTILITY' | 'AUTHENTICATION';

export type Audience =
  | { type: 'all' }
  /** A DSL expression, or a saved segment by id (the segments module resolves both). */
  | { type: 'segment'; dsl?: string; segment_id?: string }
  /** Contacts carrying any of these tags. */
  | { type: 'tags'; tags: string[] }
  /** Contacts on any of these lists (a CSV upload becomes a list). */
  | { type: 'lists'; lists: string[] };

/** Where a template variable's value comes from: a contact field, or a literal. */
export type VariableSource = { field: string; fallback?: string } | { value: string };

export interface TemplateContent {
  name: string;
  language: string;
  /** When the template catalog does not know it; the catalog wins when it does. */
  category?: TemplateCategory;
  /** Body variables by position ("1") or name ("first_name"). */
  variables?: Record<string, VariableSource>;
  /** Header media for media templates. */
  media?: { type: 'image' | 'video' | 'document'; link: string };
}

export type CampaignContent = { template: TemplateContent } | { text: { body: string } };

export interface Goal {
  /** The conversion event name, e.g. `purchase`. */
  event: string;
  /** Hours after the send during which a conversion counts. */
  window_hours: number;
  /** The goal event's property read as revenue; `revenue` when not given. */
  revenue_property?: string;
}

export type Schedule =
  | { type: 'now' }
  /** A wall-clock date-time (`YYYY-MM-DDTHH:mm[:ss]`) in an IANA time zone. */
  | { type: 'at'; at: string; timezone: string }
  /** Each contact at its best time inside the window (ISO instants). */
  | { type: 'optimal'; window_start: string; window_end: string; exploration_share?: number };

export interface CampaignSettings {
  /** No sends in [start:00, end:00) in the contact's time zone; held, not dropped. null: none. */
  quiet_hours: { start: number; end: number } | null;
  /** At most `max` marketing messages per contact per `days` days, across campaigns. null: none. */
  frequency_cap: { max: number; days: number } | null;
  /** Pause when more than `failure_rate` of the last `window` attempts failed (after `min_attempts`). */
  auto_pause: { failure_rate: number; window: number; min_attempts: number };
}

export interface Campaign {
  id: string;
  workspace_id: string;
  name: string;
  type: CampaignType;
  channel: 'whatsapp' | 'sms' | 'email';
  sender_id: string | null;
  audience: Audience;
  content: CampaignContent;
  goal: Goal | null;
  holdout_percent: number;
  schedule: Schedule;
  settings: CampaignSettings;
  state: CampaignState;
  state_reason: string | null;
  audience_count: number | null;
  created_by: string;
  created_at: string;
  updated_at: string;
  launched_at: string | null;
  finished_at: string | null;
}

export interface CampaignInput {
  name: string;
  type?: CampaignType;
  channel?: 'whatsapp' | 'sms' | 'email';
  sender_id?: string | null;
  audience: Audience;
  content: CampaignContent;
  goal?: Goal | null;
  holdout_percent?: number;
  schedule?: Schedule;
  settings?: Partial<CampaignSettings>;
}

export const DEFAULT_SETTINGS: CampaignSettings = {
  quiet_hours: { start: 21, end: 9 },
  frequency_cap: { max: 2, days: 7 },
  auto_pause: { failure_rate: 0.2, window: 200, min_attempts: 50 },
};

/** A domain error with the fields at fault; the API turns it into problem+json. */
export class CampaignError extends Error {
  readonly kind: 'invalid' | 'conflict' | 'not_found';
  readonly errors: { path: string; message: string }[];
  constructor(
    kind: CampaignError['kind'],
    message: string,
    errors: { path: string; message: string }[] = [],
  ) {
    super(message);
    this.kind = kind;
    this.errors = errors;
  }
}
