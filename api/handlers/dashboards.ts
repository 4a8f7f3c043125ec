import type { FastifyRequest } from 'fastify';
import { campaignChart, defaultSize, overviewChart } from '../../dashboards/charts.ts';
import { campaignPage, loadCampaignData, loadOverviewData, overviewPage } from '../../dashboards/data.ts';
import { dashboardHtml, PAGE_HEADERS, readAsset } from '../../dashboards/page.ts';
import { renderPng, renderSvg } from '../../dashboards/render.ts';
import type { SpecSize } from '../../dashboards/specs.ts';
import {
  grantCovers,
  createDashboardToken as mintDashboardToken,
  verifyDashboardToken,
} from '../../dashboards/token.ts';
import type { Runtime } from '../../engine/runtime.ts';
import { getWorkspace } from '../../engine/workspaces.ts';
import { notFound, unauthorized } from '../problem.ts';
import type { Handler } from '../types.ts';

/**
 * Who may read a dashboard: a workspace key (checked by the bearerAuth handler, which sets
 * request.workspace) or a dashboard token covering the campaign. Operations declare bearerAuth as
 * optional so a token reaches this check; nothing here logs the credential.
 */
async function dashboardViewer(
  runtime: Runtime,
  request: FastifyRequest,
  campaignId: string | null,
): Promise<string> {
  if (request.workspace) return request.workspace.id;
  const match = /^Bearer\s+(\S+)$/i.exec(request.headers.authorization ?? '');
  if (!match) throw unauthorized('missing bearer key or dashboard token');
  const grant = await verifyDashboardToken(runtime.pg, match[1]!);
  if (!grant) throw unauthorized('unknown key, or an invalid or expired dashboard token');
  if (!grantCovers(grant, campaignId)) throw unauthorized('this dashboard token is for another campaign');
  return grant.workspaceId;
}

const pageUrl = (runtime: Runtime, path: string) =>
  `${runtime.config.publicUrl?.replace(/\/$/, '') ?? ''}${path}`;

export const createDashboardToken: Handler<'createDashboardToken'> = async ({ runtime, workspace, body }) => {
  const campaignId = body?.campaign_id;
  const { token, expiresAt } = await mintDashboardToken(runtime.pg, {
    workspaceId: workspace.id,
    campaignId,
    ttlSeconds: body?.ttl_seconds ?? 3600,
  });
  const path = campaignId ? `/dashboards/campaigns/${encodeURIComponent(campaignId)}` : '/dashboards';
  return {
    status: 201,
    body: {
      token,
      expires_at: expiresAt.toISOString(),
      campaign_id: campaignId ?? null,
      url: pageUrl(runtime, `${path}#token=${token}`),
    },
  };
};

export const getWorkspaceDashboardPage: Handler<'getWorkspaceDashboardPage'> = async () => ({
  status: 200,
  contentType: 'text/html; charset=utf-8',
  headers: PAGE_HEADERS,
  body: dashboardHtml({
    title: 'Campaigns',
    dataUrl: '/v1/dashboards/overview',
    exportBase: '/v1/dashboards/overview/charts',
    assetBase: '/dashboards/assets',
    overviewHref: '/dashboards',
  }),
});

export const getCampaignDashboardPage: Handler<'getCampaignDashboardPage'> = async ({ params }) => {
  const id = encodeURIComponent(params.campaignId);
  return {
    status: 200,
    contentType: 'text/html; charset=utf-8',
    headers: PAGE_HEADERS,
    body: dashboardHtml({
      title: params.campaignId,
      dataUrl: `/v1/dashboards/campaigns/${id}`,
      exportBase: `/v1/dashboards/campaigns/${id}/charts`,
      assetBase: '/dashboards/assets',
      overviewHref: '/dashboards',
    }),
  };
};

export const getDashboardAsset: Handler<'getDashboardAsset'> = async ({ params }) => {
  const asset = readAsset(params.asset);
  return {
    status: 200,
    contentType: asset.type,
    headers: { 'cache-control': 'public, max-age=300', 'x-content-type-options': 'nosniff' },
    body: asset.body,
  };
};

export const getWorkspaceDashboard: Handler<'getWorkspaceDashboard'> = async ({ runtime, request }) => {
  const workspaceId = await dashboardViewer(runtime, request, null);
  const [data, workspace] = await Promise.all([
    loadOverviewData(runtime, workspaceId),
    getWorkspace(runtime.pg, workspaceId),
  ]);
  return {
    status: 200,
    headers: { 'cache-control': 'no-store' },
    body: overviewPage(data, workspace?.name ?? workspaceId),
  };
};

export const getCampaignDashboard: Handler<'getCampaignDashboard'> = async ({ runtime, request, params }) => {
  const workspaceId = await dashboardViewer(runtime, request, params.campaignId);
  const data = await loadCampaignData(runtime, workspaceId, params.campaignId);
  if (!data) throw notFound(`no campaign ${params.campaignId} with sends or an audience`);
  return { status: 200, headers: { 'cache-control': 'no-store' }, body: campaignPage(data) };
};

type ChartQuery = { format?: 'json' | 'svg' | 'png'; width?: number; height?: number };

function exportSize(query: ChartQuery, fallback: SpecSize): SpecSize {
  const image = query.format === 'svg' || query.format === 'png';
  return {
    width: query.width ?? (image ? 800 : fallback.width),
    height: query.height ?? (image ? 400 : fallback.height),
  };
}

async function chartResponse(chart: ReturnType<typeof campaignChart>, query: ChartQuery, size: SpecSize) {
  if (query.format === 'svg') {
    return {
      status: 200 as const,
      contentType: 'image/svg+xml',
      body: await renderSvg(chart.spec, size as { width: number; height: number }),
    };
  }
  if (query.format === 'png') {
    const png = await renderPng(chart.spec, size.width as number, size.height);
    return { status: 200 as const, contentType: 'image/png', body: png as unknown as string };
  }
  return { status: 200 as const, body: chart };
}

export const getCampaignDashboardChart: Handler<'getCampaignDashboardChart'> = async ({
  runtime,
  request,
  params,
  query,
}) => {
  const workspaceId = await dashboardViewer(runtime, request, params.campaignId);
  const data = await loadCampaignData(runtime, workspaceId, params.campaignId);
  if (!data) throw notFound(`no campaign ${params.campaignId} with sends or an audience`);
  const size = exportSize(query, defaultSize(params.chartId));
  const response = await chartResponse(campaignChart(data, params.chartId, size), query, size);
  return { ...response, headers: { 'cache-control': 'no-store' } };
};

export const getWorkspaceDashboardChart: Handler<'getWorkspaceDashboardChart'> = async ({
  runtime,
  request,
  params,
  query,
}) => {
  const workspaceId = await dashboardViewer(runtime, request, null);
  const data = await loadOverviewData(runtime, workspaceId);
  const size = exportSize(query, defaultSize(params.chartId));
  const response = await chartResponse(overviewChart(data, params.chartId, size), query, size);
  return { ...response, headers: { 'cache-control': 'no-store' } };
};
