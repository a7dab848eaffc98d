import type { Settings } from './config.js';
import { AdaptiveLimit } from './limit/adaptive-limit.js';
import { StaticLimit, type ConcurrencyLimit } from './limit/limit.js';

/**
 * The concurrency limit for `sidecar.concurrency`: static (the Istio-derived limit) or adaptive, learning
 * within [min, max] and starting from the static limit so nothing is shed while it measures.
 */
export function createLimit(concurrency: Settings['concurrency']): ConcurrencyLimit {
  if (concurrency.mode === 'static') return new StaticLimit(concurrency.limit);
  const initial = Math.min(concurrency.max, Math.max(concurrency.min, concurrency.limit));
  return new AdaptiveLimit({ min: concurrency.min, max: concurrency.max, initial });
}

/** Upstream connections to keep: enough for the highest limit the sidecar may admit. */
export function poolConnections(concurrency: Settings['concurrency']): number {
  return concurrency.mode === 'static' ? concurrency.limit : concurrency.max;
}
