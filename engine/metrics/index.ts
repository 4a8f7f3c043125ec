/**
 * Campaign analytics: the figures users judge campaigns by, computed from the ClickHouse views of
 * sql/clickhouse/0040_analytics.sql so the API, the CLI, dashboards and analysts' SQL agree.
 * Definitions (docs/analytics.md):
 *   attempted = every send attempt; sent = attempts the provider accepted;
 *   delivered / read / replied / failed = final message states (see the message_state view);
 *   delivery rate = delivered / sent; read rate = read / delivered; reply rate = replied / delivered;
 *   failure rate = failed / attempted.
 */

import type { Goal } from '../campaigns/types.ts';
import type { Runtime } from '../runtime.ts';
import { isValidTimeZone } from '../workspaces.ts';
import { listRates, rateFor } from './rates.ts';
import { newcombeDifference } from './stats.ts';

export { deleteRate, listRates, type MessageRate, putRate, type RateInput, rateFor } from './rates.ts';
export { repairMessageRollup } from './rollup.ts';
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

/** A status flag or first time of the message: its rollup row's, or from statuses still waiting. */
const either = (column: string) => `greatest(r.${column}, u.${column})`;
const earliest = (column: string) =>
  `if(u.${column} IS NULL, r.${column}, if(r.${column} IS NULL, u.${column}, least(r.${column}, u.${column})))`;

/**
 * One row per selected send with its message's final state: the `campaign_sends` view's definition
 * (sql/clickhouse/0040_analytics.sql) read from the pre-aggregated `message_rollup`
 * (0045_message_rollup.sql) with FINAL, about one row per message, plus statuses stored before their
 * send and not yet filed under it (`message_rollup_unmatched`, normally empty). The filters apply to
 * the merged send attributes. test/metrics.test.ts checks this and the views agree.
 */
function sendStates(db: string, where: string, byCampaign: boolean): string {
  const campaign = byCampaign ? 'AND campaign_id = {campaign:String}' : '';
  return `(
    SELECT workspace_id, campaign_id, campaign_name, template_name, template_category, sender_id, country, sent_at,
      toUInt8(accepted) AS is_sent,
      toUInt8(accepted AND (has_read OR has_replied OR (has_delivered AND NOT has_failed))) AS is_delivered,
      toUInt8(accepted AND (has_read OR has_replied)) AS is_read,
      toUInt8(accepted AND has_replied) AS is_replied,
      toUInt8(NOT accepted OR (has_failed AND NOT has_read AND NOT has_replied)) AS is_failed,
      if(NOT accepted, send_error_code, if(is_failed, failure_code, 0)) AS error_code,
      if(is_read AND read_at IS NOT NULL, greatest(0, dateDiff('second', sent_at, read_at)), NULL) AS seconds_to_read,
      toUInt8(NOT has_pricing OR billable) AS is_billable,
      priced_category
    FROM (
      SELECT {ws:String} AS workspace_id, r.campaign_id AS campaign_id, r.campaign_name AS campaign_name,
        r.template_name AS template_name, r.template_category AS template_category, r.sender_id AS sender_id,
        r.country AS country, r.sent_at AS sent_at, r.accepted AS accepted, r.send_error_code AS send_error_code,
        ${either('has_delivered')} AS has_delivered, ${either('has_read')} AS has_read,
        ${either('has_failed')} AS has_failed, ${either('has_replied')} AS has_replied,
        ${earliest('read_at')} AS read_at, ${either('failure_code')} AS failure_code,
        ${either('priced_category')} AS priced_category, ${either('has_pricing')} AS has_pricing,
        ${either('billable')} AS billable
      FROM (
        SELECT message_key, campaign_id, campaign_name, template_name, template_category, sender_id, country, sent_at,
          accepted, send_error_code, has_delivered, has_read, has_failed, has_replied, read_at, failure_code,
          priced_category, has_pricing, billable
        FROM ${db}.message_rollup FINAL
        WHERE workspace_id = {ws:String} ${campaign} AND has_send = 1
      ) AS r
      LEFT JOIN (
        SELECT message_key, max(has_delivered) AS has_delivered, max(has_read) AS has_read,
          max(has_failed) AS has_failed, max(has_replied) AS has_replied, min(read_at) AS read_at,
          max(failure_code) AS failure_code, max(priced_category) AS priced_category,
          max(has_pricing) AS has_pricing, max(billable) AS billable
        FROM ${db}.message_rollup_unmatched WHERE workspace_id = {ws:String}
        GROUP BY message_key
      ) AS u ON u.message_key = r.message_key
      SETTINGS join_use_nulls = 0
    )
    WHERE ${where}
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
 * Funnel, failures by code and time to read of a selection in one scan, and its cost alongside (a
 * grouping by stored low-cardinality columns, cheaper than building a key per send in that scan).
 */
async function reportOf(runtime: Runtime, workspaceId: string, filter: MetricsFilter) {
  const { where, params } = whereOf(workspaceId, filter);
  const readable = 'is_read = 1 AND seconds_to_read IS NOT NULL';
  const cost = campaignCost(runtime, workspaceId, filter);
  const rows = await runtime.ch.rows<Record<string, unknown>>(
    `SELECT ${FUNNEL_SQL},
            sumMapIf([error_code], [toUInt64(1)], is_failed = 1) AS failures,
            countIf(${readable}) AS read_measured,
            quantilesExactIf(0.5, 0.9, 0.99)(seconds_to_read, ${readable}) AS q,
            avgIf(seconds_to_read, ${readable}) AS mean,
            ${bucketsSql(readable)}
       FROM ${sendStates(runtime.ch.database, where, filter.campaignId !== undefined)}`,
    params,
  );
  const row = rows[0]!;
  const [codes = [], counts = []] = (row.failures as [number[], number[]] | null) ?? [];
  const failures = codes
    .map((code, i) => ({ error_code: Number(code), failed: Number(counts[i]) }))
    .sort((a, b) => b.failed - a.failed || a.error_code - b.error_code);
  return {
    funnel: funnelOf(row as never),
    failures,
    timeToRead: timeToReadOf({ ...row, read: row.read_measured }),
    cost: await cost,
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
    goal: Goal | string;
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
    const goal = typeof row.goal === 'string' ? (JSON.parse(row.goal) as Goal) : row.goal;
    if (!goal?.event || !(goal.window_hours > 0)) continue;
    const windowSeconds = Math.round(goal.window_hours * 3600);
    const revenueProperty = goal.revenue_property || 'revenue';
    const had = known.get(`${row.workspace_id}/${row.id}`);
    if (
      had &&
      had.goal_event === goal.event &&
      Number(had.window_seconds) === windowSeconds &&
      had.revenue_property === revenueProperty
    )
      continue;
    await setCampaignGoal(runtime, row.workspace_id, row.id, {
      event: goal.event,
      windowSeconds,
      revenueProperty,
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
  knownGoal?: CampaignGoal,
): Promise<Conversions> {
  const goal = knownGoal ?? (await campaignGoal(runtime, workspaceId, campaignId));
  if (!goal) return { conversions: 0, converters: 0, revenue: 0 };
  const db = runtime.ch.database;
  // The `conversions` view's rule, narrowed before the join: goal events that can fall in this
  // campaign's windows, against their contacts' touches (`contact_touches`, keyed by a hash of the contact) by
  // every campaign with the same goal event; an event whose latest touch is not this campaign's, or
  // whose contact it never sent to, drops out of the ASOF join's filter.
  const rows = await runtime.ch.rows<Record<string, number>>(
    `WITH
       (SELECT (min(sent_at), max(sent_at)) FROM ${db}.sends
         WHERE workspace_id = {ws:String} AND campaign_id = {campaign:String} AND outcome = 'accepted') AS span,
       goals AS (
         SELECT campaign_id, argMax(goal_event, updated_at) AS goal_event,
           argMax(window_seconds, updated_at) AS window_seconds, argMax(revenue_property, updated_at) AS revenue_property
         FROM ${db}.campaign_goals WHERE workspace_id = {ws:String} GROUP BY campaign_id),
       candidates AS (
         SELECT cityHash64(contact_id) AS contact_key, contact_id, ts, event_id, any(properties) AS properties
           FROM ${db}.events
          WHERE workspace_id = {ws:String} AND name = {goal:String}
            AND ts >= tupleElement(span, 1) AND ts <= tupleElement(span, 2) + toIntervalSecond({window:UInt32})
          GROUP BY contact_id, ts, event_id)
     SELECT count() AS conversions, uniqExact(e.contact_id) AS converters,
            -- Summed as decimals: a float sum's result depends on the order parallel threads add in.
            toFloat64(sum(toDecimal128(JSONExtractFloat(e.properties, t.revenue_property), 6))) AS revenue
       FROM candidates AS e
       ASOF INNER JOIN (
         SELECT t.contact_key AS contact_key, t.sent_at AS sent_at, CAST(t.campaign_id AS String) AS campaign_id,
                g.window_seconds AS window_seconds, g.revenue_property AS revenue_property
           FROM ${db}.contact_touches AS t
           INNER JOIN goals AS g ON g.campaign_id = t.campaign_id
          WHERE t.workspace_id = {ws:String} AND g.goal_event = {goal:String}
            AND t.contact_key IN (SELECT contact_key FROM candidates)) AS t
         ON e.contact_key = t.contact_key AND e.ts >= t.sent_at
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
  // Grouped by the stored columns (cheap on low-cardinality values); the category is chosen per group.
  const stored = await runtime.ch.rows<{
    template_category: string;
    priced_category: string;
    country: string;
    day: string;
    n: number;
  }>(
    `SELECT template_category, priced_category, country, toString(toDate(sent_at)) AS day, count() AS n
       FROM ${sendStates(runtime.ch.database, where, filter.campaignId !== undefined)}
      WHERE is_delivered = 1 AND is_billable = 1
      GROUP BY template_category, priced_category, country, day`,
    params,
  );
  const groups = stored.map((g) => ({
    category: (g.template_category !== '' ? g.template_category : g.priced_category).toUpperCase(),
    country: g.country,
    day: g.day,
    n: Number(g.n),
  }));
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
  // Arm sizes from the audience; conversions from the goal events that can fall in the window,
  // matched to their audience rows by primary key (no join of the whole audience).
  const rows = await runtime.ch.rows<{ holdout: number; contacts: number; converted: number }>(
    `WITH
       span AS (
         SELECT min(launched_at) AS first_launch, max(launched_at) AS last_launch FROM ${db}.campaign_audience
          WHERE workspace_id = {ws:String} AND campaign_id = {campaign:String}),
       goal_events AS (
         SELECT DISTINCT contact_id, ts FROM ${db}.events
          WHERE workspace_id = {ws:String} AND name = {goal:String}
            AND ts >= (SELECT first_launch FROM span)
            AND ts <= (SELECT last_launch FROM span) + toIntervalSecond({window:UInt32})),
       converted AS (
         SELECT a.holdout AS holdout, uniqExact(a.contact_id) AS converted
           FROM goal_events AS e
           INNER JOIN (
             SELECT contact_id, any(holdout) AS holdout, any(launched_at) AS launched_at FROM ${db}.campaign_audience
              WHERE workspace_id = {ws:String} AND campaign_id = {campaign:String}
                AND contact_id IN (SELECT contact_id FROM goal_events)
              GROUP BY contact_id) AS a ON a.contact_id = e.contact_id
          WHERE e.ts >= a.launched_at AND e.ts <= a.launched_at + toIntervalSecond({window:UInt32})
          GROUP BY a.holdout),
       arms AS (
         SELECT holdout, count() AS contacts FROM ${db}.campaign_audience FINAL
          WHERE workspace_id = {ws:String} AND campaign_id = {campaign:String}
          GROUP BY holdout)
     SELECT arms.holdout AS holdout, arms.contacts AS contacts, converted.converted AS converted
       FROM arms LEFT JOIN converted ON converted.holdout = arms.holdout
     SETTINGS join_use_nulls = 0`,
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
  // Independent queries, run together: chdb and a ClickHouse server both execute them concurrently.
  const goalFound = campaignGoal(runtime, workspaceId, campaignId);
  const [{ funnel: base, failures, timeToRead: ttr, cost }, goal, conversions, holdout] = await Promise.all([
    reportOf(runtime, workspaceId, filter),
    goalFound,
    goalFound.then((g) => (g ? campaignConversions(runtime, workspaceId, campaignId, g) : null)),
    goalFound.then((g) => (g ? holdoutLift(runtime, workspaceId, campaignId, g) : null)),
  ]);
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
