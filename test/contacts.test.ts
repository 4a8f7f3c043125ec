import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { currentConsent, exportConsent, recordConsent } from '../engine/consent/index.ts';
import {
  countryTimeZone,
  defineAttributes,
  eraseContact,
  findContactIdsByPhone,
  getContact,
  getContacts,
  normalizePhone,
  updateMemberships,
  upsertContacts,
} from '../engine/contacts/index.ts';
import type { ContactInput } from '../engine/contacts/types.ts';
import { stableId } from '../engine/ids.ts';
import { ValidationError } from '../engine/validation.ts';
import { createWorkspace, type Workspace } from '../engine/workspaces.ts';
import { openTestRuntime, postgresTargets, type TestRuntime } from './helpers/runtime.ts';

async function rejection(promise: Promise<unknown>): Promise<ValidationError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof ValidationError) return error;
    throw error;
  }
  throw new Error('expected a ValidationError');
}

describe('phone normalization', () => {
  it.each([
    ['98765 43210', 'IN', '+919876543210', 'IN'],
    ['+55 11 96123-4567', 'IN', '+5511961234567', 'BR'],
    ['(201) 555-0123', 'US', '+12015550123', 'US'],
    ['07400 123456', 'GB', '+447400123456', 'GB'],
  ])('%s in %s is %s', (raw, region, e164, country) => {
    expect(normalizePhone(raw, region)).toEqual({ ok: true, e164, country });
  });

  it.each([
    ['123', 'is too short'],
    ['hello', 'is not a phone number'],
    ['+91 00000 00000', 'is not a valid number in IN'],
    ['+999 1234567', 'unknown country calling code'],
    ['+1234567890123456789', 'too long'],
  ])('rejects %s with a reason', (raw, reason) => {
    const result = normalizePhone(raw, 'IN');
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.reason).toContain(reason);
  });

  it('E.164 output normalizes to itself, whatever the default region', () => {
    const valid = ['+919876543210', '+5511961234567', '+12015550123', '+447400123456', '+2348021234567'];
    fc.assert(
      fc.property(
        fc.constantFrom(...valid),
        fc.constantFrom('IN', 'US', 'BR', 'DE'),
        fc.constantFrom(' ', '-', ''),
        (phone, region, sep) => {
          const spaced = `${phone.slice(0, 3)}${sep}${phone.slice(3, 7)}${sep}${phone.slice(7)}`;
          const first = normalizePhone(spaced, region);
          expect(first.ok).toBe(true);
          if (first.ok) expect(normalizePhone(first.e164, 'GB')).toEqual(first);
        },
      ),
    );
  });

  it('derives a zone only for countries in one zone', () => {
    expect(countryTimeZone('IN')).toBe('Asia/Kolkata');
    expect(countryTimeZone('NG')).toBe('Africa/Lagos');
    expect(countryTimeZone('DE')).toBe('Europe/Berlin');
    expect(countryTimeZone('US')).toBeNull();
    expect(countryTimeZone('BR')).toBeNull();
  });
});

describe.each(postgresTargets)('contacts on $name', ({ url }) => {
  let runtime: TestRuntime;
  let ws: Workspace;
  beforeAll(async () => {
    runtime = await openTestRuntime({ postgresUrl: url });
    ws = await createWorkspace(runtime.pg, { name: 'Contacts', defaultRegion: 'IN' });
    await defineAttributes(runtime.pg, ws.id, [
      { name: 'plan', type: 'string' },
      { name: 'age', type: 'number' },
      { name: 'vip', type: 'boolean' },
      { name: 'birthday', type: 'date' },
      { name: 'signed_up_at', type: 'datetime' },
      { name: 'interests', type: 'string_list' },
    ]);
  });
  afterAll(async () => runtime?.close());

  it('stores awkward text byte for byte, so writing the same contact again is unchanged', async () => {
    const awkward = [
      "it's \\'quoted\\' \\N",
      'tab\tline\nreturn\r end\\',
      "{'a':1}, [x] \u00e9\u4e2d\ud83d\ude00",
      '\u0000nul',
      '',
    ];
    const input = {
      external_id: "ext\t'odd\\\nline\r\\N",
      phone: '+919877700011',
      attributes: {
        plan: awkward.join('|'),
        age: -0.000123,
        vip: false,
        birthday: '2000-02-29',
        signed_up_at: '2026-01-05T10:00:00.123Z',
        interests: awkward,
      },
      tags: ['a b/c:d-e.f', 'z'],
      lists: ['x_1'],
    };
    const first = await upsertContacts(runtime, ws, [input]);
    expect(first).toMatchObject({ created: 1 });
    const stored = await getContact(runtime, ws.id, first.ids[0]!);
    expect(stored).toMatchObject({
      external_id: input.external_id,
      attributes: { ...input.attributes, signed_up_at: '2026-01-05T10:00:00.123Z' },
      tags: [...input.tags].sort(),
      lists: input.lists,
    });
    expect(await upsertContacts(runtime, ws, [input])).toMatchObject({
      created: 0,
      updated: 0,
      unchanged: 1,
    });
  });

  it('creates a contact with typed attributes, a derived zone, tags and lists', async () => {
    const result = await upsertContacts(runtime, ws, [
      {
        phone: '98765 43210',
        attributes: {
          plan: 'pro',
          age: 31,
          vip: true,
          birthday: '1994-02-03',
          signed_up_at: '2026-01-05T10:00:00+05:30',
          interests: ['cricket', 'tech'],
        },
        tags: ['beta'],
        lists: ['newsletter'],
      },
    ]);
    expect(result).toMatchObject({ created: 1, updated: 0, unchanged: 0 });
    const contact = await getContact(runtime, ws.id, result.ids[0]!);
    expect(contact).toMatchObject({
      phone: '+919876543210',
      country: 'IN',
      timezone: 'Asia/Kolkata',
      tags: ['beta'],
      lists: ['newsletter'],
      attributes: {
        plan: 'pro',
        age: 31,
        vip: true,
        birthday: '1994-02-03',
        signed_up_at: '2026-01-05T04:30:00.000Z',
        interests: ['cricket', 'tech'],
      },
    });
  });

  it('the same upsert twice writes nothing the second time', async () => {
    const input = [
      {
        external_id: 'u-1',
        phone: '+5511961234567',
        attributes: { plan: 'free' },
        timezone: 'America/Sao_Paulo',
      },
    ];
    const first = await upsertContacts(runtime, ws, input);
    const before = await runtime.ch.rows<{ n: string }>(
      `SELECT count() AS n FROM ${runtime.ch.database}.contacts`,
    );
    const second = await upsertContacts(runtime, ws, input);
    const after = await runtime.ch.rows<{ n: string }>(
      `SELECT count() AS n FROM ${runtime.ch.database}.contacts`,
    );
    expect(second).toEqual({ ids: first.ids, created: 0, updated: 0, unchanged: 1 });
    expect(after).toEqual(before);
  });

  it('matches by external id, else by phone, and ids are stable', async () => {
    const byPhone = await upsertContacts(runtime, ws, [{ phone: '+447400123456' }]);
    const withExternal = await upsertContacts(runtime, ws, [
      { phone: '+44 7400 123456', external_id: 'gb-1', attributes: { age: 40 } },
    ]);
    expect(withExternal.ids).toEqual(byPhone.ids);
    expect(withExternal.updated).toBe(1);
    const byExternal = await upsertContacts(runtime, ws, [{ external_id: 'gb-1', language: 'en' }]);
    expect(byExternal.ids).toEqual(byPhone.ids);
    const contact = await getContact(runtime, ws.id, byPhone.ids[0]!);
    expect(contact).toMatchObject({
      external_id: 'gb-1',
      phone: '+447400123456',
      language: 'en',
      attributes: { age: 40 },
      timezone: 'Europe/London',
    });
    expect((await findContactIdsByPhone(runtime, ws.id, ['+447400123456'])).get('+447400123456')).toBe(
      byPhone.ids[0],
    );
  });

  it('a changed phone moves the identity', async () => {
    const { ids } = await upsertContacts(runtime, ws, [{ external_id: 'mover', phone: '+2348021234567' }]);
    await upsertContacts(runtime, ws, [{ external_id: 'mover', phone: '+2348021234568' }]);
    const found = await findContactIdsByPhone(runtime, ws.id, ['+2348021234567', '+2348021234568']);
    expect(found.get('+2348021234567')).toBeUndefined();
    expect(found.get('+2348021234568')).toBe(ids[0]);
  });

  it('one bad input rejects the batch with field paths, and nothing is written', async () => {
    const error = await rejection(
      upsertContacts(runtime, ws, [
        { phone: '+919812345670' },
        { phone: '12' },
        { external_id: 'x', attributes: { age: 'old', colour: 'red', birthday: '2026-02-30' } },
        {},
        { external_id: 'y', timezone: 'Mars/Base', tags: ['ok', ''] },
      ]),
    );
    expect(error.errors.map((e) => e.path)).toEqual([
      '/body/1/phone',
      '/body/2/attributes/age',
      '/body/2/attributes/colour',
      '/body/2/attributes/birthday',
      '/body/3',
      '/body/4/timezone',
      '/body/4/tags/1',
    ]);
    expect(error.errors[2]!.message).toContain('unknown attribute');
    expect(await findContactIdsByPhone(runtime, ws.id, ['+919812345670'])).toEqual(new Map());
  });

  it('rejects a phone that belongs to another contact', async () => {
    await upsertContacts(runtime, ws, [
      { external_id: 'a1', phone: '+919811111111' },
      { external_id: 'b1', phone: '+919822222222' },
    ]);
    const error = await rejection(
      upsertContacts(runtime, ws, [{ external_id: 'a1', phone: '+919822222222' }]),
    );
    expect(error.errors[0]).toMatchObject({ path: '/body/0/phone', code: 'identity_conflict' });
    const other = await rejection(
      upsertContacts(runtime, ws, [{ external_id: 'c1', phone: '+919822222222' }]),
    );
    expect(other.errors[0]).toMatchObject({ path: '/body/0/external_id' });
  });

  it('null removes an attribute; tags and lists accumulate and can be removed', async () => {
    const { ids } = await upsertContacts(runtime, ws, [
      { external_id: 'tagger', attributes: { plan: 'pro', age: 3 }, tags: ['a'] },
    ]);
    await upsertContacts(runtime, ws, [{ external_id: 'tagger', attributes: { age: null }, tags: ['b'] }]);
    let contact = await getContact(runtime, ws.id, ids[0]!);
    expect(contact?.attributes).toEqual({ plan: 'pro' });
    expect(contact?.tags).toEqual(['a', 'b']);
    expect(await updateMemberships(runtime, ws.id, ids, { removeTags: ['a'], addLists: ['vip'] })).toEqual({
      changed: 1,
      missing: [],
    });
    contact = await getContact(runtime, ws.id, ids[0]!);
    expect(contact).toMatchObject({ tags: ['b'], lists: ['vip'], attributes: { plan: 'pro' } });
  });

  it('in-batch duplicates merge into one contact', async () => {
    const result = await upsertContacts(runtime, ws, [
      { phone: '+919833333333', tags: ['x'] },
      { phone: '+919833333333', external_id: 'dup', tags: ['y'] },
    ]);
    expect(result.ids[0]).toBe(result.ids[1]);
    expect(result.created).toBe(1);
    expect((await getContact(runtime, ws.id, result.ids[0]!))?.tags).toEqual(['x', 'y']);
  });

  it('a bulk re-upsert leaves what the same input produced, and re-applies it to contacts changed since', async () => {
    const inputs = Array.from({ length: 600 }, (_, i) => ({
      external_id: `bulk-${i}`,
      phone: `+9198770${String(i).padStart(5, '0')}`,
      attributes: { plan: i % 2 ? 'free' : 'pro' },
      tags: ['bulk'],
      consent: [{ channel: 'whatsapp', purpose: 'marketing', status: 'opted_in', source: 'csv' }],
    })) as ContactInput[];
    const first = await upsertContacts(runtime, ws, inputs);
    expect(first).toMatchObject({ created: 600, updated: 0, unchanged: 0 });
    const again = await upsertContacts(runtime, ws, inputs);
    expect(again).toEqual({ ids: first.ids, created: 0, updated: 0, unchanged: 600 });
    const digests = await runtime.ch.rows<{ n: string }>(
      `SELECT count() AS n FROM ${runtime.ch.database}.contacts FINAL
        WHERE workspace_id = {ws:String} AND external_id LIKE 'bulk-%' AND input_hash != ''`,
      { ws: ws.id },
    );
    expect(Number(digests[0]!.n)).toBe(600);
    // Changed since, other ways: an attribute (a small upsert), consent (an opt-out), a tag removed.
    const [a, b, c] = first.ids as [string, string, string];
    await upsertContacts(runtime, ws, [{ external_id: 'bulk-0', attributes: { plan: 'gold' } }]);
    await recordConsent(runtime, ws.id, b, [
      { channel: 'whatsapp', purpose: 'marketing', status: 'opted_out', source: 'STOP' },
    ]);
    await updateMemberships(runtime, ws.id, [c], { removeTags: ['bulk'] });
    // The same inputs again, one of them twice in the batch (never left unread).
    const third = await upsertContacts(runtime, ws, [...inputs, inputs[5]!]);
    expect(third).toMatchObject({ created: 0, updated: 3, unchanged: 597 });
    const [ca, cb, cc] = await getContacts(runtime, ws.id, [a, b, c]);
    expect(ca!.attributes.plan).toBe('pro');
    expect(cb!.consent['whatsapp.marketing']).toBe('opted_in');
    expect(cc!.tags).toEqual(['bulk']);
    expect(await upsertContacts(runtime, ws, inputs)).toMatchObject({ updated: 0, unchanged: 600 });
  });

  it('bulk upserts (which may leave contacts unread) end where the same inputs sent small end (property)', async () => {
    // Two workspaces get the same operations: in one every upsert is bulk (padded with 500 filler
    // contacts, so digests are stored and compared), in the other the same inputs go as small calls,
    // which never skip. The contacts the operations name must end the same in both.
    const fillers = Array.from({ length: 500 }, (_, i) => ({ external_id: `filler-${i}`, tags: ['f'] }));
    const input = fc.record({
      external_id: fc.constantFrom('q1', 'q2', 'q3'),
      attributes: fc.record(
        { age: fc.integer({ min: 0, max: 3 }), plan: fc.constantFrom('free', 'pro') },
        { requiredKeys: [] },
      ),
      tags: fc.subarray(['t1', 't2']),
      consent: fc.option(
        fc
          .constantFrom('opted_in', 'opted_out')
          .map((status) => [{ channel: 'whatsapp', purpose: 'marketing', status, source: 'csv' }]),
        { nil: undefined },
      ),
    });
    const operation = fc.oneof(
      fc.record({ upsert: fc.array(input, { minLength: 1, maxLength: 4 }) }),
      fc.record({ optOut: fc.constantFrom('q1', 'q2', 'q3') }),
      fc.record({ untag: fc.constantFrom('q1', 'q2', 'q3') }),
    );
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(operation, { minLength: 1, maxLength: 6 }), async (operations) => {
        run++;
        const bulk = await createWorkspace(runtime.pg, { name: `Bulk ${run}`, defaultRegion: 'IN' });
        const small = await createWorkspace(runtime.pg, { name: `Small ${run}`, defaultRegion: 'IN' });
        for (const workspace of [bulk, small])
          await defineAttributes(runtime.pg, workspace.id, [
            { name: 'plan', type: 'string' },
            { name: 'age', type: 'number' },
          ]);
        const idOf = async (workspace: Workspace, key: string) =>
          (await upsertContacts(runtime, workspace, [{ external_id: key }])).ids[0]!;
        for (const op of operations) {
          if ('upsert' in op) {
            const inputs = op.upsert as ContactInput[];
            await upsertContacts(runtime, bulk, [...inputs, ...fillers]);
            await upsertContacts(runtime, small, inputs);
          } else
            for (const workspace of [bulk, small]) {
              const id = await idOf(workspace, 'optOut' in op ? op.optOut : op.untag);
              if ('optOut' in op)
                await recordConsent(runtime, workspace.id, id, [
                  { channel: 'whatsapp', purpose: 'marketing', status: 'opted_out', source: 'STOP' },
                ]);
              else await updateMemberships(runtime, workspace.id, [id], { removeTags: ['t1'] });
            }
        }
        for (const key of ['q1', 'q2', 'q3']) {
          const [a] = await getContacts(runtime, bulk.id, [await idOf(bulk, key)]);
          const [b] = await getContacts(runtime, small.id, [await idOf(small, key)]);
          const content = (c: typeof a) => ({
            attributes: c!.attributes,
            tags: c!.tags,
            consent: c!.consent,
          });
          expect(content(a), key).toEqual(content(b));
        }
      }),
      { numRuns: 12 },
    );
    // About 7 s alone; a loaded 2-core CI box has taken it past the default 60 s.
  }, 180_000);

  it('upsert is idempotent for any batch (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            external_id: fc.constantFrom('p1', 'p2', 'p3'),
            attributes: fc.record(
              { age: fc.integer({ min: 0, max: 120 }), plan: fc.constantFrom('free', 'pro') },
              { requiredKeys: [] },
            ),
            tags: fc.subarray(['t1', 't2', 't3']),
          }),
          { minLength: 1, maxLength: 5 },
        ),
        async (batch) => {
          await upsertContacts(runtime, ws, batch);
          const again = await upsertContacts(runtime, ws, batch);
          expect(again.created + again.updated).toBe(0);
        },
      ),
      { numRuns: 8 },
    );
  });

  it('consent: history, current state, contact map, export', async () => {
    const { ids } = await upsertContacts(runtime, ws, [
      {
        phone: '+919844444444',
        consent: [
          {
            channel: 'whatsapp',
            purpose: 'marketing',
            status: 'opted_in',
            source: 'signup_form',
            proof: 'ticked box',
          },
        ],
      },
    ]);
    const id = ids[0]!;
    expect((await getContact(runtime, ws.id, id))?.consent).toEqual({ 'whatsapp.marketing': 'opted_in' });
    await recordConsent(runtime, ws.id, id, [
      {
        channel: 'whatsapp',
        purpose: 'marketing',
        status: 'opted_out',
        source: 'reply_stop',
        actor: 'contact',
      },
    ]);
    // An older record arriving late is kept in history but does not override the newer decision.
    await recordConsent(runtime, ws.id, id, [
      {
        channel: 'whatsapp',
        purpose: 'marketing',
        status: 'opted_in',
        source: 'paper',
        recorded_at: '2020-01-01T00:00:00Z',
      },
    ]);
    expect(await currentConsent(runtime.pg, ws.id, [id, 'ct_none'], 'whatsapp', 'marketing')).toEqual(
      new Map([[id, 'opted_out']]),
    );
    expect((await getContact(runtime, ws.id, id))?.consent).toEqual({ 'whatsapp.marketing': 'opted_out' });
    const exported = await exportConsent(runtime.pg, ws.id, id);
    expect(exported.history.map((h) => [h.status, h.source])).toEqual([
      ['opted_in', 'paper'],
      ['opted_in', 'signup_form'],
      ['opted_out', 'reply_stop'],
    ]);
    expect(exported.history[1]!.proof).toBe('ticked box');
    // Re-importing the same consent is not a change.
    await upsertContacts(runtime, ws, [
      {
        phone: '+919844444444',
        consent: [{ channel: 'whatsapp', purpose: 'marketing', status: 'opted_out', source: 'import' }],
      },
    ]);
    expect((await exportConsent(runtime.pg, ws.id, id)).history).toHaveLength(3);
  });

  it('consent in bulk: text kept byte for byte, the latest record per key is current, a deleted workspace takes its consent', async () => {
    const other = await createWorkspace(runtime.pg, { name: 'Consent bulk', defaultRegion: 'IN' });
    const awkward = 'tab\there, line\nbreak, back\\slash \\N, \r and "quotes" \u00e9';
    const first = await upsertContacts(runtime, other, [
      {
        phone: '+919866000000',
        consent: [{ channel: 'sms', purpose: 'utility', status: 'opted_in', source: 'form' }],
      },
    ]);
    // One call: a key that is already current, new keys, and two records for one key out of order.
    const { ids } = await upsertContacts(runtime, other, [
      {
        phone: '+919866000000',
        consent: [
          { channel: 'sms', purpose: 'utility', status: 'opted_out', source: awkward, proof: awkward },
        ],
      },
      ...Array.from({ length: 30 }, (_, i) => ({
        phone: `+91986600${String(i + 1).padStart(4, '0')}`,
        consent: [
          {
            channel: 'whatsapp' as const,
            purpose: 'marketing' as const,
            status: 'opted_out' as const,
            source: 'late',
            recorded_at: '2026-01-02T00:00:00Z',
          },
          {
            channel: 'whatsapp' as const,
            purpose: 'marketing' as const,
            status: 'opted_in' as const,
            source: 'early',
            recorded_at: '2026-01-01T00:00:00Z',
          },
        ],
      })),
    ]);
    expect(ids[0]).toBe(first.ids[0]);
    const exported = await exportConsent(runtime.pg, other.id, ids[0]!);
    expect(exported.history.map((h) => [h.status, h.source, h.proof])).toEqual(
      expect.arrayContaining([['opted_out', awkward, awkward]]),
    );
    expect((await getContact(runtime, other.id, ids[0]!))?.consent).toEqual({ 'sms.utility': 'opted_out' });
    const current = await currentConsent(runtime.pg, other.id, ids.slice(1), 'whatsapp', 'marketing');
    expect([...current.values()]).toEqual(Array(30).fill('opted_out'));
    expect((await getContact(runtime, other.id, ids[5]!))?.consent).toEqual({
      'whatsapp.marketing': 'opted_out',
    });
    expect((await exportConsent(runtime.pg, other.id, ids[5]!)).history).toHaveLength(2);
    // Later writes still take fresh record ids (the block taken for the copy moved the sequence on).
    await recordConsent(runtime, other.id, ids[5]!, [
      { channel: 'whatsapp', purpose: 'marketing', status: 'opted_in', source: 'reply_start' },
    ]);
    expect(await currentConsent(runtime.pg, other.id, [ids[5]!], 'whatsapp', 'marketing')).toEqual(
      new Map([[ids[5]!, 'opted_in']]),
    );
    await runtime.pg.query('DELETE FROM workspaces WHERE id = $1', [other.id]);
    const left = await runtime.pg.query<{ n: string }>(
      `SELECT (SELECT count(*) FROM consent_records WHERE workspace_id = $1)
            + (SELECT count(*) FROM consent_current WHERE workspace_id = $1) AS n`,
      [other.id],
    );
    expect(Number(left.rows[0]!.n)).toBe(0);
  });

  it('consent of a contact half-written before (consent stored, contact row missing) is taken over', async () => {
    const phone = '+919867000001';
    const id = stableId('ct', ws.id, 'phone', phone);
    // What a crash between the consent commit and the ClickHouse insert leaves behind.
    const record = await runtime.pg.query<{ id: string }>(
      `INSERT INTO consent_records (workspace_id, contact_id, channel, purpose, status, source, actor, recorded_at)
       VALUES ($1, $2, 'email', 'marketing', 'opted_in', 'crashed import', 'test', '2026-01-01T00:00:00Z') RETURNING id`,
      [ws.id, id],
    );
    await runtime.pg.query(
      `INSERT INTO consent_current (workspace_id, contact_id, channel, purpose, status, recorded_at, record_id)
       VALUES ($1, $2, 'email', 'marketing', 'opted_in', '2026-01-01T00:00:00Z', $3)`,
      [ws.id, id, record.rows[0]!.id],
    );
    const { ids } = await upsertContacts(runtime, ws, [
      {
        phone,
        consent: [{ channel: 'email', purpose: 'marketing', status: 'opted_out', source: 'retry' }],
      },
    ]);
    expect(ids).toEqual([id]);
    expect(await currentConsent(runtime.pg, ws.id, [id], 'email', 'marketing')).toEqual(
      new Map([[id, 'opted_out']]),
    );
    expect((await getContact(runtime, ws.id, id))?.consent).toEqual({ 'email.marketing': 'opted_out' });
    expect((await exportConsent(runtime.pg, ws.id, id)).history.map((h) => h.source)).toEqual([
      'crashed import',
      'retry',
    ]);
  });

  it('rejects bad consent with paths', async () => {
    const { ids } = await upsertContacts(runtime, ws, [{ phone: '+919855555555' }]);
    const error = await rejection(
      recordConsent(runtime, ws.id, ids[0]!, [
        { channel: 'fax', purpose: 'marketing', status: 'maybe', source: '' } as never,
      ]),
    );
    expect(error.errors.map((e) => e.path)).toEqual(['/body/0/channel', '/body/0/status', '/body/0/source']);
  });

  it('erase removes the contact from every table', async () => {
    const { ids } = await upsertContacts(runtime, ws, [
      {
        phone: '+919866666666',
        external_id: 'gone',
        consent: [{ channel: 'whatsapp', purpose: 'marketing', status: 'opted_in', source: 'x' }],
      },
    ]);
    const id = ids[0]!;
    const db = runtime.ch.database;
    await runtime.ch.insert('events', [
      {
        workspace_id: ws.id,
        name: 'app_open',
        contact_id: id,
        ts: '2026-01-01 00:00:00.000',
        event_id: 'e1',
        properties: '{}',
      },
    ]);
    // The event fed the per-contact summary segments read (migration 0111); the erase must reach it.
    expect(
      await runtime.ch.rows(`SELECT name FROM ${db}.events_by_contact WHERE contact_id = {id:String}`, {
        id,
      }),
    ).toEqual([{ name: 'app_open' }]);
    await runtime.ch.insert('sends', [
      {
        workspace_id: ws.id,
        send_id: 's1',
        contact_id: id,
        phone: '+919866666666',
        provider_message_id: 'wamid.1',
        outcome: 'accepted',
        sent_at: '2026-01-01 00:00:00.000',
      },
    ]);
    await runtime.ch.insert('message_statuses', [
      {
        workspace_id: ws.id,
        provider_message_id: 'wamid.1',
        status: 'delivered',
        ts: '2026-01-01 00:00:00.000',
        recipient: '919866666666',
      },
    ]);
    // Provider payloads name the person: handled ones are emptied (hash kept), pending ones and others' stay.
    const inbox = async (body: string, processed: boolean) =>
      (
        await runtime.pg.query<{ id: string }>(
          `INSERT INTO webhook_inbox (workspace_id, sender_id, body, body_sha256, processed_at, outcome)
           VALUES ($1, 'snd_x', convert_to($2, 'UTF8'), md5($2), $3, $4) RETURNING id::text AS id`,
          [ws.id, body, processed ? new Date() : null, processed ? 'ok' : null],
        )
      ).rows[0]!.id;
    const handled = await inbox('{"messages":[{"from":"919866666666","text":{"body":"hi"}}]}', true);
    const pending = await inbox('{"messages":[{"from":"919866666666","text":{"body":"later"}}]}', false);
    const other = await inbox('{"messages":[{"from":"9198666666661","text":{"body":"not them"}}]}', true);
    await runtime.pg.query(
      `INSERT INTO throttle_portfolio_recipients (portfolio_id, recipient, last_at)
       VALUES ('pf_erase', '+919866666666', now()), ('pf_erase', '+919800000009', now())`,
    );
    const report = await eraseContact(runtime, ws.id, id);
    const bodies = await runtime.pg.query<{ id: string; body: string; body_sha256: string }>(
      "SELECT id::text AS id, convert_from(body, 'UTF8') AS body, body_sha256 FROM webhook_inbox WHERE id = ANY($1::bigint[]) ORDER BY id",
      [[handled, pending, other]],
    );
    expect(bodies.rows.map((r) => r.body)).toEqual([
      '{}',
      '{"messages":[{"from":"919866666666","text":{"body":"later"}}]}',
      '{"messages":[{"from":"9198666666661","text":{"body":"not them"}}]}',
    ]);
    expect(bodies.rows[0]!.body_sha256).not.toBe('');
    const tier = await runtime.pg.query<{ recipient: string }>(
      "SELECT recipient FROM throttle_portfolio_recipients WHERE portfolio_id = 'pf_erase' ORDER BY recipient",
    );
    expect(tier.rows.map((r) => r.recipient)).toEqual([
      '+919800000009',
      expect.stringMatching(/^erased:[0-9a-f]{32}$/),
    ]);
    await runtime.pg.query('DELETE FROM webhook_inbox WHERE id = ANY($1::bigint[])', [
      [handled, pending, other],
    ]);
    expect(report.clickhouseTables).toEqual(
      expect.arrayContaining([
        'contacts',
        'contact_identities',
        'events',
        'sends',
        'contact_activity',
        'events_by_contact',
        'message_statuses',
      ]),
    );
    expect(report.postgresTables).toEqual(expect.arrayContaining(['consent_records', 'consent_current']));
    for (const table of [
      'contacts',
      'contact_identities',
      'events',
      'event_ids',
      'sends',
      'contact_activity',
      'events_by_contact',
    ]) {
      const rows = await runtime.ch.rows(`SELECT * FROM ${db}.${table} WHERE contact_id = {id:String}`, {
        id,
      });
      expect(rows, table).toEqual([]);
    }
    expect(
      await runtime.ch.rows(`SELECT * FROM ${db}.message_statuses WHERE provider_message_id = 'wamid.1'`),
    ).toEqual([]);
    expect(
      (await runtime.pg.query('SELECT * FROM consent_records WHERE contact_id = $1', [id])).rows,
    ).toEqual([]);
    expect(await getContacts(runtime, ws.id, [id])).toEqual([]);
  });

  it('workspaces never see each other', async () => {
    const other = await createWorkspace(runtime.pg, { name: 'Other', defaultRegion: 'IN' });
    const mine = await upsertContacts(runtime, ws, [{ phone: '+919877777777' }]);
    const theirs = await upsertContacts(runtime, other, [{ phone: '+919877777777' }]);
    expect(theirs.ids[0]).not.toBe(mine.ids[0]);
    expect(theirs.created).toBe(1);
    expect(await getContacts(runtime, other.id, mine.ids)).toEqual([]);
  });
});
