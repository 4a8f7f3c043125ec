import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eraseContact, getContact } from '../engine/contacts/index.ts';
import { GroupCommit } from '../engine/group-commit.ts';
import { openTestApi, postgresTargets, type TestApi } from './helpers/runtime.ts';

describe.each(postgresTargets)('events API on $name', ({ url }) => {
  let api: TestApi;
  const post = (payload: unknown, contentType = 'application/json') =>
    api.app.inject({
      method: 'POST',
      url: '/v1/events',
      headers: { ...api.auth, 'content-type': contentType },
      payload: typeof payload === 'string' ? payload : JSON.stringify(payload),
    });
  const count = async () =>
    Number(
      (
        await api.runtime.ch.rows<{ n: string }>(
          `SELECT count() AS n FROM ${api.runtime.ch.database}.events FINAL`,
        )
      )[0]!.n,
    );
  beforeAll(async () => {
    api = await openTestApi({ postgresUrl: url, region: 'IN' });
  });
  afterAll(async () => api?.close());

  it('ingests a JSON array, creating contacts for new phones, and records property types', async () => {
    const response = await post([
      {
        id: 'e1',
        contact: { phone: '+919876543210' },
        name: 'purchase',
        timestamp: '2026-03-01T10:00:00+05:30',
        properties: { amount: 499, currency: 'INR', first: true },
      },
      { id: 'e2', contact: { phone: '98765 43210' }, name: 'app_open', timestamp: '2026-03-02T08:00:00Z' },
      { id: 'e3', contact: { external_id: 'crm-7' }, name: 'signup', timestamp: '2026-03-02T09:00:00Z' },
    ]);
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ received: 3, inserted: 3, duplicates: 0, contacts_created: 2 });
    const { rows } = await api.runtime.pg.query<{ property: string; type: string }>(
      "SELECT property, type FROM event_properties WHERE event_name = 'purchase' ORDER BY property",
    );
    expect(rows).toEqual([
      { property: 'amount', type: 'number' },
      { property: 'currency', type: 'string' },
      { property: 'first', type: 'boolean' },
    ]);
    const found = await api.app.inject({ url: '/v1/contacts?phone=%2B919876543210', headers: api.auth });
    const contact = await getContact(api.runtime, api.workspace.id, found.json().data[0].id);
    // last_seen_at comes from the latest event (contact_activity), without rewriting the contact.
    expect(contact?.last_seen_at).toBe('2026-03-02T08:00:00.000Z');
  });

  it('ignores repeated ids, in the batch and across batches', async () => {
    const before = await count();
    const again = await post([
      {
        id: 'e1',
        contact: { phone: '+919876543210' },
        name: 'purchase',
        timestamp: '2026-03-01T10:00:00+05:30',
      },
      { id: 'e4', contact: { phone: '+919876543210' }, name: 'app_open', timestamp: '2026-03-03T08:00:00Z' },
      { id: 'e4', contact: { phone: '+919876543210' }, name: 'app_open', timestamp: '2026-03-03T08:00:00Z' },
    ]);
    expect(again.json()).toEqual({ received: 3, inserted: 1, duplicates: 2, contacts_created: 0 });
    expect(await count()).toBe(before + 1);
  });

  it('without ids, an exact resend is ignored', async () => {
    const event = {
      contact: { external_id: 'crm-7' },
      name: 'page_view',
      timestamp: '2026-03-04T08:00:00Z',
      properties: { page: '/home' },
    };
    expect((await post([event])).json().inserted).toBe(1);
    expect((await post([event])).json().inserted).toBe(0);
  });

  it('takes NDJSON', async () => {
    const body = [
      {
        id: 'n1',
        contact: { phone: '+919876543210' },
        name: 'add_to_cart',
        timestamp: '2026-03-05T08:00:00Z',
      },
      {
        id: 'n2',
        contact: { phone: '+919876543210' },
        name: 'add_to_cart',
        timestamp: '2026-03-05T09:00:00Z',
      },
    ]
      .map((e) => JSON.stringify(e))
      .join('\n');
    const response = await post(`${body}\n`, 'application/x-ndjson');
    expect(response.statusCode).toBe(200);
    expect(response.json().inserted).toBe(2);
  });

  it('one bad item rejects the batch with per-item paths, nothing written', async () => {
    const before = await count();
    const response = await post([
      { id: 'b1', contact: { phone: '+919876543210' }, name: 'ok', timestamp: '2026-03-01T10:00:00Z' },
      { id: 'b2', contact: { phone: '+919876543210' }, name: 'ok', timestamp: 'yesterday' },
      {
        id: 'b3',
        contact: { phone: '+919876543210', id: 'x' },
        name: 'ok',
        timestamp: '2026-03-01T10:00:00Z',
      },
      { id: 'b4', contact: { phone: '+919876543210' }, timestamp: '2026-03-01T10:00:00Z', extra: 1 },
    ]);
    expect(response.statusCode).toBe(400);
    const paths = response.json().errors.map((e: { path: string }) => e.path);
    expect(paths).toEqual(expect.arrayContaining(['/body/1/timestamp', '/body/3/name', '/body/3/extra']));
    expect(paths.some((p: string) => p.startsWith('/body/2/contact'))).toBe(true);
    expect(await count()).toBe(before);
  });

  it('domain errors (bad phone, unknown contact id, future, NDJSON syntax) are 422 with paths', async () => {
    const before = await count();
    const response = await post([
      { contact: { phone: '12' }, name: 'ok', timestamp: '2026-03-01T10:00:00Z' },
      { contact: { id: 'ct_nobody' }, name: 'ok', timestamp: '2026-03-01T10:00:00Z' },
      { contact: { phone: '+919876543210' }, name: 'ok', timestamp: '2999-01-01T00:00:00Z' },
      { contact: { phone: '+919876543210' }, name: 'ok', timestamp: '1999-12-31T10:00:00Z' },
    ]);
    expect(response.statusCode).toBe(422);
    expect(response.json().errors.map((e: { path: string }) => e.path)).toEqual([
      '/body/0/contact/phone',
      '/body/2/timestamp',
      '/body/3/timestamp',
    ]);
    const unknown = await post([
      { contact: { id: 'ct_nobody' }, name: 'ok', timestamp: '2026-03-01T10:00:00Z' },
    ]);
    expect(unknown.statusCode).toBe(422);
    expect(unknown.json().errors[0]).toMatchObject({ path: '/body/0/contact/id', code: 'unknown_contact' });
    const ndjson = await post(
      '{"contact":{"phone":"+919876543210"},"name":"a","timestamp":"2026-03-01T10:00:00Z"}\n{not json\n',
      'application/x-ndjson',
    );
    expect(ndjson.statusCode).toBe(422);
    expect(ndjson.json().errors[0]).toMatchObject({ path: '/body/1', message: 'line 2 is not valid JSON' });
    expect(await count()).toBe(before);
  });

  it('refuses more than 10,000 events and oversized bodies', async () => {
    const event = { contact: { phone: '+919876543210' }, name: 'x', timestamp: '2026-03-01T10:00:00Z' };
    const tooMany = await post(Array.from({ length: 10_001 }, () => event));
    expect(tooMany.statusCode).toBe(400);
    const big = await post(
      `[${JSON.stringify({ ...event, properties: { blob: 'x'.repeat(17 * 1024 * 1024) } })}]`,
    );
    expect(big.statusCode).toBe(413);
    expect(big.headers['content-type']).toContain('application/problem+json');
    const ndjson = await post(
      Array.from({ length: 10_001 }, () => JSON.stringify(event)).join('\n'),
      'application/x-ndjson',
    );
    expect(ndjson.statusCode).toBe(422);
  });

  it('a large NDJSON body (checked on a worker thread) is all or nothing too', async () => {
    const before = await count();
    const lines = Array.from({ length: 2_000 }, (_, k) =>
      JSON.stringify({
        id: `w-${k}`,
        contact: { phone: '+919876543210' },
        name: 'app_open',
        timestamp: new Date(Date.UTC(2026, 2, 7, 0, 0, k)).toISOString(),
        properties: { screen: `home-${k}`, note: 'tab\there and a \\ backslash' },
      }),
    );
    const broken = [...lines];
    broken[1_500] = broken[1_500]!.replace('"name":"app_open"', '"name":""');
    const refused = await post(broken.join('\n'), 'application/x-ndjson');
    expect(refused.statusCode).toBe(422);
    expect(refused.json().errors).toEqual([expect.objectContaining({ path: '/body/1500/name' })]);
    expect(await count()).toBe(before);
    const accepted = await post(lines.join('\n'), 'application/x-ndjson');
    expect(accepted.json()).toMatchObject({ received: 2_000, inserted: 2_000 });
    const [row] = await api.runtime.ch.rows<{ properties: string; ts: string }>(
      `SELECT properties, toString(ts) AS ts FROM ${api.runtime.ch.database}.events WHERE event_id = 'w-1999'`,
    );
    // Tabs and backslashes survive the TabSeparated insert.
    expect(JSON.parse(row!.properties)).toEqual({
      screen: 'home-1999',
      note: 'tab\there and a \\ backslash',
    });
    expect(row!.ts).toBe('2026-03-07 00:33:19.000');
    expect(await count()).toBe(before + 2_000);
  });

  it('concurrent batches sharing ids write each id once (one group, one insert)', async () => {
    const before = await count();
    const batch = (from: number) =>
      Array.from({ length: 50 }, (_, k) => ({
        id: `c-${from + k}`,
        contact: { phone: '+919876543210' },
        name: 'app_open',
        timestamp: new Date(Date.UTC(2026, 2, 5, 0, from + k)).toISOString(),
      }));
    // Ids 0-49, 25-74, 50-99, 0-49 again: 100 distinct ids over 200 items.
    const responses = await Promise.all([0, 25, 50, 0].map((from) => post(batch(from))));
    expect(responses.map((r) => r.statusCode)).toEqual([200, 200, 200, 200]);
    const inserted = responses.map((r) => r.json().inserted as number);
    expect(inserted.reduce((a, b) => a + b, 0)).toBe(100);
    expect(inserted[0]).toBe(50);
    expect(await count()).toBe(before + 100);
  });

  it('finds repeats in a busy hour (ids looked up by list) as in a quiet one (hour read whole)', async () => {
    const at = (minute: number) => new Date(Date.UTC(2026, 2, 7, 9, minute)).toISOString();
    const event = (id: string, minute: number) => ({
      id,
      contact: { phone: '+919876543210' },
      name: 'app_open',
      timestamp: at(minute),
    });
    // 60 events in 09:00-10:00: later batches of 2 in that hour look their ids up by list.
    const busy = Array.from({ length: 60 }, (_, k) => event(`busy-${k}`, k));
    expect((await post(busy)).json()).toMatchObject({ inserted: 60, duplicates: 0 });
    const before = await count();
    const mixed = await post([event('busy-7', 7), event('busy-new', 30)]);
    expect(mixed.json()).toEqual({ received: 2, inserted: 1, duplicates: 1, contacts_created: 0 });
    // A quiet hour (one stored event) is read whole: a repeat there is found too.
    const quiet = (id: string, timestamp: string) => ({ ...event(id, 0), timestamp });
    expect((await post([quiet('quiet-1', '2026-03-07T20:00:00Z')])).json()).toMatchObject({ inserted: 1 });
    const again = await post([
      quiet('quiet-1', '2026-03-07T20:00:00Z'),
      quiet('quiet-2', '2026-03-07T20:30:00Z'),
    ]);
    expect(again.json()).toEqual({ received: 2, inserted: 1, duplicates: 1, contacts_created: 0 });
    expect(await count()).toBe(before + 3);
  });

  it('many concurrent batches over overlapping ids, across groups, still write each id once', async () => {
    const before = await count();
    const batch = (round: number, from: number) =>
      Array.from({ length: 50 }, (_, k) => ({
        id: `r${round}-${from + k}`,
        contact: { phone: '+919876543210' },
        name: 'app_open',
        timestamp: new Date(Date.UTC(2026, 2, 6, 0, from + k)).toISOString(),
      }));
    // 30 rounds of the four overlapping batches, all in flight at once, so they fall into several
    // groups, two of which run at a time: a group's lookup must never miss what the other committed.
    const posts = Array.from({ length: 30 }, (_, round) =>
      [0, 25, 50, 0].map((from) => post(batch(round, from))),
    );
    const responses = await Promise.all(posts.flat());
    const inserted = responses.map((r) => r.json().inserted as number);
    expect(inserted.reduce((a, b) => a + b, 0)).toBe(30 * 100);
    expect(await count()).toBe(before + 30 * 100);
  });

  it('after an erase, an event for the same phone makes a new contact (no cached identity)', async () => {
    const event = (id: string) => ({
      id,
      contact: { phone: '+919812345678' },
      name: 'app_open',
      timestamp: '2026-03-06T08:00:00Z',
    });
    expect((await post([event('x1')])).json().contacts_created).toBe(1);
    expect((await post([event('x2')])).json().contacts_created).toBe(0);
    const found = await api.app.inject({ url: '/v1/contacts?phone=%2B919812345678', headers: api.auth });
    await eraseContact(api.runtime, api.workspace.id, found.json().data[0].id);
    const after = await post([event('x3')]);
    expect(after.json()).toMatchObject({ inserted: 1, contacts_created: 1 });
    const again = await api.app.inject({ url: '/v1/contacts?phone=%2B919812345678', headers: api.auth });
    expect(again.json().data).toHaveLength(1);
  });

  it('needs a key, and a wrong key writes nothing', async () => {
    const response = await api.app.inject({ method: 'POST', url: '/v1/events', payload: [] });
    expect(response.statusCode).toBe(401);
    const before = await count();
    const wrong = await api.app.inject({
      method: 'POST',
      url: '/v1/events',
      headers: { authorization: 'Bearer chorus_notakey', 'content-type': 'application/json' },
      payload: JSON.stringify([
        { contact: { phone: '+919876543210' }, name: 'a', timestamp: '2026-03-01T10:00:00Z' },
      ]),
    });
    expect(wrong.statusCode).toBe(401);
    expect(wrong.headers['content-type']).toContain('application/problem+json');
    expect(await count()).toBe(before);
  });
});

describe('group commit', () => {
  it('joins waiting items into one call, and a failing item fails alone', async () => {
    const calls: number[][] = [];
    const commit = new GroupCommit<number, number>(
      async (items) => {
        calls.push(items);
        await new Promise((resolve) => setTimeout(resolve, 5));
        if (items.includes(13)) throw new Error('unlucky');
        return items.map((n) => n * 2);
      },
      { weight: () => 1, maxWeight: 3 },
    );
    const results = await Promise.allSettled([1, 2, 13, 4, 5].map((n) => commit.submit(n)));
    expect(results.map((r) => (r.status === 'fulfilled' ? r.value : 'failed'))).toEqual([
      2,
      4,
      'failed',
      8,
      10,
    ]);
    // 1 alone (nothing waiting yet), then 2,13,4 together (fails, so each retried alone), then 5.
    expect(calls).toEqual([[1], [2, 13, 4], [2], [13], [4], [5]]);
  });
});

describe('group commit gathering items on their way', () => {
  it('waits for items still coming, starts at once when none are, and a nudge ends the wait', async () => {
    const calls: number[][] = [];
    let coming = 0;
    const commit = new GroupCommit<number, number>(
      async (items) => {
        calls.push(items);
        return items;
      },
      { weight: () => 1, maxWeight: 10, gatherWeight: 3, lingerMs: 60_000, moreComing: () => coming > 0 },
    );
    // Nothing on its way: a lone item goes at once.
    expect(await commit.submit(1)).toBe(1);
    // Two on their way: the first waits for them (up to the gather weight).
    coming = 2;
    const first = commit.submit(2);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(calls).toEqual([[1]]);
    coming--;
    const second = commit.submit(3);
    coming--;
    const third = commit.submit(4);
    await Promise.all([first, second, third]);
    expect(calls).toEqual([[1], [2, 3, 4]]);
    // One announced that never comes (it failed its checks): the nudge lets the waiting group go.
    coming = 1;
    const lone = commit.submit(5);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(calls).toHaveLength(2);
    coming = 0;
    commit.nudge();
    expect(await lone).toBe(5);
    expect(calls).toEqual([[1], [2, 3, 4], [5]]);
  });
});
