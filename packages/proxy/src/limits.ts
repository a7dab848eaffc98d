import type { Settings } from './config.js';
import { AdaptiveLimit } from './limit/adaptive-limit.js';
import { StaticLimit, type ConcurrencyLimit } from './limit/limit.js';

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

/** Upstream connections to keep: enough for the highest limit the sidecar may admit. */
export function poolConnections(concurrency: Settings['concurrency']): number {
  return concurrency.mode === 'static' ? concurrency.limit : concurrency.max;
}
