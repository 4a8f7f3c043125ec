import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { campaignProgress } from '../engine/campaigns/control.ts';
import { launchCampaign } from '../engine/campaigns/launch.ts';
import { createCampaign, getCampaign } from '../engine/campaigns/model.ts';
import { createWorkspace } from '../engine/workspaces.ts';
import { type RunningSimulator, startSimulator } from '../simulator/server.ts';
import { approveTemplate, createSender, phoneOf, seedContacts, waitFor } from './helpers/campaigns.ts';
import { openTestRuntime, type TestRuntime } from './helpers/runtime.ts';

const CONTACTS = Number(process.env.CRASH_CONTACTS ?? 10_000);
const KILLS = Number(process.env.CRASH_KILLS ?? 20);
const WORKER = new URL('./helpers/dispatch-worker.ts', import.meta.url).pathname;

/** A small seeded generator, so a failing run can be repeated (CRASH_SEED). */
function lcg(seed: number) {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 0x1_0000_0000;
  };
}

// Worker processes share one database: real PostgreSQL only (PGlite lives inside one process).
describe.skipIf(!process.env.DATABASE_URL)('crash test: two worker processes killed at random', () => {
  let runtime: TestRuntime;
  let sim: RunningSimulator;
  let workerDir: string;
  const children = new Set<ChildProcess>();

  beforeAll(async () => {
    sim = await startSimulator({
      port: 0,
      seed: 'crash',
      appSecret: 'secret',
      tier: 'TIER_UNLIMITED',
      throughputMps: 1000,
      strictTemplates: false,
      recipientRates: { notOnWhatsApp: 0, stoppedMarketing: 0 },
      marketingPerUserPerDay: 1_000,
    });
    runtime = await openTestRuntime({ postgresUrl: process.env.DATABASE_URL });
    workerDir = mkdtempSync(join(tmpdir(), 'chorus-crash-'));
  });
  afterAll(async () => {
    for (const child of children) child.kill('SIGKILL');
    await runtime?.close();
    await sim?.close();
    if (workerDir) rmSync(workerDir, { recursive: true, force: true });
  });

  function startWorker(slot: number): Promise<ChildProcess> {
    const t0 = Date.now();
    const child = spawn(process.execPath, [WORKER], {
      env: {
        ...process.env,
        CHORUS_DATA_DIR: join(workerDir, `w${slot}`),
        CHORUS_POSTGRES_SCHEMA: runtime.pg.schema,
        SIM_URL: sim.url,
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    (child as ChildProcess & { slot?: number }).slot = slot;
    children.add(child);
    child.on('exit', () => children.delete(child));
    return new Promise((resolve, reject) => {
      child.stdout!.on('data', (chunk: Buffer) => {
        if (chunk.toString().includes('ready')) {
          if (process.env.CRASH_VERBOSE)
            console.log(
              `worker ${slot} ready in ${Date.now() - t0} ms, sent ${sim.counts.send_accepted ?? 0}`,
            );
          resolve(child);
        }
      });
      child.on('exit', (code) => reject(new Error(`worker exited early (${code})`)));
    });
  }

  const kill = (child: ChildProcess) =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGKILL');
    });

  it(`${CONTACTS} contacts, ${KILLS} kills: 0 duplicates and 0 missing by the ledger and the ground truth`, async () => {
    const ws = (await createWorkspace(runtime.pg, { name: 'Crash' })).id;
    const sender = await createSender(runtime, ws, {
      throughput: 1000,
      baseUrl: sim.url,
      phoneNumberId: '5001',
    });
    await approveTemplate(runtime, ws, 'promo');
    await seedContacts(
      runtime,
      ws,
      Array.from({ length: CONTACTS }, (_, i) => ({ id: `k${i}`, phone: phoneOf(i), tags: ['k'] })),
    );
    const campaign = await createCampaign(
      runtime.pg,
      ws,
      {
        name: 'crash',
        sender_id: sender,
        audience: { type: 'tags', tags: ['k'] },
        content: { template: { name: 'promo', language: 'en_US' } },
        settings: { quiet_hours: null, frequency_cap: null },
      },
      'tester',
    );
    const launchStart = Date.now();
    await launchCampaign(runtime, ws, campaign.id, 'tester');
    if (process.env.CRASH_VERBOSE) console.log(`launched in ${Date.now() - launchStart} ms`);

    const random = lcg(Number(process.env.CRASH_SEED ?? 42));
    const ready: Promise<ChildProcess>[] = [];
    const spawnSlot = (slot: number) => {
      ready[slot] = startWorker(slot);
      ready[slot]!.catch(() => {}); // a worker killed while starting never says ready
    };
    spawnSlot(0);
    spawnSlot(1);
    await Promise.all(ready);
    let kills = 0;
    let sentAtKill = 0;
    while (kills < KILLS) {
      // Let it run a random while, then kill one of the two wherever it is (sending, claiming, even
      // starting up) and start a replacement without waiting for it.
      await new Promise((r) => setTimeout(r, 300 + random() * 900));
      if ((await getCampaign(runtime.pg, ws, campaign.id))?.state === 'completed') break;
      const slot = random() < 0.5 ? 0 : 1;
      const child = [...children].find((c) => (c as ChildProcess & { slot?: number }).slot === slot);
      if (child) await kill(child);
      kills++;
      sentAtKill = sim.counts.send_accepted ?? 0;
      spawnSlot(slot);
    }
    await Promise.all(ready.map((p) => p.catch(() => undefined)));
    if (children.size === 0) spawnSlot(0);
    const finishStart = Date.now();
    await waitFor(
      async () => (await getCampaign(runtime.pg, ws, campaign.id))?.state === 'completed',
      150_000,
      250,
    );
    if (process.env.CRASH_VERBOSE)
      console.log(`finished in ${Date.now() - finishStart} ms after the last kill`);
    for (const child of [...children]) await kill(child);

    const { rows } = await runtime.pg.query<{ send_id: string; state: string; provider_message_id: string }>(
      'SELECT send_id, state, provider_message_id FROM campaign_sends WHERE campaign_id = $1',
      [campaign.id],
    );
    // By the ledger: one row per contact, every one accepted with a provider id.
    expect(rows).toHaveLength(CONTACTS);
    expect(rows.filter((r) => r.state !== 'accepted')).toEqual([]);
    // By the ground truth: every send id accepted exactly once, and nothing else sent.
    const accepted = sim.log.filter((e) => e.kind === 'send_accepted');
    const bySend = new Map<string, number>();
    for (const e of accepted) bySend.set(e.sendId!, (bySend.get(e.sendId!) ?? 0) + 1);
    const duplicates = [...bySend.values()].filter((n) => n > 1).length;
    const missing = rows.filter((r) => !bySend.has(r.send_id)).length;
    expect({ duplicates, missing, extra: accepted.length - CONTACTS }).toEqual({
      duplicates: 0,
      missing: 0,
      extra: 0,
    });
    expect(new Set(accepted.map((e) => e.to)).size).toBe(CONTACTS);
    const wamids = new Map(accepted.map((e) => [e.sendId!, e.wamid]));
    expect(rows.filter((r) => r.provider_message_id !== wamids.get(r.send_id))).toEqual([]);
    const progress = await campaignProgress(runtime.pg, ws, campaign.id);
    expect(progress.counts.accepted).toBe(CONTACTS);
    // And the kills landed while sending.
    expect(kills).toBe(KILLS);
    expect(sentAtKill).toBeLessThan(CONTACTS);
  }, 240_000);
});
