/**
 * Campaign analytics: the figures users judge campaigns by, computed from the ClickHouse views of
 * sql/clickhouse/0040_analytics.sql so the API, the CLI, dashboards and analysts' SQL agree.
 * Definitions (docs/analytics.md):
 *   attempted = every send attempt; sent = attempts the provider accepted;
 *   delivered / read / replied / failed = final message states (see the message_state view);
 *   delivery rate = delivered / sent; read rate = read / delivered; reply rate = replied / delivered;
 *   failure rate = failed / attempted.
 */

import type { Runtime } from '../runtime.ts';
import { isValidTimeZone } from '../workspaces.ts';
import { listRates, rateFor } from './rates.ts';
import { newcombeDifference } from './stats.ts';

export { deleteRate, listRates, type MessageRate, putRate, type RateInput, rateFor } from './rates.ts';
export { newcombeDifference, wilson } from './stats.ts';

export interface Funnel {
  attempted: number;
  sent: number;
  delivered: number;
  read: number;
  replied: number;
  failed: number;
  delivery_rate: number | null;
  read_rate: number | null;
  reply_rate: number | null;
  failure_rate: number | null;
}

export const DIMENSIONS = ['campaign', 'template', 'sender', 'country', 'day', 'hour'] as const;
export type Dimension = (typeof DIMENSIONS)[number];

export interface MetricsFilter {
  campaignId?: string;
  templateName?: string;
  senderId?: string;
  country?: string;
  /** ISO instants bounding sent_at: from inclusive, to exclusive. */
  from?: string;
  to?: string;
  /** IANA zone for day and hour buckets; UTC by default. */
  timezone?: string;
}

export interface BreakdownRow extends Funnel {
  key: string;
  label: string;
}

export class MetricsError extends Error {}

const ratio = (num: number, den: number) => (den > 0 ? num / den : null);

export function funnelOf(counts: {
  attempted: number;
  sent: number;
  delivered: number;
  read: number;
  replied: number;
  failed: number;
}): Funnel {
  const c = {
    attempted: Number(counts.attempted),
    sent: Number(counts.sent),
    delivered: Number(counts.delivered),
    read: Number(counts.read),
    replied: Number(counts.replied),
    failed: Number(counts.failed),
  };
  return {
    ...c,
    delivery_rate: ratio(c.delivered, c.sent),
    read_rate: ratio(c.read, c.delivered),
    reply_rate: ratio(c.replied, c.delivered),
    failure_rate: ratio(c.failed, c.attempted),
  };
}

const FUNNEL_SQL = `count() AS attempted, sum(is_sent) AS sent, sum(is_delivered) AS delivered,
  sum(is_read) AS read, sum(is_replied) AS replied, sum(is_failed) AS failed`;

function toChTime(iso: string, field: string): string {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) throw new MetricsError(`${field} is not a date-time`);
  return date.toISOString().replace('T', ' ').replace('Z', '');
}

/** WHERE clause and parameters for a filter; only fixed column names reach the SQL text. */
function whereOf(
  workspaceId: string,
  filter: MetricsFilter,
): { where: string; params: Record<string, unknown> } {
  const clauses = ['workspace_id = {ws:String}'];
  const params: Record<string, unknown> = { ws: workspaceId, tz: filter.timezone ?? 'UTC' };
  if (!isValidTimeZone(String(params.tz))) throw new MetricsError(`unknown time zone ${String(params.tz)}`);
  if (filter.campaignId !== undefined) {
    clauses.push('campaign_id = {campaign:String}');
    params.campaign = filter.campaignId;
  }
  if (filter.templateName !== undefined) {
    clauses.push('template_name = {template:String}');
    params.template = filter.templateName;
  }
  if (filter.senderId !== undefined) {
    clauses.push('sender_id = {sender:String}');
    params.sender = filter.senderId;
  }
  if (filter.country !== undefined) {
    clauses.push('country = {country:String}');
    params.country = filter.country;
  }
  if (filter.from !== undefined) {
    clauses.push("sent_at >= {from:DateTime64(3, 'UTC')}");
    params.from = toChTime(filter.from, 'from');
  }
  if (filter.to !== undefined) {
    clauses.push("sent_at < {to:DateTime64(3, 'UTC')}");
    params.to = toChTime(filter.to, 'to');
  }
  return { where: clauses.join(' AND '), params };
}

/**
 * One row per selected send with its message's final state: the `campaign_sends` view's definition
 * (sql/clickhouse/0040_analytics.sql), written so the filters reach both tables before the join
 * (the view cannot push them into its grouped side). test/metrics.test.ts checks both agree.
 */
function sendStates(db: string, where: string, byCampaign: boolean): string {
  const narrow = byCampaign
    ? `AND provider_message_id IN (SELECT provider_message_id FROM ${db}.sends WHERE ${where} AND provider_message_id != '')`
    : '';
  return `(
    SELECT s.campaign_id AS campaign_id, s.campaign_name AS campaign_name, s.template_name AS template_name,
      s.template_category AS template_category, s.sender_id AS sender_id, s.country AS country, s.sent_at AS sent_at,
      toUInt8(s.send_outcome = 'accepted') AS is_sent,
      toUInt8(s.send_outcome = 'accepted' AND (m.has_read OR m.has_replied OR (m.has_delivered AND NOT m.has_failed))) AS is_delivered,
      toUInt8(s.send_outcome = 'accepted' AND (m.has_read OR m.has_replied)) AS is_read,
      toUInt8(s.send_outcome = 'accepted' AND m.has_replied) AS is_replied,
      toUInt8(s.send_outcome = 'failed' OR (s.send_outcome = 'accepted' AND m.has_failed AND NOT m.has_read AND NOT m.has_replied)) AS is_failed,
      if(s.send_outcome = 'failed', s.error_code, if(is_failed, m.failure_code, 0)) AS error_code,
      if(is_read, greatest(0, dateDiff('second', s.sent_at, m.read_at)), NULL) AS seconds_to_read,
      toUInt8(m.provider_message_id = '' OR m.is_billable = 1) AS is_billable,
      m.priced_category AS priced_category
    FROM (
      SELECT provider_message_id, campaign_id, campaign_name, template_name, CAST(template_category AS String) AS template_category,
        CAST(sender_id AS String) AS sender_id, CAST(country AS String) AS country, sent_at,
        CAST(outcome AS String) AS send_outcome, error_code
      FROM ${db}.sends FINAL WHERE ${where}
    ) AS s
    LEFT JOIN (
      SELECT provider_message_id,
        max(status = 'delivered') AS has_delivered, max(status IN ('read', 'played')) AS has_read,
        max(status = 'failed') AS has_failed, max(status = 'replied') AS has_replied,
        minIf(ts, status IN ('read', 'played', 'replied')) AS read_at,
        maxIf(error_code, status = 'failed') AS failure_code,
        anyIf(category, category != '') AS priced_category,
        toUInt8(if(countIf(category != '') = 0, 1, max(billable))) AS is_billable
      FROM (
        SELECT provider_message_id, CAST(status AS String) AS status, ts, error_code,
          CAST(pricing_category AS String) AS category, billable
        FROM ${db}.message_statuses WHERE workspace_id = {ws:String} ${narrow}
      )
      GROUP BY provider_message_id
    ) AS m ON m.provider_message_id = s.provider_message_id
  )`;
}

const DIMENSION_SQL: Record<Dimension, { key: string; label: string }> = {
  campaign: { key: 'campaign_id', label: 'any(campaign_name)' },
  template: { key: 'template_name', label: 'any(template_name)' },
  sender: { key: 'sender_id', label: 'any(sender_id)' },
  country: { key: 'country', label: 'any(country)' },
  day: {
    key: 'toString(toDate(sent_at, {tz:String}))',
    label: 'any(toString(toDate(sent_at, {tz:String})))',
  },
  hour: {
    key: "formatDateTime(toStartOfHour(sent_at, {tz:String}), '%Y-%m-%dT%H:00', {tz:String})",
    label: "any(formatDateTime(toStartOfHour(sent_at, {tz:String}), '%Y-%m-%dT%H:00', {tz:String}))",
  },
};

/** Funnel counts and rates grouped by one dimension (campaign, template, sender, country, day, hour). */
export async function metricsBreakdown(
  runtime: Runtime,
  workspaceId: string,
  by: Dimension,
  filter: MetricsFilter = {},
): Promise<BreakdownRow[]> {
  const dimension = DIMENSION_SQL[by];
  if (!dimension) throw new MetricsError(`unknown dimension ${String(by)}`);
  const { where, params } = whereOf(workspaceId, filter);
  const rows = await runtime.ch.rows<Record<string, number> & { key: string; label: string }>(
    `SELECT ${dimension.key} AS key, ${dimension.label} AS label, ${FUNNEL_SQL}
       FROM ${sendStates(runtime.ch.database, where, filter.campaignId !== undefined)}
      GROUP BY key ORDER BY key`,
    params,
  );
  return rows.map((row) => ({
    key: String(row.key),
    label: String(row.label || row.key),
    ...funnelOf(row as never),
  }));
}

/** The funnel over everything the filter selects. */
export async function funnel(
  runtime: Runtime,
  workspaceId: string,
  filter: MetricsFilter = {},
): Promise<Funnel> {
  const { where, params } = whereOf(workspaceId, filter);
  const rows = await runtime.ch.rows<Record<string, number>>(
    `SELECT ${FUNNEL_SQL} FROM ${sendStates(runtime.ch.database, where, filter.campaignId !== undefined)}`,
    params,
  );
  return funnelOf(rows[0] as never);
}

export interface FailureCount {
  error_code: number;
  failed: number;
}

export async function failuresByCode(
  runtime: Runtime,
  workspaceId: string,
  filter: MetricsFilter = {},
): Promise<FailureCount[]> {
  const { where, params } = whereOf(workspaceId, filter);
  const rows = await runtime.ch.rows<FailureCount>(
    `SELECT error_code, count() AS failed FROM ${sendStates(runtime.ch.database, where, filter.campaignId !== undefined)}
      WHERE is_failed = 1 GROUP BY error_code ORDER BY failed DESC, error_code`,
    params,
  );
  return rows.map((r) => ({ error_code: Number(r.error_code), failed: Number(r.failed) }));
}

export const TIME_TO_READ_BUCKETS = [
  { label: '<1m', upTo: 60 },
  { label: '1-5m', upTo: 300 },
  { label: '5-15m', upTo: 900 },
  { label: '15-60m', upTo: 3600 },
  { label: '1-6h', upTo: 21_600 },
  { label: '6-24h', upTo: 86_400 },
  { label: '>=24h', upTo: Number.POSITIVE_INFINITY },
] as const;

export interface TimeToRead {
  read: number;
  /** Seconds from the send to the first read (or reply), exact quantiles. */
  p50_seconds: number | null;
  p90_seconds: number | null;
  p99_seconds: number | null;
  mean_seconds: number | null;
  buckets: { label: string; count: number }[];
}

export async function timeToRead(
  runtime: Runtime,
  workspaceId: string,
  filter: MetricsFilter = {},
): Promise<TimeToRead> {
  const { where, params } = whereOf(workspaceId, filter);
  const bucketSql = bucketsSql('1');
  const rows = await runtime.ch.rows<Record<string, number | number[] | null>>(
    `SELECT count() AS read, quantilesExact(0.5, 0.9, 0.99)(seconds_to_read) AS q, avg(seconds_to_read) AS mean,
            ${bucketSql}
       FROM ${sendStates(runtime.ch.database, where, filter.campaignId !== undefined)}
      WHERE is_read = 1 AND seconds_to_read IS NOT NULL`,
    params,
  );
  return timeToReadOf(rows[0]!);
}

/** Histogram columns b0..b6 of seconds_to_read among rows where `condition` holds. */
function bucketsSql(condition: string): string {
  let lower = 0;
  return TIME_TO_READ_BUCKETS.map((bucket, i) => {
    const upper = Number.isFinite(bucket.upTo) ? ` AND seconds_to_read < ${bucket.upTo}` : '';
    const sql = `countIf(${condition} AND seconds_to_read >= ${lower}${upper}) AS b${i}`;
    lower = bucket.upTo;
    return sql;
  }).join(', ');
}

function timeToReadOf(row: Record<string, unknown>): TimeToRead {
  const read = Number(row.read);
  const q = (row.q as number[] | null) ?? [];
  return {
    read,
    p50_seconds: read ? Number(q[0]) : null,
    p90_seconds: read ? Number(q[1]) : null,
    p99_seconds: read ? Number(q[2]) : null,
    mean_seconds: read ? Number(row.mean) : null,
    buckets: TIME_TO_READ_BUCKETS.map((bucket, i) => ({ label: bucket.label, count: Number(row[`b${i}`]) })),
  };
}

/**
 * Funnel, failures by code, time to read and the cost groups of a selection in one scan: what a
 * campaign report needs from the sends, read once.
 */
async function reportOf(runtime: Runtime, workspaceId: string, filter: MetricsFilter) {
  const { where, params } = whereOf(workspaceId, filter);
  const readable = 'is_read = 1 AND seconds_to_read IS NOT NULL';
  const rows = await runtime.ch.rows<Record<string, unknown>>(
    `SELECT ${FUNNEL_SQL},
            sumMapIf([error_code], [toUInt64(1)], is_failed = 1) AS failures,
            countIf(${readable}) AS read_measured,
            quantilesExactIf(0.5, 0.9, 0.99)(seconds_to_read, ${readable}) AS q,
            avgIf(seconds_to_read, ${readable}) AS mean,
            ${bucketsSql(readable)},
            sumMapIf([concat(upper(if(template_category != '', template_category, priced_category)), '|', country, '|',
                       toString(toDate(sent_at)))], [toUInt64(1)], is_delivered = 1 AND is_billable = 1) AS cost_groups
       FROM ${sendStates(runtime.ch.database, where, filter.campaignId !== undefined)}`,
    params,
  );
  const row = rows[0]!;
  const [codes = [], counts = []] = (row.failures as [number[], number[]] | null) ?? [];
  const failures = codes
    .map((code, i) => ({ error_code: Number(code), failed: Number(counts[i]) }))
    .sort((a, b) => b.failed - a.failed || a.error_code - b.error_code);
  const [keys = [], ns = []] = (row.cost_groups as [string[], number[]] | null) ?? [];
  const groups = keys.map((key, i) => {
    const [category = '', country = '', day = ''] = key.split('|');
    return { category, country, day, n: Number(ns[i]) };
  });
  return {
    funnel: funnelOf(row as never),
    failures,
    timeToRead: timeToReadOf({ ...row, read: row.read_measured }),
    cost: priceGroups(await listRates(runtime, workspaceId), groups),
  };
}

export interface CampaignGoal {
  event: string;
  window_seconds: number;
  revenue_property: string;
}

/** Records a campaign's conversion goal where the conversions view reads it (campaigns call this). */
export async function setCampaignGoal(
  runtime: Runtime,
  workspaceId: string,
  campaignId: string,
  goal: { event: string; windowSeconds: number; revenueProperty?: string },
): Promise<void> {
  await runtime.ch.insert('campaign_goals', [
    {
      workspace_id: workspaceId,
      campaign_id: campaignId,
      goal_event: goal.event,
      window_seconds: Math.round(goal.windowSeconds),
      revenue_property: goal.revenueProperty ?? 'revenue',
      updated_at: new Date().toISOString(),
    },
  ]);
}

/**
 * Copies the workspace's campaign goals from Postgres (the campaigns table, the authority) to
 * ClickHouse, where the conversions view reads them; only changed goals are written.
 */
export async function syncCampaignGoals(runtime: Runtime, workspaceId?: string): Promise<number> {
  const { rows } = await runtime.pg.query<{
    workspace_id: string;
    id: string;
    goal: { event: string; window_hours: number } | string;
  }>(
    `SELECT workspace_id, id, goal FROM campaigns WHERE goal IS NOT NULL AND ($1::text IS NULL OR workspace_id = $1)`,
    [workspaceId ?? null],
  );
  if (!rows.length) return 0;
  const current = await runtime.ch.rows<{
    workspace_id: string;
    campaign_id: string;
    goal_event: string;
    window_seconds: number;
    revenue_property: string;
  }>(
    `SELECT workspace_id, campaign_id, argMax(goal_event, updated_at) AS goal_event,
            argMax(window_seconds, updated_at) AS window_seconds,
            argMax(revenue_property, updated_at) AS revenue_property
       FROM ${runtime.ch.database}.campaign_goals
      WHERE campaign_id IN {ids:Array(String)} GROUP BY workspace_id, campaign_id`,
    { ids: rows.map((r) => r.id) },
  );
  const known = new Map(current.map((c) => [`${c.workspace_id}/${c.campaign_id}`, c]));
  let written = 0;
  for (const row of rows) {
    const goal =
      typeof row.goal === 'string'
        ? (JSON.parse(row.goal) as { event: string; window_hours: number })
        : row.goal;
    if (!goal?.event || !(goal.window_hours > 0)) continue;
    const windowSeconds = Math.round(goal.window_hours * 3600);
    const had = known.get(`${row.workspace_id}/${row.id}`);
    if (had && had.goal_event === goal.event && Number(had.window_seconds) === windowSeconds) continue;
    await setCampaignGoal(runtime, row.workspace_id, row.id, {
      event: goal.event,
      windowSeconds,
      revenueProperty: had?.revenue_property || 'revenue',
    });
    written++;
  }
  return written;
}

export async function campaignGoal(
  runtime: Runtime,
  workspaceId: string,
  campaignId: string,
): Promise<CampaignGoal | undefined> {
  const rows = await runtime.ch.rows<CampaignGoal>(
    `SELECT argMax(goal_event, updated_at) AS event, argMax(window_seconds, updated_at) AS window_seconds,
            argMax(revenue_property, updated_at) AS revenue_property
       FROM ${runtime.ch.database}.campaign_goals
      WHERE workspace_id = {ws:String} AND campaign_id = {campaign:String}
      GROUP BY campaign_id`,
    { ws: workspaceId, campaign: campaignId },
  );
  const row = rows[0];
  return row ? { ...row, window_seconds: Number(row.window_seconds) } : undefined;
}

export interface Conversions {
  conversions: number;
  converters: number;
  revenue: number;
}

/** Goal events credited to the campaign by last touch (the conversions view). */
export async function campaignConversions(
  runtime: Runtime,
  workspaceId: string,
  campaignId: string,
): Promise<Conversions> {
  const goal = await campaignGoal(runtime, workspaceId, campaignId);
  if (!goal) return { conversions: 0, converters: 0, revenue: 0 };
  const db = runtime.ch.database;
  // The `conversions` view's rule, narrowed before the join to this campaign's contacts and to events
  // that can fall in its windows; competing touches are every campaign with the same goal event.
  const rows = await runtime.ch.rows<Record<string, number>>(
    `WITH
       goals AS (
         SELECT campaign_id, argMax(goal_event, updated_at) AS goal_event,
           argMax(window_seconds, updated_at) AS window_seconds, argMax(revenue_property, updated_at) AS revenue_property
         FROM ${db}.campaign_goals WHERE workspace_id = {ws:String} GROUP BY campaign_id),
       mine AS (
         SELECT contact_id, sent_at FROM ${db}.sends
          WHERE workspace_id = {ws:String} AND campaign_id = {campaign:String} AND outcome = 'accepted'),
       candidates AS (
         SELECT contact_id, ts, event_id, any(properties) AS properties FROM ${db}.events
          WHERE workspace_id = {ws:String} AND name = {goal:String}
            AND ts >= (SELECT min(sent_at) FROM mine)
            AND ts <= (SELECT max(sent_at) FROM mine) + toIntervalSecond({window:UInt32})
            AND contact_id IN (SELECT contact_id FROM mine)
          GROUP BY contact_id, ts, event_id)
     SELECT count() AS conversions, uniqExact(e.contact_id) AS converters,
            sum(JSONExtractFloat(e.properties, t.revenue_property)) AS revenue
       FROM candidates AS e
       ASOF INNER JOIN (
         SELECT s.contact_id AS contact_id, s.sent_at AS sent_at, s.campaign_id AS campaign_id,
                g.window_seconds AS window_seconds, g.revenue_property AS revenue_property
           FROM ${db}.sends AS s FINAL
           INNER JOIN goals AS g ON g.campaign_id = s.campaign_id
          WHERE s.workspace_id = {ws:String} AND s.outcome = 'accepted' AND g.goal_event = {goal:String}
            AND s.contact_id IN (SELECT contact_id FROM candidates)) AS t
         ON e.contact_id = t.contact_id AND e.ts >= t.sent_at
      WHERE t.campaign_id = {campaign:String} AND e.ts <= t.sent_at + toIntervalSecond(t.window_seconds)`,
    { ws: workspaceId, campaign: campaignId, goal: goal.event, window: goal.window_seconds },
  );
  const row = rows[0]!;
  return {
    conversions: Number(row.conversions),
    converters: Number(row.converters),
    revenue: Number(row.revenue),
  };
}

export interface Cost {
  amount: number;
  /** The rates' currency; 'MIXED' when rates in several currencies applied (ROI is then null). */
  currency: string;
  billable_messages: number;
  /** Billable messages no rate matched (counted at zero). */
  unpriced_messages: number;
}

/**
 * Provider cost: every delivered message the provider did not report as free, at the rate for its
 * template category and recipient country on the day it was sent.
 */
export async function campaignCost(
  runtime: Runtime,
  workspaceId: string,
  filter: MetricsFilter,
): Promise<Cost> {
  const { where, params } = whereOf(workspaceId, filter);
  const groups = await runtime.ch.rows<{ category: string; country: string; day: string; n: number }>(
    `SELECT upper(if(template_category != '', template_category, priced_category)) AS category, country,
            toString(toDate(sent_at)) AS day, count() AS n
       FROM ${sendStates(runtime.ch.database, where, filter.campaignId !== undefined)}
      WHERE is_delivered = 1 AND is_billable = 1
      GROUP BY category, country, day`,
    params,
  );
  return priceGroups(await listRates(runtime, workspaceId), groups);
}

type CostGroup = { category: string; country: string; day: string; n: number };

function priceGroups(rates: Awaited<ReturnType<typeof listRates>>, groups: readonly CostGroup[]): Cost {
  const cost: Cost = { amount: 0, currency: '', billable_messages: 0, unpriced_messages: 0 };
  const currencies = new Set<string>();
  for (const group of groups) {
    const n = Number(group.n);
    cost.billable_messages += n;
    const rate = rateFor(rates, group.category, group.country, group.day);
    if (!rate) {
      cost.unpriced_messages += n;
      continue;
    }
    currencies.add(rate.currency);
    cost.amount += n * rate.price;
  }
  cost.amount = Math.round(cost.amount * 1e6) / 1e6;
  cost.currency = currencies.size > 1 ? 'MIXED' : ([...currencies][0] ?? 'USD');
  return cost;
}

export interface HoldoutLift {
  goal_event: string;
  window_seconds: number;
  treated: { contacts: number; converted: number; rate: number | null };
  holdout: { contacts: number; converted: number; rate: number | null };
  /** treated rate − holdout rate, in proportion points. */
  lift: number | null;
  /** 95 % Newcombe hybrid score interval for the difference. */
  ci_low: number | null;
  ci_high: number | null;
  /** lift / holdout rate. */
  relative_lift: number | null;
  method: 'newcombe-hybrid-score-95';
}

/**
 * Intent-to-treat lift: every audience contact counts in its arm (holdout flag), converted when it
 * did the goal event within [launched_at, launched_at + window], whether or not it was messaged.
 */
export async function holdoutLift(
  runtime: Runtime,
  workspaceId: string,
  campaignId: string,
  goal: CampaignGoal,
): Promise<HoldoutLift> {
  const db = runtime.ch.database;
  const rows = await runtime.ch.rows<{ holdout: number; contacts: number; converted: number }>(
    `WITH audience AS (
        SELECT contact_id, holdout, launched_at FROM ${db}.campaign_audience FINAL
         WHERE workspace_id = {ws:String} AND campaign_id = {campaign:String})
     SELECT holdout, count() AS contacts, sum(converted) AS converted FROM (
       SELECT a.contact_id AS contact_id, any(a.holdout) AS holdout,
              max(e.contact_id != '' AND e.ts >= a.launched_at
                  AND e.ts <= a.launched_at + toIntervalSecond({window:UInt32})) AS converted
         FROM audience AS a
         LEFT JOIN (
           SELECT DISTINCT contact_id, ts FROM ${db}.events
            WHERE workspace_id = {ws:String} AND name = {goal:String}
              AND contact_id IN (SELECT contact_id FROM audience)) AS e
           ON e.contact_id = a.contact_id
        GROUP BY a.contact_id)
     GROUP BY holdout`,
    { ws: workspaceId, campaign: campaignId, goal: goal.event, window: goal.window_seconds },
  );
  const arm = (flag: number) => {
    const row = rows.find((r) => Number(r.holdout) === flag);
    const contacts = Number(row?.contacts ?? 0);
    const converted = Number(row?.converted ?? 0);
    return { contacts, converted, rate: ratio(converted, contacts) };
  };
  const treated = arm(0);
  const holdout = arm(1);
  const computable = treated.contacts > 0 && holdout.contacts > 0;
  const ci = computable
    ? newcombeDifference(treated.converted, treated.contacts, holdout.converted, holdout.contacts)
    : undefined;
  const lift = computable ? treated.rate! - holdout.rate! : null;
  return {
    goal_event: goal.event,
    window_seconds: goal.window_seconds,
    treated,
    holdout,
    lift,
    ci_low: ci?.low ?? null,
    ci_high: ci?.high ?? null,
    relative_lift: computable && holdout.rate ? lift! / holdout.rate : null,
    method: 'newcombe-hybrid-score-95',
  };
}

export interface CampaignMetrics extends Funnel {
  campaign_id: string;
  failures_by_code: FailureCount[];
  time_to_read: TimeToRead;
  goal: CampaignGoal | null;
  conversions: Conversions | null;
  conversion_rate: number | null;
  cost: Cost;
  /** (revenue − cost) / cost; null without cost, revenue or a single currency. */
  roi: number | null;
  holdout: HoldoutLift | null;
}

/** Everything a campaign report shows; the dashboards chart exactly these figures. */
export async function campaignMetrics(
  runtime: Runtime,
  workspaceId: string,
  campaignId: string,
): Promise<CampaignMetrics> {
  const filter = { campaignId };
  await syncCampaignGoals(runtime, workspaceId);
  const [{ funnel: base, failures, timeToRead: ttr, cost }, goal] = await Promise.all([
    reportOf(runtime, workspaceId, filter),
    campaignGoal(runtime, workspaceId, campaignId),
  ]);
  const conversions = goal ? await campaignConversions(runtime, workspaceId, campaignId) : null;
  const holdout = goal ? await holdoutLift(runtime, workspaceId, campaignId, goal) : null;
  const roi =
    conversions && cost.amount > 0 && cost.currency !== 'MIXED'
      ? (conversions.revenue - cost.amount) / cost.amount
      : null;
  return {
    campaign_id: campaignId,
    ...base,
    failures_by_code: failures,
    time_to_read: ttr,
    goal: goal ?? null,
    conversions,
    conversion_rate: conversions ? ratio(conversions.converters, base.sent) : null,
    cost,
    roi,
    holdout: holdout && (holdout.treated.contacts || holdout.holdout.contacts) ? holdout : null,
  };
}
