/** Confidence intervals for proportions; z = 1.96 gives 95 %. */

export interface Interval {
  low: number;
  high: number;
}

/** Wilson score interval for x successes in n trials. */
export function wilson(x: number, n: number, z = 1.959964): Interval {
  if (n === 0) return { low: 0, high: 1 };
  const p = x / n;
  const z2 = z * z;
  const centre = (p + z2 / (2 * n)) / (1 + z2 / n);
  const half = (z * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n))) / (1 + z2 / n);
  return { low: Math.max(0, centre - half), high: Math.min(1, centre + half) };
}

/**
 * Newcombe's hybrid score interval (method 10 of Newcombe 1998) for p1 − p2, built from the two
 * Wilson intervals; unlike the Wald interval it stays inside [−1, 1] and behaves at rates near 0.
 */
export function newcombeDifference(x1: number, n1: number, x2: number, n2: number, z = 1.959964): Interval {
  const p1 = n1 ? x1 / n1 : 0;
  const p2 = n2 ? x2 / n2 : 0;
  const a = wilson(x1, n1, z);
  const b = wilson(x2, n2, z);
  const d = p1 - p2;
  return {
    low: d - Math.sqrt((p1 - a.low) ** 2 + (b.high - p2) ** 2),
    high: d + Math.sqrt((a.high - p1) ** 2 + (p2 - b.low) ** 2),
  };
}
