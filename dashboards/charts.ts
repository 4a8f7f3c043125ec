import { compile } from 'vega-lite';
import type { CampaignDashboardData, OverviewDashboardData } from './model.ts';
import { quietLogger } from './render.ts';
import * as shape from './shape.ts';
import * as specs from './specs.ts';

/** The charts of each page, in page order; ids are stable (URLs and tests use them). */
export const CAMPAIGN_CHARTS = [
  'funnel',
  'failures',
  'rates-hourly',
  'rates-daily',
  'time-to-read',
  'send-time-heatmap',
  'countries',
  'country-conversions',
  'roi',
  'holdout-lift',
  'templates',
  'throttle',
] as const;
export type CampaignChartId = (typeof CAMPAIGN_CHARTS)[number];

export const OVERVIEW_CHARTS = ['campaigns', 'daily-volume'] as const;
export type OverviewChartId = (typeof OVERVIEW_CHARTS)[number];

export interface Chart {
  id: string;
  title: string;
  /** Rows the chart draws (how many marks roughly); 0 means the chart shows an empty state. */
  rows: number;
  spec: specs.VlSpec;
  /** The spec compiled to Vega on the server, so the browser only draws (what the page embeds). */
  vega?: Record<string, unknown>;
}

/** Adds the compiled Vega spec to a chart (the page's charts; exports compile on their own). */
export function withCompiled(chart: Chart): Chart {
  return {
    ...chart,
    vega: compile(chart.spec, { logger: quietLogger }).spec as unknown as Record<string, unknown>,
  };
}

/** Default drawing size of each chart on the page (height; width fills the column). */
const HEIGHTS: Record<CampaignChartId | OverviewChartId, number> = {
  funnel: 220,
  failures: 220,
  'rates-hourly': 260,
  'rates-daily': 260,
  'time-to-read': 260,
  'send-time-heatmap': 420,
  countries: 280,
  'country-conversions': 280,
  roi: 280,
  'holdout-lift': 280,
  templates: 280,
  throttle: 260,
  campaigns: 300,
  'daily-volume': 260,
};

export function defaultSize(id: CampaignChartId | OverviewChartId): specs.SpecSize {
  return { width: 'container', height: HEIGHTS[id] };
}

export function campaignChart(
  data: CampaignDashboardData,
  id: CampaignChartId,
  size: specs.SpecSize = defaultSize(id),
): Chart {
  switch (id) {
    case 'funnel': {
      const rows = shape.funnelRows(data);
      return { id, title: 'Funnel', rows: rows.length, spec: specs.funnelSpec(rows, size) };
    }
    case 'failures': {
      const rows = shape.failureRows(data);
      return { id, title: 'Failures by error code', rows: rows.length, spec: specs.failuresSpec(rows, size) };
    }
    case 'rates-hourly': {
      const rows = shape.rateRows(data.hourly);
      return { id, title: 'Rates by hour', rows: rows.length, spec: specs.ratesSpec(rows, size, 'hour') };
    }
    case 'rates-daily': {
      const rows = shape.rateRows(data.daily);
      return { id, title: 'Rates by day', rows: rows.length, spec: specs.ratesSpec(rows, size, 'day') };
    }
    case 'time-to-read': {
      const rows = shape.timeToReadRows(data);
      return {
        id,
        title: 'Time to read',
        rows: rows.length,
        spec: specs.timeToReadSpec(rows, size, data.timeToRead.medianSeconds),
      };
    }
    case 'send-time-heatmap': {
      const rows = shape.hourOfWeekRows(data);
      return {
        id,
        title: 'Send-time heatmap',
        rows: rows.length,
        spec: specs.heatmapSpec(rows, size, data.timezone),
      };
    }
    case 'countries': {
      const rows = shape.groupRateRows(data.countries);
      return {
        id,
        title: 'By country',
        rows: rows.length,
        spec: specs.groupRatesSpec(rows, size, 'Rates by country', 'Country'),
      };
    }
    case 'country-conversions': {
      const rows = shape.groupRows(data.countries);
      return {
        id,
        title: 'Conversions by country',
        rows: rows.length,
        spec: specs.countryConversionSpec(rows, size),
      };
    }
    case 'roi': {
      const money = shape.moneyRows(data);
      const daily = shape.conversionRows(data);
      return {
        id,
        title: 'Conversions and ROI',
        rows: money.length,
        spec: specs.roiSpec(money, daily, size, data.conversions.currency),
      };
    }
    case 'holdout-lift': {
      const groups = shape.holdoutRows(data);
      const lift = shape.liftRows(data);
      return { id, title: 'Holdout lift', rows: lift.length, spec: specs.holdoutSpec(groups, lift, size) };
    }
    case 'templates': {
      const rows = shape.groupRateRows(data.templates);
      return {
        id,
        title: 'Template performance',
        rows: rows.length,
        spec: specs.groupRatesSpec(rows, size, 'Template performance', 'Template'),
      };
    }
    case 'throttle': {
      const points = shape.throttleRows(data);
      const pauses = shape.pauseRows(data);
      return {
        id,
        title: 'Throttle',
        rows: points.length,
        spec: specs.throttleSpec(points, pauses, size, data.throttle.intervalSeconds),
      };
    }
  }
}

export function overviewChart(
  data: OverviewDashboardData,
  id: OverviewChartId,
  size: specs.SpecSize = defaultSize(id),
): Chart {
  switch (id) {
    case 'campaigns': {
      const rows = shape.overviewCampaignRateRows(data);
      return {
        id,
        title: 'Campaigns compared',
        rows: rows.length,
        spec: specs.overviewRatesSpec(rows, size),
      };
    }
    case 'daily-volume': {
      const rows = shape.overviewDailyRows(data);
      return { id, title: 'Messages per day', rows: rows.length, spec: specs.overviewDailySpec(rows, size) };
    }
  }
}

export const isCampaignChart = (id: string): id is CampaignChartId =>
  (CAMPAIGN_CHARTS as readonly string[]).includes(id);
export const isOverviewChart = (id: string): id is OverviewChartId =>
  (OVERVIEW_CHARTS as readonly string[]).includes(id);
