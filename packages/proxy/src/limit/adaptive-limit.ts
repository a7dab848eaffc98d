import type { ConcurrencyLimit } from './limit.js';

/** Tuning of {@link AdaptiveLimit}; every field but `min` and `max` has a documented default. */
export interface AdaptiveLimitOptions {
  /** Lowest limit the algorithm may choose (integer >= 1). */
  min: number;
  /** Highest limit the algorithm may choose (integer >= min). */
  max: number;
  /** Limit before the first sample (integer in [min, max]); default `min` (slow start doubles it per window). */
  initial?: number;
  /** Queueing the upstream may show: decrease when window RTT > baseline * (1 + tolerance). Default 0.5. */
  tolerance?: number;
  /**
   * On queueing, cut to `backoff * limit * baseline / rtt` (a share of the queue-free concurrency), in (0, 1).
   * Default 0.9.
   */
  backoff?: number;
  /** Multiplicative decrease when a window saw a drop (timeout, 5xx, connection error), in (0, 1]. Default 0.7. */
  dropBackoff?: number;
  /**
   * Fewest samples in one measurement window (a window also holds at least `limit` samples); during slow start
   * at most 3. Default 10.
   */
  minWindowSamples?: number;
  /** How long the baseline (windowed minimum of window RTTs) remembers a low value, in ms. Default 10 000. */
  baselineWindowMs?: number;
  /** Monotonic clock in ms; injectable for tests. Default `performance.now`. */
  now?: () => number;
}

/**
 * After a queueing decrease, a next window whose RTT fell by less than this fraction of the previous
 * one says the latency was not our queue (the upstream got slower): the baseline is re-based there.
 * With the defaults a real queue drains to <= 0.67x of the RTT, so 0.85 leaves room for noise.
 */
const NOT_QUEUEING_RATIO = 0.85;
/** The deepest single cut (Gradient2's floor): one outlier window cannot halve the limit more than once. */
const MAX_CUT = 0.5;
/**
 * RTT within 5% of proportional to in-flight after a cut counts as "still queued" (a cut that lands at 0.9 P
 * shows 11% more).
 */
const PROPORTIONAL_SLACK = 1.05;
/** The proportionality test needs the in-flight count to have fallen by 20% at least; smaller steps are noise. */
const PROPORTIONAL_MIN_STEP = 0.8;
/** The extra cut while the upstream is still queued below the baseline's tolerance. */
const QUEUED_BASELINE_CUT = 0.7;
/** Slow start stops doubling once a window's mean RTT exceeds the baseline by 25%. */
const SLOW_START_EXIT = 1.25;
/** Below this share of the limit in flight the caller is app-limited and the limit does not grow. */
const APP_LIMITED_SHARE = 0.5;
/**
 * Fewest samples of a window during slow start, where a window is otherwise one RTT (`limit` calls):
 * `minWindowSamples` calls at a limit of 1 against a 200 ms model take 2 s per window, and slow start
 * took 4-5 s to reach a parallelism of 8 (a 10 s lab arm at 63% of capacity).
 */
const SLOW_START_MIN_SAMPLES = 3;

function check(ok: boolean, name: string, rule: string, value: unknown): void {
  if (!ok) throw new RangeError(`AdaptiveLimit option ${name} must be ${rule}, got ${String(value)}`);
}

/**
 * A delay-based AIMD concurrency limit with a decaying baseline RTT (Vegas / gradient family).
 *
 * Per window of about one RTT of samples it compares the window's minimum RTT with a baseline (the
 * minimum of recent windows' minima): below `baseline * (1 + tolerance)` it grows by sqrt(limit), above it cuts
 * to `backoff` x the concurrency at which the RTT would be the baseline. The cut is deep enough to drain the
 * upstream's queue every cycle, so the baseline is re-measured by normal operation instead of by pinning the
 * limit low (Envoy's minRTT probe). A cut that
 * does not lower the RTT means the upstream itself got slower and re-bases the baseline at once.
 * O(1) and allocation-free per sample.
 */
export class AdaptiveLimit implements ConcurrencyLimit {
  private current: number;
  private estimate: number;
  private readonly min: number;
  private readonly max: number;
  private readonly tolerance: number;
  private readonly backoff: number;
  private readonly dropBackoff: number;
  private readonly minWindowSamples: number;
  private readonly halfBaselineWindowMs: number;
  private readonly now: () => number;
  private readonly listeners: ((limit: number) => void)[] = [];

  // Current measurement window (calls admitted since the last decision): every sample counts towards closing it,
  // only successes with a finite RTT feed the RTT minimum and the mean in-flight count.
  private windowStartMs = -Infinity;
  private windowSamples = 0;
  private windowCount = 0;
  private windowRttMin = Infinity;
  private windowRttSum = 0;
  private windowInflightSum = 0;
  private windowMaxInflight = 0;
  private windowDropped = false;

  // Baseline: windowed minimum of the windows' RTTs, kept in two half-window buckets.
  private bucketMin = Infinity;
  private previousBucketMin = Infinity;
  private bucketStartMs: number;

  /** Until the first cut or drop the limit doubles per window (TCP slow start) instead of adding sqrt. */
  private slowStart = true;
  /** True when the previous window cut for queueing: this window tells whether the cut drained a queue. */
  private justCut = false;
  /** Window RTT and mean in-flight count that triggered the last queueing cut. */
  private rttAtCut = 0;
  private inflightAtCut = 0;

  /** @throws RangeError naming the first invalid option */
  constructor(options: AdaptiveLimitOptions) {
    const { min, max } = options;
    check(Number.isInteger(min) && min >= 1, 'min', 'an integer >= 1', min);
    check(Number.isInteger(max) && max >= min, 'max', `an integer >= min (${min})`, max);
    const initial = options.initial ?? min;
    check(
      Number.isInteger(initial) && initial >= min && initial <= max,
      'initial',
      `an integer in [${min}, ${max}]`,
      initial,
    );
    const tolerance = options.tolerance ?? 0.5;
    check(Number.isFinite(tolerance) && tolerance > 0, 'tolerance', 'a number > 0', tolerance);
    const backoff = options.backoff ?? 0.9;
    check(backoff > 0 && backoff < 1, 'backoff', 'a number in (0, 1)', backoff);
    const dropBackoff = options.dropBackoff ?? 0.7;
    check(dropBackoff > 0 && dropBackoff <= 1, 'dropBackoff', 'a number in (0, 1]', dropBackoff);
    const minWindowSamples = options.minWindowSamples ?? 10;
    check(
      Number.isInteger(minWindowSamples) && minWindowSamples >= 1,
      'minWindowSamples',
      'an integer >= 1',
      minWindowSamples,
    );
    const baselineWindowMs = options.baselineWindowMs ?? 10_000;
    check(
      Number.isFinite(baselineWindowMs) && baselineWindowMs > 0,
      'baselineWindowMs',
      'a number of ms > 0',
      baselineWindowMs,
    );
    const now = options.now ?? (() => performance.now());
    check(typeof now === 'function', 'now', 'a function', now);

    this.min = min;
    this.max = max;
    this.current = initial;
    this.estimate = initial;
    this.tolerance = tolerance;
    this.backoff = backoff;
    this.dropBackoff = dropBackoff;
    this.minWindowSamples = minWindowSamples;
    this.halfBaselineWindowMs = baselineWindowMs / 2;
    this.now = now;
    this.bucketStartMs = now();
  }

  /** The current limit (integer in [min, max]). */
  get limit(): number {
    return this.current;
  }

  /** The baseline RTT in ms the limit is steering against (Infinity before the first window). */
  get baselineRttMs(): number {
    return Math.min(this.bucketMin, this.previousBucketMin);
  }

  onSample(rttMs: number, inflight: number, dropped: boolean): void {
    // A call admitted before the last decision describes the old limit: measuring it would make every
    // decision lag one more RTT behind its own effect (and overshoot).
    if (this.now() - rttMs < this.windowStartMs) return;
    this.windowSamples++;
    if (dropped) {
      this.windowDropped = true;
    } else if (rttMs >= 0 && Number.isFinite(rttMs)) {
      this.windowCount++;
      this.windowRttSum += rttMs;
      if (rttMs < this.windowRttMin) this.windowRttMin = rttMs;
      this.windowInflightSum += inflight;
      if (inflight > this.windowMaxInflight) this.windowMaxInflight = inflight;
    }
    const minSamples = this.slowStart ? Math.min(this.minWindowSamples, SLOW_START_MIN_SAMPLES) : this.minWindowSamples;
    if (this.windowSamples >= minSamples && this.windowSamples >= this.current) this.closeWindow();
  }

  onChange(listener: (limit: number) => void): void {
    this.listeners.push(listener);
  }

  private closeWindow(): void {
    const dropped = this.windowDropped;
    const count = this.windowCount;
    // The window's fastest call: a queue at the upstream delays every call in the window, while a stall of
    // this process (GC, a busy shared core) inflates only the calls it overlapped, so the minimum keeps the
    // first signal and drops the noise that made the mean cut the limit below the upstream's parallelism.
    const rtt = count > 0 ? this.windowRttMin : Number.NaN;
    const meanRtt = this.windowRttSum / count;
    const inflight = count > 0 ? this.windowInflightSum / count : Number.NaN;
    const appLimited = this.windowMaxInflight < this.current * APP_LIMITED_SHARE;
    this.windowStartMs = this.now();
    this.windowSamples = 0;
    this.windowCount = 0;
    this.windowRttMin = Infinity;
    this.windowRttSum = 0;
    this.windowInflightSum = 0;
    this.windowMaxInflight = 0;
    this.windowDropped = false;

    if (dropped) {
      this.justCut = false;
      this.slowStart = false;
      this.set(this.estimate * this.dropBackoff);
      return;
    }
    if (count === 0) return;

    if (this.baselineRttMs === Infinity) {
      // The first window only measures: there is nothing yet to compare it with.
      this.observeBaseline(rtt);
      return;
    }
    const afterCut = this.justCut;
    this.justCut = false;
    if (afterCut && rtt > this.rttAtCut * NOT_QUEUEING_RATIO) {
      // The cut did not drain anything: the upstream is slower, not queued. Re-base half-way (geometric
      // mean) at once: a true slowdown repeats this within a few cycles, while a window still queued
      // (the cut landed above the upstream's parallelism) inflates the baseline only by the square root.
      const rebased = Math.sqrt(Math.max(this.baselineRttMs, 0) * rtt);
      this.bucketMin = rebased;
      this.previousBucketMin = rebased;
      this.bucketStartMs = this.now();
    } else {
      this.observeBaseline(rtt);
    }

    const baseline = this.baselineRttMs;
    if (rtt > baseline * (1 + this.tolerance)) {
      // Cut to just below the concurrency at which the RTT would be the baseline (Little's law on the
      // window: throughput = inflight / rtt): that drains the upstream's queue, so the next windows
      // re-measure the baseline. Never more than MAX_CUT at once, never a raise.
      this.cut(rtt, inflight, (this.backoff * inflight * baseline) / rtt);
    } else if (
      afterCut &&
      this.inflightAtCut >= 4 &&
      inflight <= this.inflightAtCut * PROPORTIONAL_MIN_STEP &&
      rtt < ((this.rttAtCut * inflight) / this.inflightAtCut) * PROPORTIONAL_SLACK
    ) {
      // The RTT fell in proportion to the in-flight count: the upstream is still queued at the new level,
      // so the baseline itself was measured in a queue (e.g. started above the upstream's parallelism).
      this.cut(rtt, inflight, this.estimate * QUEUED_BASELINE_CUT);
    } else if (!appLimited) {
      // Slow start ends as soon as the RTT starts to rise (HyStart), not only at the first cut. It reads the
      // window mean: right after a doubling the fastest calls have not met the new queue yet, and doubling
      // past the upstream's backlog makes a burst of 503s that opens the breaker.
      if (meanRtt > baseline * SLOW_START_EXIT) this.slowStart = false;
      this.set(this.slowStart ? this.estimate * 2 : this.estimate + Math.sqrt(this.estimate));
    }
  }

  private cut(rtt: number, inflight: number, target: number): void {
    this.justCut = true;
    this.rttAtCut = rtt;
    this.inflightAtCut = inflight;
    this.slowStart = false;
    this.set(Math.min(this.estimate, Math.max(this.estimate * MAX_CUT, target)));
  }

  private observeBaseline(rtt: number): void {
    const nowMs = this.now();
    const elapsedMs = nowMs - this.bucketStartMs;
    if (elapsedMs >= this.halfBaselineWindowMs) {
      // After a whole quiet baseline window both buckets are stale.
      this.previousBucketMin = elapsedMs >= 2 * this.halfBaselineWindowMs ? Infinity : this.bucketMin;
      this.bucketMin = Infinity;
      this.bucketStartMs = nowMs;
    }
    if (rtt < this.bucketMin) this.bucketMin = rtt;
  }

  private set(estimate: number): void {
    this.estimate = Math.min(this.max, Math.max(this.min, estimate));
    const limit = Math.min(this.max, Math.max(this.min, Math.round(this.estimate)));
    if (limit === this.current) return;
    this.current = limit;
    for (let i = 0; i < this.listeners.length; i++) this.listeners[i]!(limit);
  }
}
