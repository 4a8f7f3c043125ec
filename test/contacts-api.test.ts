import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTestApi, postgresTargets, type TestApi } from './helpers/runtime.ts';

describe.each(postgresTargets)('contacts API on $name', ({ url }) => {
  let api: TestApi;
  const call = (method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, payload?: unknown) =>
    api.app.inject({ method, url: path, headers: api.auth, payload: payload as never });
  beforeAll(async () => {
    api = await openTestApi({ postgresUrl: url, region: 'IN' });
  });
  afterAll(async () => api?.close());

  it('declares attributes and refuses a type change', async () => {
    expect((await call('PUT', '/v1/attributes/plan', { type: 'string' })).statusCode).toBe(200);
    expect(
      (await call('PUT', '/v1/attributes/age', { type: 'number', description: 'years' })).json(),
    ).toEqual({
      name: 'age',
      type: 'number',
      description: 'years',
    });
    const change = await call('PUT', '/v1/attributes/age', { type: 'string' });
    expect(change.statusCode).toBe(422);
    expect(change.json().errors[0]).toMatchObject({ path: '/body/type', code: 'type_change' });
    const builtIn = await call('PUT', '/v1/attributes/phone', { type: 'string' });
    expect(builtIn.statusCode).toBe(422);
    const badType = await call('PUT', '/v1/attributes/x', { type: 'color' });
    expect(badType.statusCode).toBe(400);
    expect(badType.json().errors[0].path).toBe('/body/type');
    expect((await call('GET', '/v1/attributes')).json().data.map((a: { name: string }) => a.name)).toEqual([
      'age',
      'plan',
    ]);
  });

  it('upserts one contact: 201 then 200, found by phone and external id', async () => {
    const created = await call('POST', '/v1/contacts', {
      phone: '98765 43210',
      external_id: 'u1',
      attributes: { plan: 'pro', age: 30 },
      tags: ['vip'],
    });
    expect(created.statusCode).toBe(201);
    const contact = created.json();
    expect(contact).toMatchObject({
      phone: '+919876543210',
      timezone: 'Asia/Kolkata',
      attributes: { plan: 'pro', age: 30 },
      tags: ['vip'],
    });
    const again = await call('POST', '/v1/contacts', { external_id: 'u1', attributes: { age: 31 } });
    expect(again.statusCode).toBe(200);
    expect(again.json().attributes).toEqual({ plan: 'pro', age: 31 });
    const byPhone = await call('GET', `/v1/contacts?phone=${encodeURIComponent('+91 98765 43210')}`);
    expect(byPhone.json().data.map((c: { id: string }) => c.id)).toEqual([contact.id]);
    expect((await call('GET', '/v1/contacts?external_id=u1')).json().data[0].id).toBe(contact.id);
    expect((await call('GET', '/v1/contacts?phone=%2B919999999999')).json().data).toEqual([]);
    expect((await call('GET', `/v1/contacts/${contact.id}`)).json().id).toBe(contact.id);
    expect((await call('GET', '/v1/contacts/ct_nobody')).statusCode).toBe(404);
  });

  it('refuses bad contacts with field paths and writes nothing', async () => {
    const single = await call('POST', '/v1/contacts', {
      phone: 'not a phone',
      attributes: { age: 'x', shoe: 42 },
    });
    expect(single.statusCode).toBe(422);
    expect(single.headers['content-type']).toContain('application/problem+json');
    expect(single.json().errors.map((e: { path: string }) => e.path)).toEqual([
      '/body/phone',
      '/body/attributes/age',
      '/body/attributes/shoe',
    ]);
    const unknownField = await call('POST', '/v1/contacts', { phone: '+919876500000', colour: 'red' });
    expect(unknownField.statusCode).toBe(400);
    expect(unknownField.json().errors[0].path).toBe('/body/colour');
    const batch = await call('POST', '/v1/contacts/batch', {
      contacts: [{ phone: '+919800000001' }, { phone: '+919800000002', attributes: { age: 'old' } }],
    });
    expect(batch.statusCode).toBe(422);
    expect(batch.json().errors.map((e: { path: string }) => e.path)).toEqual([
      '/body/contacts/1/attributes/age',
    ]);
    expect((await call('GET', '/v1/contacts?phone=%2B919800000001')).json().data).toEqual([]);
  });

  it('batch upsert is idempotent', async () => {
    const body = {
      contacts: [
        { phone: '+919800000011', tags: ['a'] },
        { phone: '+919800000012', lists: ['l1'] },
      ],
    };
    expect((await call('POST', '/v1/contacts/batch', body)).json()).toMatchObject({
      created: 2,
      updated: 0,
      unchanged: 0,
    });
    expect((await call('POST', '/v1/contacts/batch', body)).json()).toMatchObject({
      created: 0,
      updated: 0,
      unchanged: 2,
    });
  });

  it('tags and lists endpoints', async () => {
    const { id } = (await call('POST', '/v1/contacts', { phone: '+919800000021' })).json();
    expect((await call('POST', `/v1/contacts/${id}/tags`, { add: ['x', 'y'] })).json().tags).toEqual([
      'x',
      'y',
    ]);
    expect((await call('POST', `/v1/contacts/${id}/tags`, { remove: ['x'] })).json().tags).toEqual(['y']);
    expect((await call('POST', `/v1/contacts/${id}/tags`, { add: [''] })).statusCode).toBe(422);
    expect((await call('PUT', '/v1/lists/weekly', { description: 'Weekly digest' })).json()).toMatchObject({
      name: 'weekly',
      description: 'Weekly digest',
    });
    expect((await call('POST', '/v1/lists/weekly/members', { add: [id, 'ct_missing'] })).json()).toEqual({
      changed: 1,
      missing: ['ct_missing'],
    });
    expect(
      (await call('GET', `/v1/contacts?list=weekly`)).json().data.map((c: { id: string }) => c.id),
    ).toEqual([id]);
    expect((await call('GET', '/v1/tags')).json().data.map((t: { name: string }) => t.name)).toEqual(
      expect.arrayContaining(['x', 'y']),
    );
    expect((await call('GET', '/v1/lists')).json().data.map((t: { name: string }) => t.name)).toContain(
      'weekly',
    );
  });

  it('consent: record, read, export; erase removes everything', async () => {
    const { id } = (await call('POST', '/v1/contacts', { phone: '+919800000031' })).json();
    const recorded = await call('POST', `/v1/contacts/${id}/consent`, [
      {
        channel: 'whatsapp',
        purpose: 'marketing',
        status: 'opted_in',
        source: 'checkout',
        proof: 'Yes, send me offers',
      },
    ]);
    expect(recorded.statusCode).toBe(200);
    expect(recorded.json().current).toMatchObject([
      { channel: 'whatsapp', purpose: 'marketing', status: 'opted_in' },
    ]);
    const bad = await call('POST', `/v1/contacts/${id}/consent`, [
      { channel: 'pigeon', purpose: 'marketing', status: 'opted_in', source: 'x' },
    ]);
    expect(bad.statusCode).toBe(400);
    expect(bad.json().errors[0].path).toBe('/body/0/channel');
    expect((await call('GET', `/v1/contacts/${id}`)).json().consent).toEqual({
      'whatsapp.marketing': 'opted_in',
    });
    const exported = await call('GET', `/v1/contacts/${id}/consent/export`);
    expect(exported.headers['content-disposition']).toContain('attachment');
    expect(exported.json().history[0]).toMatchObject({
      source: 'checkout',
      proof: 'Yes, send me offers',
      actor: 'api',
    });
    expect(
      (
        await call('POST', '/v1/contacts/ct_nobody/consent', [
          { channel: 'sms', purpose: 'utility', status: 'opted_in', source: 'x' },
        ])
      ).statusCode,
    ).toBe(404);
    expect((await call('DELETE', `/v1/contacts/${id}`)).statusCode).toBe(204);
    expect((await call('GET', `/v1/contacts/${id}`)).statusCode).toBe(404);
    expect((await call('GET', `/v1/contacts/${id}/consent`)).statusCode).toBe(404);
    expect(
      (await api.runtime.pg.query('SELECT 1 FROM consent_records WHERE contact_id = $1', [id])).rows,
    ).toEqual([]);
    expect((await call('DELETE', `/v1/contacts/${id}`)).statusCode).toBe(204);
  });

  it('needs a key, and another workspace sees nothing', async () => {
    expect((await api.app.inject({ method: 'GET', url: '/v1/contacts' })).statusCode).toBe(401);
    const { id } = (await call('POST', '/v1/contacts', { phone: '+919800000041' })).json();
    const { createWorkspace, createApiKey } = await import('../engine/workspaces.ts');
    const other = await createWorkspace(api.runtime.pg, { name: 'Other' });
    const key = await createApiKey(api.runtime.pg, other.id);
    const headers = { authorization: `Bearer ${key.key}` };
    expect((await api.app.inject({ url: `/v1/contacts/${id}`, headers })).statusCode).toBe(404);
    expect((await api.app.inject({ url: '/v1/contacts', headers })).json().data).toEqual([]);
    expect((await api.app.inject({ method: 'DELETE', url: `/v1/contacts/${id}`, headers })).statusCode).toBe(
      204,
    );
    expect((await call('GET', `/v1/contacts/${id}`)).statusCode).toBe(200);
  });
});
