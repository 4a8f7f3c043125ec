import { existsSync, mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CAMPAIGN_CHARTS, OVERVIEW_CHARTS } from '../dashboards/charts.ts';
import { seedCampaignFixture } from '../dashboards/fixtures.ts';
import { metricAt } from './helpers/dashboards.ts';
import { openTestApi, type TestApi } from './helpers/runtime.ts';

// The campaign dashboard in a real headless Chromium: every chart drawn, the numbers shown equal to the
// API's, nothing loaded from outside this server, screenshots kept in test-results/dashboards/.
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SCREENSHOTS = join(import.meta.dirname, '..', 'test-results', 'dashboards');
const skipReason = existsSync(CHROMIUM)
  ? undefined
  : `${CHROMIUM} not found: install Debian's chromium (apt-get install -y chromium) or set CHROMIUM_PATH`;
if (skipReason) process.stderr.write(`dashboards browser test skipped: ${skipReason}\n`);

const counts = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const money = new Intl.NumberFormat('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 });

/** How the page formats a figure (dashboards/client/dashboard.js formatFigure), to compare texts. */
function shown(kind: string, value: number | null, currency = 'USD'): string {
  if (value === null) return '–';
  if (kind === 'rate') return `${(value * 100).toFixed(1)}%`;
  if (kind === 'signed-rate') return `${value >= 0 ? '+' : ''}${(value * 100).toFixed(1)} pp`;
  if (kind === 'money') return `${money.format(value)} ${currency}`;
  if (kind === 'ratio') return `${(value * 100).toFixed(0)}%`;
  if (kind === 'duration') {
    if (value < 60) return `${Math.round(value)} s`;
    if (value < 3600) return `${Math.round(value / 60)} min`;
    return `${(value / 3600).toFixed(1)} h`;
  }
  return counts.format(value);
}

describe.skipIf(Boolean(skipReason))('campaign dashboard in headless Chromium', () => {
  let api: TestApi;
  let browser: Browser;
  let origin: string;

  beforeAll(async () => {
    api = await openTestApi();
    await seedCampaignFixture(api.runtime, {
      workspaceId: api.workspace.id,
      campaignId: 'cmp_spring',
      name: 'Spring sale',
      sends: 5000,
      seed: 7,
    });
    await seedCampaignFixture(api.runtime, {
      workspaceId: api.workspace.id,
      campaignId: 'cmp_loyalty',
      name: 'Loyalty nudge',
      sends: 2000,
      seed: 8,
      engagement: 0.6,
      launchedAt: '2026-11-09T00:00:00.000Z',
    });
    await api.app.listen({ port: 0, host: '127.0.0.1' });
    origin = `http://127.0.0.1:${(api.app.server.address() as AddressInfo).port}`;
    browser = await chromium.launch({
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
    mkdirSync(SCREENSHOTS, { recursive: true });
  });

  afterAll(async () => {
    await browser?.close();
    await api?.close();
  });

  async function openPage(path: string, token: string) {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    const requests: string[] = [];
    const errors: string[] = [];
    page.on('request', (request) => requests.push(request.url()));
    page.on('pageerror', (error) => errors.push(error.message));
    page.on('console', (message) => {
      if (message.type() === 'error') errors.push(message.text());
    });
    await page.goto(`${origin}${path}#token=${token}`);
    await page.waitForSelector('body[data-state="rendered"]', { timeout: 30_000 });
    return { page, requests, errors };
  }

  async function mint(campaignId?: string): Promise<string> {
    const response = await api.app.inject({
      method: 'POST',
      url: '/v1/dashboards/tokens',
      headers: api.auth,
      payload: campaignId ? { campaign_id: campaignId } : {},
    });
    expect(response.statusCode).toBe(201);
    return response.json().token;
  }

  it('draws every chart and shows the API numbers', async () => {
    const token = await mint('cmp_spring');
    const { page, requests, errors } = await openPage('/dashboards/campaigns/cmp_spring', token);

    const charts = await page.$$eval('.chart', (boxes) =>
      boxes.map((box) => ({
        id: (box as HTMLElement).dataset.chart,
        rendered: (box as HTMLElement).dataset.rendered,
        width: (box.querySelector('.chart-target canvas') as HTMLCanvasElement | null)?.width ?? 0,
      })),
    );
    expect(charts.map((c) => c.id)).toEqual([...CAMPAIGN_CHARTS]);
    for (const chart of charts) {
      expect(chart.rendered, chart.id).toBe('true');
      expect(chart.width, chart.id).toBeGreaterThan(200);
    }

    // The text the page shows for each figure equals the metrics API's figure, formatted.
    const data = (
      await api.app.inject({ url: '/v1/dashboards/campaigns/cmp_spring', headers: api.auth })
    ).json() as { tiles: { id: string; kind: string; value: number | null }[]; currency: string };
    const metrics = (
      await api.app.inject({ url: '/v1/metrics/campaigns/cmp_spring', headers: api.auth })
    ).json();
    const tiles = await page.$$eval('.tile', (els) =>
      els.map((el) => ({
        id: (el as HTMLElement).dataset.metric!,
        text: el.querySelector('.tile-value')!.textContent,
      })),
    );
    expect(tiles.map((t) => t.id)).toEqual(data.tiles.map((t) => t.id));
    expect(tiles.length).toBeGreaterThan(10);
    for (const tile of data.tiles) {
      const expected = shown(tile.kind, metricAt(metrics, tile.id) as number | null, metrics.cost.currency);
      expect(tiles.find((t) => t.id === tile.id)?.text, tile.id).toBe(expected);
    }
    // Attempts straight from the fact table, independent of both.
    const [facts] = await api.runtime.ch.rows<{ n: string }>(
      `SELECT count() AS n FROM ${api.runtime.ch.database}.sends FINAL
       WHERE workspace_id = {w:String} AND campaign_id = 'cmp_spring'`,
      { w: api.workspace.id },
    );
    expect(tiles.find((t) => t.id === 'attempted')?.text).toBe(counts.format(Number(facts!.n)));

    expect(requests.filter((url) => !url.startsWith(origin))).toEqual([]);
    expect(errors).toEqual([]);
    // The token left the address bar once read.
    expect(page.url()).not.toContain('token=');
    await page.screenshot({ path: join(SCREENSHOTS, 'campaign.png'), fullPage: true });
    await page.close();
  });

  it('draws the workspace overview with a row per campaign', async () => {
    const token = await mint();
    const { page, requests, errors } = await openPage('/dashboards', token);
    const rendered = await page.$$eval('.chart', (boxes) =>
      boxes.map((b) => (b as HTMLElement).dataset.rendered),
    );
    expect(rendered).toEqual(OVERVIEW_CHARTS.map(() => 'true'));
    const rows = await page.$$eval('table.campaigns tr[data-campaign]', (trs) =>
      trs.map((tr) => (tr as HTMLElement).dataset.campaign),
    );
    expect(rows.sort()).toEqual(['cmp_loyalty', 'cmp_spring']);
    expect(requests.filter((url) => !url.startsWith(origin))).toEqual([]);
    expect(errors).toEqual([]);
    await page.screenshot({ path: join(SCREENSHOTS, 'overview.png'), fullPage: true });
    await page.close();
  });

  it('refreshes a live campaign by itself: new sends appear without a reload', async () => {
    // Sends dated tomorrow: the last send is not yet 15 minutes old, so the campaign counts as live.
    const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
    const fixture = { workspaceId: api.workspace.id, campaignId: 'cmp_live', seed: 9, days: 1 };
    await seedCampaignFixture(api.runtime, {
      ...fixture,
      sends: 300,
      launchedAt: `${tomorrow}T00:00:00.000Z`,
    });
    const token = await mint('cmp_live');
    const { page, errors } = await openPage('/dashboards/campaigns/cmp_live', token);
    const attempted = () => page.textContent('.tile[data-metric="attempted"] .tile-value');
    expect(
      await page.evaluate(
        () => (window as unknown as { chorusDashboard: { live: boolean } }).chorusDashboard.live,
      ),
    ).toBe(true);
    expect(await page.textContent('#status')).toContain('live');
    expect(await attempted()).toBe('300');
    // The same campaign grows to 700 sends (the first 300 are the same rows again).
    await seedCampaignFixture(api.runtime, {
      ...fixture,
      sends: 700,
      launchedAt: `${tomorrow}T00:00:00.000Z`,
    });
    await page.waitForFunction(
      () => document.querySelector('.tile[data-metric="attempted"] .tile-value')?.textContent === '700',
      undefined,
      { timeout: 30_000 },
    );
    const refreshes = await page.evaluate(
      () => (window as unknown as { chorusDashboard: { refreshes: number } }).chorusDashboard.refreshes,
    );
    expect(refreshes).toBeGreaterThanOrEqual(1);
    expect(errors).toEqual([]);
    await page.close();
  });

  it('shows a clear message, and no data, without a valid token', async () => {
    const page = await browser.newPage();
    await page.goto(`${origin}/dashboards/campaigns/cmp_spring#token=cdt1.forged.token`);
    await page.waitForSelector('body[data-state="unauthorized"]', { timeout: 30_000 });
    expect(await page.textContent('#status')).toContain('expired or is not valid');
    expect(await page.$$('.chart')).toHaveLength(0);
    await page.close();
  });
});
