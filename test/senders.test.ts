import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { whatsappAdapterForSender } from '../engine/channels/whatsapp/index.ts';
import { getSender, getSenderByPhoneNumberId } from '../engine/senders.ts';
import { openTestApi, postgresTargets, type TestApi } from './helpers/runtime.ts';

describe.each(postgresTargets)('senders on $name', ({ url }) => {
  let api: TestApi;
  beforeAll(async () => {
    api = await openTestApi({ postgresUrl: url });
  });
  afterAll(async () => api?.close());

  const create = (body: Record<string, unknown>) =>
    api.app.inject({ method: 'POST', url: '/v1/senders', headers: api.auth, payload: body });

  it('creates a sender; tokens and secrets are write-only', async () => {
    const response = await create({
      name: 'India main',
      phone_number_id: '1234567890',
      portfolio_id: 'pf_1',
      waba_id: 'waba_1',
      base_url: 'http://127.0.0.1:9999',
      access_token: 'EAAG-secret-token',
      app_secret: 'app-secret-value',
    });
    expect(response.statusCode).toBe(201);
    const sender = response.json();
    expect(sender).toMatchObject({
      name: 'India main',
      api_version: 'v23.0',
      throughput_mps: 80,
      tier: 'TIER_250',
      has_access_token: true,
      has_app_secret: true,
      has_verify_token: false,
    });
    for (const r of [
      response,
      await api.app.inject({ url: `/v1/senders/${sender.id}`, headers: api.auth }),
      await api.app.inject({ url: '/v1/senders', headers: api.auth }),
    ]) {
      expect(r.body).not.toContain('EAAG-secret-token');
      expect(r.body).not.toContain('app-secret-value');
      expect(r.body).not.toContain('"access_token"');
    }
    const stored = await getSender(api.runtime.pg, api.workspace.id, sender.id);
    const adapter = whatsappAdapterForSender(stored!);
    expect(adapter.messagesUrl).toBe('http://127.0.0.1:9999/v23.0/1234567890/messages');
    expect(adapter.config.accessToken).toBe('EAAG-secret-token');
    expect((await getSenderByPhoneNumberId(api.runtime.pg, '1234567890'))?.id).toBe(sender.id);
  });

  it('updates fields and replaces a secret without returning it', async () => {
    const created = (await create({ name: 'Second', phone_number_id: '222', portfolio_id: 'pf_1' })).json();
    const response = await api.app.inject({
      method: 'PATCH',
      url: `/v1/senders/${created.id}`,
      headers: api.auth,
      payload: { throughput_mps: 1000, access_token: 'new-token', tier: 'TIER_10K' },
    });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toMatchObject({ throughput_mps: 1000, tier: 'TIER_10K', has_access_token: true });
    expect(response.body).not.toContain('new-token');
  });

  it.each([
    ['a missing phone number id', { name: 'x', portfolio_id: 'p' }, '/body/phone_number_id'],
    [
      'throughput over 1,000',
      { name: 'x', portfolio_id: 'p', phone_number_id: '9', throughput_mps: 1001 },
      '/body/throughput_mps',
    ],
    [
      'an unknown field',
      { name: 'x', portfolio_id: 'p', phone_number_id: '9', colour: 'red' },
      '/body/colour',
    ],
    [
      'a bad version',
      { name: 'x', portfolio_id: 'p', phone_number_id: '9', api_version: '23' },
      '/body/api_version',
    ],
  ])('rejects %s with the field path, storing nothing', async (_label, body, path) => {
    const before = (await api.app.inject({ url: '/v1/senders', headers: api.auth })).json().data.length;
    const response = await create(body);
    expect(response.statusCode).toBe(400);
    expect(response.json().errors.map((e: { path: string }) => e.path)).toContain(path);
    expect((await api.app.inject({ url: '/v1/senders', headers: api.auth })).json().data.length).toBe(before);
  });

  it('a duplicate name or phone number id is a conflict', async () => {
    const response = await create({ name: 'India main', phone_number_id: '5555', portfolio_id: 'p' });
    expect(response.statusCode).toBe(409);
    const again = await create({ name: 'Other', phone_number_id: '1234567890', portfolio_id: 'p' });
    expect(again.statusCode).toBe(409);
    expect(again.json().errors[0].path).toBe('/body/phone_number_id');
  });

  it('deletes, and another workspace cannot see it', async () => {
    const created = (await create({ name: 'Temp', phone_number_id: '777', portfolio_id: 'p' })).json();
    const del = await api.app.inject({
      method: 'DELETE',
      url: `/v1/senders/${created.id}`,
      headers: api.auth,
    });
    expect(del.statusCode).toBe(204);
    expect((await api.app.inject({ url: `/v1/senders/${created.id}`, headers: api.auth })).statusCode).toBe(
      404,
    );
  });
});
