import type { RuntimeStats } from '../runtime-stats.js';

/**
 * Numbers per request in a batch from the driver's worker: sendMs, latencyMs, status, bytesIn, bytesOut, error,
 * reason, class (its index in PRIORITY_CLASSES, -1 without a mix).
 */
export const FIELDS = 8;

/** What the builtin driver's worker thread posts to the lab (strings: per-batch table the indexes point into, -1 = none). */
export type WorkerMessage =
  | { type: 'started' }
  | { type: 'batch'; records: Float64Array; lags: Float64Array; strings: string[]; scheduled: number }
  | { type: 'done'; runtime: RuntimeStats }
  | { type: 'error'; message: string };
