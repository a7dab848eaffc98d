import type { Dispatcher } from 'undici';
import { LoaderError } from '../errors.js';
import type { Source, SourceBody } from './source.js';

/** Redirects an HTTP source may follow (GCS and artifact stores redirect to signed URLs). */
export const MAX_REDIRECTIONS = 5;

/**
 * The HTTP client of the http(s):// and gs:// sources: undici, imported on first use because
 * loading it costs ~170 ms and ~27 MiB that file:// and "already present" runs never need.
 */
export class HttpClient {
  readonly #given: Dispatcher | undefined;
  #own: Promise<Dispatcher> | undefined;

  /** Uses `dispatcher` when given; otherwise creates (and later closes) an Agent that follows redirects. */
  constructor(dispatcher?: Dispatcher) {
    this.#given = dispatcher;
  }

  /**
   * Sends a GET; the signal aborts it, body included.
   * @throws whatever undici throws (connection refused, reset, aborted ...)
   */
  async get(url: URL, signal: AbortSignal): Promise<Dispatcher.ResponseData> {
    const dispatcher = await this.#dispatcher();
    return dispatcher.request({ origin: url.origin, path: `${url.pathname}${url.search}`, method: 'GET', signal });
  }

  /** Imports undici and creates the Agent, ahead of the first request. */
  async ready(): Promise<void> {
    await this.#dispatcher();
  }

  /** Closes the Agent this client created, if any. */
  async close(): Promise<void> {
    if (this.#own !== undefined) await (await this.#own).close();
  }

  #dispatcher(): Promise<Dispatcher> {
    if (this.#given !== undefined) return Promise.resolve(this.#given);
    this.#own ??= import('undici').then(({ Agent, interceptors }) =>
      new Agent().compose(interceptors.redirect({ maxRedirections: MAX_REDIRECTIONS })),
    );
    return this.#own;
  }
}

/** Reads a model with an HTTP GET (`http://host/model.onnx`, `https://...`). */
export function httpSource(url: URL, http: HttpClient, label = `GET ${url.href}`): Source {
  return {
    label,
    prepare: () => http.ready(),
    async open(signal: AbortSignal): Promise<SourceBody> {
      let response: Dispatcher.ResponseData;
      try {
        response = await http.get(url, signal);
      } catch (err) {
        throw networkError(label, err);
      }
      const { statusCode, headers, body } = response;
      if (statusCode >= 200 && statusCode < 300) {
        const length = Number(headers['content-length']);
        return { body, expectedBytes: Number.isSafeInteger(length) ? length : undefined };
      }
      await body.dump().catch(() => undefined);
      throw statusError(label, statusCode, headers['retry-after']);
    },
  };
}

/** Classifies an HTTP status that is not 2xx: 5xx and 429 are retryable, every other code is not. */
export function statusError(
  label: string,
  statusCode: number,
  retryAfter: string | string[] | undefined,
  now = Date.now(),
): LoaderError {
  const message = `${label} answered HTTP ${statusCode}`;
  if (statusCode === 429 || statusCode >= 500) {
    const retryAfterMs = parseRetryAfterMs(Array.isArray(retryAfter) ? retryAfter[0] : retryAfter, now);
    return new LoaderError('LOADER_SOURCE_UNAVAILABLE', message, retryAfterMs === undefined ? {} : { retryAfterMs });
  }
  if (statusCode === 404 || statusCode === 410)
    return new LoaderError('LOADER_SOURCE_NOT_FOUND', `${message} (not retried)`);
  return new LoaderError('LOADER_SOURCE_REJECTED', `${message} (not retried)`);
}

/**
 * Parses a Retry-After header: delay-seconds or an HTTP-date (RFC 9110 §10.2.3).
 * @returns milliseconds to wait, or undefined when absent or malformed
 */
export function parseRetryAfterMs(value: string | undefined, now = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  // Every HTTP-date form names a day or month; without that, Date.parse would read "-1" as a year.
  if (!/[a-z]{3}/i.test(text)) return undefined;
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

function networkError(label: string, err: unknown): LoaderError {
  const code = (err as { code?: unknown }).code;
  const message = err instanceof Error ? err.message : String(err);
  const reason = typeof code === 'string' && !message.includes(code) ? `${code} ${message}` : message;
  return new LoaderError('LOADER_SOURCE_UNAVAILABLE', `${label} failed: ${reason || 'connection error'}`, {
    cause: err,
  });
}
