import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countContacts, defineAttributes, getContacts } from '../engine/contacts/index.ts';
import { importContacts, importErrors, importEvents } from '../engine/imports/index.ts';
import { ValidationError } from '../engine/validation.ts';
import { openTestApi, postgresTargets, type TestApi } from './helpers/runtime.ts';

const HEADER = 'mobile,customer,plan,age,signup,interests,labels,wa_marketing,notes\n';

describe.each(postgresTargets)('contact imports on $name', ({ url }) => {
  let api: TestApi;
  const mapping =
    'mobile=phone,customer=external_id,plan=attributes.plan,signup=attributes.signed_up,labels=tags,wa_marketing=consent.whatsapp.marketing,notes=ignore';
  const post = (csv: string | Buffer, query = `mapping=${encodeURIComponent(mapping)}&file_name=test.csv`) =>
    api.app.inject({
      method: 'POST',
      url: `/v1/imports/contacts?${query}`,
      headers: { ...api.auth, 'content-type': 'text/csv' },
      payload: csv,
    });
  beforeAll(async () => {
    api = await openTestApi({ postgresUrl: url, region: 'IN' });
    await defineAttributes(api.runtime.pg, api.workspace.id, [
      { name: 'plan', type: 'string' },
      { name: 'age', type: 'number' },
      { name: 'signed_up', type: 'date' },
      { name: 'interests', type: 'string_list' },
    ]);
  });
  afterAll(async () => api?.close());

  it('imports good rows, reports bad ones by row and column, and a second import changes nothing', async () => {
    const csv =
      HEADER +
      '98765 43210,c1,pro,31,2025-01-02,cricket|music,vip|beta,yes,hi\n' +
      '+5511961234567,c2,free,,2025-02-03,,,no,\n' +
      '12,c3,free,20,,,,,\n' +
      '+447400123456,c4,free,old,2025-02-30,,,maybe,\n' +
      ',,free,1,,,,,\n';
    const response = await post(csv);
    expect(response.statusCode).toBe(201);
    const job = response.json();
    expect(job).toMatchObject({
      status: 'completed',
      rows_processed: 5,
      rows_imported: 2,
      rows_rejected: 3,
      contacts_created: 2,
    });
    const errors = await api.app.inject({ url: `/v1/imports/${job.id}/errors`, headers: api.auth });
    expect(errors.json().data).toEqual([
      { row: 4, column: 'mobile', reason: expect.stringContaining('too short') },
      { row: 5, column: 'age', reason: 'age "old" is not a number' },
      { row: 5, column: 'signup', reason: expect.stringContaining('YYYY-MM-DD') },
      { row: 5, column: 'wa_marketing', reason: expect.stringContaining('not a consent status') },
      { row: 6, column: null, reason: 'has neither a phone nor an external_id' },
    ]);
    const csvErrors = await api.app.inject({
      url: `/v1/imports/${job.id}/errors?format=csv`,
      headers: api.auth,
    });
    expect(csvErrors.headers['content-type']).toContain('text/csv');
    expect(csvErrors.body.split('\n')[0]).toBe('row,column,reason');
    const found = await api.app.inject({ url: '/v1/contacts?external_id=c1', headers: api.auth });
    expect(found.json().data[0]).toMatchObject({
      phone: '+919876543210',
      attributes: { plan: 'pro', age: 31, signed_up: '2025-01-02', interests: ['cricket', 'music'] },
      tags: ['beta', 'vip'],
      consent: { 'whatsapp.marketing': 'opted_in' },
    });
    const again = (await post(csv)).json();
    expect(again).toMatchObject({
      rows_imported: 2,
      contacts_created: 0,
      contacts_updated: 0,
      contacts_unchanged: 2,
    });
    const status = await api.app.inject({ url: `/v1/imports/${job.id}`, headers: api.auth });
    expect(status.json()).toMatchObject({ id: job.id, status: 'completed', file_name: 'test.csv' });
    expect((await api.app.inject({ url: '/v1/imports', headers: api.auth })).json().data).toHaveLength(2);
  });

  it('broken quoting: the bad row is reported, the others land', async () => {
    const csv = 'phone,plan\n+919800000101,"pro"x\n+919800000102,free\n"+919800000103",ok\n';
    const job = (await post(csv, '')).json();
    expect(job).toMatchObject({ status: 'completed', rows_imported: 2, rows_rejected: 1 });
    const errors = await importErrors(api.runtime, api.workspace.id, job.id);
    expect(errors).toEqual([{ row: 2, column: 'plan', reason: expect.stringContaining('broken quoting') }]);
  });

  it('an unclosed quote is reported, rows before it land', async () => {
    const csv = 'phone,plan\n+919800000201,free\n+919800000202,"never closed\n+919800000203,free\n';
    const job = (await post(csv, '')).json();
    expect(job).toMatchObject({ status: 'completed', rows_imported: 1, rows_rejected: 1 });
    expect((await importErrors(api.runtime, api.workspace.id, job.id))[0]).toMatchObject({
      row: 3,
      reason: expect.stringContaining('never closed'),
    });
  });

  it('a 10 MB field and non-UTF-8 bytes are row errors', async () => {
    const csv = Buffer.concat([
      Buffer.from(`phone,plan\n+919800000301,${'x'.repeat(10 * 1024 * 1024)}\n+919800000302,caf`),
      Buffer.from([0xe9]),
      Buffer.from('\n+919800000303,fine\n'),
    ]);
    const job = (await post(csv, '')).json();
    expect(job).toMatchObject({ status: 'completed', rows_imported: 1, rows_rejected: 2 });
    const errors = await importErrors(api.runtime, api.workspace.id, job.id);
    expect(errors).toEqual([
      { row: 2, column: 'plan', reason: expect.stringContaining('at most 65536') },
      { row: 3, column: 'plan', reason: expect.stringContaining('UTF-8') },
    ]);
  });

  it('a bad mapping, an unknown column or attribute, or an empty file is a 422 before any row', async () => {
    const before = await countContacts(api.runtime, api.workspace.id);
    const unknownColumn = await post('phone,shoe_size\n+919800000401,42\n', '');
    expect(unknownColumn.statusCode).toBe(422);
    expect(unknownColumn.json().errors[0].message).toContain('shoe_size');
    const unknownAttr = await post('phone,x\n+919800000401,42\n', 'mapping=x%3Dattributes.shoe');
    expect(unknownAttr.statusCode).toBe(422);
    expect(unknownAttr.json().errors[0].message).toContain('unknown attribute shoe');
    const noKey = await post('plan\nfree\n', '');
    expect(noKey.json().errors[0].message).toContain('phone or external_id');
    const badMapping = await post('phone\n+919800000401\n', 'mapping=justwords');
    expect(badMapping.statusCode).toBe(422);
    expect(badMapping.json().errors[0].path).toBe('/querystring/mapping');
    expect((await post('', '')).statusCode).toBe(422);
    expect(await countContacts(api.runtime, api.workspace.id)).toBe(before);
  });

  it('refuses an oversized body, a wrong content type, and a missing key', async () => {
    process.env.CHORUS_IMPORT_MAX_BYTES = '100';
    try {
      const big = await post(`phone\n${'+919800000501\n'.repeat(20)}`, '');
      expect(big.statusCode).toBe(413);
      expect(big.json().title).toBe('Content Too Large');
    } finally {
      delete process.env.CHORUS_IMPORT_MAX_BYTES;
    }
    const json = await api.app.inject({
      method: 'POST',
      url: '/v1/imports/contacts',
      headers: api.auth,
      payload: { a: 1 },
    });
    expect(json.statusCode).toBe(415);
    const noKey = await api.app.inject({
      method: 'POST',
      url: '/v1/imports/contacts',
      headers: { 'content-type': 'text/csv' },
      payload: 'phone\n',
    });
    expect(noKey.statusCode).toBe(401);
  });

  it('a stream past maxBytes fails the job with a clear error (engine)', async () => {
    const rows = Array.from({ length: 50 }, (_, i) => `+9198000006${String(i).padStart(2, '0')}\n`).join('');
    const job = await importContacts(
      api.runtime,
      api.workspace,
      Readable.from([Buffer.from(`phone\n${rows}`)]),
      { maxBytes: 200 },
    );
    expect(job.status).toBe('failed');
    expect(job.error).toContain('larger than 200 bytes');
  });

  it('streams many rows in batches with progress (engine)', async () => {
    const progress: number[] = [];
    async function* generate() {
      yield 'external_id,plan,age\n';
      for (let i = 0; i < 3000; i++) yield `bulk-${i},free,${i % 90}\n`;
    }
    const job = await importContacts(api.runtime, api.workspace, generate(), {
      batchSize: 1000,
      onProgress: (j) => progress.push(j.rows_processed),
    });
    expect(job).toMatchObject({ status: 'completed', rows_imported: 3000, contacts_created: 3000 });
    expect(progress).toEqual([1000, 2000, 3000, 3000]);
    const again = await importContacts(api.runtime, api.workspace, generate(), { batchSize: 1000 });
    expect(again).toMatchObject({ contacts_created: 0, contacts_updated: 0, contacts_unchanged: 3000 });
  });

  it('mapping errors from the engine are ValidationErrors', async () => {
    await expect(
      importContacts(api.runtime, api.workspace, Readable.from(['a,a\n1,2\n'])),
    ).rejects.toBeInstanceOf(ValidationError);
  });

  it('imports events from NDJSON, reporting bad batches by line', async () => {
    const lines = [
      JSON.stringify({
        id: 'i1',
        contact: { phone: '+919800000701' },
        name: 'app_open',
        timestamp: '2026-03-01T10:00:00Z',
      }),
      JSON.stringify({
        id: 'i2',
        contact: { phone: '+919800000701' },
        name: 'purchase',
        timestamp: '2026-03-01T11:00:00Z',
        properties: { amount: 5 },
      }),
      '',
      '{broken',
      JSON.stringify({ id: 'i3', contact: { phone: '+919800000701' }, name: 'app_open', timestamp: 'nope' }),
      JSON.stringify({
        id: 'i4',
        contact: { phone: '+919800000701' },
        name: 'app_open',
        timestamp: '2026-03-02T10:00:00Z',
      }),
    ];
    const result = await importEvents(api.runtime, api.workspace, Readable.from([lines.join('\n')]), {
      batchSize: 2,
    });
    expect(result).toMatchObject({ lines: 6, inserted: 3, rejected_batches: 1, contacts_created: 1 });
    expect(result.errors).toEqual([{ path: 'line 4', message: 'is not valid JSON' }]);
    const again = await importEvents(api.runtime, api.workspace, Readable.from([lines.join('\n')]), {
      batchSize: 2,
    });
    expect(again.inserted).toBe(0);
    const bad = await importEvents(api.runtime, api.workspace, Readable.from([lines[4]!]));
    expect(bad.errors).toEqual([{ path: 'line 1 /timestamp', message: expect.stringContaining('ISO 8601') }]);
    expect((await getContacts(api.runtime, api.workspace.id, [])).length).toBe(0);
  });
});
