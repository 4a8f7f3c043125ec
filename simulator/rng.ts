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
 * cyrb53: a fast, well-mixed 53-bit string hash. Not cryptographic (nothing here needs that), and
 * much cheaper than sha256 on the send path, where several streams are keyed per message.
 */
export function hash53(text: string, seed = 0): number {
  let h1 = 0xdeadbeef ^ seed;
  let h2 = 0x41c6ce57 ^ seed;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ ch, 2654435761);
    h2 = Math.imul(h2 ^ ch, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (2097151 & h2) + (h1 >>> 0);
}

/**
 * A stream keyed by the seed and a purpose (e.g. a phone number and a message number), so a draw
 * never depends on the order in which concurrent requests arrived: same seed, same run.
 */
export function rngFor(seed: string, ...parts: (string | number)[]): Rng {
  const generator = xoroshiro128plus(hash53([seed, ...parts].join('\u0000')) | 0);
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
  const text = [seed, ...parts].join('\u0000');
  let out = '';
  for (let round = 0; out.length < length; round++) out += hash53(text, round).toString(16).padStart(14, '0');
  return out.slice(0, length);
}
