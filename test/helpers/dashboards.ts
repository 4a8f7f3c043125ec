/** The value at a dotted path of a metrics API response ('conversions.revenue'); null when absent. */
export function metricAt(metrics: Record<string, unknown>, path: string): unknown {
  return path
    .split('.')
    .reduce<unknown>((value, key) => (value as Record<string, unknown> | null)?.[key] ?? null, metrics);
}
