import * as aq from 'arquero';
import { op } from 'arquero';
import type { CampaignDashboardData, GroupCounts, OverviewDashboardData, TimeBucket } from './model.ts';

/**
 * Aggregates to chart tables, with arquero. Each function returns plain row objects (what a
 * Vega-Lite `data.values` takes); rates are fractions in [0, 1] and guard against empty groups.
 * Arquero compiles the arrow functions below from their source, so they use only `d`, `$` and `op`.
 */
// Arquero hands expressions loosely typed rows and parameters.
// biome-ignore lint/suspicious/noExplicitAny: arquero row values are untyped
type D = Record<string, any>;
// biome-ignore lint/suspicious/noExplicitAny: arquero parameters are untyped
type P = Record<string, any>;

export type Row = Record<string, string | number | boolean | null>;

const rows = (table: aq.ColumnTable): Row[] => table.objects() as Row[];

export const RATE_LABELS = {
  delivery_rate: 'Delivered / sent',
  read_rate: 'Read / delivered',
  reply_rate: 'Replied / delivered',
} as const;

/** Sent, delivered, read, replied as bars, each with its share of sends and of the stage before. */
export function funnelRows(data: CampaignDashboardData): Row[] {
  const f = data.funnel;
  return rows(
    aq
      .from([
        { stage: 'Sent', order: 0, count: f.sent },
        { stage: 'Delivered', order: 1, count: f.delivered },
        { stage: 'Read', order: 2, count: f.read },
        { stage: 'Replied', order: 3, count: f.replied },
      ])
      .params({ sent: f.sent })
      .orderby('order')
      .derive({
        of_sent: (d: D, $: P) => ($.sent > 0 ? d.count / $.sent : 0),
        previous: (d: D) => op.lag(d.count, 1),
      })
      .derive({ of_previous: (d: D) => (d.previous == null ? 1 : d.previous > 0 ? d.count / d.previous : 0) })
      .select(aq.not('previous')),
  );
}

/** What the common WhatsApp error codes mean (shared/whatsapp-cloud-api.md), for axis labels. */
export const ERROR_MEANINGS: Record<number, string> = {
  0: 'no code',
  1: 'server error',
  2: 'downtime',
  4: 'app call rate',
  368: 'account restricted',
  80007: 'account call rate',
  130403: 'user blocked',
  130429: 'throughput reached',
  131000: 'unknown error',
  131016: 'service unavailable',
  131026: 'undeliverable',
  131031: 'account locked',
  131047: 'outside 24 h window',
  131048: 'spam rate limit',
  131049: 'per-user marketing limit',
  131050: 'user stopped marketing',
  131051: 'unsupported type',
  131056: 'pair rate',
  131057: 'throughput upgrade',
  131064: 'miscategorised template',
  132000: 'parameter count',
  132001: 'template missing',
  132015: 'template paused',
  132016: 'template disabled',
};

export function failureRows(data: CampaignDashboardData): Row[] {
  if (data.failures.length === 0) return [];
  return rows(
    aq
      .from(data.failures)
      .params({ total: data.funnel.attempted, meanings: ERROR_MEANINGS })
      .derive({
        meaning: (d: D, $: P) => $.meanings[d.code] || '',
        share: (d: D, $: P) => ($.total > 0 ? d.count / $.total : 0),
      })
      .derive({ label: (d: D) => (d.meaning ? d.code + ' ' + d.meaning : '' + d.code) })
      .orderby(aq.desc('count')),
  );
}

/** Long form: one row per bucket and rate, for a line per rate. */
export function rateRows(buckets: TimeBucket[]): Row[] {
  if (buckets.length === 0) return [];
  return rows(
    aq
      .from(buckets)
      .derive({
        delivery_rate: (d: D) => (d.sent > 0 ? d.delivered / d.sent : 0),
        read_rate: (d: D) => (d.delivered > 0 ? d.read / d.delivered : 0),
        reply_rate: (d: D) => (d.delivered > 0 ? d.replied / d.delivered : 0),
      })
      .fold(['delivery_rate', 'read_rate', 'reply_rate'], { as: ['metric', 'rate'] })
      .derive({ label: aq.escape((d: { metric: keyof typeof RATE_LABELS }) => RATE_LABELS[d.metric]) }),
  );
}

export function timeToReadRows(data: CampaignDashboardData): Row[] {
  const total = data.timeToRead.buckets.reduce((sum, b) => sum + b.count, 0);
  return rows(
    aq
      .from(data.timeToRead.buckets)
      .params({ total })
      .orderby('order')
      .derive({
        share: (d: D, $: P) => ($.total > 0 ? d.count / $.total : 0),
        cumulative: aq.rolling((d: D) => op.sum(d.count)),
      })
      .derive({ cumulative_share: (d: D, $: P) => ($.total > 0 ? d.cumulative / $.total : 0) }),
  );
}

const DAYS = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];

/** The full 7 × 24 grid (empty cells included), with read rate and the model's share of choices. */
export function hourOfWeekRows(data: CampaignDashboardData): Row[] {
  const grid: Row[] = [];
  for (let dow = 1; dow <= 7; dow++) for (let hour = 0; hour < 24; hour++) grid.push({ dow, hour });
  const totalChosen = data.hourOfWeek.reduce((sum, c) => sum + c.chosen, 0);
  const cells = data.hourOfWeek.length
    ? aq.from(data.hourOfWeek)
    : aq.table({ dow: [], hour: [], sent: [], read: [], replied: [], chosen: [], explored: [] });
  return rows(
    aq
      .from(grid)
      .join_left(
        cells,
        [
          ['dow', 'hour'],
          ['dow', 'hour'],
        ],
        [aq.all(), aq.not('dow', 'hour')],
      )
      .params({ totalChosen, days: DAYS })
      .derive({
        day: (d: D, $: P) => $.days[d.dow - 1],
        sent: (d: D) => d.sent || 0,
        read: (d: D) => d.read || 0,
        replied: (d: D) => d.replied || 0,
        chosen: (d: D) => d.chosen || 0,
        explored: (d: D) => d.explored || 0,
      })
      .derive({
        read_rate: (d: D) => (d.sent > 0 ? d.read / d.sent : null),
        reply_rate: (d: D) => (d.sent > 0 ? d.replied / d.sent : null),
        chosen_share: (d: D, $: P) => ($.totalChosen > 0 ? d.chosen / $.totalChosen : 0),
      })
      .orderby('dow', 'hour'),
  );
}

/** Per group (country, template): counts, rates, conversions, revenue, cost and cost per conversion. */
export function groupRows(groups: GroupCounts[]): Row[] {
  if (groups.length === 0) return [];
  return rows(
    aq
      .from(groups)
      .derive({
        delivery_rate: (d: D) => (d.sent > 0 ? d.delivered / d.sent : 0),
        read_rate: (d: D) => (d.delivered > 0 ? d.read / d.delivered : 0),
        reply_rate: (d: D) => (d.delivered > 0 ? d.replied / d.delivered : 0),
        conversion_rate: (d: D) => (d.sent > 0 ? d.conversions / d.sent : 0),
        cost_per_conversion: (d: D) => (d.conversions > 0 ? d.cost / d.conversions : null),
      })
      .orderby(aq.desc('sent'), 'key'),
  );
}

/** Group rates in long form, for grouped bars (one bar per rate inside each group). */
export function groupRateRows(groups: GroupCounts[]): Row[] {
  const wide = groupRows(groups);
  if (wide.length === 0) return [];
  return rows(
    aq
      .from(wide)
      .select('key', 'sent', 'delivery_rate', 'read_rate', 'reply_rate')
      .fold(['delivery_rate', 'read_rate', 'reply_rate'], { as: ['metric', 'rate'] })
      .derive({ label: aq.escape((d: { metric: keyof typeof RATE_LABELS }) => RATE_LABELS[d.metric]) }),
  );
}

/** Revenue and cost per day, with cumulative revenue, cost and ROI. */
export function conversionRows(data: CampaignDashboardData): Row[] {
  if (data.conversions.byDay.length === 0) return [];
  return rows(
    aq
      .from(data.conversions.byDay)
      .orderby('day')
      .derive({
        cumulative_revenue: aq.rolling((d: D) => op.sum(d.revenue)),
        cumulative_cost: aq.rolling((d: D) => op.sum(d.cost)),
      })
      .derive({
        cumulative_roi: (d: D) =>
          d.cumulative_cost > 0 ? (d.cumulative_revenue - d.cumulative_cost) / d.cumulative_cost : null,
      }),
  );
}

/** Revenue and cost per day in long form, for side-by-side bars. */
export function moneyRows(data: CampaignDashboardData): Row[] {
  const wide = conversionRows(data);
  if (wide.length === 0) return [];
  return rows(
    aq
      .from(wide)
      .select('day', 'revenue', 'cost')
      .fold(['revenue', 'cost'], { as: ['kind', 'amount'] }),
  );
}

export function holdoutRows(data: CampaignDashboardData): Row[] {
  if (data.holdout.groups.length === 0) return [];
  return rows(
    aq.from(data.holdout.groups).derive({ label: (d: D) => (d.group === 'holdout' ? 'Holdout' : 'Sent') }),
  );
}

export function liftRows(data: CampaignDashboardData): Row[] {
  const h = data.holdout;
  if (h.lift === null) return [];
  return [
    { label: 'Lift', lift: h.lift, ci_low: h.liftCiLow, ci_high: h.liftCiHigh, relative: h.relativeLift },
  ];
}

export function throttleRows(data: CampaignDashboardData): Row[] {
  if (data.throttle.points.length === 0) return [];
  return rows(
    aq.from(data.throttle.points).derive({ over_limit: (d: D) => d.limit !== null && d.rate > d.limit }),
  );
}

export function pauseRows(data: CampaignDashboardData): Row[] {
  const last = data.throttle.points.at(-1)?.ts ?? data.generatedAt;
  return data.throttle.pauses.map((p) => ({ start: p.start, end: p.end ?? last, reason: p.reason }));
}

/**
 * Headline figures the page shows as tiles, copied (never recomputed) from the metrics figures, keyed
 * by the metrics API's field paths; the browser test compares each with GET /v1/metrics/campaigns/{id}.
 */
export function summaryFigures(data: CampaignDashboardData): Record<string, number | null> {
  const f = data.funnel;
  const c = data.conversions;
  return {
    attempted: f.attempted,
    sent: f.sent,
    delivered: f.delivered,
    read: f.read,
    replied: f.replied,
    failed: f.failed,
    delivery_rate: f.delivery_rate,
    read_rate: f.read_rate,
    reply_rate: f.reply_rate,
    failure_rate: f.failure_rate,
    'conversions.conversions': c.event ? c.conversions : null,
    conversion_rate: c.rate,
    'conversions.revenue': c.event ? c.revenue : null,
    'cost.amount': c.cost,
    roi: c.roi,
    'holdout.lift': data.holdout.lift,
    'time_to_read.p50_seconds': data.timeToRead.medianSeconds,
  };
}

export function overviewCampaignRateRows(data: OverviewDashboardData): Row[] {
  if (data.campaigns.length === 0) return [];
  return rows(
    aq
      .from(data.campaigns)
      .derive({
        label: (d: D) => d.name,
        delivery_rate: (d: D) => (d.sent > 0 ? d.delivered / d.sent : 0),
        read_rate: (d: D) => (d.delivered > 0 ? d.read / d.delivered : 0),
        reply_rate: (d: D) => (d.delivered > 0 ? d.replied / d.delivered : 0),
      })
      .select('id', 'label', 'sent', 'delivery_rate', 'read_rate', 'reply_rate')
      .fold(['delivery_rate', 'read_rate', 'reply_rate'], { as: ['metric', 'rate'] })
      .derive({
        metric_label: aq.escape((d: { metric: keyof typeof RATE_LABELS }) => RATE_LABELS[d.metric]),
      }),
  );
}

export function overviewDailyRows(data: OverviewDashboardData): Row[] {
  if (data.daily.length === 0) return [];
  return rows(
    aq
      .from(data.daily)
      .select('bucket', 'sent', 'delivered', 'read', 'replied')
      .fold(['sent', 'delivered', 'read', 'replied'], { as: ['status', 'count'] }),
  );
}
