import type { Runtime } from '../engine/runtime.ts';
import type {
  CampaignDashboardData,
  CampaignSummaryRow,
  FailureCount,
  GroupCounts,
  HourOfWeekCell,
  OverviewDashboardData,
  TimeBucket,
  TimeToReadBucket,
} from './model.ts';

/**
 * The ClickHouse fallback source: the dashboard aggregates computed straight from the fact tables
 * (sends, message_statuses, campaign_audience, events). Used when engine/metrics is not available;
 * its definitions follow the metrics contract (a message counts once per status it ever reached;
 * read implies delivered; replied implies read).
 */
export interface SourceOptions {
  /** Event counted as a conversion. */
  conversionEvent?: string;
  /** Attribution window after a send, in hours. */
  windowHours?: number;
  /** IANA zone for hour-of-week and days; the workspace zone by default. */
  timezone?: string;
  /** Throttle view bucket width in seconds. */
  throttleIntervalSeconds?: number;
}

const DEFAULTS = { conversionEvent: 'purchase', windowHours: 72, throttleIntervalSeconds: 60 };

// USD per delivered marketing template, by country ([3P] rough figures from the WhatsApp facts page).
const MARKETING_RATE_USD: Record<string, number> = {
  IN: 0.0118,
  US: 0.025,
  BR: 0.0625,
  ID: 0.0411,
  MX: 0.0436,
};
const DEFAULT_RATE_USD = 0.04;

const TIME_TO_READ_BUCKETS: { label: string; upTo: number }[] = [
  { label: '< 1 min', upTo: 60 },
  { label: '1–5 min', upTo: 300 },
  { label: '5–15 min', upTo: 900 },
  { label: '15–60 min', upTo: 3600 },
  { label: '1–3 h', upTo: 3 * 3600 },
  { label: '3–12 h', upTo: 12 * 3600 },
  { label: '12–24 h', upTo: 24 * 3600 },
  { label: '> 24 h', upTo: Number.POSITIVE_INFINITY },
];

const num = (value: unknown): number => (value === null || value === undefined ? 0 : Number(value));

/** ClickHouse DateTime64 text ('YYYY-MM-DD hh:mm:ss.sss', UTC) to ISO. */
export function isoFromClickHouse(value: string | null | undefined): string | null {
  if (!value || value.startsWith('1970-01-01')) return null;
  return `${value.replace(' ', 'T')}${value.includes('.') ? '' : '.000'}Z`;
}

function rateSql(): string {
  const cases = Object.entries(MARKETING_RATE_USD)
    .map(([country, rate]) => `country = '${country}', ${rate}`)
    .join(', ');
  return `multiIf(${cases}, ${DEFAULT_RATE_USD})`;
}

/**
 * One row per send of the campaign with the first time each status was reached; every aggregate
 * below reads this.
 */
function messagesCte(db: string): string {
  return `messages AS (
    SELECT s.send_id, s.campaign_name, s.contact_id, s.country, s.template_name, s.outcome, s.error_code AS send_error,
           s.sent_at, s.exploration,
           st.delivered_at, st.read_at, st.replied_at, st.failed_at, st.failed_code, st.failed_title, st.billable
    FROM (SELECT * FROM ${db}.sends FINAL WHERE workspace_id = {w:String} AND campaign_id = {c:String}) AS s
    LEFT JOIN (
      SELECT provider_message_id,
             minIf(ts, status IN ('delivered', 'read', 'replied', 'played')) AS delivered_at,
             minIf(ts, status IN ('read', 'replied', 'played')) AS read_at,
             minIf(ts, status = 'replied') AS replied_at,
             minIf(ts, status = 'failed') AS failed_at,
             anyIf(error_code, status = 'failed') AS failed_code,
             anyIf(error_title, status = 'failed') AS failed_title,
             max(billable) AS billable
      FROM ${db}.message_statuses FINAL
      WHERE workspace_id = {w:String}
        AND provider_message_id IN (SELECT provider_message_id FROM ${db}.sends
                                    WHERE workspace_id = {w:String} AND campaign_id = {c:String}
                                      AND provider_message_id != '')
      GROUP BY provider_message_id
    ) AS st ON st.provider_message_id = s.provider_message_id AND s.provider_message_id != ''
  ),
  flags AS (
    SELECT *,
           outcome = 'accepted' AS is_accepted,
           outcome = 'accepted' AND delivered_at > toDateTime64(0, 3) AS is_delivered,
           read_at > toDateTime64(0, 3) AS is_read,
           replied_at > toDateTime64(0, 3) AS is_replied,
           outcome = 'failed' OR (failed_at > toDateTime64(0, 3) AND NOT is_delivered) AS is_failed
    FROM messages
  )`;
}

export async function loadCampaignFromClickHouse(
  runtime: Runtime,
  workspaceId: string,
  campaignId: string,
  options: SourceOptions = {},
): Promise<CampaignDashboardData | undefined> {
  const { ch } = runtime;
  const db = ch.database;
  const opts = { ...DEFAULTS, ...options };
  const tz = options.timezone ?? (await workspaceTimezone(runtime, workspaceId));
  const params = { w: workspaceId, c: campaignId, tz, ev: opts.conversionEvent, win: opts.windowHours };
  const withSql = `WITH ${messagesCte(db)}`;
  const counts = `count() AS sent, countIf(is_accepted) AS accepted, countIf(is_delivered) AS delivered,
    countIf(is_read) AS read, countIf(is_replied) AS replied, countIf(is_failed) AS failed`;

  const [head] = await ch.rows<Record<string, string>>(
    `${withSql}
     SELECT ${counts}, any(campaign_name) AS name, min(sent_at) AS first_send, max(sent_at) AS last_send,
            sumIf(${rateSql()}, billable = 1 AND is_delivered) AS cost
     FROM flags`,
    params,
  );
  if (!head || num(head.sent) === 0) {
    const [audienceOnly] = await ch.rows<{ n: string }>(
      `SELECT count() AS n FROM ${db}.campaign_audience FINAL WHERE workspace_id = {w:String} AND campaign_id = {c:String}`,
      params,
    );
    if (!audienceOnly || num(audienceOnly.n) === 0) return undefined;
  }

  const [audience] = await ch.rows<Record<string, string>>(
    `SELECT count() AS audience, countIf(holdout = 1) AS holdout, min(launched_at) AS launched_at
     FROM ${db}.campaign_audience FINAL WHERE workspace_id = {w:String} AND campaign_id = {c:String}`,
    params,
  );

  const failures = await ch.rows<Record<string, string>>(
    `${withSql}
     SELECT 'send' AS stage, send_error AS code, '' AS title, count() AS count FROM flags
       WHERE outcome = 'failed' GROUP BY code
     UNION ALL
     SELECT 'delivery' AS stage, failed_code AS code, any(failed_title) AS title, count() AS count FROM flags
       WHERE outcome = 'accepted' AND is_failed GROUP BY code
     ORDER BY count DESC, code`,
    params,
  );

  const bucketRows = async (unit: 'hour' | 'day') =>
    ch.rows<Record<string, string>>(
      `${withSql}
       SELECT toString(${unit === 'hour' ? 'toStartOfHour(sent_at)' : 'toStartOfDay(toTimeZone(sent_at, {tz:String}))'}) AS bucket, ${counts}
       FROM flags GROUP BY bucket ORDER BY bucket`,
      params,
    );
  const [hourlyRows, dailyRows] = [await bucketRows('hour'), await bucketRows('day')];

  const ttrStats = await ch.rows<Record<string, string>>(
    `${withSql}
     SELECT ${TIME_TO_READ_BUCKETS.map(
       (b, i) =>
         `countIf(secs >= ${i === 0 ? 0 : TIME_TO_READ_BUCKETS[i - 1]!.upTo} AND secs < ${
           Number.isFinite(b.upTo) ? b.upTo : '1e18'
         }) AS b${i}`,
     ).join(', ')},
       if(count() = 0, NULL, quantileExact(0.5)(secs)) AS median, if(count() = 0, NULL, quantileExact(0.9)(secs)) AS p90
     FROM (SELECT greatest(0, dateDiff('millisecond', sent_at, read_at) / 1000) AS secs FROM flags WHERE is_read)`,
    params,
  );
  const ttrRow = ttrStats[0] ?? {};
  const timeToReadBuckets: TimeToReadBucket[] = TIME_TO_READ_BUCKETS.map((b, i) => ({
    label: b.label,
    order: i,
    count: num(ttrRow[`b${i}`]),
  }));

  const howRows = await ch.rows<Record<string, string>>(
    `${withSql}
     SELECT toDayOfWeek(sent_at, 0, {tz:String}) AS dow, toHour(toTimeZone(sent_at, {tz:String})) AS hour,
            count() AS sent, countIf(is_read) AS read, countIf(is_replied) AS replied,
            countIf(exploration = 0) AS chosen, countIf(exploration = 1) AS explored
     FROM flags GROUP BY dow, hour ORDER BY dow, hour`,
    params,
  );

  // Conversions: the first conversion event per contact inside the window after the contact's send.
  const conversionSql = `
    conv AS (
      SELECT f.contact_id AS contact_id, f.country AS country, f.template_name AS template_name,
             e.ts AS ts, JSONExtractFloat(e.properties, 'revenue') AS revenue
      FROM flags AS f
      INNER JOIN (SELECT contact_id, ts, properties FROM ${db}.events FINAL
                  WHERE workspace_id = {w:String} AND name = {ev:String}
                    AND contact_id IN (SELECT contact_id FROM ${db}.sends
                                       WHERE workspace_id = {w:String} AND campaign_id = {c:String})) AS e
        ON e.contact_id = f.contact_id
      WHERE f.is_accepted AND e.ts >= f.sent_at AND e.ts < f.sent_at + toIntervalHour({win:UInt32})
    )`;
  const groupRows = async (key: 'country' | 'template_name') =>
    ch.rows<Record<string, string>>(
      `${withSql}, ${conversionSql}
       SELECT g.key AS key, g.sent, g.delivered, g.read, g.replied, g.failed, g.cost,
              ifNull(cv.conversions, 0) AS conversions, ifNull(cv.revenue, 0) AS revenue
       FROM (SELECT ${key} AS key, ${counts}, sumIf(${rateSql()}, billable = 1 AND is_delivered) AS cost
             FROM flags GROUP BY key) AS g
       LEFT JOIN (SELECT ${key} AS key, count() AS conversions, sum(revenue) AS revenue FROM conv GROUP BY key) AS cv
         ON cv.key = g.key
       ORDER BY g.sent DESC, g.key`,
      params,
    );
  const [countryRows, templateRows] = [await groupRows('country'), await groupRows('template_name')];

  const [convTotals] = await ch.rows<Record<string, string>>(
    `${withSql}, ${conversionSql}
     SELECT count() AS conversions, uniqExact(contact_id) AS converters, sum(revenue) AS revenue FROM conv`,
    params,
  );
  const convDaily = await ch.rows<Record<string, string>>(
    `${withSql}, ${conversionSql}
     SELECT day, sum(conversions) AS conversions, sum(revenue) AS revenue, sum(cost) AS cost FROM (
       SELECT toString(toDate(toTimeZone(ts, {tz:String}))) AS day, count() AS conversions, sum(revenue) AS revenue, 0 AS cost
       FROM conv GROUP BY day
       UNION ALL
       SELECT toString(toDate(toTimeZone(sent_at, {tz:String}))) AS day, 0, 0, sumIf(${rateSql()}, billable = 1 AND is_delivered)
       FROM flags GROUP BY day
     ) GROUP BY day ORDER BY day`,
    params,
  );

  // Holdout: share of each group converting within the window after launch.
  const holdoutCounts = await ch.rows<Record<string, string>>(
    `SELECT a.holdout AS holdout, count() AS contacts,
            countIf(e.n > 0) AS converters
     FROM (SELECT contact_id, holdout, launched_at FROM ${db}.campaign_audience FINAL
           WHERE workspace_id = {w:String} AND campaign_id = {c:String}
             AND (holdout = 1 OR excluded_reason = '')) AS a
     LEFT JOIN (SELECT ev.contact_id AS contact_id, count() AS n
                FROM ${db}.events AS ev FINAL
                INNER JOIN (SELECT contact_id, launched_at FROM ${db}.campaign_audience FINAL
                            WHERE workspace_id = {w:String} AND campaign_id = {c:String}) AS aa
                  ON aa.contact_id = ev.contact_id
                WHERE ev.workspace_id = {w:String} AND ev.name = {ev:String}
                  AND ev.ts >= aa.launched_at AND ev.ts < aa.launched_at + toIntervalHour({win:UInt32})
                GROUP BY contact_id) AS e
       ON e.contact_id = a.contact_id
     GROUP BY holdout ORDER BY holdout`,
    params,
  );

  const throttleRows = await ch.rows<Record<string, string>>(
    `SELECT toString(toStartOfInterval(sent_at, toIntervalSecond({iv:UInt32}))) AS ts, count() AS n
     FROM ${db}.sends FINAL WHERE workspace_id = {w:String} AND campaign_id = {c:String}
     GROUP BY ts ORDER BY ts`,
    { ...params, iv: opts.throttleIntervalSeconds },
  );

  const bucket = (r: Record<string, string>): TimeBucket => ({
    bucket: isoFromClickHouse(r.bucket) ?? String(r.bucket),
    sent: num(r.sent),
    delivered: num(r.delivered),
    read: num(r.read),
    replied: num(r.replied),
    failed: num(r.failed),
  });
  const group = (r: Record<string, string>): GroupCounts => ({
    key: String(r.key ?? ''),
    sent: num(r.sent),
    delivered: num(r.delivered),
    read: num(r.read),
    replied: num(r.replied),
    failed: num(r.failed),
    conversions: num(r.conversions),
    revenue: num(r.revenue),
    cost: num(r.cost),
  });
  const cost = num(head?.cost);
  const revenue = num(convTotals?.revenue);
  const holdout = holdoutFromCounts(
    holdoutCounts.map((r) => ({
      holdout: num(r.holdout) === 1,
      contacts: num(r.contacts),
      converters: num(r.converters),
    })),
  );

  return {
    workspaceId,
    timezone: tz,
    campaign: {
      id: campaignId,
      name: head?.name || campaignId,
      status: '',
      launchedAt: isoFromClickHouse(audience?.launched_at) ?? isoFromClickHouse(head?.first_send),
      lastSendAt: isoFromClickHouse(head?.last_send),
    },
    funnel: {
      audience: num(audience?.audience),
      holdout: num(audience?.holdout),
      sent: num(head?.sent),
      accepted: num(head?.accepted),
      delivered: num(head?.delivered),
      read: num(head?.read),
      replied: num(head?.replied),
      failed: num(head?.failed),
    },
    failures: failures.map(
      (r): FailureCount => ({
        stage: r.stage === 'send' ? 'send' : 'delivery',
        code: num(r.code),
        title: String(r.title ?? ''),
        count: num(r.count),
      }),
    ),
    hourly: hourlyRows.map(bucket),
    daily: dailyRows.map(bucket),
    timeToRead: {
      buckets: timeToReadBuckets,
      medianSeconds: ttrRow.median == null ? null : num(ttrRow.median),
      p90Seconds: ttrRow.p90 == null ? null : num(ttrRow.p90),
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
    countries: countryRows.map(group),
    templates: templateRows.map(group),
    conversions: {
      event: opts.conversionEvent,
      windowHours: opts.windowHours,
      conversions: num(convTotals?.conversions),
      converters: num(convTotals?.converters),
      revenue,
      cost,
      currency: 'USD',
      roi: cost > 0 ? (revenue - cost) / cost : null,
      byDay: convDaily.map((r) => ({
        day: String(r.day),
        conversions: num(r.conversions),
        revenue: num(r.revenue),
        cost: num(r.cost),
      })),
    },
    holdout,
    throttle: {
      intervalSeconds: opts.throttleIntervalSeconds,
      points: throttleRows.map((r) => ({
        ts: isoFromClickHouse(r.ts) ?? String(r.ts),
        rate: num(r.n) / opts.throttleIntervalSeconds,
        limit: null,
      })),
      pauses: [],
    },
    source: 'clickhouse',
    generatedAt: new Date().toISOString(),
  };
}

/** Wilson score interval for a proportion (95%). */
export function wilson(successes: number, n: number, z = 1.959964): [number, number] {
  if (n === 0) return [0, 0];
  const p = successes / n;
  const denom = 1 + (z * z) / n;
  const centre = (p + (z * z) / (2 * n)) / denom;
  const half = (z * Math.sqrt((p * (1 - p)) / n + (z * z) / (4 * n * n))) / denom;
  return [Math.max(0, centre - half), Math.min(1, centre + half)];
}

/** Treatment against holdout conversion rates, the absolute lift and its 95% (Wald) interval. */
export function holdoutFromCounts(
  rows: { holdout: boolean; contacts: number; converters: number }[],
): CampaignDashboardData['holdout'] {
  const groups = (['treatment', 'holdout'] as const).map((group) => {
    const row = rows.find((r) => r.holdout === (group === 'holdout'));
    const contacts = row?.contacts ?? 0;
    const converters = row?.converters ?? 0;
    const [ciLow, ciHigh] = wilson(converters, contacts);
    return { group, contacts, converters, rate: contacts ? converters / contacts : 0, ciLow, ciHigh };
  });
  const [t, h] = groups as [(typeof groups)[0], (typeof groups)[0]];
  if (!t.contacts || !h.contacts) {
    return { groups, lift: null, liftCiLow: null, liftCiHigh: null, relativeLift: null };
  }
  const lift = t.rate - h.rate;
  const se = Math.sqrt((t.rate * (1 - t.rate)) / t.contacts + (h.rate * (1 - h.rate)) / h.contacts);
  return {
    groups,
    lift,
    liftCiLow: lift - 1.959964 * se,
    liftCiHigh: lift + 1.959964 * se,
    relativeLift: h.rate > 0 ? lift / h.rate : null,
  };
}

async function workspaceTimezone(runtime: Runtime, workspaceId: string): Promise<string> {
  const { rows } = await runtime.pg.query<{ timezone: string }>(
    'SELECT timezone FROM workspaces WHERE id = $1',
    [workspaceId],
  );
  return rows[0]?.timezone ?? 'UTC';
}

export async function loadOverviewFromClickHouse(
  runtime: Runtime,
  workspaceId: string,
  options: SourceOptions = {},
): Promise<OverviewDashboardData> {
  const { ch } = runtime;
  const db = ch.database;
  const tz = options.timezone ?? (await workspaceTimezone(runtime, workspaceId));
  const ids = await ch.rows<{ campaign_id: string }>(
    `SELECT DISTINCT campaign_id FROM ${db}.sends WHERE workspace_id = {w:String} AND campaign_id != ''
     ORDER BY campaign_id LIMIT 200`,
    { w: workspaceId },
  );
  const campaigns: CampaignSummaryRow[] = [];
  const daily = new Map<string, TimeBucket>();
  for (const { campaign_id } of ids) {
    const data = await loadCampaignFromClickHouse(runtime, workspaceId, campaign_id, {
      ...options,
      timezone: tz,
    });
    if (!data) continue;
    campaigns.push(summaryRow(data));
    for (const b of data.daily) {
      const into = daily.get(b.bucket) ?? {
        bucket: b.bucket,
        sent: 0,
        delivered: 0,
        read: 0,
        replied: 0,
        failed: 0,
      };
      into.sent += b.sent;
      into.delivered += b.delivered;
      into.read += b.read;
      into.replied += b.replied;
      into.failed += b.failed;
      daily.set(b.bucket, into);
    }
  }
  campaigns.sort((a, b) => (b.launchedAt ?? '').localeCompare(a.launchedAt ?? ''));
  return {
    workspaceId,
    campaigns,
    daily: [...daily.values()].sort((a, b) => a.bucket.localeCompare(b.bucket)),
    source: 'clickhouse',
    generatedAt: new Date().toISOString(),
  };
}

export function summaryRow(data: CampaignDashboardData): CampaignSummaryRow {
  return {
    id: data.campaign.id,
    name: data.campaign.name,
    status: data.campaign.status,
    launchedAt: data.campaign.launchedAt,
    sent: data.funnel.sent,
    delivered: data.funnel.delivered,
    read: data.funnel.read,
    replied: data.funnel.replied,
    failed: data.funnel.failed,
    conversions: data.conversions.conversions,
    revenue: data.conversions.revenue,
  };
}
