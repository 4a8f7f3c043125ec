import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { evaluateSendTime, saveEvaluation } from '../engine/sto/evaluate.ts';
import { fitSendTime } from '../engine/sto/fit.ts';
import { setStoSettings } from '../engine/sto/settings.ts';
import { openTestApi, postgresTargets, type TestApi } from './helpers/runtime.ts';
import { writeDailySends } from './helpers/sto.ts';

describe.each(postgresTargets)('send-time API on $name', ({ url }) => {
  let api: TestApi;
  let reader: string;
  let newcomer: string;
  const get = (path: string) => api.app.inject({ method: 'GET', url: path, headers: api.auth });
  const sendTime = (id: string, query: string) => get(`/v1/contacts/${id}/send-time?${query}`);
  const day = '2026-07-01'; // a Wednesday
  const fullDay = `window_start=${day}T00:00:00Z&window_end=2026-07-02T00:00:00Z`;

  beforeAll(async () => {
    api = await openTestApi({ postgresUrl: url, region: 'IN' });
    const created = await api.app.inject({
      method: 'POST',
      url: '/v1/contacts/batch',
      headers: api.auth,
      payload: { contacts: [{ phone: '+919876543210' }, { phone: '+919876543211' }] },
    });
    expect(created.statusCode).toBe(200);
    [reader, newcomer] = created.json().ids;
    // the reader reads every send at 19:00 Kolkata (13:30Z) and none at 10:00 (04:30Z)
    await writeDailySends(api.runtime, api.workspace.id, reader, [
      ['13:30', true],
      ['04:30', false],
    ]);
  });
  afterAll(async () => api?.close());

  it('answers before any fit (earliest allowed hour), and 404s the model until then', async () => {
    expect((await get('/v1/send-time/model')).statusCode).toBe(404);
    const response = await sendTime(reader, fullDay);
    expect(response.statusCode).toBe(200);
    expect(response.json()).toMatchObject({ source: 'global', fit_id: null, at: `${day}T00:00:00.000Z` });
  });

  it('gives the chosen time, the runner-up and a confidence after a fit', async () => {
    await fitSendTime(api.runtime, api.workspace.id, { until: new Date('2026-06-30T00:00:00Z') });
    const model = await get('/v1/send-time/model');
    expect(model.statusCode).toBe(200);
    expect(model.json()).toMatchObject({ contacts: 1, sends: 40, engaged: 20, cohort: 'timezone' });
    const response = await sendTime(reader, `${fullDay}&quiet_start=22&quiet_end=8`);
    expect(response.statusCode).toBe(200);
    const body = response.json();
    expect(body).toMatchObject({
      contact_id: reader,
      timezone: 'Asia/Kolkata',
      timezone_source: 'contact',
      local_hour: 19,
      at: `${day}T13:30:00.000Z`,
      source: 'contact',
      history: { sends: 40, engaged: 20 },
      fit_id: model.json().id,
    });
    expect(body.runner_up.local_hour).not.toBe(19);
    expect(body.runner_up.expected_rate).toBeLessThan(body.expected_rate);
    expect(body.confidence).toBeGreaterThan(0.5);
    expect(body.confidence).toBeLessThanOrEqual(1);
  });

  it('a contact without history gets its cohort', async () => {
    const body = (await sendTime(newcomer, fullDay)).json();
    expect(body).toMatchObject({ source: 'cohort', history: { sends: 0, engaged: 0 }, local_hour: 19 });
  });

  it("a contact whose zone is unknown gets the workspace's, and says so", async () => {
    // +1 spans several zones: the contact is stored without one
    const created = await api.app.inject({
      method: 'POST',
      url: '/v1/contacts/batch',
      headers: api.auth,
      payload: { contacts: [{ phone: '+12125550123' }] },
    });
    const [id] = created.json().ids;
    const response = await sendTime(id, `${fullDay}&quiet_start=22&quiet_end=8`);
    expect(response.statusCode).toBe(200);
    const body = response.json();
    expect(body).toMatchObject({ timezone: api.workspace.timezone, timezone_source: 'workspace' });
    const local = Number(
      new Intl.DateTimeFormat('en-GB', { hour: '2-digit', hourCycle: 'h23', timeZone: body.timezone }).format(
        new Date(body.at),
      ),
    );
    expect(local).toBe(body.local_hour);
    expect(local >= 8 && local < 22).toBe(true);
  });

  it('honours the workspace quiet hours and a narrow window', async () => {
    await setStoSettings(api.runtime.pg, api.workspace.id, { quietHours: { start: 18, end: 9 } });
    const body = (await sendTime(reader, fullDay)).json();
    expect(body.local_hour).toBeGreaterThanOrEqual(9);
    expect(body.local_hour).toBeLessThan(18);
    // a two-hour window: 10:30 and 11:00 local; the chosen time stays inside it
    const narrow = (
      await sendTime(reader, `window_start=${day}T05:00:00Z&window_end=${day}T07:00:00Z`)
    ).json();
    expect(['2026-07-01T05:00:00.000Z', '2026-07-01T05:30:00.000Z', '2026-07-01T06:30:00.000Z']).toContain(
      narrow.at,
    );
    await setStoSettings(api.runtime.pg, api.workspace.id, { quietHours: null });
  });

  it.each([
    [
      'a window under an hour',
      `window_start=${day}T10:00:00Z&window_end=${day}T10:30:00Z`,
      422,
      '/querystring/window_end',
    ],
    [
      'a reversed window',
      `window_start=${day}T10:00:00Z&window_end=${day}T09:00:00Z`,
      422,
      '/querystring/window_end',
    ],
    [
      'a window in quiet hours',
      `window_start=${day}T18:00:00Z&window_end=${day}T20:00:00Z&quiet_start=22&quiet_end=8`,
      422,
      '/querystring/window_start',
    ],
    ['only one end of quiet hours', `${fullDay}&quiet_start=22`, 422, '/querystring/quiet_end'],
    ['quiet hours out of range', `${fullDay}&quiet_start=24&quiet_end=8`, 400, '/querystring/quiet_start'],
    [
      'a malformed time',
      `window_start=tomorrow&window_end=${day}T20:00:00Z`,
      400,
      '/querystring/window_start',
    ],
    ['a missing window', 'window_start=2026-07-01T00:00:00Z', 400, '/querystring/window_end'],
  ])('rejects %s', async (_label, query, status, path) => {
    const response = await sendTime(reader, query);
    expect(response.statusCode).toBe(status);
    expect(response.headers['content-type']).toContain('application/problem+json');
    expect(response.json().errors.map((e: { path: string }) => e.path)).toContain(path);
  });

  it('404s an unknown contact and needs a key', async () => {
    expect((await sendTime('nobody', fullDay)).statusCode).toBe(404);
    const anonymous = await api.app.inject({ url: `/v1/contacts/${reader}/send-time?${fullDay}` });
    expect(anonymous.statusCode).toBe(401);
  });

  it('serves the latest evaluation for dashboards', async () => {
    expect((await get('/v1/send-time/evaluation')).statusCode).toBe(404);
    const { fit: _fit, ...report } = await evaluateSendTime(api.runtime, api.workspace.id, {
      until: new Date('2026-06-30T00:00:00Z'),
      testDays: 7,
      bootstrap: 50,
    });
    await saveEvaluation(api.runtime, report);
    const response = await get('/v1/send-time/evaluation');
    expect(response.statusCode).toBe(200);
    expect(response.json().policies.map((p: { policy: string }) => p.policy)).toEqual([
      'model',
      'random',
      'global_best',
      'last_active',
      'modal',
    ]);
    // the evaluation's own fit never replaces the serving one
    expect((await get('/v1/send-time/model')).json().until).toBe('2026-06-30T00:00:00.000Z');
  });
});
