/**
 * Empirical-Bayes pieces: the strength of a Beta prior fitted by the method of moments.
 *
 * Units i (a contact's hour, a cohort's slot) have n_i trials and k_i successes around a known prior
 * mean mu_i. With true rates ~ Beta(kappa * mu, kappa * (1 - mu)) and rho = 1 / (1 + kappa),
 * E[(k_i - n_i mu_i)^2 / n_i] = mu_i (1 - mu_i) (1 + rho (n_i - 1)), so summing over units
 *   rho = (S - A) / B,  S = sum (k^2/n - 2 mu k + mu^2 n),  A = sum mu(1-mu),  B = sum mu(1-mu)(n-1).
 * These three sums are all a fit needs, so large populations sum them in ClickHouse.
 */
export interface MomentSums {
  s: number;
  a: number;
  b: number;
}

/** Prior strengths are clamped: below 1 a prior says nothing, above 1e5 it ignores all data. */
export const KAPPA_MIN = 1;
export const KAPPA_MAX = 100_000;

export function kappaFromMoments({ s, a, b }: MomentSums, fallback: number): number {
  if (!(b > 0) || !Number.isFinite(s)) return fallback;
  const rho = (s - a) / b;
  // no excess variance over binomial noise: units do not differ, so the prior is as strong as allowed
  if (rho <= 1 / (1 + KAPPA_MAX)) return KAPPA_MAX;
  if (rho >= 1) return KAPPA_MIN;
  return Math.min(KAPPA_MAX, Math.max(KAPPA_MIN, 1 / rho - 1));
}

export function momentSums(units: Iterable<{ n: number; k: number; mu: number }>): MomentSums {
  let s = 0;
  let a = 0;
  let b = 0;
  for (const { n, k, mu } of units) {
    if (n <= 0) continue;
    const v = mu * (1 - mu);
    s += (k * k) / n - 2 * mu * k + mu * mu * n;
    a += v;
    b += v * (n - 1);
  }
  return { s, a, b };
}

/** Posterior mean of a rate under a Beta(kappa mu, kappa (1 - mu)) prior. */
export const shrink = (k: number, n: number, mu: number, kappa: number): number =>
  (k + kappa * mu) / (n + kappa);
