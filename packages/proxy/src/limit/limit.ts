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
