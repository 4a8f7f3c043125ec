// The segments and audiences API over HTTP (inject), on PGlite and, with DATABASE_URL, PostgreSQL.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCampaign, transition } from '../engine/campaigns/model.ts';
import { countAudience, createSnapshot } from '../engine/segments/audiences.ts';
import { openTestApi, postgresTargets, type TestApi } from './helpers/runtime.ts';
import { insertContacts, insertEvents } from './helpers/segment-data.ts';

const NOW = '2026-03-15T12:00:00.000Z';

describe.each(postgresTargets)('segments API on $name', ({ url }) => {
  let api: TestApi;
  const post = (path: string, payload: unknown) =>
    api.app.inject({ method: 'POST', url: path, headers: api.auth, payload: payload as object });
  beforeAll(async () => {
    api = await openTestApi({ postgresUrl: url });
    const ws = api.workspace.id;
    await api.runtime.pg.query(
      "INSERT INTO attribute_schemas (workspace_id, name, type) VALUES ($1, 'age', 'number'), ($1, 'plan', 'string')",
      [ws],
    );
    await insertContacts(api.runtime.ch, ws, [
      {
        id: 'a1',
        country: 'IN',
        numbers: { age: 30 },
        strings: { plan: 'pro' },
        created_at: '2026-01-01T00:00:00Z',
        tags: ['vip'],
      },
      {
        id: 'a2',
        country: 'IN',
        numbers: { age: 20 },
        strings: { plan: 'free' },
        created_at: '2026-01-01T00:00:00Z',
      },
      { id: 'a3', country: 'US', numbers: { age: 50 }, created_at: '2026-01-01T00:00:00Z', tags: ['vip'] },
    ]);
    await insertEvents(api.runtime.ch, ws, [
      { contact: 'a1', name: 'purchase', ts: '2026-03-10T00:00:00Z', properties: { amount: 10 } },
      { contact: 'a3', name: 'purchase', ts: '2026-03-14T00:00:00Z', properties: { amount: 20 } },
    ]);
  });
  afterAll(async () => api?.close());

  it('creates, reads, lists, updates and deletes named segments, with dependents and cycle checks', async () => {
    const created = await post('/v1/segments', {
      name: 'buyers',
      dsl: 'did "purchase" in last 30 days',
      description: 'recent buyers',
    });
    expect(created.statusCode).toBe(201);
    const buyers = created.json();
    expect(buyers).toMatchObject({
      name: 'buyers',
      references_segments: [],
      ast: { version: 1, root: { kind: 'event' } },
    });
    const dependent = await post('/v1/segments', {
      name: 'vip_buyers',
      dsl: 'in segment "buyers" and tagged "vip"',
    });
    expect(dependent.statusCode).toBe(201);
    expect(dependent.json().references_segments).toEqual(['buyers']);

    expect((await post('/v1/segments', { name: 'buyers', dsl: 'tagged "x"' })).statusCode).toBe(409);
    const list = await api.app.inject({ url: '/v1/segments?limit=1', headers: api.auth });
    expect(list.json().data.map((s: { name: string }) => s.name)).toEqual(['buyers']);
    expect(list.json().next_cursor).toBe('buyers');
    expect((await api.app.inject({ url: `/v1/segments/${buyers.id}`, headers: api.auth })).json().dsl).toBe(
      'did "purchase" in last 30 days',
    );

    const dependents = await api.app.inject({
      url: `/v1/segments/${buyers.id}/dependents`,
      headers: api.auth,
    });
    expect(dependents.json()).toEqual({
      segments: [{ id: dependent.json().id, name: 'vip_buyers' }],
      campaigns: [],
    });

    // buyers → vip_buyers → buyers would be a cycle.
    const cycle = await api.app.inject({
      method: 'PUT',
      url: `/v1/segments/${buyers.id}`,
      headers: api.auth,
      payload: { name: 'buyers', dsl: 'in segment "vip_buyers"' },
    });
    expect(cycle.statusCode).toBe(422);
    expect(cycle.json().errors[0]).toMatchObject({ path: '/body/dsl', code: 'segment-cycle' });
    const self = await post('/v1/segments', { name: 'selfish', dsl: 'in segment "selfish"' });
    expect(self.statusCode).toBe(422);

    const rename = await api.app.inject({
      method: 'PUT',
      url: `/v1/segments/${buyers.id}`,
      headers: api.auth,
      payload: { name: 'renamed', dsl: 'tagged "x"' },
    });
    expect(rename.statusCode).toBe(409);
    const update = await api.app.inject({
      method: 'PUT',
      url: `/v1/segments/${buyers.id}`,
      headers: api.auth,
      payload: { name: 'buyers', dsl: 'did "purchase" in last 3 days' },
    });
    expect(update.statusCode).toBe(200);

    const count = await post('/v1/audiences/count', { segment_id: dependent.json().id, now: NOW });
    expect(count.json()).toMatchObject({ count: 1, now: NOW });

    expect(
      (await api.app.inject({ method: 'DELETE', url: `/v1/segments/${buyers.id}`, headers: api.auth }))
        .statusCode,
    ).toBe(409);
    expect(
      (
        await api.app.inject({
          method: 'DELETE',
          url: `/v1/segments/${dependent.json().id}`,
          headers: api.auth,
        })
      ).statusCode,
    ).toBe(204);
    expect(
      (await api.app.inject({ method: 'DELETE', url: `/v1/segments/${buyers.id}`, headers: api.auth }))
        .statusCode,
    ).toBe(204);
    expect((await api.app.inject({ url: `/v1/segments/${buyers.id}`, headers: api.auth })).statusCode).toBe(
      404,
    );
  });

  it('lists the campaigns that use a segment, by id or by name in a DSL audience, and protects it', async () => {
    const seg = (await post('/v1/segments', { name: 'for_campaign', dsl: 'tagged "vip"' })).json();
    const ws = api.workspace.id;
    const content = { template: { name: 'promo', language: 'en_US', variables: {} } };
    const byId = await createCampaign(
      api.runtime.pg,
      ws,
      { name: 'Diwali', audience: { type: 'segment', segment_id: seg.id }, content },
      'tester',
    );
    const byName = await createCampaign(
      api.runtime.pg,
      ws,
      { name: 'Holi', audience: { type: 'segment', dsl: 'in segment "for_campaign" and age > 3' }, content },
      'tester',
    );
    // Finished campaigns never resolve their audience again: not dependents.
    const finished = await createCampaign(
      api.runtime.pg,
      ws,
      { name: 'Eid', audience: { type: 'segment', segment_id: seg.id }, content },
      'tester',
    );
    await transition(api.runtime.pg, ws, finished.id, 'cancel', 'tester');
    // Mentions the name only inside a string: not a reference.
    await createCampaign(
      api.runtime.pg,
      ws,
      { name: 'Other', audience: { type: 'segment', dsl: 'tagged "for_campaign"' }, content },
      'tester',
    );
    const dependents = (
      await api.app.inject({ url: `/v1/segments/${seg.id}/dependents`, headers: api.auth })
    ).json();
    expect(dependents).toEqual({
      segments: [],
      campaigns: [
        { id: byId.id, name: 'Diwali' },
        { id: byName.id, name: 'Holi' },
      ],
    });
    const remove = await api.app.inject({
      method: 'DELETE',
      url: `/v1/segments/${seg.id}`,
      headers: api.auth,
    });
    expect(remove.statusCode).toBe(409);
    expect(remove.json().detail).toContain('campaign Holi');
    const rename = await api.app.inject({
      method: 'PUT',
      url: `/v1/segments/${seg.id}`,
      headers: api.auth,
      payload: { name: 'renamed_for_campaign', dsl: 'tagged "vip"' },
    });
    expect(rename.statusCode).toBe(409);
    expect(rename.json().errors[0]).toMatchObject({ path: '/body/name' });
    expect((await api.app.inject({ url: `/v1/segments/${seg.id}`, headers: api.auth })).json().name).toBe(
      'for_campaign',
    );
  });

  it('checks a segment: every diagnostic with line, column, code and suggestion', async () => {
    const response = await post('/v1/segments/check', { dsl: 'agee > 3 and\nplan = 4' });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toMatchObject({
      valid: false,
      diagnostics: [
        { code: 'unknown-attribute', line: 1, column: 1, didYouMean: 'age' },
        { code: 'type-mismatch', line: 2, column: 1, expected: ['string'] },
      ],
    });
    // Event names come from what was ingested: a misspelt one is a warning with a suggestion.
    const event = await post('/v1/segments/check', { dsl: 'did "purchse" in last 7 days' });
    expect(event.json()).toMatchObject({
      valid: true,
      diagnostics: [{ code: 'unknown-event', severity: 'warning', didYouMean: 'purchase' }],
    });
    const ok = await post('/v1/segments/check', { dsl: 'age > 3', include_sql: true, now: NOW });
    expect(ok.json()).toMatchObject({ valid: true, diagnostics: [], ast: { version: 1 } });
    expect(ok.json().sql).toContain('{p');
    expect(ok.json().params).toMatchObject({ p1: '2026-03-15 12:00:00.000' });
    const schema = await api.app.inject({ url: '/v1/segments/ast-schema', headers: api.auth });
    expect(schema.json().$defs.expr).toBeDefined();
  });

  it('counts, previews and snapshots audiences, reproducibly with now', async () => {
    const count = await post('/v1/audiences/count', {
      dsl: 'country = "IN" or did "purchase" in last 7 days',
      now: NOW,
    });
    expect(count.statusCode).toBe(200);
    expect(count.json().count).toBe(3);
    const earlier = await post('/v1/audiences/count', {
      dsl: 'did "purchase" in last 7 days',
      now: '2026-03-11T00:00:00Z',
    });
    expect(earlier.json().count).toBe(1);
    const rollup = await post('/v1/audiences/count', {
      dsl: 'did "purchase" in last 7 days',
      now: NOW,
      path: 'rollup',
    });
    expect(rollup.json().count).toBe(2);

    const preview = await post('/v1/audiences/preview', {
      dsl: 'age >= 20',
      now: NOW,
      limit: 2,
      attributes: ['age'],
    });
    expect(preview.json()).toMatchObject({
      data: [{ id: 'a1', attributes: { age: 30 } }, { id: 'a2' }],
      next_cursor: 'a2',
    });
    const next = await post('/v1/audiences/preview', { dsl: 'age >= 20', now: NOW, limit: 2, cursor: 'a2' });
    expect(next.json()).toMatchObject({ data: [{ id: 'a3', attributes: { age: 50 } }], next_cursor: null });
    const badAttribute = await post('/v1/audiences/preview', { dsl: 'age >= 20', attributes: ['nope'] });
    expect(badAttribute.statusCode).toBe(422);

    const snapshot = await post('/v1/audiences/snapshots', {
      dsl: 'tagged "vip"',
      now: NOW,
      snapshot_id: 'snap_api',
    });
    expect(snapshot.statusCode).toBe(201);
    expect(snapshot.json()).toMatchObject({ snapshot_id: 'snap_api', count: 2 });
    const ids = await api.app.inject({ url: '/v1/audiences/snapshots/snap_api?limit=1', headers: api.auth });
    expect(ids.json()).toEqual({ snapshot_id: 'snap_api', contact_ids: ['a1'], next_cursor: 'a1' });

    const ast = await post('/v1/audiences/count', {
      ast: { version: 1, root: { kind: 'tagged', tag: 'vip' } },
    });
    expect(ast.json().count).toBe(2);
  });

  it('the engine functions other modules call', async () => {
    expect(
      (await countAudience(api.runtime, api.workspace.id, { dsl: 'tagged "vip"' }, { now: new Date(NOW) }))
        .count,
    ).toBe(2);
    const snap = await createSnapshot(
      api.runtime,
      api.workspace.id,
      { dsl: 'country = "IN"' },
      { now: new Date(NOW) },
    );
    expect(snap.snapshot_id).toMatch(/^snap_/);
    expect(snap.count).toBe(2);
  });

  it.each([
    [{ dsl: 'agee > 3' }, 422, '/body/dsl'],
    [{ dsl: 'tagged "x"', segment_id: 'seg_x' }, 400, '/body'],
    [{}, 400, '/body'],
    [{ segment_id: 'seg_missing' }, 404, undefined],
    [{ ast: { version: 1, root: { kind: 'tagged' } } }, 400, '/body/ast/root/tag'],
    [{ ast: { version: 2, root: { kind: 'drop' } } }, 400, '/body/ast/version'],
    [{ dsl: 'x', extra: 1 }, 400, '/body/extra'],
    [{ dsl: 'tagged "x"', now: 'yesterday' }, 400, '/body/now'],
    [{ dsl: 'city matches "(?=a)"' }, 422, '/body/dsl'],
    [{ dsl: '"'.repeat(5000) }, 422, '/body/dsl'],
    [{ dsl: '('.repeat(100_000) }, 422, '/body/dsl'],
  ])('bad input %j → %i problem at %s', async (payload, status, path) => {
    const response = await post('/v1/audiences/count', payload);
    expect(response.statusCode).toBe(status);
    expect(response.headers['content-type']).toContain('application/problem+json');
    if (path) expect(response.json().errors.map((e: { path: string }) => e.path)).toContain(path);
  });

  it('adversarial text never yields a 500', async () => {
    const inputs = [
      "'; DROP TABLE contacts; --",
      '`',
      '"\\',
      'did "x" where `a` = "\u0000"',
      '\ud800',
      'sample 10% seed "x" and '.repeat(2000),
      'age > 1e400',
      'age > 99999999999999999999999',
    ];
    for (const dsl of inputs) {
      for (const path of ['/v1/audiences/count', '/v1/segments/check', '/v1/audiences/preview']) {
        const response = await post(path, { dsl });
        expect(response.statusCode, `${path} ${dsl.slice(0, 40)}`).toBeLessThan(500);
      }
    }
  });

  it('another workspace cannot read these segments', async () => {
    const seg = (await post('/v1/segments', { name: 'private', dsl: 'tagged "vip"' })).json();
    const { createApiKey, createWorkspace } = await import('../engine/workspaces.ts');
    const other = await createWorkspace(api.runtime.pg, { name: 'Other' });
    const key = await createApiKey(api.runtime.pg, other.id);
    const headers = { authorization: `Bearer ${key.key}` };
    expect((await api.app.inject({ url: `/v1/segments/${seg.id}`, headers })).statusCode).toBe(404);
    expect(
      (
        await api.app.inject({
          method: 'POST',
          url: '/v1/audiences/count',
          headers,
          payload: { segment_id: seg.id },
        })
      ).statusCode,
    ).toBe(404);
    expect(
      (
        await api.app.inject({
          method: 'POST',
          url: '/v1/audiences/count',
          headers,
          payload: { dsl: 'tagged "vip"' },
        })
      ).json().count,
    ).toBe(0);
  });
});
