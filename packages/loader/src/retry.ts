import { setTimeout as sleep } from 'node:timers/promises';
import { LoaderError, toLoaderError } from './errors.js';
import { formatMs } from './duration.js';

/** How often and how patiently to try. */
export interface RetryPolicy {
  /** Attempts after the first one. */
  readonly retries: number;
  /** Limit for one attempt, in milliseconds; the attempt's signal aborts when it passes. */
  readonly timeoutMs: number;
  /** Backoff base in milliseconds: retry n (from 0) waits random(0, min(max, base * 2^n)). */
  readonly backoffMs: number;
  /** Cap on one wait in milliseconds, applied to Retry-After too. */
  readonly maxBackoffMs: number;
}

/** Announcement of a retry about to be waited for. */
export interface RetryNotice {
  /** The attempt that failed, from 1. */
  readonly attempt: number;
  /** Attempts in all. */
  readonly attempts: number;
  /** Why it failed. */
  readonly error: LoaderError;
  /** How long we wait before the next attempt, in milliseconds. */
  readonly delayMs: number;
}

/** Optional collaborators of {@link retry}. */
export interface RetryOptions {
  /** What is being attempted, for messages (e.g. `GET http://host/model.onnx`). */
  readonly label: string;
  /** Aborts the whole operation (waits included), e.g. on SIGTERM. */
  readonly signal?: AbortSignal;
  /** Called before each wait. */
  readonly onRetry?: (notice: RetryNotice) => void;
  /** Source of jitter in [0, 1); Math.random by default. */
  readonly random?: () => number;
}

/**
 * Delay before retry number `retryIndex` (from 0): the server's Retry-After when given, else full
 * jitter over an exponential ceiling (AWS architecture blog, "Exponential Backoff And Jitter");
 * always capped by maxBackoffMs.
 */
export function backoffDelayMs(
  policy: RetryPolicy,
  retryIndex: number,
  retryAfterMs: number | undefined,
  random: () => number,
): number {
  if (retryAfterMs !== undefined) return Math.min(Math.max(0, retryAfterMs), policy.maxBackoffMs);
  const ceiling = Math.min(policy.maxBackoffMs, policy.backoffMs * 2 ** retryIndex);
  return Math.floor(random() * ceiling);
}

/**
 * Runs `attempt` until it succeeds, a non-retryable error occurs or the retries are used up.
 * Each attempt gets its own signal that aborts after policy.timeoutMs (or when options.signal aborts).
 * @throws LoaderError the non-retryable error, or the last retryable one with the attempt count appended
 */
export async function retry<T>(
  attempt: (signal: AbortSignal, attemptNumber: number) => Promise<T>,
  policy: RetryPolicy,
  options: RetryOptions,
): Promise<T> {
  const attempts = policy.retries + 1;
  const random = options.random ?? Math.random;
  for (let n = 1; ; n++) {
    let error: LoaderError;
    try {
      return await withTimeout(attempt, n, policy.timeoutMs, options);
    } catch (err) {
      error = toLoaderError(err);
    }
    if (!error.retryable) throw error;
    if (n >= attempts) {
      const tries = attempts === 1 ? '1 attempt' : `${attempts} attempts`;
      throw new LoaderError(error.code, `${error.message} (gave up after ${tries})`, { cause: error });
    }
    const delayMs = backoffDelayMs(policy, n - 1, error.retryAfterMs, random);
    options.onRetry?.({ attempt: n, attempts, error, delayMs });
    try {
      await sleep(delayMs, undefined, options.signal === undefined ? undefined : { signal: options.signal });
    } catch {
      throw aborted(options);
    }
  }
}

async function withTimeout<T>(
  attempt: (signal: AbortSignal, attemptNumber: number) => Promise<T>,
  n: number,
  timeoutMs: number,
  options: RetryOptions,
): Promise<T> {
  if (options.signal?.aborted === true) throw aborted(options);
  const controller = new AbortController();
  const timeout = new LoaderError(
    'LOADER_TIMEOUT',
    `${options.label}: no complete answer within ${formatMs(timeoutMs)}`,
  );
  const timer = setTimeout(() => controller.abort(timeout), timeoutMs);
  const onOuterAbort = (): void => controller.abort(aborted(options));
  options.signal?.addEventListener('abort', onOuterAbort, { once: true });
  try {
    return await attempt(controller.signal, n);
  } catch (err) {
    // Whatever the aborted library threw (AbortError, socket closed, ...), the reason is ours.
    if (controller.signal.aborted) throw controller.signal.reason;
    throw err;
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener('abort', onOuterAbort);
  }
}

function aborted(options: RetryOptions): LoaderError {
  return new LoaderError('LOADER_ABORTED', `${options.label}: interrupted`);
}
