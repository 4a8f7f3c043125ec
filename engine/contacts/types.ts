/** The contact as the API and every engine module see it (the latest version in ClickHouse). */
export interface Contact {
  id: string;
  workspace_id: string;
  external_id: string | null;
  /** E.164 with the leading +. */
  phone: string | null;
  /** ISO 3166 alpha-2, from the phone number. */
  country: string | null;
  language: string | null;
  /** IANA zone: given, else derived from the phone's country where it has one zone. */
  timezone: string | null;
  /** Custom attributes, typed by the workspace schema (dates as YYYY-MM-DD, datetimes as ISO). */
  attributes: Record<string, string | number | boolean | string[]>;
  tags: string[];
  lists: string[];
  /** Current consent by `channel.purpose`, e.g. `{ 'whatsapp.marketing': 'opted_in' }`. */
  consent: Record<string, ConsentStatus>;
  created_at: string;
  last_seen_at: string | null;
  updated_at: string;
}

/** An upsert: matched by external_id, else by phone; absent fields are left as they are. */
export interface ContactInput {
  external_id?: string;
  phone?: string;
  language?: string;
  timezone?: string;
  attributes?: Record<string, unknown>;
  tags?: string[];
  lists?: string[];
  consent?: ConsentInput[];
  last_seen_at?: string;
}

export type Channel = 'whatsapp' | 'sms' | 'email';
export type Purpose = 'marketing' | 'utility' | 'authentication';
export type ConsentStatus = 'opted_in' | 'opted_out';

export interface ConsentInput {
  channel: Channel;
  purpose: Purpose;
  status: ConsentStatus;
  source: string;
  proof?: string;
  /** Who made the change: a user, an API key, `contact` (the person), `system`. */
  actor?: string;
  /** When the person gave or withdrew consent; defaults to now. */
  recorded_at?: string;
}
