import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrateClickHouse, migratePostgres, splitStatements } from '../engine/stores/migrate.ts';
import { createApiKey, createWorkspace, revokeApiKey } from '../engine/workspaces.ts';
import { openTestApi, postgresTargets, type TestApi } from './helpers/runtime.ts';

describe.each(postgresTargets)('foundation on $name', ({ url }) => {
  let api: TestApi;
  beforeAll(async () => {
    api = await openTestApi({ postgresUrl: url });
  });
  afterAll(async () => api?.close());

  it('migrations are recorded and a second run applies nothing', async () => {
    expect((await migratePostgres(api.runtime.pg)).applied).toEqual([]);
    expect((await migrateClickHouse(api.runtime.ch)).applied).toEqual([]);
    const { rows } = await api.runtime.pg.query<{ name: string }>(
      'SELECT name FROM schema_migrations ORDER BY version',
    );
    expect(rows.map((r) => r.name)).toContain('0001_foundation');
    const tables = await api.runtime.ch.rows<{ name: string }>(
      'SELECT name FROM system.tables WHERE database = {db:String}',
      { db: api.runtime.ch.database },
    );
    expect(tables.map((t) => t.name)).toEqual(
      expect.arrayContaining(['contacts', 'events', 'message_statuses']),
    );
  });

  it('health and readiness answer without a key', async () => {
    expect((await api.app.inject({ url: '/healthz' })).json()).toEqual({ status: 'ok' });
    const ready = await api.app.inject({ url: '/readyz' });
    expect(ready.statusCode).toBe(200);
    expect(ready.json().checks).toEqual({ postgres: 'ok', clickhouse: 'ok' });
  });

  it('serves the spec and the docs', async () => {
    const spec = await api.app.inject({ url: '/openapi.json' });
    expect(spec.json().openapi).toBe('3.1.0');
    expect((await api.app.inject({ url: '/docs/' })).statusCode).toBe(200);
  });

  it('a key sees its own workspace only', async () => {
    const other = await createWorkspace(api.runtime.pg, { name: 'Other' });
    const otherKey = await createApiKey(api.runtime.pg, other.id);
    const mine = await api.app.inject({ url: '/v1/workspace', headers: api.auth });
    const theirs = await api.app.inject({
      url: '/v1/workspace',
      headers: { authorization: `Bearer ${otherKey.key}` },
    });
    expect(mine.json().id).toBe(api.workspace.id);
    expect(theirs.json().id).toBe(other.id);
  });

  it.each([
    ['no header', {}],
    ['a wrong key', { authorization: 'Bearer chorus_notakey' }],
    ['a malformed header', { authorization: 'Basic abc' }],
  ])('rejects %s with a 401 problem', async (_label, headers) => {
    const response = await api.app.inject({ url: '/v1/workspace', headers });
    expect(response.statusCode).toBe(401);
    expect(response.headers['content-type']).toContain('application/problem+json');
    expect(response.json()).toMatchObject({ status: 401, title: 'Unauthorized' });
  });

  it('a revoked key stops working', async () => {
    const created = await createApiKey(api.runtime.pg, api.workspace.id, 'temp');
    const headers = { authorization: `Bearer ${created.key}` };
    expect((await api.app.inject({ url: '/v1/workspace', headers })).statusCode).toBe(200);
    expect(await revokeApiKey(api.runtime.pg, api.workspace.id, created.id)).toBe(true);
    expect((await api.app.inject({ url: '/v1/workspace', headers })).statusCode).toBe(401);
  });

  it('keys are stored hashed, never in clear', async () => {
    const { rows } = await api.runtime.pg.query<{ key_hash: string; prefix: string }>(
      'SELECT key_hash, prefix FROM api_keys',
    );
    for (const row of rows) expect(row.key_hash).not.toContain(api.key);
    expect(rows.some((r) => api.key.startsWith(r.prefix))).toBe(true);
  });

  it('unknown routes get a 404 problem', async () => {
    const response = await api.app.inject({ url: '/v1/nothing-here', headers: api.auth });
    expect(response.statusCode).toBe(404);
    expect(response.json().title).toBe('Not Found');
  });
});

describe('migration files', () => {
  it('split on statement-ending semicolons only', () => {
    expect(
      splitStatements("CREATE TABLE a (x text DEFAULT ';');\n-- note\nCREATE TABLE b (y int);\n"),
    ).toEqual(["CREATE TABLE a (x text DEFAULT ';')", 'CREATE TABLE b (y int)']);
  });
});
