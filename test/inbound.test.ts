import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCampaign, getCampaign, transition } from '../engine/campaigns/model.ts';
import { findContactIdsByPhone, upsertContacts } from '../engine/contacts/index.ts';
import { campaignGoal, syncCampaignGoals } from '../engine/metrics/index.ts';
import { processInbox } from '../engine/webhooks/index.ts';
import { createTestSender, insertSends, signed } from './helpers/analytics-fixtures.ts';
import { openTestApi, postgresTargets, type TestApi } from './helpers/runtime.ts';
import { type InboundSpec, messagesPayload, statusesPayload } from './helpers/whatsapp-payloads.ts';

const T0 = Date.UTC(2026, 10, 2, 9) / 1000;
const PHONE = '+919812345678';

function change(field: string, value: unknown) {
  return { object: 'whatsapp_business_account', entry: [{ id: 'waba-1', changes: [{ field, value }] }] };
}

describe.each(postgresTargets)('inbound messages and opt-outs on $name', ({ url }) => {
  let api: TestApi;
  let ws: string;
  let sender: string;
  let contactId: string;
  let provider: Server;
  const sentToProvider: { to: string; body: string }[] = [];

  const deliver = async (payload: unknown) => {
    const body = JSON.stringify(payload);
    const response = await api.app.inject({
      method: 'POST',
      url: `/webhooks/whatsapp/${sender}`,
      payload: body,
      headers: signed(body),
    });
    expect(response.statusCode).toBe(200);
    const report = await processInbox(api.runtime, { retryDelayMs: () => 0 });
    expect(report.failed).toBe(false);
    return report;
  };
  const message = (spec: Partial<InboundSpec> & { id: string }) =>
    deliver(messagesPayload([{ from: PHONE, timestamp: T0 + 3600, ...spec }]));
  const replies = async () =>
    api.runtime.ch.rows<{ provider_message_id: string }>(
      `SELECT DISTINCT provider_message_id FROM ${api.runtime.ch.database}.message_statuses
        WHERE workspace_id = {ws:String} AND status = 'replied' ORDER BY provider_message_id`,
      { ws },
    );
  const consent = async (contact: string) => {
    const { rows } = await api.runtime.pg.query<{ status: string }>(
      `SELECT status FROM consent_current WHERE workspace_id = $1 AND contact_id = $2 AND channel = 'whatsapp' AND purpose = 'marketing'`,
      [ws, contact],
    );
    return rows[0]?.status;
  };
  const records = async (contact: string) => {
    const { rows } = await api.runtime.pg.query<{ n: string }>(
      'SELECT count(*) AS n FROM consent_records WHERE workspace_id = $1 AND contact_id = $2',
      [ws, contact],
    );
    return Number(rows[0]!.n);
  };

  beforeAll(async () => {
    provider = createServer((request, response) => {
      let body = '';
      request.on('data', (chunk) => (body += chunk));
      request.on('end', () => {
        sentToProvider.push({ to: JSON.parse(body).to, body: JSON.parse(body).text?.body });
        response.setHeader('content-type', 'application/json');
        response.end(
          JSON.stringify({
            messaging_product: 'whatsapp',
            messages: [{ id: `wamid.conf.${sentToProvider.length}` }],
          }),
        );
      });
    });
    await new Promise<void>((resolve) => provider.listen(0, '127.0.0.1', resolve));
    const port = (provider.address() as AddressInfo).port;
    api = await openTestApi({ postgresUrl: url });
    ws = api.workspace.id;
    sender = await createTestSender(api.runtime, ws, 'snd_in', {
      baseUrl: `http://127.0.0.1:${port}`,
      accessToken: 'tok',
    });
    const created = await upsertContacts(api.runtime, api.workspace, [{ phone: PHONE }]);
    contactId = created.ids[0]!;
    await insertSends(api.runtime, ws, [
      {
        send_id: 'i1',
        contact_id: contactId,
        provider_message_id: 'wamid.old',
        sent_at: new Date((T0 - 3600) * 1000).toISOString(),
        sender_id: sender,
      },
      {
        send_id: 'i2',
        contact_id: contactId,
        provider_message_id: 'wamid.latest',
        sent_at: new Date(T0 * 1000).toISOString(),
        sender_id: sender,
      },
      {
        send_id: 'i3',
        contact_id: contactId,
        provider_message_id: 'wamid.othersender',
        sent_at: new Date((T0 + 60) * 1000).toISOString(),
        sender_id: 'snd_other',
      },
    ]);
  });
  afterAll(async () => {
    await api?.close();
    await new Promise((resolve) => provider?.close(resolve));
  });

  it('stores a message as an event on its contact and links a reply by context.id', async () => {
    const report = await message({ id: 'wamid.in1', text: 'Is this still on?', contextId: 'wamid.old' });
    expect(report).toMatchObject({ messages: 1, replies: 1, optOuts: 0 });
    expect(await replies()).toEqual([{ provider_message_id: 'wamid.old' }]);
    const events = await api.runtime.ch.rows<{ contact_id: string; properties: string }>(
      `SELECT contact_id, properties FROM ${api.runtime.ch.database}.events WHERE workspace_id = {ws:String} AND name = 'whatsapp_message_received'`,
      { ws },
    );
    expect(events).toHaveLength(1);
    expect(events[0]!.contact_id).toBe(contactId);
    expect(JSON.parse(events[0]!.properties)).toMatchObject({
      text: 'Is this still on?',
      context_message_id: 'wamid.old',
    });
  });

  it('without context, links to the latest send from the same sender within the window, and not beyond it', async () => {
    await message({ id: 'wamid.in2', text: 'thanks!' });
    expect((await replies()).map((r) => r.provider_message_id)).toEqual(['wamid.latest', 'wamid.old']);
    await api.app.inject({
      method: 'PATCH',
      url: '/v1/messaging-settings',
      headers: api.auth,
      payload: { reply_window_hours: 1 },
    });
    // 2 h after the last send: outside a 1 h window, so no reply is credited.
    const late = await message({ id: 'wamid.in3', text: 'hello again', timestamp: T0 + 7200 });
    expect(late.replies).toBe(0);
  });

  it('creates the contact of an unknown number that writes first', async () => {
    await deliver(messagesPayload([{ id: 'wamid.new1', from: '+5511987654321', timestamp: T0, text: 'oi' }]));
    const found = await findContactIdsByPhone(api.runtime, ws, ['+5511987654321']);
    expect(found.get('+5511987654321')).toBeTruthy();
  });

  it('a payload still unprocessed at erase time does not bring the erased contact back', async () => {
    const gone = '+919811111111';
    const stays = '+919822222222';
    const { ids } = await upsertContacts(api.runtime, { id: ws, default_region: 'IN' }, [{ phone: gone }]);
    // One payload naming both people arrives before the erase and waits in the inbox.
    const body = JSON.stringify(
      messagesPayload([
        { id: 'wamid.e1', from: gone, timestamp: T0, text: 'my data' },
        { id: 'wamid.e2', from: stays, timestamp: T0, text: 'hello' },
      ]),
    );
    const stored = await api.app.inject({
      method: 'POST',
      url: `/webhooks/whatsapp/${sender}`,
      payload: body,
      headers: signed(body),
    });
    expect(stored.statusCode).toBe(200);
    await api.app.inject({ method: 'DELETE', url: `/v1/contacts/${ids[0]}`, headers: api.auth });
    const report = await processInbox(api.runtime, { retryDelayMs: () => 0 });
    expect(report).toMatchObject({ failed: false, messages: 1 });
    expect((await findContactIdsByPhone(api.runtime, ws, [gone])).size).toBe(0);
    expect((await findContactIdsByPhone(api.runtime, ws, [stays])).size).toBe(1);
    const events = await api.runtime.ch.rows<{ event_id: string }>(
      `SELECT event_id FROM ${api.runtime.ch.database}.events
        WHERE workspace_id = {ws:String} AND event_id IN ('wamid.e1', 'wamid.e2')`,
      { ws },
    );
    expect(events).toEqual([{ event_id: 'wamid.e2' }]);
    // Once handled, the payload is emptied like any handled payload naming the person.
    const { rows } = await api.runtime.pg.query<{ body: string; erased_phones: string[] | null }>(
      `SELECT convert_from(body, 'UTF8') AS body, erased_phones FROM webhook_inbox
        WHERE body_sha256 = encode(sha256(convert_to($1, 'UTF8')), 'hex')`,
      [body],
    );
    expect(rows).toEqual([{ body: '{}', erased_phones: null }]);
    // A message after the erase is a new one: it makes a new contact, as any first message does.
    await deliver(messagesPayload([{ id: 'wamid.e3', from: gone, timestamp: T0 + 60, text: 'back' }]));
    expect((await findContactIdsByPhone(api.runtime, ws, [gone])).size).toBe(1);
  });

  it('STOP opts out once, sends the confirmation once; a sentence containing stop does not', async () => {
    const patched = await api.app.inject({
      method: 'PATCH',
      url: '/v1/messaging-settings',
      headers: api.auth,
      payload: { opt_out_confirmation: 'You will get no more offers. Reply START to come back.' },
    });
    expect(patched.json()).toMatchObject({ opt_out_confirmation: expect.stringContaining('no more offers') });
    await message({ id: 'wamid.s0', text: 'please do not stop the updates' });
    expect(await consent(contactId)).toBeUndefined();
    const report = await message({ id: 'wamid.s1', text: '  Stop! ' });
    expect(report.optOuts).toBe(1);
    expect(await consent(contactId)).toBe('opted_out');
    // The same webhook again, and the same message inside another payload: nothing new.
    await message({ id: 'wamid.s1', text: '  Stop! ' });
    await deliver(
      messagesPayload([
        { id: 'wamid.s1', from: PHONE, timestamp: T0 + 3600, text: '  Stop! ' },
        { id: 'wamid.x', from: PHONE, timestamp: T0 + 3601, text: 'ok' },
      ]),
    );
    expect(await records(contactId)).toBe(1);
    expect(sentToProvider).toEqual(
      [{ to: PHONE.slice(1), body: 'You will get no more offers. Reply START to come back.' }].map((m) => ({
        ...m,
        to: expect.stringContaining(m.to),
      })),
    );
  });

  it('honours localized keywords the workspace configures, and quick-reply payloads', async () => {
    const patched = await api.app.inject({
      method: 'PATCH',
      url: '/v1/messaging-settings',
      headers: api.auth,
      payload: { opt_out_keywords: ['STOP', 'PARAR', 'BAND KARO'], opt_out_confirmation: null },
    });
    expect(patched.json()).toMatchObject({
      opt_out_keywords: ['STOP', 'PARAR', 'BAND KARO'],
      reply_window_hours: 1,
    });
    const other = (await upsertContacts(api.runtime, api.workspace, [{ phone: '+919800000002' }])).ids[0]!;
    await deliver(
      messagesPayload([{ id: 'wamid.k1', from: '+919800000002', timestamp: T0, text: 'band karo' }]),
    );
    expect(await consent(other)).toBe('opted_out');
    const third = (await upsertContacts(api.runtime, api.workspace, [{ phone: '+919800000003' }])).ids[0]!;
    await deliver(
      messagesPayload([{ id: 'wamid.k2', from: '+919800000003', timestamp: T0, buttonPayload: 'STOP' }]),
    );
    expect(await consent(third)).toBe('opted_out');
    const bad = await api.app.inject({
      method: 'PATCH',
      url: '/v1/messaging-settings',
      headers: api.auth,
      payload: { reply_window_hours: 0 },
    });
    expect(bad.statusCode).toBe(400);
  });

  it('user_preferences stop and a 131050 failure become opt-outs', async () => {
    const a = (await upsertContacts(api.runtime, api.workspace, [{ phone: '+919800000004' }])).ids[0]!;
    await deliver(
      change('user_preferences', {
        messaging_product: 'whatsapp',
        metadata: { display_phone_number: '15550001111', phone_number_id: 'pn_snd_in' },
        user_preferences: [
          {
            wa_id: '919800000004',
            detail: 'User requested to stop marketing messages',
            category: 'marketing_messages',
            value: 'stop',
            timestamp: T0,
          },
        ],
      }),
    );
    expect(await consent(a)).toBe('opted_out');
    const b = (await upsertContacts(api.runtime, api.workspace, [{ phone: '+919800000005' }])).ids[0]!;
    await deliver(
      statusesPayload([
        {
          id: 'wamid.f131050',
          status: 'failed',
          timestamp: T0,
          recipient: '+919800000005',
          errorCode: 131050,
        },
      ]),
    );
    expect(await consent(b)).toBe('opted_out');
  });

  it('a template review update reaches the template registry (unknown templates are skipped)', async () => {
    const report = await deliver(
      change('message_template_status_update', {
        event: 'APPROVED',
        message_template_id: 'tpl_unknown_1',
        message_template_name: 'spring_sale',
        message_template_language: 'en_US',
        message_template_category: 'MARKETING',
        reason: 'NONE',
      }),
    );
    expect(report).toMatchObject({ templateUpdates: 1, dead: 0, failed: false });
  });

  it('a RED quality update changes the sender and pauses its running campaigns', async () => {
    const campaign = await createCampaign(
      api.runtime.pg,
      ws,
      {
        name: 'Spring sale',
        sender_id: sender,
        audience: { type: 'segment', dsl: 'all' },
        content: { text: { body: 'hi' } },
        goal: { event: 'purchase', window_hours: 48 },
      } as never,
      'test',
    );
    await transition(api.runtime.pg, ws, campaign.id, 'launch_now', 'test');
    await deliver(
      change('phone_number_quality_update', {
        display_phone_number: '15550001111',
        event: 'FLAGGED',
        current_limit: 'TIER_2K',
      }),
    );
    const { rows } = await api.runtime.pg.query<{ quality: string; tier: string }>(
      'SELECT quality, tier FROM senders WHERE id = $1',
      [sender],
    );
    expect(rows[0]).toEqual({ quality: 'RED', tier: 'TIER_2K' });
    const paused = await getCampaign(api.runtime.pg, ws, campaign.id);
    expect(paused).toMatchObject({ state: 'paused', state_reason: 'sender quality RED' });
    // The campaign's goal (Postgres) reaches the conversions view's copy (ClickHouse).
    expect(await syncCampaignGoals(api.runtime, ws)).toBe(1);
    expect(await campaignGoal(api.runtime, ws, campaign.id)).toEqual({
      event: 'purchase',
      window_seconds: 48 * 3600,
      revenue_property: 'revenue',
    });
    expect(await syncCampaignGoals(api.runtime, ws)).toBe(0);
  });
});
