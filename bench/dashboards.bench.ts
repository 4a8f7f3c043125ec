// Dashboard drawing speed: a campaign of N sends (1M at --size full) served by the API and opened in
// headless Chromium; the page records how long it took from its data arriving to every chart being
// drawn (window.chorusDashboard.drawMs). Also reports the server's data load and the JSON size.
// `npm run bench -- dashboards [--size small|full]`; raw figures in bench/results/dashboards.json.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { cpus, loadavg, totalmem } from 'node:os';
import { chromium } from 'playwright-core';
import { seedCampaignFixture } from '../dashboards/fixtures.ts';
import { openTestApi } from '../test/helpers/runtime.ts';

const sizeArg = process.argv[process.argv.indexOf('--size') + 1];
const size = process.argv.includes('--size') && sizeArg === 'full' ? 'full' : 'small';
const sends = size === 'full' ? 1_000_000 : 20_000;
const RUNS = 3;
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const GOAL_MS = 1000;

if (!existsSync(CHROMIUM)) {
  process.stdout.write(
    `skipped: ${CHROMIUM} not found (apt-get install -y chromium, or set CHROMIUM_PATH)\n`,
  );
  process.exit(0);
}

const loadAtStart = loadavg();
const api = await openTestApi();
const browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-background-networking',
    '--disable-component-update',
    '--no-first-run',
  ],
});
try {
  let started = performance.now();
  await seedCampaignFixture(api.runtime, {
    workspaceId: api.workspace.id,
    campaignId: 'cmp_bench',
    sends,
    seed: 1,
  });
  const seedMs = performance.now() - started;

  started = performance.now();
  const response = await api.app.inject({ url: '/v1/dashboards/campaigns/cmp_bench', headers: api.auth });
  const loadMs = performance.now() - started;
  if (response.statusCode !== 200) throw new Error(`dashboard data: ${response.statusCode}`);
  const jsonBytes = response.body.length;

  await api.app.listen({ port: 0, host: '127.0.0.1' });
  const origin = `http://127.0.0.1:${(api.app.server.address() as AddressInfo).port}`;
  const token = (
    await api.app.inject({ method: 'POST', url: '/v1/dashboards/tokens', headers: api.auth, payload: {} })
  ).json().token as string;

  const runs: { drawMs: number; fetchMs: number; charts: number }[] = [];
  for (let i = 0; i < RUNS; i++) {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    await page.goto(`${origin}/dashboards/campaigns/cmp_bench#token=${token}`);
    await page.waitForSelector('body[data-state="rendered"]', { timeout: 120_000 });
    runs.push(
      await page.evaluate(
        () =>
          (window as unknown as { chorusDashboard: { drawMs: number; fetchMs: number; charts: number } })
            .chorusDashboard,
      ),
    );
    await page.close();
  }
  const draws = runs.map((r) => r.drawMs).sort((a, b) => a - b);
  const result = {
    name: 'dashboards',
    size,
    sends,
    machine: { cpus: cpus().length, memory_gib: Math.round(totalmem() / 2 ** 30), node: process.version },
    load_average: { at_start: loadAtStart, at_end: loadavg() },
    // this process only (server, chdb, PGlite); Chromium's drawing runs in its own processes
    process_cpu_seconds: Math.round((process.cpuUsage().user + process.cpuUsage().system) / 1e4) / 100,
    seed_ms: Math.round(seedMs),
    server_load_ms: Math.round(loadMs),
    json_bytes: jsonBytes,
    runs,
    draw_ms_median: Math.round(draws[Math.floor(draws.length / 2)]!),
    draw_ms_max: Math.round(draws.at(-1)!),
    goal_ms: GOAL_MS,
    within_goal: draws.at(-1)! <= GOAL_MS,
    measured_at: new Date().toISOString(),
  };
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
  writeFileSync(
    new URL('./results/dashboards.json', import.meta.url),
    `${JSON.stringify(result, null, 2)}\n`,
  );
  process.stdout.write(
    `${sends} sends: data ${result.server_load_ms} ms on the server (${Math.round(jsonBytes / 1024)} KiB JSON); ` +
      `drawn ${result.draw_ms_median} ms median, ${result.draw_ms_max} ms max after the data arrived ` +
      `(goal ${GOAL_MS} ms: ${result.within_goal ? 'met' : 'MISSED'})\n`,
  );
} finally {
  await browser.close();
  await api.close();
}
