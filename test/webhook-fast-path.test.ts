import { createServer, request as httpRequest, type Server } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_BODY_LIMIT } from '../api/server.ts';
import { webhookFastPath } from '../api/webhook-fast-path.ts';
import { storeWebhook, webhookSender } from '../engine/webhooks/index.ts';
import { createWorkspace } from '../engine/workspaces.ts';
import { createTestSender, signed } from './helpers/analytics-fixtures.ts';
import { openTestApi, postgresTargets, type TestApi } from './helpers/runtime.ts';
import { statusesPayload } from './helpers/whatsapp-payloads.ts';

const T0 = Date.UTC(2026, 10, 1, 10) / 1000;
const body = (id: string) =>
  JSON.stringify(statusesPayload([{ id, status: 'delivered', timestamp: T0, recipient: '+911' }]));
const listening = async (server: Server) => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
};

describe.each(postgresTargets)('the webhook fast path on $name', ({ url }) => {
  let api: TestApi;
  let sender: string;
  let base: string;
  // The fast path alone in front of a fallback that answers 599: tells which requests it took.
  let bare: Server;
  let bareBase: string;

  beforeAll(async () => {
    api = await openTestApi({ postgresUrl: url });
    sender = await createTestSender(api.runtime, api.workspace.id);
    await api.app.listen({ port: 0, host: '127.0.0.1' });
    base = `http://127.0.0.1:${(api.app.server.address() as AddressInfo).port}`;
    const fast = webhookFastPath(api.runtime, DEFAULT_BODY_LIMIT);
    bare = createServer((request, response) => {
      if (!fast(request, response)) response.writeHead(599).end();
    });
    bareBase = await listening(bare);
  });
  afterAll(async () => {
    await new Promise((resolve) => bare?.close(resolve));
    await api?.close();
  });

  const overHttp = async (target: string, payload: string, headers: Record<string, string>, id = sender) => {
    const response = await fetch(`${target}/webhooks/whatsapp/${id}`, {
      method: 'POST',
      body: payload,
      headers,
    });
    return {
      status: response.status,
      type: response.headers.get('content-type'),
      json: response.status === 599 ? undefined : await response.json(),
    };
  };
  const injected = async (payload: string, headers: Record<string, string>, id = sender) => {
    const response = await api.app.inject({
      method: 'POST',
      url: `/webhooks/whatsapp/${id}`,
      payload,
      headers,
    });
    return { status: response.statusCode, type: response.headers['content-type'], json: response.json() };
  };
  const inboxRows = async (payload: string) =>
    Number(
      (
        await api.runtime.pg.query<{ n: string }>(
          `SELECT count(*) AS n FROM webhook_inbox WHERE body_sha256 = encode(sha256($1::bytea), 'hex')`,
          [Buffer.from(payload)],
        )
      ).rows[0]!.n,
    );

  it('takes the plain case and answers exactly as the Fastify route does', async () => {
    const fresh = body('wamid.fast.1');
    const first = await overHttp(bareBase, fresh, signed(fresh));
    expect(first).toEqual({
      status: 200,
      type: 'application/json; charset=utf-8',
      json: { status: 'stored' },
    });
    expect(await overHttp(base, fresh, signed(fresh))).toEqual({ ...first, json: { status: 'duplicate' } });
    expect(await injected(fresh, signed(fresh))).toEqual({ ...first, json: { status: 'duplicate' } });
    expect(await inboxRows(fresh)).toBe(1);

    const truncated = fresh.slice(0, -5);
    const refused: [string, Record<string, string>, string?][] = [
      [fresh, signed(fresh, 'other-secret')],
      [fresh, { 'content-type': 'application/json' }],
      [fresh, { ...signed(fresh), 'x-hub-signature-256': 'sha256=zz' }],
      [fresh, signed(fresh), 'snd_unknown'],
      [truncated, signed(fresh)],
      [truncated, signed(truncated)],
      ['[1, 2]', signed('[1, 2]')],
    ];
    for (const [payload, headers, id] of refused) {
      const fast = await overHttp(bareBase, payload, headers, id);
      expect(fast.status).toBeGreaterThanOrEqual(400);
      expect(fast.status).toBeLessThan(500);
      expect(fast).toEqual(await injected(payload, headers, id));
      expect(await overHttp(base, payload, headers, id)).toEqual(fast);
    }
    expect(await inboxRows(truncated)).toBe(0);
    expect((await overHttp(bareBase, truncated, signed(truncated))).json.errors[0].path).toBe('/body');
  });

  it('leaves other requests to Fastify, which answers them as before', async () => {
    const fresh = body('wamid.fast.2');
    // Not JSON, a query string, an encoded id: the fast path declines them.
    expect((await overHttp(bareBase, fresh, { ...signed(fresh), 'content-type': 'text/plain' })).status).toBe(
      599,
    );
    expect((await overHttp(bareBase, fresh, signed(fresh), `${sender}?x=1`)).status).toBe(599);
    expect((await overHttp(bareBase, fresh, signed(fresh), `${sender}%41`)).status).toBe(599);
    expect((await overHttp(base, fresh, { ...signed(fresh), 'content-type': 'text/plain' })).status).toBe(
      400,
    );
    expect((await overHttp(base, fresh, signed(fresh), `${sender}?x=1`)).json).toEqual({ status: 'stored' });
    // A chunked body (no Content-Length) goes to Fastify too, and is stored once.
    const chunked = await new Promise<number>((resolve, reject) => {
      const request = httpRequest(`${bareBase}/webhooks/whatsapp/${sender}`, {
        method: 'POST',
        headers: signed(fresh),
      });
      request.on('response', (response) => resolve(response.statusCode!));
      request.on('error', reject);
      request.write(fresh.slice(0, 10));
      request.end(fresh.slice(10));
    });
    expect(chunked).toBe(599);
    expect(await inboxRows(fresh)).toBe(1);
  });

  it('answers pipelined requests in order, each stored once', async () => {
    const payloads = Array.from({ length: 6 }, (_, i) => body(`wamid.fast.pipe.${i}`));
    payloads.push(payloads[0]!);
    const { host } = new URL(base);
    const wire = payloads
      .map((p) => {
        const headers = signed(p);
        return (
          `POST /webhooks/whatsapp/${sender} HTTP/1.1\r\nHost: ${host}\r\nContent-Type: ${headers['content-type']}\r\n` +
          `Content-Length: ${Buffer.byteLength(p)}\r\nX-Hub-Signature-256: ${headers['x-hub-signature-256']}\r\n\r\n${p}`
        );
      })
      .join('');
    const answers = await new Promise<string>((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port: Number(new URL(base).port) });
      let text = '';
      socket.on('data', (chunk) => {
        text += chunk.toString();
        if (text.split('HTTP/1.1 ').length - 1 === payloads.length && text.endsWith('}')) {
          socket.end();
          resolve(text);
        }
      });
      socket.on('error', reject);
      socket.write(wire);
    });
    const bodies = [...answers.matchAll(/\{"status":"(\w+)"\}/g)].map((m) => m[1]);
    expect(bodies).toEqual(['stored', 'stored', 'stored', 'stored', 'stored', 'stored', 'duplicate']);
    for (const p of payloads) expect(await inboxRows(p)).toBe(1);
  });
});

describe.each(postgresTargets)('the inbox group commit on $name', ({ url }) => {
  let api: TestApi;
  let sender: string;

  beforeAll(async () => {
    api = await openTestApi({ postgresUrl: url });
    sender = await createTestSender(api.runtime, api.workspace.id, 'group');
  });
  afterAll(async () => api?.close());

  it('a failed group fails every payload waiting in it and writes none of them', async () => {
    const known = (await webhookSender(api.runtime, sender))!;
    // PostgreSQL refuses the group because of one payload in it (a constraint only this test adds).
    await api.runtime.pg.exec(
      `ALTER TABLE webhook_inbox ADD CONSTRAINT test_no_poison CHECK (position('poison' in encode(body, 'escape')) = 0)`,
    );
    try {
      const payloads = [
        ...Array.from({ length: 9 }, (_, i) => body(`wamid.group.${i}`)),
        body('wamid.poison'),
      ];
      // Submitted in one turn of the event loop: one group, one INSERT.
      const outcomes = await Promise.allSettled(
        payloads.map((p) => storeWebhook(api.runtime, known, Buffer.from(p))),
      );
      expect(outcomes.map((o) => o.status)).toEqual(payloads.map(() => 'rejected'));
      const { rows } = await api.runtime.pg.query<{ n: string }>(
        `SELECT count(*) AS n FROM webhook_inbox WHERE sender_id = $1`,
        [sender],
      );
      expect(Number(rows[0]!.n)).toBe(0);
    } finally {
      await api.runtime.pg.exec('ALTER TABLE webhook_inbox DROP CONSTRAINT test_no_poison');
    }
    // The next group goes through.
    const after = body('wamid.group.after');
    expect(await storeWebhook(api.runtime, known, Buffer.from(after))).toMatchObject({ duplicate: false });
  });

  it('a failed group over HTTP answers every waiting request with a 500 problem, none stored', async () => {
    await api.app.listen({ port: 0, host: '127.0.0.1' });
    const base = `http://127.0.0.1:${(api.app.server.address() as AddressInfo).port}`;
    await api.runtime.pg.exec(
      `ALTER TABLE webhook_inbox ADD CONSTRAINT test_refuse_all CHECK (false) NOT VALID`,
    );
    try {
      const payloads = Array.from({ length: 8 }, (_, i) => body(`wamid.group.http.${i}`));
      const answers = await Promise.all(
        payloads.map((p) =>
          fetch(`${base}/webhooks/whatsapp/${sender}`, { method: 'POST', body: p, headers: signed(p) }),
        ),
      );
      for (const answer of answers) {
        expect(answer.status).toBe(500);
        expect(answer.headers.get('content-type')).toBe('application/problem+json; charset=utf-8');
        expect(await answer.json()).toMatchObject({ status: 500, detail: 'unexpected error' });
      }
    } finally {
      await api.runtime.pg.exec('ALTER TABLE webhook_inbox DROP CONSTRAINT test_refuse_all');
    }
    const { rows } = await api.runtime.pg.query<{ n: string }>(
      `SELECT count(*) AS n FROM webhook_inbox WHERE sender_id = $1 AND position('wamid.group.http' in encode(body, 'escape')) > 0`,
      [sender],
    );
    expect(Number(rows[0]!.n)).toBe(0);
  });
});

describe.each(postgresTargets)('the inbox without a per-row workspace check on $name', ({ url }) => {
  let api: TestApi;
  beforeAll(async () => {
    api = await openTestApi({ postgresUrl: url });
  });
  afterAll(async () => api?.close());

  it("a deleted workspace's inbox rows go with it (a trigger instead of the foreign key)", async () => {
    const kept = (await webhookSender(
      api.runtime,
      await createTestSender(api.runtime, api.workspace.id, 'kept'),
    ))!;
    const other = await createWorkspace(api.runtime.pg, { name: 'Gone' });
    const gone = (await webhookSender(api.runtime, await createTestSender(api.runtime, other.id, 'gone')))!;
    await Promise.all([
      storeWebhook(api.runtime, kept, Buffer.from(body('wamid.kept'))),
      storeWebhook(api.runtime, gone, Buffer.from(body('wamid.gone'))),
    ]);
    await api.runtime.pg.query('DELETE FROM workspaces WHERE id = $1', [other.id]);
    const { rows } = await api.runtime.pg.query<{ workspace_id: string }>(
      'SELECT workspace_id FROM webhook_inbox ORDER BY id',
    );
    expect(rows.map((r) => r.workspace_id)).toEqual([api.workspace.id]);
    const fk = await api.runtime.pg.query(
      `SELECT 1 FROM pg_constraint WHERE conrelid = 'webhook_inbox'::regclass AND contype = 'f'`,
    );
    expect(fk.rows).toEqual([]);
  });
});
