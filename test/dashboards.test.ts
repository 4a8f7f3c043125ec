import fc from 'fast-check';
import * as vega from 'vega';
import { compile } from 'vega-lite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CAMPAIGN_CHARTS, campaignChart, OVERVIEW_CHARTS } from '../dashboards/charts.ts';
import { loadCampaignData } from '../dashboards/data.ts';
import { seedCampaignFixture } from '../dashboards/fixtures.ts';
import type { CampaignDashboardData } from '../dashboards/model.ts';
import { fitSvg, renderSvg, stableIds, svgToPng } from '../dashboards/render.ts';
import { funnelRows, hourOfWeekRows, rateRows } from '../dashboards/shape.ts';
import { pausesFrom } from '../dashboards/source.ts';
import { createDashboardToken, verifyDashboardToken } from '../dashboards/token.ts';
import { metricAt } from './helpers/dashboards.ts';
import { openTestApi, postgresTargets, type TestApi } from './helpers/runtime.ts';

/** Width and height of a PNG, from its IHDR chunk; throws unless the signature is PNG's. */
function pngSize(bytes: Buffer): { width: number; height: number } {
  expect(bytes.subarray(0, 8).toString('hex')).toBe('89504e470d0a1a0a');
  expect(bytes.subarray(12, 16).toString('ascii')).toBe('IHDR');
  return { width: bytes.readUInt32BE(16), height: bytes.readUInt32BE(20) };
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

describe('dashboard pages, charts and exports', () => {
  let api: TestApi;

  beforeAll(async () => {
    api = await openTestApi();
    const w = api.workspace.id;
    await seedCampaignFixture(api.runtime, {
      workspaceId: w,
      campaignId: 'cmp_a',
      name: 'A',
      sends: 3000,
      seed: 1,
    });
    // Same size, other engagement: every chart's content must differ from A's.
    await seedCampaignFixture(api.runtime, {
      workspaceId: w,
      campaignId: 'cmp_b',
      name: 'B',
      sends: 3000,
      seed: 2,
      engagement: 0.4,
    });
    // Another workspace's campaign with the same id: never visible to this workspace.
    await seedCampaignFixture(api.runtime, {
      workspaceId: 'ws_other',
      campaignId: 'cmp_c',
      sends: 500,
      seed: 3,
    });
  });
  afterAll(async () => api?.close());

  it('serves the page shell and the bundled scripts from this server only', async () => {
    const page = await api.app.inject({ url: '/dashboards/campaigns/cmp_a' });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toContain('text/html');
    expect(page.headers['content-security-policy']).toContain("default-src 'none'");
    expect(page.headers['content-security-policy']).not.toMatch(/https?:/);
    const sources = [...page.body.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
    expect(sources.length).toBeGreaterThan(3);
    for (const source of sources) expect(source).toMatch(/^(\/|data:)/);
    for (const asset of [
      'vega.min.js',
      'vega-lite.min.js',
      'vega-embed.min.js',
      'dashboard.js',
      'dashboard.css',
    ]) {
      const response = await api.app.inject({ url: `/dashboards/assets/${asset}` });
      expect(response.statusCode, asset).toBe(200);
      expect(response.body.length, asset).toBeGreaterThan(1000);
    }
    expect((await api.app.inject({ url: '/dashboards/assets/..%2Fpackage.json' })).statusCode).toBe(400);
    // HTML in an id is rejected by the spec's pattern, so it cannot reach the page.
    expect((await api.app.inject({ url: '/dashboards/campaigns/%3Cscript%3E' })).statusCode).toBe(400);
  });

  it('returns every chart as a Vega-Lite spec that compiles, with the campaign figures', async () => {
    const response = await api.app.inject({ url: '/v1/dashboards/campaigns/cmp_a', headers: api.auth });
    expect(response.statusCode).toBe(200);
    const page = response.json();
    expect(page.charts.map((c: { id: string }) => c.id)).toEqual([...CAMPAIGN_CHARTS]);
    for (const chart of page.charts) {
      expect(chart.spec.$schema, chart.id).toContain('vega-lite/v6');
      expect(() => compile(chart.spec), chart.id).not.toThrow();
    }
    const figures = Object.fromEntries(page.tiles.map((t: { id: string; value: number }) => [t.id, t.value]));
    // Every tile equals the metrics API's figure at the tile's path.
    const metrics = (await api.app.inject({ url: '/v1/metrics/campaigns/cmp_a', headers: api.auth })).json();
    for (const [path, value] of Object.entries(figures)) {
      expect(value, path).toBe(metricAt(metrics, path));
    }
    expect(figures.attempted).toBe(3000);
    expect(figures['conversions.conversions']).toBeGreaterThan(0);
    expect(figures['holdout.lift']).not.toBeNull();
    const funnel = page.charts.find((c: { id: string }) => c.id === 'funnel').spec.data.values;
    expect(funnel.map((r: { count: number }) => r.count)).toEqual([
      metrics.sent,
      metrics.delivered,
      metrics.read,
      metrics.replied,
    ]);
  });

  it('exports SVG and PNG at the requested size over HTTP', async () => {
    const get = (campaign: string, chart: string, format: string, width: number, height: number) =>
      api.app.inject({
        url: `/v1/dashboards/campaigns/${campaign}/charts/${chart}?format=${format}&width=${width}&height=${height}`,
        headers: api.auth,
      });
    for (const chart of ['funnel', 'send-time-heatmap']) {
      const svg = await get('cmp_a', chart, 'svg', 640, 320);
      expect(svg.statusCode, chart).toBe(200);
      expect(svg.headers['content-type'], chart).toContain('image/svg+xml');
      expect(svg.body, chart).toMatch(/^<svg[^>]+xmlns="http:\/\/www.w3.org\/2000\/svg"/);
      expect(svg.body, chart).toMatch(/^<svg[^>]+width="640" height="320"/);
      const png = await get('cmp_a', chart, 'png', 1000, 700);
      expect(png.headers['content-type'], chart).toBe('image/png');
      expect(pngSize(png.rawPayload), chart).toEqual({ width: 1000, height: 700 });
      // Same data, same bytes; other data, other picture.
      expect((await get('cmp_a', chart, 'svg', 640, 320)).body === svg.body, chart).toBe(true);
      expect((await get('cmp_b', chart, 'png', 1000, 700)).rawPayload.equals(png.rawPayload), chart).toBe(
        false,
      );
    }
    expect(pngSize((await get('cmp_a', 'funnel', 'png', 100, 4000)).rawPayload)).toEqual({
      width: 100,
      height: 4000,
    });
    const overview = await api.app.inject({
      url: '/v1/dashboards/overview/charts/campaigns?format=png&width=300&height=200',
      headers: api.auth,
    });
    expect(pngSize(overview.rawPayload)).toEqual({ width: 300, height: 200 });
  });

  it('draws every chart as a valid image of the requested size that changes with the data', async () => {
    const [a, b] = await Promise.all([
      loadCampaignData(api.runtime, api.workspace.id, 'cmp_a'),
      loadCampaignData(api.runtime, api.workspace.id, 'cmp_b'),
    ]);
    for (const chart of CAMPAIGN_CHARTS) {
      const size = { width: 480, height: 260 };
      const svgA = await renderSvg(campaignChart(a!, chart, size).spec, size);
      const svgB = await renderSvg(campaignChart(b!, chart, size).spec, size);
      expect(svgA, chart).toMatch(/^<svg[^>]+width="480" height="260"/);
      expect(svgA === svgB, chart).toBe(false);
      if (['funnel', 'rates-hourly', 'roi', 'throttle'].includes(chart)) {
        expect(pngSize(svgToPng(svgA, 480, 260)), chart).toEqual(size);
        expect(svgToPng(svgA, 480, 260).equals(svgToPng(svgB, 480, 260)), chart).toBe(false);
      }
    }
  });

  it('draws the SVG with vega headless exactly as its spec says', async () => {
    const response = await api.app.inject({
      url: '/v1/dashboards/campaigns/cmp_a/charts/funnel?width=500&height=250',
      headers: api.auth,
    });
    const chart = response.json();
    expect(chart.spec.width).toBe(500);
    const view = new vega.View(vega.parse(compile(chart.spec).spec), { renderer: 'none' });
    const svg = fitSvg(stableIds(await view.toSVG()), 500, 250);
    view.finalize();
    const exported = await api.app.inject({
      url: '/v1/dashboards/campaigns/cmp_a/charts/funnel?format=svg&width=500&height=250',
      headers: api.auth,
    });
    expect(exported.body === svg).toBe(true);
    expect(svg).toMatch(/width="500" height="250"/);
  });

  it('rejects bad sizes and formats with a 400 naming the field', async () => {
    for (const query of ['width=50', 'height=5000', 'format=gif', 'width=abc']) {
      const response = await api.app.inject({
        url: `/v1/dashboards/campaigns/cmp_a/charts/funnel?${query}`,
        headers: api.auth,
      });
      expect(response.statusCode, query).toBe(400);
      expect(response.json().errors[0].path, query).toMatch(/^\/querystring\//);
    }
    const unknown = await api.app.inject({
      url: '/v1/dashboards/campaigns/cmp_a/charts/pie',
      headers: api.auth,
    });
    expect(unknown.statusCode).toBe(400);
  });

  it('gives 404 for a campaign of another workspace', async () => {
    expect(
      (await api.app.inject({ url: '/v1/dashboards/campaigns/cmp_c', headers: api.auth })).statusCode,
    ).toBe(404);
    const overview = (await api.app.inject({ url: '/v1/dashboards/overview', headers: api.auth })).json();
    expect(overview.campaigns.map((c: { id: string }) => c.id).sort()).toEqual(['cmp_a', 'cmp_b']);
    expect(overview.charts.map((c: { id: string }) => c.id)).toEqual([...OVERVIEW_CHARTS]);
  });
});

// Tokens live in Postgres (the signing secret), so they run on PGlite and the real server.
describe.each(postgresTargets)('dashboard tokens ($name)', ({ url }) => {
  let api: TestApi;

  beforeAll(async () => {
    api = await openTestApi({ postgresUrl: url });
    const w = api.workspace.id;
    await seedCampaignFixture(api.runtime, { workspaceId: w, campaignId: 'cmp_a', sends: 300, seed: 1 });
    await seedCampaignFixture(api.runtime, { workspaceId: w, campaignId: 'cmp_b', sends: 300, seed: 2 });
    await seedCampaignFixture(api.runtime, {
      workspaceId: 'ws_other',
      campaignId: 'cmp_c',
      sends: 100,
      seed: 3,
    });
  });
  afterAll(async () => api?.close());

  it('opens dashboards with a token scoped to a workspace or a campaign, and nothing else', async () => {
    expect((await api.app.inject({ url: '/v1/dashboards/campaigns/cmp_a' })).statusCode).toBe(401);
    const minted = await api.app.inject({
      method: 'POST',
      url: '/v1/dashboards/tokens',
      headers: api.auth,
      payload: { campaign_id: 'cmp_a', ttl_seconds: 600 },
    });
    expect(minted.statusCode).toBe(201);
    const { token, url: link, expires_at } = minted.json();
    expect(link).toBe(`/dashboards/campaigns/cmp_a#token=${token}`);
    expect(Date.parse(expires_at) - Date.now()).toBeGreaterThan(500_000);
    const get = (path: string, t: string) => api.app.inject({ url: path, headers: bearer(t) });
    expect((await get('/v1/dashboards/campaigns/cmp_a', token)).statusCode).toBe(200);
    expect((await get('/v1/dashboards/campaigns/cmp_a/charts/roi?format=png', token)).statusCode).toBe(200);
    expect((await get('/v1/dashboards/campaigns/cmp_b', token)).statusCode).toBe(401);
    expect((await get('/v1/dashboards/overview', token)).statusCode).toBe(401);
    // A dashboard token is not an API key.
    expect((await get('/v1/workspace', token)).statusCode).toBe(401);
    expect(
      (
        await api.app.inject({
          method: 'POST',
          url: '/v1/dashboards/tokens',
          headers: bearer(token),
          payload: {},
        })
      ).statusCode,
    ).toBe(401);
    // Tampering with the payload (another campaign) breaks the signature.
    const [prefix, payload, signature] = token.split('.');
    const body = JSON.parse(Buffer.from(payload, 'base64url').toString());
    const forged = `${prefix}.${Buffer.from(JSON.stringify({ ...body, c: '*' })).toString('base64url')}.${signature}`;
    expect((await get('/v1/dashboards/overview', forged)).statusCode).toBe(401);

    const workspaceWide = (
      await api.app.inject({ method: 'POST', url: '/v1/dashboards/tokens', headers: api.auth })
    ).json();
    expect(workspaceWide.url).toBe(`/dashboards#token=${workspaceWide.token}`);
    expect((await get('/v1/dashboards/campaigns/cmp_b', workspaceWide.token)).statusCode).toBe(200);
    expect((await get('/v1/dashboards/overview', workspaceWide.token)).statusCode).toBe(200);
    expect((await get('/v1/dashboards/campaigns/cmp_c', workspaceWide.token)).statusCode).toBe(404);

    const tooLong = await api.app.inject({
      method: 'POST',
      url: '/v1/dashboards/tokens',
      headers: api.auth,
      payload: { ttl_seconds: 10 },
    });
    expect(tooLong.statusCode).toBe(400);
    expect(tooLong.json().errors[0].path).toBe('/body/ttl_seconds');
  });

  it('expires tokens', async () => {
    const past = new Date(Date.now() - 2 * 3600_000);
    const { token } = await createDashboardToken(
      api.runtime.pg,
      { workspaceId: api.workspace.id, ttlSeconds: 3600 },
      past,
    );
    expect(await verifyDashboardToken(api.runtime.pg, token, new Date(past.getTime() + 1000))).toBeDefined();
    expect(await verifyDashboardToken(api.runtime.pg, token)).toBeUndefined();
    const response = await api.app.inject({ url: '/v1/dashboards/overview', headers: bearer(token) });
    expect(response.statusCode).toBe(401);
  });
});

describe('shaping', () => {
  const funnel = fc
    .tuple(fc.nat(10_000), fc.nat(10_000), fc.nat(10_000), fc.nat(10_000))
    .map(([a, b, c, d]) => [a, b, c, d].sort((x, y) => y - x) as [number, number, number, number]);

  it('keeps funnel shares and rates in [0, 1]', () => {
    fc.assert(
      fc.property(funnel, ([sent, delivered, read, replied]) => {
        const data = { funnel: { sent, delivered, read, replied } } as CampaignDashboardData;
        const rows = funnelRows(data);
        expect(rows.map((r) => r.count)).toEqual([sent, delivered, read, replied]);
        for (const row of rows) {
          expect(row.of_sent).toBeGreaterThanOrEqual(0);
          expect(row.of_sent).toBeLessThanOrEqual(1);
          expect(row.of_previous).toBeLessThanOrEqual(1);
        }
        const rates = rateRows([
          { bucket: '2026-01-01T00:00:00.000Z', sent, delivered, read, replied, failed: 0 },
        ]);
        expect(rates).toHaveLength(3);
        for (const r of rates) expect(r.rate as number).toBeLessThanOrEqual(1);
      }),
    );
  });

  it('always fills the 7 × 24 hour-of-week grid, keeping every count', () => {
    const cell = fc.record({
      dow: fc.integer({ min: 1, max: 7 }),
      hour: fc.integer({ min: 0, max: 23 }),
      sent: fc.nat(100),
      read: fc.nat(100),
      replied: fc.nat(100),
      chosen: fc.nat(100),
      explored: fc.nat(100),
    });
    fc.assert(
      fc.property(fc.uniqueArray(cell, { selector: (c) => `${c.dow}:${c.hour}`, maxLength: 40 }), (cells) => {
        const rows = hourOfWeekRows({
          hourOfWeek: cells,
          timezone: 'UTC',
        } as unknown as CampaignDashboardData);
        expect(rows).toHaveLength(168);
        const sum = (key: 'sent' | 'chosen') => rows.reduce((s, r) => s + (r[key] as number), 0);
        expect(sum('sent')).toBe(cells.reduce((s, c) => s + c.sent, 0));
        expect(sum('chosen')).toBe(cells.reduce((s, c) => s + c.chosen, 0));
      }),
    );
  });

  it('reads pauses from the audit log, an open pause running to now', () => {
    const at = (m: number) => `2026-11-02T09:${String(m).padStart(2, '0')}:00.000Z`;
    const log = [
      { from_state: 'draft', to_state: 'running', reason: null, at: at(0) },
      { from_state: 'running', to_state: 'paused', reason: 'failure rate 12%', at: at(5) },
      { from_state: 'paused', to_state: 'running', reason: null, at: at(9) },
      { from_state: 'running', to_state: 'paused', reason: null, at: at(20) },
    ];
    expect(pausesFrom(log)).toEqual([
      { start: at(5), end: at(9), reason: 'failure rate 12%' },
      { start: at(20), end: null, reason: 'paused' },
    ]);
  });
});
