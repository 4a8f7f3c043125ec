import { describe, expect, it } from 'vitest';
import { SenderPacer } from '../engine/throttle/pacer.ts';

/**
 * A provider that counts each request at a random moment between its arrival and its answer, with
 * latencies that vary a lot (a slow network, a provider that stalls): the case where pacing by our
 * own firing times lets more than the limit into one of the provider's seconds.
 */
function jitteryProvider(seed: number) {
  let state = seed >>> 0;
  const random = () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 0x1_0000_0000;
  };
  const counted: number[] = [];
  return {
    counted,
    request: () =>
      new Promise<void>((resolve) => {
        const latency = random() < 0.2 ? 40 + random() * 60 : random() * 5;
        const countedAfter = latency * random();
        setTimeout(() => counted.push(performance.now()), countedAfter);
        setTimeout(resolve, latency);
      }),
  };
}

/** The most requests the provider counted inside any one window of `ms`. */
function busiestWindow(times: number[], ms: number): number {
  const sorted = [...times].sort((a, b) => a - b);
  let most = 0;
  for (let i = 0, j = 0; i < sorted.length; i++) {
    while (sorted[i]! - sorted[j]! >= ms) j++;
    most = Math.max(most, i - j + 1);
  }
  return most;
}

describe('sender pacer', () => {
  it('never lets the provider count more than its capacity in a second, whatever the latency', async () => {
    const provider = jitteryProvider(7);
    const pacer = new SenderPacer(20);
    const start = performance.now();
    // Slots at 25 a second: above the capacity, so only the pacer's rule keeps the provider under it.
    const order: number[] = [];
    await Promise.all(
      Array.from({ length: 70 }, (_, i) =>
        pacer.schedule(
          start + i * 40,
          () => true,
          async () => {
            order.push(i);
            await provider.request();
          },
        ),
      ),
    );
    expect(provider.counted).toHaveLength(70);
    expect(busiestWindow(provider.counted, 1_000)).toBeLessThanOrEqual(20);
    expect(order).toEqual([...order].sort((a, b) => a - b));
  });

  it('sends at the slot times when they are within the limit', async () => {
    const pacer = new SenderPacer(49);
    const start = performance.now() + 20;
    const late: number[] = [];
    await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        pacer.schedule(
          start + i * 25,
          () => true,
          async () => {
            late.push(performance.now() - (start + i * 25));
          },
        ),
      ),
    );
    expect(Math.min(...late)).toBeGreaterThanOrEqual(0);
  });

  it('holds every send for a while after the provider says it is over its limit', async () => {
    const pacer = new SenderPacer(100);
    const firedAt: number[] = [];
    const start = performance.now();
    await pacer.schedule(
      start,
      () => true,
      async () => {
        firedAt.push(performance.now());
      },
    );
    pacer.holdFor(300);
    await pacer.schedule(
      start,
      () => true,
      async () => {
        firedAt.push(performance.now());
      },
    );
    expect(firedAt[1]! - firedAt[0]!).toBeGreaterThanOrEqual(295);
  });

  it('shrinking its share holds the next send until the last second holds no more than the new share', async () => {
    const pacer = new SenderPacer(10);
    const firedAt: number[] = [];
    const start = performance.now();
    const fire = async () => {
      firedAt.push(performance.now());
    };
    await Promise.all(Array.from({ length: 8 }, (_, i) => pacer.schedule(start + i, () => true, fire)));
    // Another worker joined: this one now holds 4 places; 8 were used within the last second.
    pacer.resize(4);
    await pacer.schedule(start, () => true, fire);
    expect(firedAt[8]! - firedAt[4]!).toBeGreaterThanOrEqual(995);
    // Growing back does not release a burst either: the added places count as the oldest answer.
    pacer.resize(12);
    const before = firedAt.length;
    await Promise.all(Array.from({ length: 4 }, () => pacer.schedule(start, () => true, fire)));
    expect(firedAt.length).toBe(before + 4);
  });

  it('gives a slot up when the send is no longer wanted', async () => {
    const pacer = new SenderPacer(10);
    let fired = 0;
    const result = await pacer.schedule(
      performance.now(),
      () => false,
      async () => {
        fired++;
      },
    );
    expect(typeof result).toBe('symbol');
    expect(fired).toBe(0);
  });
});
