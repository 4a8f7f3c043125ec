import type { TopLevelSpec } from 'vega-lite';
import type { Row } from './shape.ts';

/**
 * Vega-Lite 6 specs as functions of shaped rows (shape.ts). Data travels inline (`data.values`), so a
 * spec is self-contained: the page embeds it, the export renders it, a user can paste it anywhere.
 */
/** A Vega-Lite spec that is also a plain JSON object (what the API returns). */
export type VlSpec = TopLevelSpec & Record<string, unknown>;

export interface SpecSize {
  /** 'container' fills the chart's box in the page; a number for exports. */
  width: number | 'container';
  height: number;
}

const FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';
const PALETTE = ['#2563eb', '#16a34a', '#f59e0b', '#dc2626', '#7c3aed', '#0891b2', '#db2777'];
const SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json';

// Every spec starts here: the schema URL is an identifier only; nothing is fetched from it.
function base(title: string, size: SpecSize, values: Row[]): Record<string, unknown> {
  return {
    $schema: SCHEMA,
    title: { text: title, anchor: 'start', fontSize: 14 },
    width: size.width,
    height: size.height,
    autosize: { type: 'fit', contains: 'padding' },
    background: 'white',
    data: { values },
    config: {
      font: FONT,
      range: { category: PALETTE },
      axis: { labelFontSize: 11, titleFontSize: 11, grid: true, gridColor: '#eef0f3' },
      legend: { labelFontSize: 11, titleFontSize: 11, orient: 'bottom' },
      view: { stroke: null },
    },
  };
}

const pct = (field: string, title: string) => ({
  field,
  type: 'quantitative' as const,
  title,
  format: '.1%',
});
const count = (field: string, title: string) => ({
  field,
  type: 'quantitative' as const,
  title,
  format: ',',
});

export function funnelSpec(values: Row[], size: SpecSize): VlSpec {
  return {
    ...base('Funnel: sent → delivered → read → replied', size, values),
    encoding: {
      y: { field: 'stage', type: 'nominal', sort: { field: 'order' }, title: null },
      x: { field: 'count', type: 'quantitative', title: 'Messages', axis: { format: '~s' } },
      tooltip: [
        { field: 'stage', type: 'nominal' },
        count('count', 'Messages'),
        pct('of_sent', 'Of sent'),
        pct('of_previous', 'Of previous stage'),
      ],
    },
    layer: [
      { mark: { type: 'bar', color: PALETTE[0], cornerRadiusEnd: 3 } },
      {
        mark: { type: 'text', align: 'left', dx: 4, fontSize: 11 },
        encoding: { text: { field: 'of_sent', type: 'quantitative', format: '.1%' } },
      },
    ],
  } as VlSpec;
}

export function failuresSpec(values: Row[], size: SpecSize): VlSpec {
  return {
    ...base('Failures by error code', size, values),
    mark: { type: 'bar', cornerRadiusEnd: 3 },
    encoding: {
      y: { field: 'label', type: 'nominal', sort: '-x', title: null },
      x: { field: 'count', type: 'quantitative', title: 'Messages' },
      color: { value: '#dc2626' },
      tooltip: [
        { field: 'code', type: 'quantitative', title: 'Error code', format: 'd' },
        { field: 'meaning', type: 'nominal', title: 'Meaning' },
        count('count', 'Messages'),
        pct('share', 'Of attempted'),
      ],
    },
  } as VlSpec;
}

export function ratesSpec(values: Row[], size: SpecSize, unit: 'hour' | 'day'): VlSpec {
  return {
    ...base(unit === 'hour' ? 'Rates by hour of send' : 'Rates by day of send', size, values),
    mark: { type: 'line', point: true },
    encoding: {
      x: {
        field: 'bucket',
        type: 'temporal',
        title: null,
        timeUnit: unit === 'hour' ? 'utcyearmonthdatehours' : 'utcyearmonthdate',
        axis: unit === 'day' ? { tickCount: { interval: 'day', step: 1 }, format: '%b %d' } : {},
      },
      y: {
        field: 'rate',
        type: 'quantitative',
        title: 'Rate',
        axis: { format: '.0%' },
        scale: { domain: [0, 1] },
      },
      color: { field: 'label', type: 'nominal', title: null },
      tooltip: [
        {
          field: 'bucket',
          type: 'temporal',
          title: unit === 'hour' ? 'Hour (UTC)' : 'Day',
          format: unit === 'hour' ? '%Y-%m-%d %H:00' : '%Y-%m-%d',
        },
        { field: 'label', type: 'nominal', title: 'Rate' },
        pct('rate', 'Value'),
        count('sent', 'Sent'),
      ],
    },
  } as VlSpec;
}

export function timeToReadSpec(values: Row[], size: SpecSize, medianSeconds: number | null): VlSpec {
  const median = medianSeconds === null ? '' : ` (median ${formatDuration(medianSeconds)})`;
  return {
    ...base(`Time from send to read${median}`, size, values),
    encoding: {
      x: { field: 'label', type: 'ordinal', sort: { field: 'order' }, title: null, axis: { labelAngle: 0 } },
      tooltip: [
        { field: 'label', type: 'ordinal', title: 'Read within' },
        count('count', 'Messages'),
        pct('share', 'Of reads'),
        pct('cumulative_share', 'Cumulative'),
      ],
    },
    layer: [
      {
        mark: { type: 'bar', color: PALETTE[5], cornerRadiusEnd: 3 },
        encoding: { y: { field: 'count', type: 'quantitative', title: 'Reads', axis: { format: '~s' } } },
      },
      {
        mark: { type: 'line', color: '#111827', point: true },
        encoding: {
          y: {
            field: 'cumulative_share',
            type: 'quantitative',
            title: 'Cumulative share',
            axis: { format: '.0%', orient: 'right' },
            scale: { domain: [0, 1] },
          },
        },
      },
    ],
    resolve: { scale: { y: 'independent' } },
  } as VlSpec;
}

export function heatmapSpec(values: Row[], size: SpecSize, timezone: string): VlSpec {
  const cellHeight = Math.max(60, Math.floor((size.height - 160) / 2));
  const panel = (field: string, title: string, scheme: string, format: string) => ({
    title: { text: title, fontSize: 12, anchor: 'start' },
    width: size.width,
    height: cellHeight,
    mark: { type: 'rect', stroke: 'white', strokeWidth: 0.5 },
    encoding: {
      x: { field: 'hour', type: 'ordinal', title: `Hour (${timezone})`, axis: { labelAngle: 0 } },
      y: {
        field: 'day',
        type: 'ordinal',
        sort: ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'],
        title: null,
      },
      color: {
        field,
        type: 'quantitative',
        title: null,
        scale: { scheme },
        legend: { format, orient: 'bottom', direction: 'horizontal', gradientLength: 240 },
      },
      tooltip: [
        { field: 'day', type: 'ordinal' },
        { field: 'hour', type: 'ordinal' },
        count('sent', 'Sent'),
        pct('read_rate', 'Read rate'),
        pct('reply_rate', 'Reply rate'),
        count('chosen', 'Model-chosen sends'),
        count('explored', 'Explored sends'),
        pct('chosen_share', "Share of model's choices"),
      ],
    },
  });
  const {
    width: _w,
    height: _h,
    ...rest
  } = base('Send time: engagement and the model’s choices', size, values);
  return {
    ...rest,
    resolve: { scale: { color: 'independent' }, legend: { color: 'independent' } },
    vconcat: [
      panel('read_rate', 'Read rate by hour of week', 'blues', '.0%'),
      panel('chosen_share', 'Where the send-time model put messages', 'oranges', '.1%'),
    ],
  } as VlSpec;
}

export function groupRatesSpec(values: Row[], size: SpecSize, title: string, keyTitle: string): VlSpec {
  return {
    ...base(title, size, values),
    mark: { type: 'bar', cornerRadiusEnd: 2 },
    encoding: {
      x: {
        field: 'key',
        type: 'nominal',
        title: keyTitle,
        sort: { field: 'sent', order: 'descending' },
        axis: { labelAngle: 0 },
      },
      xOffset: { field: 'label' },
      y: {
        field: 'rate',
        type: 'quantitative',
        title: 'Rate',
        axis: { format: '.0%' },
        scale: { domain: [0, 1] },
      },
      color: { field: 'label', type: 'nominal', title: null },
      tooltip: [
        { field: 'key', type: 'nominal', title: keyTitle },
        { field: 'label', type: 'nominal', title: 'Rate' },
        pct('rate', 'Value'),
        count('sent', 'Sent'),
      ],
    },
  } as VlSpec;
}

export function countryConversionSpec(values: Row[], size: SpecSize): VlSpec {
  return {
    ...base('Conversions and cost by country', size, values),
    mark: { type: 'bar', cornerRadiusEnd: 3, color: PALETTE[1] },
    encoding: {
      y: { field: 'key', type: 'nominal', title: null, sort: '-x' },
      x: {
        field: 'conversion_rate',
        type: 'quantitative',
        title: 'Conversions / sent',
        axis: { format: '.1%' },
      },
      tooltip: [
        { field: 'key', type: 'nominal', title: 'Country' },
        count('sent', 'Sent'),
        count('conversions', 'Conversions'),
        pct('conversion_rate', 'Conversion rate'),
        { field: 'revenue', type: 'quantitative', title: 'Revenue', format: ',.2f' },
        { field: 'cost', type: 'quantitative', title: 'Cost', format: ',.2f' },
        { field: 'cost_per_conversion', type: 'quantitative', title: 'Cost per conversion', format: ',.2f' },
      ],
    },
  } as VlSpec;
}

export function roiSpec(money: Row[], daily: Row[], size: SpecSize, currency: string): VlSpec {
  const { data: _data, ...rest } = base(`Revenue, cost and ROI (${currency})`, size, money);
  return {
    ...rest,
    layer: [
      {
        data: { values: money },
        mark: { type: 'bar', cornerRadiusEnd: 2 },
        encoding: {
          x: { field: 'day', type: 'ordinal', title: null, axis: { labelAngle: 0 } },
          xOffset: { field: 'kind' },
          y: { field: 'amount', type: 'quantitative', title: currency, axis: { format: '~s' } },
          color: {
            field: 'kind',
            type: 'nominal',
            title: null,
            scale: { domain: ['revenue', 'cost'], range: [PALETTE[1], PALETTE[3]] },
          },
          tooltip: [
            { field: 'day', type: 'ordinal' },
            { field: 'kind', type: 'nominal' },
            { field: 'amount', type: 'quantitative', format: ',.2f' },
          ],
        },
      },
      {
        data: { values: daily },
        mark: { type: 'line', point: true, color: '#111827' },
        encoding: {
          x: { field: 'day', type: 'ordinal', title: null },
          y: {
            field: 'cumulative_roi',
            type: 'quantitative',
            title: 'Cumulative ROI',
            axis: { format: '.0%', orient: 'right' },
          },
          tooltip: [
            { field: 'day', type: 'ordinal' },
            { field: 'cumulative_revenue', type: 'quantitative', title: 'Revenue to date', format: ',.2f' },
            { field: 'cumulative_cost', type: 'quantitative', title: 'Cost to date', format: ',.2f' },
            pct('cumulative_roi', 'ROI to date'),
          ],
        },
      },
    ],
    resolve: { scale: { y: 'independent' } },
  } as VlSpec;
}

export function holdoutSpec(groups: Row[], lift: Row[], size: SpecSize): VlSpec {
  const {
    data: _data,
    width: _w,
    height: _h,
    ...rest
  } = base('Holdout lift: conversion rate with 95% CI', size, groups);
  const half =
    typeof size.width === 'number' ? Math.max(120, Math.floor((size.width - 80) / 2)) : 'container';
  const rateAxis = { axis: { format: '.1%' }, scale: { zero: true } };
  return {
    ...rest,
    hconcat: [
      {
        title: { text: 'Sent vs holdout', fontSize: 12, anchor: 'start' },
        width: half,
        height: size.height - 50,
        data: { values: groups },
        encoding: {
          x: {
            field: 'label',
            type: 'nominal',
            title: null,
            sort: ['Sent', 'Holdout'],
            axis: { labelAngle: 0 },
          },
        },
        layer: [
          {
            mark: { type: 'errorbar', ticks: { size: 16 }, thickness: 2 },
            encoding: {
              y: { field: 'ciLow', type: 'quantitative', title: 'Conversion rate', ...rateAxis },
              y2: { field: 'ciHigh' },
            },
          },
          {
            mark: { type: 'point', filled: true, size: 90 },
            encoding: {
              y: { field: 'rate', type: 'quantitative' },
              color: {
                field: 'label',
                type: 'nominal',
                legend: null,
                scale: { range: [PALETTE[0], '#6b7280'] },
              },
              tooltip: [
                { field: 'label', type: 'nominal', title: 'Group' },
                count('contacts', 'Contacts'),
                count('converters', 'Converted'),
                pct('rate', 'Rate'),
                pct('ciLow', 'CI low'),
                pct('ciHigh', 'CI high'),
              ],
            },
          },
        ],
      },
      {
        title: { text: 'Lift (percentage points)', fontSize: 12, anchor: 'start' },
        width: half,
        height: size.height - 50,
        data: { values: lift.length ? lift : [{ label: 'Lift', lift: 0, ci_low: 0, ci_high: 0 }] },
        encoding: { x: { field: 'label', type: 'nominal', title: null, axis: { labelAngle: 0 } } },
        layer: [
          {
            mark: { type: 'rule', color: '#9ca3af', strokeDash: [4, 4] },
            encoding: { y: { datum: 0 }, x: { value: 0 }, x2: { value: { expr: 'width' } } },
          },
          {
            mark: { type: 'errorbar', ticks: { size: 16 }, thickness: 2 },
            encoding: {
              y: { field: 'ci_low', type: 'quantitative', title: 'Lift', axis: { format: '+.1%' } },
              y2: { field: 'ci_high' },
            },
          },
          {
            mark: { type: 'point', filled: true, size: 90, color: PALETTE[1] },
            encoding: {
              y: { field: 'lift', type: 'quantitative' },
              tooltip: [
                pct('lift', 'Lift'),
                pct('ci_low', 'CI low'),
                pct('ci_high', 'CI high'),
                pct('relative', 'Relative lift'),
              ],
            },
          },
        ],
      },
    ],
  } as VlSpec;
}

export function throttleSpec(points: Row[], pauses: Row[], size: SpecSize, intervalSeconds: number): VlSpec {
  const { data: _data, ...rest } = base('Sending rate against the limit', size, points);
  const time = { field: 'ts', type: 'temporal' as const, title: null };
  const layers: unknown[] = [];
  if (pauses.length)
    layers.push({
      data: { values: pauses },
      mark: { type: 'rect', color: '#fde68a', opacity: 0.6 },
      encoding: {
        x: { field: 'start', type: 'temporal' },
        x2: { field: 'end' },
        tooltip: [
          { field: 'reason', type: 'nominal', title: 'Paused' },
          { field: 'start', type: 'temporal', format: '%H:%M:%S' },
          { field: 'end', type: 'temporal', format: '%H:%M:%S' },
        ],
      },
    });
  layers.push(
    {
      data: { values: points },
      mark: { type: 'area', line: true, opacity: 0.35, color: PALETTE[0], interpolate: 'step-after' },
      encoding: {
        x: time,
        y: {
          field: 'rate',
          type: 'quantitative',
          title: `Messages per second (${intervalSeconds}s buckets)`,
        },
        tooltip: [
          { field: 'ts', type: 'temporal', format: '%Y-%m-%d %H:%M:%S', title: 'From' },
          { field: 'rate', type: 'quantitative', format: ',.2f', title: 'Rate' },
          { field: 'limit', type: 'quantitative', title: 'Limit' },
        ],
      },
    },
    {
      data: { values: points },
      transform: [{ filter: 'datum.limit != null' }],
      mark: { type: 'line', color: '#dc2626', strokeDash: [6, 4], interpolate: 'step-after' },
      encoding: { x: time, y: { field: 'limit', type: 'quantitative' } },
    },
  );
  return { ...rest, layer: layers } as VlSpec;
}

export function overviewRatesSpec(values: Row[], size: SpecSize): VlSpec {
  return {
    ...base('Campaigns compared', size, values),
    mark: { type: 'bar', cornerRadiusEnd: 2 },
    encoding: {
      x: { field: 'label', type: 'nominal', title: null, axis: { labelAngle: -20 } },
      xOffset: { field: 'metric_label' },
      y: {
        field: 'rate',
        type: 'quantitative',
        title: 'Rate',
        axis: { format: '.0%' },
        scale: { domain: [0, 1] },
      },
      color: { field: 'metric_label', type: 'nominal', title: null },
      tooltip: [
        { field: 'label', type: 'nominal', title: 'Campaign' },
        { field: 'metric_label', type: 'nominal', title: 'Rate' },
        pct('rate', 'Value'),
        count('sent', 'Sent'),
      ],
    },
  } as VlSpec;
}

export function overviewDailySpec(values: Row[], size: SpecSize): VlSpec {
  return {
    ...base('Messages per day, all campaigns', size, values),
    mark: { type: 'line', point: true },
    encoding: {
      x: { field: 'bucket', type: 'temporal', timeUnit: 'utcyearmonthdate', title: null },
      y: { field: 'count', type: 'quantitative', title: 'Messages', axis: { format: '~s' } },
      color: {
        field: 'status',
        type: 'nominal',
        title: null,
        sort: ['sent', 'delivered', 'read', 'replied'],
      },
      tooltip: [
        { field: 'bucket', type: 'temporal', format: '%Y-%m-%d', title: 'Day' },
        { field: 'status', type: 'nominal' },
        count('count', 'Messages'),
      ],
    },
  } as VlSpec;
}

export function formatDuration(seconds: number): string {
  if (seconds < 60) return `${Math.round(seconds)} s`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}
