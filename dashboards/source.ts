import { DEFAULTS as DISPATCH_DEFAULTS, loadSender } from '../engine/campaigns/dispatch.ts';
import { auditLog, getCampaign, listCampaigns } from '../engine/campaigns/model.ts';
import type { Campaign } from '../engine/campaigns/types.ts';
import {
  type BreakdownRow,
  type CampaignMetrics,
  campaignMetrics,
  listRates,
  metricsBreakdown,
  rateFor,
  wilson as wilsonInterval,
} from '../engine/metrics/index.ts';
import type { Runtime } from '../engine/runtime.ts';
import type {
  CampaignDashboardData,
  CampaignSummaryRow,
  GroupCounts,
  HourOfWeekCell,
  OverviewDashboardData,
  PauseSpan,
  TimeBucket,
} from './model.ts';

/**
 * Dashboard figures from engine/metrics. Every number the page shows (funnel, rates, failures, time
 * to read, conversions, cost, ROI, holdout lift) is copied from campaignMetrics() and the metrics
 * breakdowns, so it equals the metrics API. What metrics does not group (hour of week with the send-time
 * model's choices, conversions and cost per country, template and day, the sending rate) is read from
 * the same analytics views (campaign_sends, conversions) with the same definitions.
 */
export interface SourceOptions {
  /** IANA zone for hours, days and the hour-of-week grid; the workspace zone by default. */
  timezone?: string;
  /** Throttle view bucket width in seconds. */
  throttleIntervalSeconds?: number;
}

const num = (value: unknown): number => (value === null || value === undefined ? 0 : Number(value));

/** ClickHouse DateTime64 text ('YYYY-MM-DD hh:mm:ss.sss', UTC) to ISO. */
export function isoFromClickHouse(value: string | null | undefined): string | null {
  if (!value || value.startsWith('1970-01-01')) return null;
  return `${value.replace(' ', 'T')}${value.includes('.') ? '' : '.000'}Z`;
}

const NICE_INTERVALS = [10, 30, 60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 86_400];
const MAX_THROTTLE_POINTS = 400;

/** The smallest round bucket that keeps the sending-rate line under 400 points. */
export function throttleInterval(spanSeconds: number): number {
  return NICE_INTERVALS.find((s) => spanSeconds / s <= MAX_THROTTLE_POINTS) ?? 86_400;
}

async function workspaceTimezone(runtime: Runtime, workspaceId: string): Promise<string> {
  const { rows } = await runtime.pg.query<{ timezone: string }>(
    'SELECT timezone FROM workspaces WHERE id = $1',
    [workspaceId],
  );
  return rows[0]?.timezone ?? 'UTC';
}

/** Metrics buckets are wall-clock keys in the zone ('2026-11-02T09:00', '2026-11-02'); charts read them as UTC. */
function bucketOf(row: BreakdownRow, unit: 'hour' | 'day'): TimeBucket {
  const bucket = unit === 'hour' ? `${row.key}:00.000Z` : `${row.key}T00:00:00.000Z`;
  return {
    bucket,
    sent: row.sent,
    delivered: row.delivered,
    read: row.read,
    replied: row.replied,
    failed: row.failed,
  };
}

/** Pauses from the campaign's audit log: each move to 'paused' until the next move out of it. */
export function pausesFrom(
  log: { to_state: string | null; from_state: string | null; reason: string | null; at: string }[],
): PauseSpan[] {
  const spans: PauseSpan[] = [];
  let open: PauseSpan | undefined;
  for (const entry of log) {
    if (entry.to_state === 'paused' && !open) {
      open = { start: entry.at, end: null, reason: entry.reason ?? 'paused' };
      spans.push(open);
    } else if (open && entry.from_state === 'paused' && entry.to_state !== 'paused') {
      open.end = entry.at;
      open = undefined;
    }
  }
  return spans;
}

export async function loadCampaign(
  runtime: Runtime,
  workspaceId: string,
  campaignId: string,
  options: SourceOptions = {},
): Promise<CampaignDashboardData | undefined> {
  const { ch } = runtime;
  const db = ch.database;
  const tz = options.timezone ?? (await workspaceTimezone(runtime, workspaceId));
  const campaign = await getCampaign(runtime.pg, workspaceId, campaignId);
  const [span] = await ch.rows<{ seconds: string }>(
    `SELECT dateDiff('second', min(sent_at), max(sent_at)) AS seconds FROM ${db}.sends
     WHERE workspace_id = {w:String} AND campaign_id = {c:String}`,
    { w: workspaceId, c: campaignId },
  );
  const interval = options.throttleIntervalSeconds ?? throttleInterval(num(span?.seconds));
  const params = { w: workspaceId, c: campaignId, tz, iv: interval };
  const filter = { campaignId, timezone: tz };

  const [metrics, hourly, daily, countries, templates] = await Promise.all([
    campaignMetrics(runtime, workspaceId, campaignId),
    metricsBreakdown(runtime, workspaceId, 'hour', filter),
    metricsBreakdown(runtime, workspaceId, 'day', filter),
    metricsBreakdown(runtime, workspaceId, 'country', filter),
    metricsBreakdown(runtime, workspaceId, 'template', filter),
  ]);
  const [audience] = await ch.rows<Record<string, string>>(
    `SELECT count() AS audience, countIf(holdout = 1) AS holdout, toString(min(launched_at)) AS launched_at
     FROM ${db}.campaign_audience FINAL WHERE workspace_id = {w:String} AND campaign_id = {c:String}`,
    params,
  );
  if (!campaign && metrics.attempted === 0 && num(audience?.audience) === 0) return undefined;

  const [head] = await ch.rows<Record<string, string>>(
    `SELECT any(campaign_name) AS name, toString(min(sent_at)) AS first_send, toString(max(sent_at)) AS last_send
     FROM ${db}.sends WHERE workspace_id = {w:String} AND campaign_id = {c:String}`,
    params,
  );
  // Hour of week in the workspace zone; chosen / explored from the send-time model's bookkeeping.
  const howRows = await ch.rows<Record<string, string>>(
    `SELECT toDayOfWeek(cs.sent_at, 0, {tz:String}) AS dow, toHour(cs.sent_at, {tz:String}) AS hour,
            count() AS sent, sum(cs.is_read) AS read, sum(cs.is_replied) AS replied,
            countIf(s.exploration = 0) AS chosen, countIf(s.exploration = 1) AS explored
     FROM ${db}.campaign_sends AS cs
     INNER JOIN (SELECT send_id, exploration FROM ${db}.sends FINAL
                 WHERE workspace_id = {w:String} AND campaign_id = {c:String}) AS s ON s.send_id = cs.send_id
     WHERE cs.workspace_id = {w:String} AND cs.campaign_id = {c:String}
     GROUP BY dow, hour ORDER BY dow, hour`,
    params,
  );
  // Conversions per country, template and day, credited exactly as the conversions view credits them.
  const conversionGroups = metrics.goal
    ? await ch.rows<Record<string, string>>(
        `SELECT cs.country AS country, cs.template_name AS template, toString(toDate(cv.converted_at, {tz:String})) AS day,
                count() AS conversions, toFloat64(sum(toDecimal128(cv.revenue, 6))) AS revenue
         FROM ${db}.conversions AS cv
         INNER JOIN (SELECT send_id, country, template_name FROM ${db}.campaign_sends
                     WHERE workspace_id = {w:String} AND campaign_id = {c:String}) AS cs ON cs.send_id = cv.send_id
         WHERE cv.workspace_id = {w:String} AND cv.campaign_id = {c:String}
         GROUP BY country, template, day`,
        params,
      )
    : [];
  // Cost per country, template and day with the rates campaignCost uses (same groups, same rate lookup).
  const costGroups = await ch.rows<{
    category: string;
    country: string;
    template: string;
    day: string;
    rate_day: string;
    n: string;
  }>(
    `SELECT upper(if(template_category != '', template_category, priced_category)) AS category, country,
            template_name AS template, toString(toDate(sent_at, {tz:String})) AS day,
            toString(toDate(sent_at)) AS rate_day, count() AS n
     FROM ${db}.campaign_sends
     WHERE workspace_id = {w:String} AND campaign_id = {c:String} AND is_delivered = 1 AND is_billable = 1
     GROUP BY category, country, template, day, rate_day`,
    params,
  );
  const rates = await listRates(runtime, workspaceId);
  const throttleRows = await ch.rows<Record<string, string>>(
    `SELECT toString(toStartOfInterval(sent_at, toIntervalSecond({iv:UInt32}))) AS ts, count() AS n
     FROM ${db}.sends FINAL WHERE workspace_id = {w:String} AND campaign_id = {c:String}
     GROUP BY ts ORDER BY ts`,
    params,
  );
  const sender = campaign?.sender_id ? await loadSender(runtime.pg, campaign.sender_id) : undefined;
  const limit = sender ? sender.throughput_mps * DISPATCH_DEFAULTS.headroom : null;
  const pauses = campaign ? pausesFrom(await auditLog(runtime.pg, workspaceId, campaignId)) : [];

  const groupConversions = (key: 'country' | 'template', value: string) => {
    let conversions = 0;
    let revenue = 0;
    for (const row of conversionGroups) {
      if (row[key] !== value) continue;
      conversions += num(row.conversions);
      revenue += num(row.revenue);
    }
    return { conversions, revenue };
  };
  const costOf = (match: (group: (typeof costGroups)[number]) => boolean) => {
    let amount = 0;
    for (const group of costGroups) {
      if (!match(group)) continue;
      const rate = rateFor(rates, group.category, group.country, group.rate_day);
      if (rate) amount += num(group.n) * rate.price;
    }
    return amount;
  };
  const group = (row: BreakdownRow, key: 'country' | 'template'): GroupCounts => ({
    key: row.key,
    sent: row.sent,
    delivered: row.delivered,
    read: row.read,
    replied: row.replied,
    failed: row.failed,
    ...groupConversions(key, row.key),
    cost: costOf((g) => g[key] === row.key),
  });
  const days = new Set([...conversionGroups.map((r) => r.day!), ...costGroups.map((g) => g.day)]);
  const byDay = [...days].sort().map((day) => {
    let conversions = 0;
    let revenue = 0;
    for (const row of conversionGroups) {
      if (row.day !== day) continue;
      conversions += num(row.conversions);
      revenue += num(row.revenue);
    }
    return { day, conversions, revenue, cost: costOf((g) => g.day === day) };
  });

  return {
    workspaceId,
    timezone: tz,
    campaign: {
      id: campaignId,
      name: campaign?.name ?? (head?.name || campaignId),
      status: campaign?.state ?? '',
      launchedAt:
        campaign?.launched_at ??
        isoFromClickHouse(audience?.launched_at) ??
        isoFromClickHouse(head?.first_send),
      lastSendAt: isoFromClickHouse(head?.last_send),
    },
    funnel: {
      audience: num(audience?.audience),
      holdout: num(audience?.holdout),
      attempted: metrics.attempted,
      sent: metrics.sent,
      delivered: metrics.delivered,
      read: metrics.read,
      replied: metrics.replied,
      failed: metrics.failed,
      delivery_rate: metrics.delivery_rate,
      read_rate: metrics.read_rate,
      reply_rate: metrics.reply_rate,
      failure_rate: metrics.failure_rate,
    },
    failures: metrics.failures_by_code.map((f) => ({ code: f.error_code, count: f.failed })),
    hourly: hourly.map((r) => bucketOf(r, 'hour')),
    daily: daily.map((r) => bucketOf(r, 'day')),
    timeToRead: {
      buckets: metrics.time_to_read.buckets.map((b, order) => ({ label: b.label, order, count: b.count })),
      medianSeconds: metrics.time_to_read.p50_seconds,
      p90Seconds: metrics.time_to_read.p90_seconds,
      p99Seconds: metrics.time_to_read.p99_seconds,
    },
    hourOfWeek: howRows.map(
      (r): HourOfWeekCell => ({
        dow: num(r.dow),
        hour: num(r.hour),
        sent: num(r.sent),
        read: num(r.read),
        replied: num(r.replied),
        chosen: num(r.chosen),
        explored: num(r.explored),
      }),
    ),
    countries: countries.map((r) => group(r, 'country')),
    templates: templates.map((r) => group(r, 'template')),
    conversions: conversionSummary(metrics, byDay),
    holdout: holdoutOf(metrics),
    throttle: {
      intervalSeconds: interval,
      points: throttleRows.map((r) => ({
        ts: isoFromClickHouse(r.ts) ?? String(r.ts),
        rate: num(r.n) / interval,
        limit,
      })),
      pauses,
    },
    source: 'engine/metrics',
    generatedAt: new Date().toISOString(),
  };
}

function conversionSummary(
  metrics: CampaignMetrics,
  byDay: CampaignDashboardData['conversions']['byDay'],
): CampaignDashboardData['conversions'] {
  return {
    event: metrics.goal?.event ?? '',
    windowHours: metrics.goal ? metrics.goal.window_seconds / 3600 : 0,
    rate: metrics.conversion_rate,
    conversions: metrics.conversions?.conversions ?? 0,
    converters: metrics.conversions?.converters ?? 0,
    revenue: metrics.conversions?.revenue ?? 0,
    cost: metrics.cost.amount,
    currency: metrics.cost.currency,
    roi: metrics.roi,
    unpricedMessages: metrics.cost.unpriced_messages,
    byDay,
  };
}

function holdoutOf(metrics: CampaignMetrics): CampaignDashboardData['holdout'] {
  const h = metrics.holdout;
  if (!h) return { groups: [], lift: null, liftCiLow: null, liftCiHigh: null, relativeLift: null };
  const arm = (
    group: 'treatment' | 'holdout',
    a: { contacts: number; converted: number; rate: number | null },
  ) => {
    const ci = wilsonInterval(a.converted, a.contacts);
    return {
      group,
      contacts: a.contacts,
      converters: a.converted,
      rate: a.rate ?? 0,
      ciLow: ci.low,
      ciHigh: ci.high,
    };
  };
  return {
    groups: [arm('treatment', h.treated), arm('holdout', h.holdout)],
    lift: h.lift,
    liftCiLow: h.ci_low,
    liftCiHigh: h.ci_high,
    relativeLift: h.relative_lift,
  };
}

export async function loadOverview(
  runtime: Runtime,
  workspaceId: string,
  options: SourceOptions = {},
): Promise<OverviewDashboardData> {
  const tz = options.timezone ?? (await workspaceTimezone(runtime, workspaceId));
  const [byCampaign, daily, campaigns] = await Promise.all([
    metricsBreakdown(runtime, workspaceId, 'campaign', { timezone: tz }),
    metricsBreakdown(runtime, workspaceId, 'day', { timezone: tz }),
    listCampaigns(runtime.pg, workspaceId).catch(() => [] as Campaign[]),
  ]);
  const known = new Map((Array.isArray(campaigns) ? campaigns : []).map((c) => [c.id, c]));
  const conversions = await runtime.ch.rows<{ campaign_id: string; conversions: string; revenue: string }>(
    `SELECT campaign_id, count() AS conversions, toFloat64(sum(toDecimal128(revenue, 6))) AS revenue FROM ${runtime.ch.database}.conversions
     WHERE workspace_id = {w:String} GROUP BY campaign_id`,
    { w: workspaceId },
  );
  const rows: CampaignSummaryRow[] = byCampaign
    .filter((r) => r.key !== '')
    .map((r) => {
      const campaign = known.get(r.key);
      const conv = conversions.find((c) => c.campaign_id === r.key);
      return {
        id: r.key,
        name: campaign?.name ?? r.label,
        status: campaign?.state ?? '',
        launchedAt: campaign?.launched_at ?? null,
        sent: r.sent,
        delivered: r.delivered,
        read: r.read,
        replied: r.replied,
        failed: r.failed,
        conversions: num(conv?.conversions),
        revenue: num(conv?.revenue),
      };
    })
    .sort((a, b) => (b.launchedAt ?? '').localeCompare(a.launchedAt ?? '') || a.id.localeCompare(b.id));
  return {
    workspaceId,
    campaigns: rows,
    daily: daily.map((r) => bucketOf(r, 'day')),
    source: 'engine/metrics',
    generatedAt: new Date().toISOString(),
  };
}
