import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { approveTemplate, createSender, phoneOf, seedContacts } from './helpers/campaigns.ts';
import { openTestApi, postgresTargets, type TestApi } from './helpers/runtime.ts';

describe.each(postgresTargets)('campaigns API on $name', ({ url }) => {
  let api: TestApi;
  let sender: string;
  beforeAll(async () => {
    api = await openTestApi({ postgresUrl: url });
    sender = await createSender(api.runtime, api.workspace.id);
    await approveTemplate(api.runtime, api.workspace.id, 'promo');
    await approveTemplate(api.runtime, api.workspace.id, 'waiting', { status: 'PENDING' });
    await seedContacts(
      api.runtime,
      api.workspace.id,
      Array.from({ length: 5 }, (_, i) => ({
        id: `c${i}`,
        phone: phoneOf(i),
        tags: ['vip'],
        attributes: { first_name: `N${i}` },
      })),
    );
  });
  afterAll(async () => api?.close());

  const call = (method: 'GET' | 'POST' | 'PATCH', path: string, payload?: unknown) =>
    api.app.inject({
      method,
      url: path,
      headers: api.auth,
      ...(payload === undefined ? {} : { payload: payload as object }),
    });
  const draft = (name: string, extra: Record<string, unknown> = {}) => ({
    name,
    sender_id: sender,
    audience: { type: 'tags', tags: ['vip'] },
    content: {
      template: {
        name: 'promo',
        language: 'en_US',
        variables: { '1': { field: 'first_name', fallback: 'there' } },
      },
    },
    settings: { quiet_hours: null },
    ...extra,
  });
  const stateOf = async (id: string) => (await call('GET', `/v1/campaigns/${id}`)).json().state;

  it('creates, lists, edits and shows a draft with its audit log', async () => {
    const created = await call('POST', '/v1/campaigns', draft('spring'));
    expect(created.statusCode).toBe(201);
    const id = created.json().id;
    expect(created.json()).toMatchObject({ state: 'draft', type: 'broadcast', schedule: { type: 'now' } });
    const edited = await call('PATCH', `/v1/campaigns/${id}`, {
      holdout_percent: 5,
      goal: { event: 'purchase', window_hours: 72 },
    });
    expect(edited.statusCode).toBe(200);
    expect(edited.json()).toMatchObject({
      holdout_percent: 5,
      goal: { event: 'purchase', window_hours: 72 },
    });
    const shown = (await call('GET', `/v1/campaigns/${id}`)).json();
    expect(shown.audit.map((a: { action: string }) => a.action)).toEqual(['create', 'update']);
    expect(shown.audit[0].actor).toMatch(/^key:chorus_/);
    const listed = (await call('GET', '/v1/campaigns?state=draft')).json();
    expect(listed.campaigns.map((c: { id: string }) => c.id)).toContain(id);
  });

  it.each([
    ['an unknown field', { ...draft('x'), colour: 'red' }, '/body/colour'],
    ['a bad audience type', { ...draft('x'), audience: { type: 'everyone' } }, '/body/audience/type'],
    [
      'a bad template name',
      { ...draft('x'), content: { template: { name: 'Bad Name', language: 'en_US' } } },
      '/body/content/template/name',
    ],
    ['a holdout of 100%', { ...draft('x'), holdout_percent: 100 }, '/body/holdout_percent'],
    [
      'quiet hours of 25',
      { ...draft('x'), settings: { quiet_hours: { start: 25, end: 9 } } },
      '/body/settings/quiet_hours',
    ],
  ])('rejects %s with a 400 naming the field', async (_label, body, path) => {
    const response = await call('POST', '/v1/campaigns', body);
    expect(response.statusCode).toBe(400);
    expect(
      response
        .json()
        .errors.map((e: { path: string }) => e.path)
        .join(' '),
    ).toContain(path);
  });

  it('rejects an unknown time zone and an unknown sender with a 422 naming the field', async () => {
    const tz = await call(
      'POST',
      '/v1/campaigns',
      draft('tz', { schedule: { type: 'at', at: '2030-01-01T09:00', timezone: 'Mars/Olympus' } }),
    );
    expect(tz.statusCode).toBe(422);
    expect(tz.json().errors).toEqual([
      { path: '/body/schedule/timezone', message: 'unknown time zone Mars/Olympus' },
    ]);
    const nobody = await call('POST', '/v1/campaigns', draft('nobody', { sender_id: 'snd_nope' }));
    expect(nobody.statusCode).toBe(422);
    expect(nobody.json().errors[0].path).toBe('/body/sender_id');
  });

  it.each([
    ['an unapproved template', { content: { template: { name: 'waiting', language: 'en_US' } } }, /PENDING/],
    ['an empty audience', { audience: { type: 'tags', tags: ['nobody'] } }, /audience is empty/],
    [
      'a schedule in the past',
      { schedule: { type: 'at', at: '2021-05-01T09:00', timezone: 'Asia/Kolkata' } },
      /in the past/,
    ],
    ['no sender', { sender_id: null }, /sender is required/],
  ])('refuses to launch %s: 422, state unchanged, nothing queued', async (label, extra, message) => {
    const id = (await call('POST', '/v1/campaigns', draft(`refused ${label}`, extra))).json().id;
    const review = (await call('POST', `/v1/campaigns/${id}/review`)).json();
    expect(review.can_launch).toBe(false);
    const launched = await call('POST', `/v1/campaigns/${id}/launch`);
    expect(launched.statusCode).toBe(422);
    expect(launched.json().detail).toMatch(message);
    expect(launched.json().errors.length).toBeGreaterThan(0);
    expect(await stateOf(id)).toBe('draft');
    expect((await call('GET', `/v1/campaigns/${id}/progress`)).json().total).toBe(0);
  });

  it('reviews, launches, pauses, resumes and cancels, refusing wrong transitions', async () => {
    const id = (
      await call(
        'POST',
        '/v1/campaigns',
        draft('lifecycle', { schedule: { type: 'at', at: '2031-06-01T10:00', timezone: 'Asia/Kolkata' } }),
      )
    ).json().id;
    const review = (await call('POST', `/v1/campaigns/${id}/review`)).json();
    expect(review).toMatchObject({
      audience_count: 5,
      eligible_count: 5,
      can_launch: true,
      template: { status: 'APPROVED', category: 'MARKETING' },
    });
    expect(review.preview[0].message.components[0].parameters[0].text).toMatch(/^N\d$/);
    expect(review.cost_estimate).toMatchObject({ currency: 'USD', by_country: { IN: 0.06 } });
    const launched = await call('POST', `/v1/campaigns/${id}/launch`);
    expect(launched.statusCode).toBe(200);
    expect(launched.json().campaign.state).toBe('scheduled');
    expect((await call('POST', `/v1/campaigns/${id}/launch`)).statusCode).toBe(409);
    expect((await call('PATCH', `/v1/campaigns/${id}`, { name: 'too late' })).statusCode).toBe(409);
    expect((await call('POST', `/v1/campaigns/${id}/resume`)).statusCode).toBe(409);
    expect((await call('POST', `/v1/campaigns/${id}/pause`, { reason: 'check copy' })).json()).toMatchObject({
      state: 'paused',
      state_reason: 'check copy',
    });
    expect((await call('POST', `/v1/campaigns/${id}/resume`)).json().state).toBe('running');
    const progress = (await call('GET', `/v1/campaigns/${id}/progress`)).json();
    expect(progress).toMatchObject({ total: 5, counts: { queued: 5 } });
    expect((await call('POST', `/v1/campaigns/${id}/cancel`)).json().state).toBe('cancelled');
    expect((await call('GET', `/v1/campaigns/${id}/progress`)).json()).toMatchObject({
      counts: { queued: 0, skipped: 5 },
      skipped: { cancelled: 5 },
    });
    expect((await call('POST', `/v1/campaigns/${id}/pause`)).statusCode).toBe(409);
    expect((await call('GET', '/v1/campaigns/cmp_missing')).statusCode).toBe(404);
  });

  it('reviews every audience kind: all contacts, tags, lists, a DSL segment and a named segment', async () => {
    await seedContacts(
      api.runtime,
      api.workspace.id,
      Array.from({ length: 3 }, (_, i) => ({ id: `l${i}`, phone: phoneOf(50 + i), lists: ['newsletter'] })),
    );
    const named = await call('POST', '/v1/segments', { name: 'readers', dsl: 'in list "newsletter"' });
    expect(named.statusCode).toBe(201);
    const countOf = async (label: string, audience: unknown) => {
      const created = await call('POST', '/v1/campaigns', draft(`kind ${label}`, { audience }));
      expect(created.statusCode, label).toBe(201);
      return (await call('POST', `/v1/campaigns/${created.json().id}/review`)).json().audience_count;
    };
    expect(await countOf('all', { type: 'all' })).toBe(8);
    expect(await countOf('tags', { type: 'tags', tags: ['vip'] })).toBe(5);
    expect(await countOf('lists', { type: 'lists', lists: ['newsletter'] })).toBe(3);
    expect(await countOf('dsl', { type: 'segment', dsl: 'tagged "vip" or in list "newsletter"' })).toBe(8);
    expect(await countOf('named', { type: 'segment', segment_id: named.json().id })).toBe(3);
  });

  it('review counts after consent and caps, and warns of quiet hours, caps and an unapproved template', async () => {
    const ws = api.workspace.id;
    // c0 and c1 had a marketing message yesterday: a cap of one per week holds them back.
    await api.runtime.pg.query(
      `INSERT INTO throttle_contacts (workspace_id, contact_id, marketing_sent_at)
       SELECT $1, id, ARRAY[now() - interval '1 day'] FROM unnest($2::text[]) AS id`,
      [ws, ['c0', 'c1']],
    );
    try {
      const created = await call(
        'POST',
        '/v1/campaigns',
        draft('warned', {
          content: { template: { name: 'waiting', language: 'en_US' } },
          // 23:00 in Kolkata, where every contact lives: inside 21:00-09:00 quiet hours.
          schedule: { type: 'at', at: '2031-06-01T23:00', timezone: 'Asia/Kolkata' },
          settings: { quiet_hours: { start: 21, end: 9 }, frequency_cap: { max: 1, days: 7 } },
        }),
      );
      expect(created.statusCode).toBe(201);
      const review = (await call('POST', `/v1/campaigns/${created.json().id}/review`)).json();
      expect(review).toMatchObject({
        audience_count: 5,
        eligible_count: 5,
        after_frequency_cap_count: 3,
        can_launch: false,
        template: { name: 'waiting', status: 'PENDING' },
      });
      expect(review.warnings.map((w: { code: string }) => w.code)).toEqual(
        expect.arrayContaining(['quiet_hours', 'frequency_cap', 'template_not_approved']),
      );
      expect(review.warnings.find((w: { code: string }) => w.code === 'quiet_hours').message).toContain(
        '5 contacts',
      );
      expect(await stateOf(created.json().id)).toBe('draft');
    } finally {
      await api.runtime.pg.query('DELETE FROM throttle_contacts WHERE workspace_id = $1', [ws]);
    }
  });

  const upload = (id: string, csv: string, query = '') =>
    api.app.inject({
      method: 'POST',
      url: `/v1/campaigns/${id}/audience/csv${query}`,
      headers: { ...api.auth, 'content-type': 'text/csv' },
      payload: csv,
    });

  it('takes a CSV upload as a draft audience: the rows become a list, bad rows are reported', async () => {
    const id = (await call('POST', '/v1/campaigns', draft('uploaded'))).json().id;
    const csv = [
      'phone,first_name,consent',
      `${phoneOf(100)},Asha,yes`,
      `${phoneOf(101)},Ravi,yes`,
      'not-a-phone,Bad,yes',
      `${phoneOf(0)},N0,yes`,
    ].join('\n');
    const mapping = '?mapping=first_name%3Dignore,consent%3Dconsent.whatsapp.marketing';
    const response = await upload(id, csv, mapping);
    expect(response.statusCode).toBe(201);
    const body = response.json();
    expect(body.list).toBe(`campaign:${id}`);
    expect(body.import).toMatchObject({ status: 'completed', rows_imported: 3, rows_rejected: 1 });
    expect(body.campaign.audience).toEqual({ type: 'lists', lists: [`campaign:${id}`] });
    const errors = (await call('GET', `/v1/imports/${body.import.id}/errors`)).json().data;
    expect(errors).toEqual([expect.objectContaining({ row: 4, column: 'phone' })]);
    // An existing contact keeps its tags and joins the list; the review counts exactly the file's rows.
    const review = (await call('POST', `/v1/campaigns/${id}/review`)).json();
    expect(review.audience_count).toBe(3);
    const again = await upload(id, csv, mapping);
    expect(again.json().import).toMatchObject({ rows_imported: 3, contacts_created: 0, contacts_updated: 0 });
    expect((await call('POST', `/v1/campaigns/${id}/review`)).json().audience_count).toBe(3);
    const audit = (await call('GET', `/v1/campaigns/${id}`)).json().audit;
    expect(audit.map((a: { action: string }) => a.action)).toEqual(['create', 'update', 'update']);
  });

  it('refuses an upload that lands no row, a bad list name, a non-CSV body and a launched campaign', async () => {
    const id = (await call('POST', '/v1/campaigns', draft('upload refusals'))).json().id;
    const nothing = await upload(id, 'phone\nnope\nstill-nope\n');
    expect(nothing.statusCode).toBe(422);
    expect(nothing.json().detail).toMatch(/no row of the file was imported/);
    const badHeader = await upload(id, 'colour\nred\n');
    expect(badHeader.statusCode).toBe(422);
    const badList = await upload(id, `phone\n${phoneOf(102)}\n`, '?list=%21bad');
    expect(badList.statusCode).toBe(422);
    expect(badList.json().errors[0].path).toBe('/querystring/list');
    const notCsv = await call('POST', `/v1/campaigns/${id}/audience/csv`, { phone: phoneOf(1) });
    expect(notCsv.statusCode).toBe(415);
    expect((await call('GET', `/v1/campaigns/${id}`)).json().audience).toEqual({
      type: 'tags',
      tags: ['vip'],
    });
    const launched = (
      await call(
        'POST',
        '/v1/campaigns',
        draft('upload after launch', {
          schedule: { type: 'at', at: '2031-06-01T10:00', timezone: 'Asia/Kolkata' },
        }),
      )
    ).json().id;
    expect((await call('POST', `/v1/campaigns/${launched}/launch`)).statusCode).toBe(200);
    expect((await upload(launched, `phone\n${phoneOf(103)}\n`)).statusCode).toBe(409);
    expect((await upload('cmp_missing', `phone\n${phoneOf(103)}\n`)).statusCode).toBe(404);
  });
});
