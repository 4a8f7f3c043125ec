import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { startSimulator } from '../simulator/server.ts';
import type { Tier } from '../simulator/simulator.ts';
import { print } from './core.ts';

const number = (name: string, min: number, max: number) => (value: string) => {
  const n = Number(value);
  if (!Number.isFinite(n) || n < min || n > max)
    throw new Error(`${name} must be a number from ${min} to ${max}`);
  return n;
};

interface SimOptions {
  port: string;
  host: string;
  seed: string;
  webhookUrl?: string;
  appSecret: string;
  accessToken?: string;
  throughput: number;
  tier: string;
  speed: number;
  reviewDelay: number;
  rejectRate: number;
  lateRate: number;
  duplicateRate: number;
  outOfOrderRate: number;
  notOnWhatsapp: number;
  stoppedMarketing: number;
  marketingPerUser: number;
  templates?: string;
  lenientTemplates?: boolean;
  logLimit: number;
}

export function registerSimCommands(program: Command): void {
  program
    .command('sim')
    .description(
      'Run the WhatsApp Cloud API simulator on loopback (send and template endpoints, signed webhooks)',
    )
    .option('--port <port>', 'port to listen on (0 picks a free one)', '4010')
    .option('--host <host>', 'address to bind', '127.0.0.1')
    .option('--seed <seed>', 'seed for every random choice: the same seed gives the same run', 'chorus')
    .option('--webhook-url <url>', 'where to post webhooks (without it they are only logged)')
    .option('--app-secret <secret>', 'app secret that signs webhooks (X-Hub-Signature-256)', 'sim-app-secret')
    .option('--access-token <token>', 'require this bearer token on API calls (else any token is accepted)')
    .option(
      '--throughput <mps>',
      'messages per second per number (1-1000)',
      number('throughput', 1, 1000),
      80,
    )
    .option('--tier <tier>', 'starting messaging tier of every portfolio', 'TIER_250')
    .option(
      '--speed <factor>',
      'simulated seconds per real second (delays, pair windows, 24 h windows)',
      number('speed', 0.001, 1e6),
      1,
    )
    .option(
      '--review-delay <ms>',
      'template review delay in simulated ms',
      number('review delay', 0, 1e10),
      60_000,
    )
    .option(
      '--reject-rate <share>',
      'share of template reviews rejected at random',
      number('reject rate', 0, 1),
      0,
    )
    .option('--late-rate <share>', 'share of webhooks posted late', number('late rate', 0, 1), 0.02)
    .option(
      '--duplicate-rate <share>',
      'share of webhooks posted twice',
      number('duplicate rate', 0, 1),
      0.01,
    )
    .option(
      '--out-of-order-rate <share>',
      'share of webhooks held back so later ones overtake',
      number('out-of-order rate', 0, 1),
      0.02,
    )
    .option(
      '--not-on-whatsapp <share>',
      'share of numbers not on WhatsApp (131026)',
      number('not on WhatsApp', 0, 1),
      0.05,
    )
    .option(
      '--stopped-marketing <share>',
      'share of users who stopped marketing (131050)',
      number('stopped marketing', 0, 1),
      0.03,
    )
    .option(
      '--marketing-per-user <n>',
      'marketing templates per user per 24 h before 131049',
      number('marketing per user', 1, 1e6),
      10,
    )
    .option('--templates <file>', 'JSON file of approved templates (Meta definitions) to start with')
    .option('--lenient-templates', 'accept sends of templates the simulator does not know')
    .option(
      '--log-limit <n>',
      'ground-truth log entries kept in memory (counts stay exact)',
      number('log limit', 100, 1e8),
      200_000,
    )
    .action(async (options: SimOptions) => {
      const sim = await startSimulator({
        port: Number(options.port),
        host: options.host,
        seed: options.seed,
        webhookUrl: options.webhookUrl,
        appSecret: options.appSecret,
        accessToken: options.accessToken,
        throughputMps: options.throughput,
        tier: options.tier as Tier,
        reviewDelayMs: options.reviewDelay,
        reviewRejectRate: options.rejectRate,
        marketingPerUserPerDay: options.marketingPerUser,
        recipientRates: { notOnWhatsApp: options.notOnWhatsapp, stoppedMarketing: options.stoppedMarketing },
        templates: options.templates ? JSON.parse(readFileSync(options.templates, 'utf8')) : undefined,
        strictTemplates: !options.lenientTemplates,
        maxLogEntries: options.logLimit,
        clock: { speed: options.speed },
        webhooks: {
          lateRate: options.lateRate,
          duplicateRate: options.duplicateRate,
          outOfOrderRate: options.outOfOrderRate,
        },
      });
      print({
        url: sim.url,
        seed: options.seed,
        send: `POST ${sim.url}/v23.0/{phone-number-id}/messages`,
        templates: `${sim.url}/v23.0/{waba-id}/message_templates`,
        log: `${sim.url}/_sim/log`,
        counts: `${sim.url}/_sim/counts`,
      });
      const stop = async () => {
        await sim.close();
        process.exit(0);
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
}
