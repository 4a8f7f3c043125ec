import type { Runtime } from '../engine/runtime.ts';
import {
  CAMPAIGN_CHARTS,
  type CampaignChartId,
  type Chart,
  campaignChart,
  OVERVIEW_CHARTS,
  type OverviewChartId,
  overviewChart,
  withCompiled,
} from './charts.ts';
import type { CampaignDashboardData, CampaignSummaryRow, OverviewDashboardData } from './model.ts';
import { summaryFigures } from './shape.ts';
import { loadCampaign, loadOverview } from './source.ts';

/**
 * Where dashboard figures come from, and the page documents built from them. A short cache shares one
 * load between the page, its chart exports and every viewer polling the same campaign.
 */
const CACHE_MS = 4000;
const cache = new Map<string, { at: number; value: Promise<unknown> }>();

/**
 * Concurrent callers share one load; a finished load serves for CACHE_MS after it completed (less than
 * the page's refresh period, so every poll sees fresh figures).
 */
function cached<T>(key: string, load: () => Promise<T>): Promise<T> {
  const now = Date.now();
  const hit = cache.get(key);
  if (hit && now - hit.at < CACHE_MS) return hit.value as Promise<T>;
  const entry = { at: Number.POSITIVE_INFINITY, value: load() as Promise<unknown> };
  cache.set(key, entry);
  entry.value.then(
    () => {
      entry.at = Date.now();
    },
    () => cache.delete(key),
  );
  if (cache.size > 500) for (const [k, v] of cache) if (now - v.at >= CACHE_MS) cache.delete(k);
  return entry.value as Promise<T>;
}

export function loadCampaignData(
  runtime: Runtime,
  workspaceId: string,
  campaignId: string,
): Promise<CampaignDashboardData | undefined> {
  return cached(`${runtime.ch.database}\u0000${workspaceId}\u0000c\u0000${campaignId}`, () =>
    loadCampaign(runtime, workspaceId, campaignId),
  );
}

export function loadOverviewData(runtime: Runtime, workspaceId: string): Promise<OverviewDashboardData> {
  return cached(`${runtime.ch.database}\u0000${workspaceId}\u0000o`, () =>
    loadOverview(runtime, workspaceId),
  );
}

export interface Tile {
  id: string;
  label: string;
  kind: 'count' | 'rate' | 'signed-rate' | 'money' | 'ratio' | 'duration';
  value: number | null;
}

export interface DashboardPage {
  kind: 'campaign' | 'overview';
  title: string;
  subtitle: string;
  campaign_id?: string;
  live: boolean;
  refresh_seconds: number;
  currency: string;
  source: string;
  generated_at: string;
  tiles: Tile[];
  campaigns?: CampaignSummaryRow[];
  charts: Chart[];
}

const LIVE_STATUSES = new Set(['scheduled', 'running', 'paused']);
const RECENT_MS = 15 * 60 * 1000;
export const REFRESH_SECONDS = 5;

/**
 * Still moving: a campaign that is scheduled, running or paused, or one whose last send is under 15
 * minutes old (statuses, replies and conversions keep arriving after the last send).
 */
export function isLive(data: CampaignDashboardData, now = Date.now()): boolean {
  if (LIVE_STATUSES.has(data.campaign.status)) return true;
  const last = data.campaign.lastSendAt ? Date.parse(data.campaign.lastSendAt) : Number.NaN;
  return Number.isFinite(last) && now - last < RECENT_MS;
}

/** Tiles by the metrics API field they show (a dotted path into GET /v1/metrics/campaigns/{id}). */
export const CAMPAIGN_TILES: { id: string; label: string; kind: Tile['kind'] }[] = [
  { id: 'attempted', label: 'Attempted', kind: 'count' },
  { id: 'sent', label: 'Sent (accepted)', kind: 'count' },
  { id: 'delivered', label: 'Delivered', kind: 'count' },
  { id: 'read', label: 'Read', kind: 'count' },
  { id: 'replied', label: 'Replied', kind: 'count' },
  { id: 'failed', label: 'Failed', kind: 'count' },
  { id: 'delivery_rate', label: 'Delivery rate (of sent)', kind: 'rate' },
  { id: 'read_rate', label: 'Read rate (of delivered)', kind: 'rate' },
  { id: 'reply_rate', label: 'Reply rate (of delivered)', kind: 'rate' },
  { id: 'failure_rate', label: 'Failure rate (of attempted)', kind: 'rate' },
  { id: 'conversions.conversions', label: 'Conversions', kind: 'count' },
  { id: 'conversion_rate', label: 'Conversion rate (of sent)', kind: 'rate' },
  { id: 'conversions.revenue', label: 'Revenue', kind: 'money' },
  { id: 'cost.amount', label: 'Cost', kind: 'money' },
  { id: 'roi', label: 'ROI', kind: 'ratio' },
  { id: 'holdout.lift', label: 'Lift vs holdout', kind: 'signed-rate' },
  { id: 'time_to_read.p50_seconds', label: 'Median time to read', kind: 'duration' },
];

export function campaignPage(
  data: CampaignDashboardData,
  charts: readonly CampaignChartId[] = CAMPAIGN_CHARTS,
): DashboardPage {
  const figures = summaryFigures(data);
  const live = isLive(data);
  const launched = data.campaign.launchedAt
    ? `launched ${data.campaign.launchedAt.slice(0, 16).replace('T', ' ')} UTC`
    : 'not launched';
  return {
    kind: 'campaign',
    title: data.campaign.name,
    subtitle: [data.campaign.status, launched, `${figures.sent?.toLocaleString('en-US')} sends`]
      .filter(Boolean)
      .join(' · '),
    campaign_id: data.campaign.id,
    live,
    refresh_seconds: REFRESH_SECONDS,
    currency: data.conversions.currency,
    source: data.source,
    generated_at: data.generatedAt,
    tiles: CAMPAIGN_TILES.map((t) => ({ ...t, value: figures[t.id] ?? null })),
    charts: charts.map((id) => withCompiled(campaignChart(data, id))),
  };
}

export function overviewPage(data: OverviewDashboardData, workspaceName: string): DashboardPage {
  const total = (key: 'sent' | 'delivered' | 'read' | 'replied' | 'failed' | 'conversions' | 'revenue') =>
    data.campaigns.reduce((sum, c) => sum + c[key], 0);
  const sent = total('sent');
  const delivered = total('delivered');
  return {
    kind: 'overview',
    title: `${workspaceName}: campaigns`,
    subtitle: `${data.campaigns.length} campaigns`,
    live: false,
    refresh_seconds: REFRESH_SECONDS,
    currency: 'USD',
    source: data.source,
    generated_at: data.generatedAt,
    tiles: [
      { id: 'campaigns', label: 'Campaigns', kind: 'count', value: data.campaigns.length },
      { id: 'sent', label: 'Sent', kind: 'count', value: sent },
      { id: 'delivered', label: 'Delivered', kind: 'count', value: delivered },
      { id: 'read', label: 'Read', kind: 'count', value: total('read') },
      { id: 'replied', label: 'Replied', kind: 'count', value: total('replied') },
      {
        id: 'delivery_rate',
        label: 'Delivery rate',
        kind: 'rate',
        value: sent > 0 ? delivered / sent : null,
      },
      { id: 'conversions', label: 'Conversions', kind: 'count', value: total('conversions') },
      { id: 'revenue', label: 'Revenue', kind: 'money', value: total('revenue') },
    ],
    campaigns: data.campaigns,
    charts: OVERVIEW_CHARTS.map((id: OverviewChartId) => withCompiled(overviewChart(data, id))),
  };
}
