/**
 * The loader's error registry: every failure has a stable code, a process exit code and a flag
 * that tells the retry policy whether another attempt can help. Codes are pinned by a test.
 */

/** Everything the loader knows about one kind of failure. */
export interface ErrorSpec {
  /** Process exit code of the CLI for this failure. */
  readonly exitCode: number;
  /** Whether a fresh attempt may succeed (network trouble, 5xx, 429, attempt timeout). */
  readonly retryable: boolean;
  /** What the code means, for docs and `--help`. */
  readonly summary: string;
}

/** Stable error codes and their exit codes; the one place that decides either. */
export const ERRORS = {
  LOADER_USAGE: { exitCode: 2, retryable: false, summary: 'bad command line or flag value' },
  LOADER_SOURCE_NOT_FOUND: {
    exitCode: 3,
    retryable: false,
    summary: 'the source does not exist (HTTP 404/410, missing file)',
  },
  LOADER_SOURCE_REJECTED: {
    exitCode: 4,
    retryable: false,
    summary: 'the source refused the request (any other HTTP 4xx, unreadable file)',
  },
  LOADER_SOURCE_UNAVAILABLE: {
    exitCode: 5,
    retryable: true,
    summary: 'network error, HTTP 5xx or 429, or truncated body; retries exhausted',
  },
  LOADER_TIMEOUT: { exitCode: 6, retryable: true, summary: 'an attempt exceeded --timeout; retries exhausted' },
  LOADER_CHECKSUM_MISMATCH: { exitCode: 7, retryable: false, summary: 'the downloaded bytes do not match --sha256' },
  LOADER_INVALID_MODEL: { exitCode: 8, retryable: false, summary: 'onnxruntime cannot load the downloaded file' },
  LOADER_IO: {
    exitCode: 9,
    retryable: false,
    summary: 'the temporary or target file could not be written, synced or renamed',
  },
  LOADER_ABORTED: { exitCode: 143, retryable: false, summary: 'interrupted by SIGTERM or SIGINT; nothing installed' },
  LOADER_INTERNAL: { exitCode: 1, retryable: false, summary: 'unexpected failure (a bug)' },
} as const satisfies Record<string, ErrorSpec>;

/** One of the loader's stable error codes. */
export type LoaderErrorCode = keyof typeof ERRORS;

/** Optional details a loader error may carry. */
export interface LoaderErrorDetails {
  /** Delay the server asked for (Retry-After), in milliseconds. */
  readonly retryAfterMs?: number;
  /** The error this one wraps. */
  readonly cause?: unknown;
}

/** A failure with a stable code; its message is the one line the CLI prints. */
export class LoaderError extends Error {
  override readonly name = 'LoaderError';
  /** Stable code from {@link ERRORS}. */
  readonly code: LoaderErrorCode;
  /** Delay the server asked for before the next attempt, in milliseconds. */
  readonly retryAfterMs: number | undefined;

  constructor(code: LoaderErrorCode, message: string, details: LoaderErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.code = code;
    this.retryAfterMs = details.retryAfterMs;
  }

  /** Process exit code for this error. */
  get exitCode(): number {
    return ERRORS[this.code].exitCode;
  }

  /** Whether the retry policy may try again. */
  get retryable(): boolean {
    return ERRORS[this.code].retryable;
  }
}

/** Turns anything thrown into a LoaderError; unknown errors become LOADER_INTERNAL. */
export function toLoaderError(err: unknown): LoaderError {
  if (err instanceof LoaderError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new LoaderError('LOADER_INTERNAL', `unexpected error: ${message}`, { cause: err });
}
