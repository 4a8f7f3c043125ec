// `chorus campaign launch` and `chorus campaign status --watch`: the live progress bar, drawn on a
// terminal, follows a real campaign sent through the simulator (embedded stores, one process).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openRuntime } from '../engine/runtime.ts';
import { createWorkspace } from '../engine/workspaces.ts';
import { type RunningSimulator, startSimulator } from '../simulator/server.ts';
import { createSender, phoneOf, seedContacts } from './helpers/campaigns.ts';
import { chorus } from './helpers/cli.ts';

const dataDir = mkdtempSync(join(tmpdir(), 'chorus-cli-watch-'));

/** Runs `fn` with stderr taken for a 120-column terminal; returns what was drawn on it. */
async function onTerminal<T>(fn: () => Promise<T>): Promise<{ result: T; drawn: string }> {
  const stderr = process.stderr as unknown as Record<string, unknown>;
  const saved = Object.fromEntries(
    ['isTTY', 'columns', 'write', 'cursorTo', 'moveCursor', 'clearLine', 'clearScreenDown'].map((k) => [
      k,
      stderr[k],
    ]),
  );
  let drawn = '';
  Object.assign(stderr, {
    isTTY: true,
    columns: 120,
    write: (chunk: string | Uint8Array) => {
      drawn += String(chunk);
      return true;
    },
    cursorTo: () => true,
    moveCursor: () => true,
    clearLine: () => true,
    clearScreenDown: () => true,
  });
  try {
    return { result: await fn(), drawn };
  } finally {
    Object.assign(stderr, saved);
  }
}

describe('chorus campaign: live progress bar', () => {
  const saved = { ...process.env };
  let sim: RunningSimulator;
  let workspace: string;
  let campaignFile: string;

  beforeAll(async () => {
    Object.assign(process.env, { CHORUS_DATA_DIR: dataDir, LOG_LEVEL: 'silent' });
    delete process.env.DATABASE_URL;
    delete process.env.CLICKHOUSE_URL;
    sim = await startSimulator({
      port: 0,
      seed: 'cli-watch',
      appSecret: 'secret',
      accessToken: 'token',
      templates: [
        {
          name: 'promo',
          language: 'en_US',
          category: 'MARKETING',
          components: [{ type: 'BODY' as const, text: 'Hello, our new range is in.' }],
        },
      ],
      tier: 'TIER_UNLIMITED',
      recipientRates: { notOnWhatsApp: 0, stoppedMarketing: 0 },
      marketingPerUserPerDay: 1_000,
      numbers: [{ id: '3001', throughputMps: 20, portfolioId: 'pf_cli' }],
    });
    // The stores as a deployment has them: a workspace, a sender on the simulator, an approved
    // template, 40 consenting contacts (2 s of sending at 20/s, so the bar has something to follow).
    const runtime = await openRuntime({ config: { dataDir, logLevel: 'silent' } });
    try {
      workspace = (await createWorkspace(runtime.pg, { name: 'CLI watch' })).id;
      const sender = await createSender(runtime, workspace, {
        throughput: 20,
        baseUrl: sim.url,
        phoneNumberId: '3001',
        portfolio: 'pf_cli',
      });
      await runtime.pg.query(
        `INSERT INTO templates (id, workspace_id, name, language, category, body, status)
         VALUES ('tpl_cli', $1, 'promo', 'en_US', 'MARKETING', 'Hello, our new range is in.', 'APPROVED')`,
        [workspace],
      );
      await seedContacts(
        runtime,
        workspace,
        Array.from({ length: 40 }, (_, i) => ({ id: `cw${i}`, phone: phoneOf(900 + i) })),
      );
      campaignFile = join(dataDir, 'campaign.json');
      writeFileSync(
        campaignFile,
        JSON.stringify({
          name: 'Watched',
          sender_id: sender,
          audience: { type: 'all' },
          content: { template: { name: 'promo', language: 'en_US' } },
          // Sends now, whatever the hour: the default quiet hours (21–9 in the contacts' zone) would
          // hold every send for the night.
          settings: { quiet_hours: null },
        }),
      );
    } finally {
      await runtime.close();
    }
  }, 120_000);

  afterAll(async () => {
    process.env = saved;
    await sim?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('launch draws the bar until the campaign completes; status --watch draws it and prints the outcome', async () => {
    const draft = JSON.parse(
      await chorus('campaign', 'create', '--workspace', workspace, '--file', campaignFile),
    );
    expect(draft).toMatchObject({ state: 'draft' });

    // Embedded mode sends from the launching process and watches until done.
    const launch = await onTerminal(() =>
      chorus('campaign', 'launch', '--workspace', workspace, '--id', draft.id),
    );
    expect(JSON.parse(launch.result)).toMatchObject({ state: 'completed', counts: { accepted: 40 } });
    // The bar was redrawn as sends settled: it started below 40 and ended at 40 of 40.
    const frames = [...launch.drawn.matchAll(/(\d+)% \| (\d+)\/(\d+) settled \| (\w+) \|/g)];
    expect(frames.length).toBeGreaterThan(1);
    expect(frames.some((f) => Number(f[2]) < 40 && f[4] === 'running')).toBe(true);
    expect(frames.at(-1)!.slice(1, 5)).toEqual(['100', '40', '40', 'completed']);

    const status = await onTerminal(() =>
      chorus('campaign', 'status', '--workspace', workspace, '--id', draft.id, '--watch'),
    );
    expect(status.drawn).toMatch(/100% \| 40\/40 settled \| completed \|/);
    expect(JSON.parse(status.result)).toMatchObject({ state: 'completed', counts: { accepted: 40 } });
    // The simulator took each contact once.
    const accepted = sim.log.filter((e) => e.kind === 'send_accepted');
    expect(new Set(accepted.map((e) => e.to)).size).toBe(40);
    expect(accepted).toHaveLength(40);
  }, 120_000);
});
