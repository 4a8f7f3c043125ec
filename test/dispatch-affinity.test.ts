// Sender affinity against real Postgres (PGlite and the server): senders one process can carry are
// spread over the live workers by load and stay put; a worker that stops beating or retires loses
// its senders; faster senders use the shared queue.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { heartbeat, retireWorker, routeSenders, WORKER_ALIVE_MS } from '../jobs/dispatch/affinity.ts';
import { openTestRuntime, postgresTargets, type TestRuntime } from './helpers/runtime.ts';

describe.each(postgresTargets)('sender affinity on $name', ({ url }) => {
  let runtime: TestRuntime;
  beforeAll(async () => {
    runtime = await openTestRuntime({ postgresUrl: url });
    await heartbeat(runtime.pg, 'wa', 'queue-a');
    await heartbeat(runtime.pg, 'wb', 'queue-b');
  });
  afterAll(async () => {
    await runtime?.close();
  });

  const senders = [
    { senderId: 's1', rate: 1_000 },
    { senderId: 's2', rate: 1_000 },
    { senderId: 's3', rate: 80 },
    { senderId: 's4', rate: 80 },
    { senderId: 'big', rate: 5_000 },
  ];

  it('spreads senders by load over live workers, keeps them there, and sends faster ones to the shared queue', async () => {
    const first = await routeSenders(runtime.pg, senders, 1_000);
    expect(first.get('big')).toBeUndefined();
    const owned = ['s1', 's2', 's3', 's4'].map((id) => first.get(id));
    expect(owned.every((q) => q === 'queue-a' || q === 'queue-b')).toBe(true);
    // The two fast senders go to different workers, and so do the two slow ones.
    expect(owned[0]).not.toBe(owned[1]);
    expect(owned[2]).not.toBe(owned[3]);
    const again = await routeSenders(runtime.pg, senders, 1_000);
    expect([...again]).toEqual([...first]);
  });

  it('hands the senders of a worker that stopped beating to a live one, and a retired worker gives its up', async () => {
    const before = await routeSenders(runtime.pg, senders, 1_000);
    const lost = ['s1', 's2', 's3', 's4'].filter((id) => before.get(id) === 'queue-b');
    expect(lost.length).toBeGreaterThan(0);
    // wb stops beating: its row is dated back past the liveness window.
    await runtime.pg.query(
      "UPDATE dispatch_workers SET seen_at = clock_timestamp() - make_interval(secs => $1::float8 / 1000 + 1) WHERE worker_id = 'wb'",
      [WORKER_ALIVE_MS],
    );
    await heartbeat(runtime.pg, 'wa', 'queue-a');
    const after = await routeSenders(runtime.pg, senders, 1_000);
    for (const id of ['s1', 's2', 's3', 's4']) expect(after.get(id)).toBe('queue-a');
    // A worker stopping cleanly gives its senders up at once; with no worker left, the shared queue.
    await retireWorker(runtime.pg, 'wa');
    const none = await routeSenders(runtime.pg, senders, 1_000);
    for (const s of senders) expect(none.get(s.senderId)).toBeUndefined();
  });
});
