/**
 * The aggregates a campaign dashboard is drawn from. source.ts fills it from engine/metrics (and the
 * analytics views for what metrics does not group: hour of week, conversions per country); shape.ts
 * turns it into chart tables; specs.ts draws them. Every figure the page shows as a number is copied
 * from campaignMetrics(), so it equals what GET /v1/metrics/campaigns/{id} reports.
 */
import type { Funnel } from '../engine/metrics/index.ts';

export interface CampaignInfo {
  id: string;
  name: string;
  /** Campaign state when known (running, paused, completed, ...); '' when the source cannot tell. */
  status: string;
  launchedAt: string | null;
  lastSendAt: string | null;
}

/** engine/metrics definitions: sent = accepted attempts; rates as metrics computes them. */
export interface FunnelCounts extends Funnel {
  /** Contacts in the launched audience (treatment and holdout). */
  audience: number;
  holdout: number;
}

export interface FailureCount {
  code: number;
  count: number;
}

/** Counts for one time bucket (an hour or a day, ISO start) of send time. */
export interface TimeBucket {
  bucket: string;
  sent: number;
  delivered: number;
  read: number;
  replied: number;
  failed: number;
}

export interface TimeToReadBucket {
  /** Bucket label, e.g. '5-15m', in order. */
  label: string;
  order: number;
  count: number;
}

export interface TimeToReadSummary {
  buckets: TimeToReadBucket[];
  medianSeconds: number | null;
  p90Seconds: number | null;
  p99Seconds: number | null;
}

/** One cell of the hour-of-week grid, in the workspace time zone. */
export interface HourOfWeekCell {
  /** 1 = Monday ... 7 = Sunday (ISO). */
  dow: number;
  hour: number;
  sent: number;
  read: number;
  replied: number;
  /** Sends whose hour the send-time model chose (not explored at random). */
  chosen: number;
  explored: number;
}

export interface GroupCounts {
  key: string;
  sent: number;
  delivered: number;
  read: number;
  replied: number;
  failed: number;
  conversions: number;
  revenue: number;
  cost: number;
}

export interface ConversionSummary {
  /** Event name counted as a conversion ('' when the campaign has no goal). */
  event: string;
  windowHours: number;
  /** Converters / sent, as metrics defines it. */
  rate: number | null;
  conversions: number;
  /** Distinct contacts converting. */
  converters: number;
  revenue: number;
  cost: number;
  currency: string;
  /** (revenue - cost) / cost; null when nothing was spent or no goal is set. */
  roi: number | null;
  /** Billable messages no rate matched (counted at zero cost). */
  unpricedMessages: number;
  byDay: { day: string; conversions: number; revenue: number; cost: number }[];
}

export interface HoldoutGroup {
  group: 'treatment' | 'holdout';
  contacts: number;
  converters: number;
  rate: number;
  ciLow: number;
  ciHigh: number;
}

export interface HoldoutLift {
  groups: HoldoutGroup[];
  /** Treatment rate minus holdout rate (absolute), with its 95% interval (Newcombe, from metrics). */
  lift: number | null;
  liftCiLow: number | null;
  liftCiHigh: number | null;
  /** Lift relative to the holdout rate; null when the holdout did not convert at all. */
  relativeLift: number | null;
}

export interface ThrottlePoint {
  /** Start of the interval (ISO). */
  ts: string;
  /** Messages per second sent in the interval. */
  rate: number;
  /** The configured limit (messages per second) when known. */
  limit: number | null;
}

export interface PauseSpan {
  start: string;
  end: string | null;
  reason: string;
}

export interface CampaignDashboardData {
  workspaceId: string;
  timezone: string;
  campaign: CampaignInfo;
  funnel: FunnelCounts;
  failures: FailureCount[];
  hourly: TimeBucket[];
  daily: TimeBucket[];
  timeToRead: TimeToReadSummary;
  hourOfWeek: HourOfWeekCell[];
  countries: GroupCounts[];
  templates: GroupCounts[];
  conversions: ConversionSummary;
  holdout: HoldoutLift;
  throttle: { intervalSeconds: number; points: ThrottlePoint[]; pauses: PauseSpan[] };
  /** Where the figures came from, e.g. 'engine/metrics' or 'clickhouse'. */
  source: string;
  generatedAt: string;
}

export interface CampaignSummaryRow {
  id: string;
  name: string;
  status: string;
  launchedAt: string | null;
  sent: number;
  delivered: number;
  read: number;
  replied: number;
  failed: number;
  conversions: number;
  revenue: number;
}

export interface OverviewDashboardData {
  workspaceId: string;
  campaigns: CampaignSummaryRow[];
  daily: TimeBucket[];
  source: string;
  generatedAt: string;
}
