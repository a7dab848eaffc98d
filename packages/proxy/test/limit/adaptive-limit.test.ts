import { AdaptiveLimit, type AdaptiveLimitOptions } from '../../src/limit/adaptive-limit.js';
import { StaticLimit } from '../../src/limit/limit.js';
import { mean, simulate } from './simulated-upstream.js';

const BUCKET_MS = 250;
const PER_SECOND = 1000 / BUCKET_MS;

function fakeClockLimit(options: Partial<AdaptiveLimitOptions> = {}): { limit: AdaptiveLimit; clock: { now: number } } {
  const clock = { now: 0 };
  return { limit: new AdaptiveLimit({ min: 1, max: 1000, ...options, now: () => clock.now }), clock };
}

/** Reports `count` calls, each admitted when the previous one finished and taking `rttMs` on the fake clock. */
function feed(
  limit: AdaptiveLimit,
  clock: { now: number },
  count: number,
  rttMs: number,
  inflight: number,
  dropped = (_i: number) => false,
): void {
  for (let i = 0; i < count; i++) {
    clock.now += rttMs;
    limit.onSample(rttMs, inflight, dropped(i));
  }
}

/** Completions per bucket divided by what the upstream can do in that bucket. */
function efficiency(completions: number[], parallelism: number, serviceMs: (t: number) => number): number[] {
  return completions.map((c, i) => c / ((parallelism / serviceMs(i * BUCKET_MS)) * BUCKET_MS));
}

describe('AdaptiveLimit', () => {
  it.each([
    [4, 50],
    [16, 20],
    [64, 10],
  ])('converges near the upstream parallelism %i (service %i ms) and keeps it busy', (parallelism, serviceMs) => {
    const { limit, clock } = fakeClockLimit();
    const run = simulate(limit, { parallelism, serviceMs: () => serviceMs }, 20_000, clock, BUCKET_MS);
    const settled = 5 * PER_SECOND;
    const meanLimit = mean(run.limits, settled, run.limits.length - 1);
    expect(meanLimit).toBeGreaterThanOrEqual(0.9 * parallelism);
    expect(meanLimit).toBeLessThanOrEqual(2 * parallelism);
    const eff = efficiency(run.completions, parallelism, () => serviceMs);
    expect(mean(eff, settled, eff.length - 1)).toBeGreaterThan(0.9);
  });

  it('does not drift upward over two minutes of steady overload', () => {
    const { limit, clock } = fakeClockLimit();
    const run = simulate(limit, { parallelism: 16, serviceMs: () => 20, jitter: 0.3 }, 120_000, clock, 10_000);
    expect(Math.max(...run.limits.slice(1, -1))).toBeLessThanOrEqual(32);
    expect(mean(run.limits, 6, 12)).toBeLessThanOrEqual(mean(run.limits, 1, 6) * 1.5);
  });

  it.each([
    ['2x slower', (t: number) => (t < 5_000 ? 20 : 40)],
    ['2x faster', (t: number) => (t < 5_000 ? 40 : 20)],
  ])('keeps goodput within a second when the upstream gets %s', (_name, serviceMs) => {
    const { limit, clock } = fakeClockLimit();
    const run = simulate(limit, { parallelism: 16, serviceMs }, 10_000, clock, BUCKET_MS);
    const eff = efficiency(run.completions, 16, serviceMs);
    // The second after the step, and every second after that, does >= 90% of what the upstream can.
    for (let second = 5; second < 10; second++) {
      expect(mean(eff, second * PER_SECOND, (second + 1) * PER_SECOND)).toBeGreaterThan(0.9);
    }
    // The right limit is the same before and after (Little's law): it must not collapse or run away.
    expect(Math.min(...run.limits.slice(6 * PER_SECOND))).toBeGreaterThanOrEqual(8);
    expect(Math.max(...run.limits.slice(6 * PER_SECOND))).toBeLessThanOrEqual(40);
  });

  it.each([
    ['2x slower', (t: number) => (t < 8_000 ? 20 : 40)],
    ['2x faster', (t: number) => (t < 8_000 ? 40 : 20)],
  ])('never overflows a backlog of 2x the workers when the upstream gets %s', (_name, serviceMs) => {
    // bench/adaptive's upstream: 8 workers, a backlog of 16, then immediate rejections (which open the breaker).
    const { limit, clock } = fakeClockLimit();
    const run = simulate(limit, { parallelism: 8, queueCapacity: 16, serviceMs }, 16_000, clock, BUCKET_MS);
    expect(run.drops).toBe(0);
  });

  it('slow-starts from 1 to the parallelism of a slow upstream within a few RTTs (8 workers, 200 ms)', () => {
    const { limit, clock } = fakeClockLimit();
    const run = simulate(limit, { parallelism: 8, serviceMs: () => 200 }, 4_000, clock, BUCKET_MS);
    // One-RTT windows: 1 -> 8 in about 2 s. With minWindowSamples (10) per window it took 4-5 s.
    const reached = run.limits.findIndex((l) => l >= 8);
    expect(reached).toBeGreaterThanOrEqual(0);
    expect(reached * BUCKET_MS).toBeLessThanOrEqual(2_500);
  });

  it('moves its baseline RTT up when the upstream gets 2x slower', () => {
    const { limit, clock } = fakeClockLimit();
    simulate(limit, { parallelism: 8, serviceMs: (t) => (t < 3_000 ? 20 : 40) }, 3_000, clock, BUCKET_MS);
    const before = limit.baselineRttMs;
    simulate(limit, { parallelism: 8, serviceMs: () => 40 }, 2_000, clock, BUCKET_MS);
    expect(limit.baselineRttMs).toBeGreaterThan(1.3 * before);
    expect(limit.baselineRttMs).toBeLessThan(2.5 * before);
  });

  it('follows the upstream down when its parallelism halves', () => {
    const { limit, clock } = fakeClockLimit();
    const run = simulate(
      limit,
      { parallelism: 32, parallelismAt: (t) => (t < 5_000 ? 32 : 16), serviceMs: () => 20 },
      12_000,
      clock,
      BUCKET_MS,
    );
    const before = mean(run.limits, 2 * PER_SECOND, 5 * PER_SECOND);
    const after = mean(run.limits, 8 * PER_SECOND, 12 * PER_SECOND - 1);
    expect(after).toBeLessThan(before * 0.8);
    expect(after).toBeGreaterThanOrEqual(0.9 * 16);
  });

  it('keeps at least 60% of the best static goodput against a dynamic-batching server (a known limit)', () => {
    // 40 ms + 5 ms per item, batches of up to 16: its RTT rises with every call in flight while its
    // throughput keeps rising up to 16, so a delay-based limiter settles well below 16 (docs/adaptive.md).
    const batch = { fixedMs: 40, perItemMs: 5, maxBatch: 16 };
    const goodput = (limit: AdaptiveLimit | StaticLimit, clock: { now: number }): number =>
      mean(simulate(limit, { parallelism: 1, serviceMs: () => 0, batch }, 20_000, clock, 1000).completions, 5, 19);
    const bestStatic = Math.max(...[4, 8, 16, 32].map((n) => goodput(new StaticLimit(n), { now: 0 })));
    expect(bestStatic).toBeGreaterThan(125); // 16 per 120 ms
    const { limit, clock } = fakeClockLimit();
    expect(goodput(limit, clock) / bestStatic).toBeGreaterThan(0.6); // 0.68 measured
  });

  it('never leaves [min, max]', () => {
    const capped = fakeClockLimit({ min: 2, max: 10 });
    const wide = simulate(capped.limit, { parallelism: 64, serviceMs: () => 10 }, 5_000, capped.clock, BUCKET_MS);
    expect(wide.maxLimit).toBe(10);
    expect(wide.minLimit).toBeGreaterThanOrEqual(2);

    const floored = fakeClockLimit({ min: 6, max: 100 });
    const narrow = simulate(floored.limit, { parallelism: 1, serviceMs: () => 10 }, 5_000, floored.clock, BUCKET_MS);
    expect(narrow.minLimit).toBe(6);
    expect(narrow.maxLimit).toBeLessThanOrEqual(100);
  });

  it('backs off multiplicatively on drops', () => {
    const { limit, clock } = fakeClockLimit({ initial: 100, max: 100 });
    feed(limit, clock, 100, 5, 100, (i) => i % 10 === 0);
    expect(limit.limit).toBe(70);
    feed(limit, clock, 70, 5, 70, () => true);
    expect(limit.limit).toBe(49);
  });

  it('keeps the upstream queue bounded when the upstream rejects overflow', () => {
    const { limit, clock } = fakeClockLimit();
    const run = simulate(limit, { parallelism: 16, queueCapacity: 4, serviceMs: () => 20 }, 5_000, clock, BUCKET_MS);
    const eff = efficiency(run.completions, 16, () => 20);
    expect(mean(eff, PER_SECOND, eff.length - 1)).toBeGreaterThan(0.85);
    expect(mean(run.limits, PER_SECOND, run.limits.length - 1)).toBeLessThanOrEqual(16 + 4);
  });

  it('does not grow while the caller is app-limited', () => {
    const { limit, clock } = fakeClockLimit({ initial: 20 });
    feed(limit, clock, 200, 10, 3);
    expect(limit.limit).toBe(20);
  });

  it('ignores calls admitted before its last decision', () => {
    const { limit, clock } = fakeClockLimit({ initial: 4, minWindowSamples: 4 });
    feed(limit, clock, 4, 10, 4); // first window: baseline 10 ms
    // Calls that took 100 ms finished now, so they were admitted before that decision: no cut.
    for (let i = 0; i < 8; i++) limit.onSample(100, 4, false);
    expect(limit.limit).toBe(4);
    feed(limit, clock, 4, 100, 4);
    expect(limit.limit).toBeLessThan(4);
  });

  it('notifies listeners with each new integer limit', () => {
    const { limit, clock } = fakeClockLimit({ initial: 4, minWindowSamples: 4 });
    const seen: number[] = [];
    limit.onChange((value) => seen.push(value));
    // The first window only sets the baseline; the second, at the same RTT, doubles (slow start).
    feed(limit, clock, 4, 10, 4);
    expect(seen).toEqual([]);
    feed(limit, clock, 4, 10, 4);
    expect(seen).toEqual([8]);
    expect(limit.limit).toBe(8);
  });

  it('ignores non-finite and negative RTTs', () => {
    const { limit, clock } = fakeClockLimit({ initial: 4, minWindowSamples: 4 });
    for (let i = 0; i < 8; i++) {
      clock.now += 10;
      limit.onSample(i % 2 === 0 ? Number.NaN : -1, 4, false);
    }
    expect(limit.limit).toBe(4);
    expect(limit.baselineRttMs).toBe(Infinity);
  });

  it.each([
    [{ min: 0, max: 10 }, 'min'],
    [{ min: 1.5, max: 10 }, 'min'],
    [{ min: 5, max: 4 }, 'max'],
    [{ min: 1, max: 10, initial: 11 }, 'initial'],
    [{ min: 1, max: 10, tolerance: 0 }, 'tolerance'],
    [{ min: 1, max: 10, backoff: 1 }, 'backoff'],
    [{ min: 1, max: 10, dropBackoff: 0 }, 'dropBackoff'],
    [{ min: 1, max: 10, minWindowSamples: 0 }, 'minWindowSamples'],
    [{ min: 1, max: 10, baselineWindowMs: Number.NaN }, 'baselineWindowMs'],
  ] as [AdaptiveLimitOptions, string][])('rejects %o with a RangeError naming %s', (options, name) => {
    expect(() => new AdaptiveLimit(options)).toThrow(RangeError);
    expect(() => new AdaptiveLimit(options)).toThrow(`option ${name} `);
  });
});
