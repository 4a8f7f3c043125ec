// Dispatch throughput against the Cloud API simulator over HTTP: achieved vs configured rate at 80/s
// and 1,000/s on one sender, four senders at 1,000/s each, and the time from launch to first send.
// `--size small` (default) sends a few seconds' worth; `--size full` sends ~30 s per scenario.
// Postgres: PGlite by default, the server when DATABASE_URL is set.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { launchCampaign } from '../engine/campaigns/launch.ts';
import { createCampaign, getCampaign } from '../engine/campaigns/model.ts';
import { newId } from '../engine/ids.ts';
import { openRuntime } from '../engine/runtime.ts';
import { createWorkspace } from '../engine/workspaces.ts';
import { startBoss } from '../jobs/boss.ts';
import { startDispatcher } from '../jobs/dispatch/index.ts';
import { startSimulator } from '../simulator/server.ts';

const args = process.argv.slice(2);
const size = args[args.indexOf('--size') + 1] === 'full' ? 'full' : 'small';
/** Seconds of sending per sender: small runs stay short on a shared machine. */
const secondsFor = (rate: number, senders: number) =>
  size === 'full' ? 30 : rate >= 1000 ? 1 / senders ** 0.5 : 3;

const dataDir = mkdtempSync(join(tmpdir(), 'chorus-bench-dispatch-'));
const runtime = await openRuntime({
  config: {
    dataDir,
    databaseUrl: process.env.DATABASE_URL || undefined,
    postgresSchema: process.env.DATABASE_URL ? `bench_${process.pid}` : 'chorus',
    logLevel: 'warn',
  },
  log: pino({ level: 'warn' }),
});
const sim = await startSimulator({
  port: 0,
  seed: 'bench',
  appSecret: 'secret',
  tier: 'TIER_UNLIMITED',
  strictTemplates: false,
  recipientRates: { notOnWhatsApp: 0, stoppedMarketing: 0 },
  marketingPerUserPerDay: 1_000,
  maxLogEntries: 2_000_000,
});
const boss = await startBoss(runtime);
const dispatcher = await startDispatcher(runtime, boss, { pumpIntervalMs: 200, localConcurrency: 8 });
const ws = (await createWorkspace(runtime.pg, { name: 'Bench' })).id;

let phoneSeq = 0;
async function scenario(name: string, rate: number, senders: number) {
  const perSender = Math.round(rate * secondsFor(rate, senders));
  const senderIds: string[] = [];
  const campaigns: string[] = [];
  for (let s = 0; s < senders; s++) {
    const id = newId('snd', 12);
    const numberId = `${700_000 + phoneSeq}`;
    sim.sim.number(numberId, { throughputMps: rate, portfolioId: `pf_${name}` });
    await runtime.pg.query(
      `INSERT INTO senders (id, workspace_id, name, base_url, phone_number_id, portfolio_id, access_token, throughput_mps, tier)
       VALUES ($1, $2, $3, $4, $5, $6, 'token', $7, 'TIER_UNLIMITED')`,
      [id, ws, `${name} ${s}`, sim.url, numberId, `pf_${name}`, rate],
    );
    senderIds.push(id);
    const tag = `${name}_${s}`;
    const now = new Date().toISOString();
    const contacts = Array.from({ length: perSender }, () => {
      const i = phoneSeq++;
      return { id: `c${i}`, phone: `+9197${String(10_000_000 + i).slice(-8)}`, tag };
    });
    await runtime.ch.insert(
      'contacts',
      contacts.map((c) => ({
        workspace_id: ws,
        contact_id: c.id,
        phone: c.phone,
        country: 'IN',
        timezone: 'Asia/Kolkata',
        tags: [c.tag],
        created_at: now,
        updated_at: now,
        version: 1,
      })),
    );
    for (let i = 0; i < contacts.length; i += 5_000) {
      const chunk = contacts.slice(i, i + 5_000);
      await runtime.pg.query(
        `INSERT INTO consent_current (workspace_id, contact_id, channel, purpose, status, recorded_at, record_id)
         SELECT $1, unnest($2::text[]), 'whatsapp', 'marketing', 'opted_in', now(), 0`,
        [ws, chunk.map((c) => c.id)],
      );
    }
    const campaign = await createCampaign(
      runtime.pg,
      ws,
      {
        name: `${name} ${s}`,
        sender_id: id,
        audience: { type: 'tags', tags: [tag] },
        content: { template: { name: 'promo', language: 'en_US', category: 'MARKETING' } },
        settings: { quiet_hours: null, frequency_cap: null },
      },
      'bench',
    );
    campaigns.push(campaign.id);
  }
  const catalog = {
    find: async () => ({
      name: 'promo',
      language: 'en_US',
      status: 'APPROVED',
      category: 'MARKETING' as const,
    }),
  };
  const before = sim.log.length;
  const launchedAt = Date.now();
  for (const id of campaigns) await launchCampaign(runtime, ws, id, 'bench', { catalog });
  const launchReturnedAt = Date.now();
  await dispatcher.kick();
  let lastReport = Date.now();
  for (const id of campaigns) {
    for (;;) {
      const state = (await getCampaign(runtime.pg, ws, id))?.state;
      if (state === 'completed' || state === 'paused') break;
      await new Promise((r) => setTimeout(r, 100));
      if (process.env.BENCH_VERBOSE && Date.now() - lastReport > 5_000) {
        lastReport = Date.now();
        const { rows } = await runtime.pg.query(
          'SELECT state, count(*) AS n FROM campaign_sends WHERE campaign_id = $1 GROUP BY state',
          [id],
        );
        process.stderr.write(`${name}: ${JSON.stringify(rows)} sim=${sim.counts.send_accepted}\n`);
      }
    }
  }
  const entries = sim.log.slice(before).filter((e) => e.kind === 'send_accepted');
  const rejected429 = sim.log
    .slice(before)
    .filter((e) => e.kind === 'send_rejected' && e.code === 130429).length;
  const times = entries.map((e) => Date.parse(e.at)).sort((a, b) => a - b);
  const span = (times.at(-1)! - times[0]!) / 1000;
  // Steady rate: the middle 80% of sends, so start-up and the tail do not count.
  const lo = times[Math.floor(times.length * 0.1)]!;
  const hi = times[Math.floor(times.length * 0.9)]!;
  const steady = (Math.floor(times.length * 0.9) - Math.floor(times.length * 0.1)) / ((hi - lo) / 1000);
  const configured = rate * senders;
  const result = {
    scenario: name,
    senders,
    configured_per_second: configured,
    messages: entries.length,
    span_seconds: Number(span.toFixed(2)),
    achieved_per_second: Number((entries.length / span).toFixed(1)),
    steady_per_second: Number(steady.toFixed(1)),
    steady_share_of_configured: Number((steady / configured).toFixed(3)),
    launch_ms: launchReturnedAt - launchedAt,
    first_send_after_launch_ms: times[0]! - launchReturnedAt,
    rejected_130429: rejected429,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
  return result;
}

const only = process.env.BENCH_SCENARIO;
const plan: [string, number, number][] = [
  ['one_sender_80', 80, 1],
  ['one_sender_1000', 1000, 1],
  ['four_senders_1000', 1000, 4],
];
const results = [];
for (const [name, rate, senders] of plan)
  if (!only || only === name) results.push(await scenario(name, rate, senders));
mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
writeFileSync(
  new URL('./results/dispatch.json', import.meta.url),
  JSON.stringify(
    {
      size,
      postgres: runtime.pg.mode,
      machine: { cpus: cpus().length, load_before: loadavg() },
      at: new Date().toISOString(),
      results,
    },
    null,
    2,
  ),
);
await dispatcher.stop();
await boss.stop({ graceful: false });
if (runtime.pg.mode === 'server')
  await runtime.pg
    .exec(
      `DROP SCHEMA IF EXISTS ${runtime.pg.schema} CASCADE; DROP SCHEMA IF EXISTS ${runtime.pg.schema}_boss CASCADE`,
    )
    .catch(() => {});
await runtime.close();
await sim.close();
rmSync(dataDir, { recursive: true, force: true });
