import type { Settings } from '../config.js';
import { AdaptiveLimit } from './adaptive-limit.js';

/**
 * A concurrency limit: how many requests admission lets through to the upstream at once.
 * Static limits never move; adaptive ones learn from the latency samples admission reports.
 */
export interface ConcurrencyLimit {
  /** The current limit (an integer >= 1). Read on every admission decision, so it must be cheap. */
  readonly limit: number;
  /**
   * Reports one finished upstream call.
   * @param rttMs upstream latency of the call in milliseconds (monotonic clock)
   * @param inflight requests in flight to the upstream when this one was admitted (itself included)
   * @param dropped true when the call failed in a way that signals overload: timeout, 5xx, connection error
   */
  onSample(rttMs: number, inflight: number, dropped: boolean): void;
  /** Subscribes to limit changes (admission drains its queue when the limit grows; metrics update the gauge). */
  onChange(listener: (limit: number) => void): void;
}

/** A limit that never moves: Envoy's `max_requests` / Istio's `maxConnections` meaning. */
export class StaticLimit implements ConcurrencyLimit {
  /** @throws RangeError when `limit` is not an integer >= 1 */
  constructor(readonly limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`limit must be an integer >= 1, got ${limit}`);
  }
  onSample(): void {}
  onChange(): void {}
}

/**
 * The concurrency limit for `sidecar.concurrency`: static (the Istio-derived limit) or adaptive, learning
 * within [min, max]. Adaptive starts at `min` and slow-starts (doubles per RTT) while the latency stays flat:
 * starting from a static limit above the upstream's capacity overflowed its backlog, and the burst of
 * upstream 503s opened the breaker before the limit had a single window to learn from.
 */
export function createLimit(concurrency: Settings['concurrency']): ConcurrencyLimit {
  if (concurrency.mode === 'static') return new StaticLimit(concurrency.limit);
  return new AdaptiveLimit({ min: concurrency.min, max: concurrency.max });
}
