import type { ClickHouseStore } from '../../engine/stores/clickhouse.ts';

/** A contact as segment tests write it: one version row of ClickHouse `contacts`. */
export interface ContactRow {
  id: string;
  phone?: string;
  country?: string;
  language?: string;
  timezone?: string;
  strings?: Record<string, string>;
  numbers?: Record<string, number>;
  booleans?: Record<string, boolean>;
  dates?: Record<string, string>;
  datetimes?: Record<string, string>;
  lists?: Record<string, string[]>;
  tags?: string[];
  memberOf?: string[];
  consent?: Record<string, 'opted_in' | 'opted_out'>;
  created_at: string;
  last_seen_at?: string | null;
  version?: number;
  deleted?: boolean;
}

export interface EventRow {
  contact: string;
  name: string;
  ts: string;
  properties?: Record<string, unknown>;
  id?: string;
}

export interface SendRow {
  contact: string;
  campaign?: string;
  template?: string;
  outcome: 'accepted' | 'failed';
  sent_at: string;
  pmid?: string;
  statuses?: { status: string; ts: string }[];
}

const ch64 = (iso: string) => new Date(iso).toISOString().replace('T', ' ').replace('Z', '');

export async function insertContacts(
  ch: ClickHouseStore,
  workspaceId: string,
  contacts: ContactRow[],
): Promise<void> {
  await ch.insert(
    'contacts',
    contacts.map((c) => ({
      workspace_id: workspaceId,
      contact_id: c.id,
      phone: c.phone ?? '',
      country: c.country ?? '',
      language: c.language ?? '',
      timezone: c.timezone ?? '',
      attr_strings: c.strings ?? {},
      attr_numbers: c.numbers ?? {},
      attr_booleans: c.booleans ?? {},
      attr_dates: c.dates ?? {},
      attr_datetimes: Object.fromEntries(Object.entries(c.datetimes ?? {}).map(([k, v]) => [k, ch64(v)])),
      attr_lists: c.lists ?? {},
      tags: c.tags ?? [],
      lists: c.memberOf ?? [],
      consent: c.consent ?? {},
      created_at: ch64(c.created_at),
      last_seen_at: c.last_seen_at ? ch64(c.last_seen_at) : null,
      updated_at: ch64(c.created_at),
      version: c.version ?? 1,
      deleted: c.deleted ? 1 : 0,
    })),
  );
}

export async function insertEvents(
  ch: ClickHouseStore,
  workspaceId: string,
  events: EventRow[],
): Promise<void> {
  for (let i = 0; i < events.length; i += 50_000) {
    await ch.insert(
      'events',
      events.slice(i, i + 50_000).map((e, j) => ({
        workspace_id: workspaceId,
        name: e.name,
        contact_id: e.contact,
        ts: ch64(e.ts),
        event_id: e.id ?? `ev_${i + j}`,
        properties: JSON.stringify(e.properties ?? {}),
      })),
    );
  }
}

export async function insertSends(ch: ClickHouseStore, workspaceId: string, sends: SendRow[]): Promise<void> {
  await ch.insert(
    'sends',
    sends.map((s, i) => ({
      workspace_id: workspaceId,
      send_id: `send_${i}`,
      campaign_id: s.campaign ? `cmp_${s.campaign}` : '',
      campaign_name: s.campaign ?? '',
      template_name: s.template ?? '',
      contact_id: s.contact,
      provider_message_id: s.pmid ?? '',
      outcome: s.outcome,
      sent_at: ch64(s.sent_at),
    })),
  );
  await ch.insert(
    'message_statuses',
    sends.flatMap((s) =>
      (s.statuses ?? []).map((st) => ({
        workspace_id: workspaceId,
        provider_message_id: s.pmid ?? '',
        status: st.status,
        ts: ch64(st.ts),
      })),
    ),
  );
}
