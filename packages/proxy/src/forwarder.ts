import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import { Writable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { Pool } from 'undici';
import { UpstreamProtocolError, UpstreamStatusError, UpstreamTimeoutError, UpstreamUnavailableError } from './errors.js';
import type { Handler, ProxyRequest } from './pipeline.js';

/** Headers that describe one connection, not the message (RFC 9110 §7.6.1), plus ones undici manages. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'expect', // Node already answered 100-continue; undici refuses to send it
]);

/** Connection-level failures: the upstream is not there (503), as opposed to broke the protocol (502). */
const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'EADDRNOTAVAIL',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/** Options of the upstream connection pool (Istio `connectionPool` meaning). */
export interface PoolOptions {
  /** upstream connections; at least the concurrency limit so admitted requests never wait for a socket */
  readonly connections: number;
  readonly connectTimeoutMs: number;
  /** 0 = unlimited */
  readonly maxRequestsPerConnection: number;
  readonly idleTimeoutMs: number;
}

/** Creates the keep-alive pool to the one upstream origin. */
export function createPool(origin: string, options: PoolOptions): Pool {
  return new Pool(origin, {
    connections: options.connections,
    pipelining: 1,
    connectTimeout: options.connectTimeoutMs,
    keepAliveTimeout: options.idleTimeoutMs,
    keepAliveMaxTimeout: options.idleTimeoutMs,
    // Our own per-request timer bounds the call; undici's are only a backstop.
    headersTimeout: 0,
    bodyTimeout: 0,
    ...(options.maxRequestsPerConnection > 0 ? { maxRequestsPerClient: options.maxRequestsPerConnection } : {}),
  });
}

/** Mutable knobs of the forwarder (SIGHUP reload changes them in place). */
export interface ForwarderOptions {
  /** time the upstream has to finish its answer */
  timeoutMs: number;
  /** client deadline header (lower case); rewritten upstream to the budget left after queueing */
  deadlineHeader?: string;
  /** called with the upstream call's duration in milliseconds (metrics) */
  readonly onUpstreamDone?: (ms: number) => void;
}

/** Per-request state the hoisted callbacks need; one small object per request. */
interface Exchange {
  readonly request: ProxyRequest;
  timer: NodeJS.Timeout | undefined;
  timeout: UpstreamTimeoutError | undefined;
}

/**
 * The only code that touches the network: streams the request to the upstream on `dispatcher` and the
 * answer back to the client. Resolves with the status once the answer is complete; a 5xx is passed
 * through to the client and then rejected as `UpstreamStatusError` so the breaker counts it.
 * @throws UpstreamTimeoutError, UpstreamUnavailableError, UpstreamProtocolError, or the abort reason
 */
export function forwarder(getDispatcher: () => Dispatcher, options: ForwarderOptions): Handler {
  return async function forward(request: ProxyRequest) {
    const { req, controller } = request;
    const exchange: Exchange = { request, timer: undefined, timeout: undefined };
    const remaining = request.deadline - performance.now();
    const byDeadline = remaining < options.timeoutMs;
    exchange.timer = setTimeout(onTimeout, byDeadline ? Math.max(0, remaining) : options.timeoutMs, exchange, byDeadline);
    const started = performance.now();
    let status: number;
    try {
      const hasBody = req.headers['content-length'] !== undefined ? req.headers['content-length'] !== '0' : req.headers['transfer-encoding'] !== undefined;
      await getDispatcher().stream(
        {
          path: request.path,
          method: req.method as Dispatcher.HttpMethod,
          headers: withBudget(upstreamHeaders(req.headers, req.socket.remoteAddress), options.deadlineHeader, remaining),
          body: hasBody ? req : null,
          signal: controller.signal,
          opaque: exchange,
        },
        writeResponseHead,
      );
      status = request.res.statusCode;
    } catch (err) {
      throw controller.signal.aborted ? (controller.signal.reason as Error) : classify(err);
    } finally {
      clearTimeout(exchange.timer);
      options.onUpstreamDone?.(performance.now() - started);
    }
    if (status >= 500) throw new UpstreamStatusError(status);
    return { status };
  };
}

function onTimeout(exchange: Exchange, byDeadline: boolean): void {
  exchange.timeout = new UpstreamTimeoutError(byDeadline ? 'the client deadline passed while the upstream was answering' : 'the upstream did not answer in time', byDeadline);
  exchange.request.controller.abort(exchange.timeout);
}

function writeResponseHead({ statusCode, headers, opaque }: Dispatcher.StreamFactoryData<Exchange>): Writable {
  const res = opaque.request.res;
  const extra = connectionTokens(headers.connection);
  for (const name in headers) {
    if (HOP_BY_HOP.has(name) || (extra !== undefined && extra.includes(name))) continue;
    res.setHeader(name, headers[name] as string | string[]);
  }
  res.statusCode = statusCode;
  const length = headers['content-length'];
  return new ClientSink(res, typeof length === 'string' ? Number(length) : -1);
}

/**
 * The writable undici streams the upstream body into. Not `res` itself: undici destroys its writable when
 * the upstream fails, and a destroyed `res` could no longer carry the 502 that `respond.fail` owes the client
 * when no byte of the answer has gone out yet (upstream closed right after its headers). A class, so a
 * request costs one object and no closures.
 */
class ClientSink extends Writable {
  /**
   * @param remaining bytes of body still to come (the upstream's content-length), -1 when unknown: the
   * chunk that completes the body ends the response, so a small answer goes out in one write.
   */
  constructor(
    private readonly res: ServerResponse,
    private remaining: number,
  ) {
    super();
  }
  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.remaining >= 0 && (this.remaining -= chunk.length) <= 0) {
      this.res.end(chunk);
      callback();
    } else if (this.res.write(chunk)) callback();
    else this.res.once('drain', callback);
  }
  override _final(callback: (error?: Error | null) => void): void {
    if (!this.res.writableEnded) this.res.end();
    callback();
  }
}

/**
 * Header names a Connection header lists beyond `keep-alive`/`close` (they are hop-by-hop too), parsed once
 * per message; undefined in the common case where it lists none.
 */
function connectionTokens(connection: string | string[] | undefined): string[] | undefined {
  if (connection === undefined) return undefined;
  const value = (Array.isArray(connection) ? connection.join(',') : connection).toLowerCase();
  if (value === 'keep-alive' || value === 'close') return undefined;
  const tokens = value.split(',').map((t) => t.trim()).filter((t) => t !== '' && t !== 'keep-alive' && t !== 'close');
  return tokens.length > 0 ? tokens : undefined;
}

/** The end-to-end request headers plus X-Forwarded-For/-Proto; `host` is kept but never routes. */
export function upstreamHeaders(headers: IncomingHttpHeaders, remoteAddress: string | undefined): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  const extra = connectionTokens(headers.connection);
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || HOP_BY_HOP.has(name) || (extra !== undefined && extra.includes(name))) continue;
    out[name] = value;
  }
  const client = remoteAddress ?? 'unknown';
  const prior = headers['x-forwarded-for'];
  out['x-forwarded-for'] = prior === undefined ? client : `${Array.isArray(prior) ? prior.join(', ') : prior}, ${client}`;
  out['x-forwarded-proto'] = 'http';
  return out;
}

/** Propagates the deadline: the upstream sees the milliseconds left, not the client's original budget. */
function withBudget(headers: Record<string, string | string[]>, name: string | undefined, remainingMs: number): Record<string, string | string[]> {
  if (name !== undefined && remainingMs !== Infinity && headers[name] !== undefined) headers[name] = String(Math.max(0, Math.floor(remainingMs)));
  return headers;
}

function classify(err: unknown): Error {
  const code = (err as { code?: string } | null)?.code;
  const message = (err as Error | null)?.message ?? String(err);
  if (code !== undefined && UNAVAILABLE_CODES.has(code)) return new UpstreamUnavailableError(`upstream unavailable: ${message}`);
  return new UpstreamProtocolError(`upstream error: ${message}`);
}
