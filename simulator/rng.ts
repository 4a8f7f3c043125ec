import { createHash } from 'node:crypto';
import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64';
import { uniformInt } from 'pure-rand/distribution/uniformInt';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';

/** A seeded random stream; every draw in the simulator comes from one of these. */
export interface Rng {
  /** Uniform in [0, 1). */
  float(): number;
  /** Uniform integer in [from, to]. */
  int(from: number, to: number): number;
  chance(probability: number): boolean;
  pick<T>(items: readonly T[]): T;
  /** Exponentially distributed with the given mean. */
  exponential(mean: number): number;
}

/**
 * A stream keyed by the seed and a purpose (e.g. a phone number and a message number), so a draw
 * never depends on the order in which concurrent requests arrived: same seed, same run.
 */
export function rngFor(seed: string, ...parts: (string | number)[]): Rng {
  const digest = createHash('sha256')
    .update([seed, ...parts].join('\u0000'))
    .digest();
  const generator = xoroshiro128plus(digest.readInt32LE(0) ^ digest.readInt32LE(4));
  return {
    float: () => uniformFloat64(generator),
    int: (from, to) => uniformInt(generator, from, to),
    chance: (probability) => uniformFloat64(generator) < probability,
    pick: (items) => items[uniformInt(generator, 0, items.length - 1)]!,
    exponential: (mean) => -Math.log(1 - uniformFloat64(generator)) * mean,
  };
}

/** A stable hex token from the seed and parts (message ids, trace ids). */
export function tokenFor(seed: string, length: number, ...parts: (string | number)[]): string {
  return createHash('sha256')
    .update([seed, ...parts].join('\u0000'))
    .digest('hex')
    .slice(0, length);
}
