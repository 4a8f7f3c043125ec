import type { AddressInfo } from 'node:net';
import cliProgress from 'cli-progress';
import type { FastifyInstance } from 'fastify';
import type { PgBoss } from 'pg-boss';
import { buildServer } from '../api/server.ts';
import { campaignProgress } from '../engine/campaigns/control.ts';
import { groundTruthLookup } from '../engine/campaigns/dispatch.ts';
import { launchCampaign } from '../engine/campaigns/launch.ts';
import { createCampaign, getCampaign, listCampaigns } from '../engine/campaigns/model.ts';
import { funnel, setCampaignGoal } from '../engine/metrics/index.ts';
import type { Runtime } from '../engine/runtime.ts';
import { createSender, listSenders, updateSender } from '../engine/senders.ts';
import type { Workspace } from '../engine/workspaces.ts';
import { startBoss, startWorkers } from '../jobs/boss.ts';
import { type DispatcherHandle, startDispatcher } from '../jobs/dispatch/index.ts';
import { queues } from '../jobs/queues.ts';
import { startSimulatorThread } from './demo-simulator.ts';
import { createDashboardToken } from './token.ts';

/**
 * The live part of `npm run demo`, after the demo workspace exists: the API and the WhatsApp simulator
 * in this process, a sender pointing at the simulator, a broadcast to every consenting contact with a
 * progress bar, then statuses, replies and conversions, and finally the dashboard URL. The simulator's
 * clock runs fast, so reads and replies that take hours arrive in seconds.
 */
export interface CampaignDemoOptions {
  port?: number;
  host?: string;
  /** Simulated seconds per real second (reads and replies come hours after a send). */
  simSpeed?: number;
  /** Sender throughput in messages per second (default 1,000, the simulator number's limit). */
  throughput?: number;
  /** Give up waiting for statuses after this long (the dashboard shows whatever arrived). */
  settleTimeoutMs?: number;
  log?: (line: string) => void;
}

export interface RunningDemo {
  url: string;
  campaignId: string;
  close(): Promise<void>;
}

const DEMO_TEMPLATE = {
  name: 'spring_sale',
  language: 'en_US',
  category: 'MARKETING',
  components: [
    {
      type: 'BODY' as const,
      text: 'Hi {{1}}, our spring sale is on: 20% off everything until Sunday.',
      example: { body_text: [['Asha']] },
    },
    { type: 'BUTTONS' as const, buttons: [{ type: 'QUICK_REPLY' as const, text: 'Show me' }] },
  ],
};

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function runCampaignDemo(
  runtime: Runtime,
  workspace: Workspace,
  options: CampaignDemoOptions = {},
): Promise<RunningDemo> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const closers: (() => Promise<unknown>)[] = [];
  const close = async () => {
    for (const fn of closers.reverse()) await fn().catch(() => {});
  };
  try {
    const app: FastifyInstance = await buildServer(runtime, { logger: false });
    await app.listen({ port: options.port ?? 3000, host: options.host ?? '127.0.0.1' });
    closers.push(() => app.close());
    const address = app.server.address() as AddressInfo;
    const origin = runtime.config.publicUrl ?? `http://${options.host ?? '127.0.0.1'}:${address.port}`;

    const appSecret = 'chorus-demo-app-secret';
    // A second `npm run demo` on the same data reuses the demo number, back to a healthy state, so a
    // quality drop in the last run's simulator cannot pause this one.
    const senderSettings = {
      name: 'Demo number (simulator)',
      base_url: 'http://127.0.0.1:9',
      phone_number_id: '1001',
      waba_id: '100000000000001',
      portfolio_id: 'pf_demo',
      access_token: 'demo-token',
      app_secret: appSecret,
      throughput_mps: options.throughput ?? 1000,
      tier: 'TIER_UNLIMITED',
    } as const;
    const previous = (await listSenders(runtime.pg, workspace.id)).find(
      (s) => s.name === senderSettings.name,
    );
    const sender = previous
      ? await updateSender(runtime.pg, workspace.id, previous.id, {
          ...senderSettings,
          quality: 'GREEN',
          status: 'active',
          status_reason: null,
        })
      : await createSender(runtime.pg, workspace.id, senderSettings);
    const sim = await startSimulatorThread({
      port: 0,
      seed: `demo-${workspace.id}`,
      appSecret,
      webhookUrl: `http://127.0.0.1:${address.port}/webhooks/whatsapp/${sender.id}`,
      templates: [DEMO_TEMPLATE],
      tier: 'TIER_UNLIMITED',
      marketingPerUserPerDay: 1_000,
      // The simulator's usual people: some not on WhatsApp, some who stopped marketing (131050), and
      // annoyed readers who reply STOP; opt-outs stamped by its fast clock are clamped to our now.
      numbers: [{ id: '1001', throughputMps: 1000, portfolioId: 'pf_demo' }],
      clock: { speed: options.simSpeed ?? 1200 },
    });
    closers.push(() => sim.close());
    await runtime.pg.query('UPDATE senders SET base_url = $1 WHERE id = $2', [sim.url, sender.id]);

    const boss: PgBoss = await startBoss(runtime);
    closers.push(() => boss.stop({ graceful: false }));
    await startWorkers(runtime, boss, queues);
    // Sends whose answer was lost are settled by asking the simulator's log (as the campaign tests do).
    const dispatcher: DispatcherHandle = await startDispatcher(runtime, boss, {
      pumpIntervalMs: 200,
      lookup: groundTruthLookup(sim.url),
    });
    closers.push(() => dispatcher.stop());

    // Campaign names are unique per workspace; later runs on the same data are numbered.
    const earlier = (await listCampaigns(runtime.pg, workspace.id, { limit: 500 })).length;
    const campaign = await createCampaign(
      runtime.pg,
      workspace.id,
      {
        name: earlier ? `Spring sale broadcast #${earlier + 1}` : 'Spring sale broadcast',
        sender_id: sender.id,
        audience: { type: 'all' },
        content: {
          template: {
            name: DEMO_TEMPLATE.name,
            language: DEMO_TEMPLATE.language,
            variables: { '1': { field: 'attributes.first_name', fallback: 'there' } },
          },
        },
        goal: { event: 'purchase', window_hours: 72 },
        holdout_percent: 10,
        settings: { quiet_hours: null, frequency_cap: null },
      } as never,
      'demo',
    );
    const { review } = await launchCampaign(runtime, workspace.id, campaign.id, 'demo');
    log(
      `launched "${campaign.name}" to ${review.eligible_count} contacts (${review.holdout_count} held out)`,
    );

    const bar = new cliProgress.SingleBar(
      {
        format: 'sending [{bar}] {value}/{total} | {rate}/s | {state}',
        hideCursor: true,
        // Without a terminal (CI, logs), print a line every 5 s instead of redrawing.
        noTTYOutput: true,
        notTTYSchedule: 5000,
      },
      cliProgress.Presets.shades_classic,
    );
    let progress = await campaignProgress(runtime.pg, workspace.id, campaign.id);
    bar.start(Math.max(1, progress.total), 0, { rate: 0, state: progress.state });
    while (!['completed', 'cancelled', 'failed'].includes(progress.state)) {
      await sleep(500);
      progress = await campaignProgress(runtime.pg, workspace.id, campaign.id);
      const done = progress.total - progress.counts.queued - progress.counts.sending;
      bar.setTotal(Math.max(1, progress.total));
      bar.update(done, { rate: progress.rate_per_second, state: progress.state });
    }
    bar.stop();
    log(`campaign ${progress.state}; waiting for statuses, replies and conversions…`);

    // Reads keep arriving for (simulated) hours, a few seconds at the fast clock; stop once the funnel
    // holds still for three seconds running.
    const deadline = Date.now() + (options.settleTimeoutMs ?? 90_000);
    let last = '';
    let still = 0;
    while (Date.now() < deadline && still < 3) {
      await sleep(1000);
      const current = await funnel(runtime, workspace.id, { campaignId: campaign.id });
      const line = `delivered ${current.delivered}, read ${current.read}, replied ${current.replied}, failed ${current.failed}`;
      still = line === last ? still + 1 : 0;
      if (line !== last) log(`  ${line}`);
      last = line;
    }
    // The conversions view credits goal events through campaign_goals; record the goal (idempotent).
    await setCampaignGoal(runtime, workspace.id, campaign.id, {
      event: 'purchase',
      windowSeconds: 72 * 3600,
    });
    const conversions = await addDemoPurchases(runtime, workspace.id, campaign.id);
    log(`  ${conversions} purchases after the message (and a few in the holdout)`);

    const state = (await getCampaign(runtime.pg, workspace.id, campaign.id))?.state ?? '';
    const { token } = await createDashboardToken(runtime.pg, {
      workspaceId: workspace.id,
      campaignId: campaign.id,
      ttlSeconds: 12 * 3600,
    });
    return {
      url: `${origin}/dashboards/campaigns/${campaign.id}#token=${token}`,
      campaignId: `${campaign.id} (${state})`,
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

/**
 * The demo's storefront: some readers buy within two days of the message, and a smaller share of the
 * holdout buys anyway, so the conversion, ROI and lift charts have something to show. Deterministic
 * in the contact id; inserted as ordinary `purchase` events.
 */
async function addDemoPurchases(runtime: Runtime, workspaceId: string, campaignId: string): Promise<number> {
  const db = runtime.ch.database;
  const params = { w: workspaceId, c: campaignId };
  await runtime.ch.command(
    `INSERT INTO ${db}.events (workspace_id, name, contact_id, ts, event_id, properties)
     SELECT {w:String}, 'purchase', contact_id,
            sent_at + toIntervalSecond(900 + cityHash64(contact_id, 'demo-ts') % 86400),
            concat('demo_', {c:String}, '_', contact_id),
            concat('{"revenue":', toString(round(15 + (cityHash64(contact_id, 'demo-amt') % 8500) / 100.0, 2)), ',"currency":"USD"}')
     FROM ${db}.campaign_sends
     WHERE workspace_id = {w:String} AND campaign_id = {c:String} AND is_sent = 1
       AND (cityHash64(contact_id, 'demo-buy') % 1000) < if(is_read = 1, 90, 15)
     UNION ALL
     SELECT {w:String}, 'purchase', contact_id, launched_at + toIntervalSecond(900 + cityHash64(contact_id, 'demo-ts') % 86400),
            concat('demo_', {c:String}, '_', contact_id), '{"revenue":42.0,"currency":"USD"}'
     FROM ${db}.campaign_audience FINAL
     WHERE workspace_id = {w:String} AND campaign_id = {c:String} AND holdout = 1
       AND (cityHash64(contact_id, 'demo-buy') % 1000) < 30`,
    params,
  );
  const [row] = await runtime.ch.rows<{ n: string }>(
    `SELECT count() AS n FROM ${db}.conversions WHERE workspace_id = {w:String} AND campaign_id = {c:String}`,
    params,
  );
  return Number(row?.n ?? 0);
}
