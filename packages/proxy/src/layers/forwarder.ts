import type { IncomingHttpHeaders } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import { Readable } from 'node:stream';
import { isDeepStrictEqual } from 'node:util';
import type * as Undici from 'undici';
import type { Dispatcher, Pool } from 'undici';
import type { Settings } from '../config.js';
import {
  UpstreamProtocolError,
  UpstreamStatusError,
  UpstreamTimeoutError,
  UpstreamUnavailableError,
} from '../errors.js';
import { Http1Pool, type BodySource, type UpstreamController, type UpstreamHandler } from '../http1/client.js';
import type { Http1Request, Http1Response } from '../http1/server.js';
import { upstreamFailed } from '../outcomes.js';
import type { CancelListener, ClientResponse, Handler, ProxyRequest, Reconfigurable } from '../pipeline.js';
import { endToEnd, endToEndRaw, upstreamHeaders, upstreamRawHeaders, withBudget } from './headers.js';

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
  /** HTTP/2 with prior knowledge (h2c) instead of HTTP/1.1 */
  readonly h2c?: boolean;
  /** streams per HTTP/2 connection (h2c only) */
  readonly maxConcurrentStreams?: number;
}

/**
 * undici, loaded when a request first needs it (an HTTP/2 client's, or one sent h2c): HTTP/1.1 to HTTP/1.1,
 * the common path, goes through the engine, and undici's modules cost ~12 MB of heap and 12 MB of RSS.
 */
let undici: typeof Undici | undefined;

/** Loads undici (once); {@link createPool} needs it. */
export async function loadUndici(): Promise<typeof Undici> {
  return (undici ??= await import('undici'));
}

/**
 * Creates undici's keep-alive pool to the one upstream origin (HTTP/1.1, or h2c: streams over few connections).
 * @throws Error when undici has not been loaded ({@link loadUndici})
 */
export function createPool(origin: string, options: PoolOptions): Pool {
  if (undici === undefined) throw new Error('createPool: loadUndici() first');
  return new undici.Pool(origin, {
    connections: options.connections,
    ...(options.h2c === true
      ? {
          allowH2: true,
          useH2c: true, // the Pool's connector reads it here, each Client in h2Options
          h2Options: { useH2c: true, maxConcurrentStreams: options.maxConcurrentStreams ?? 100 },
        }
      : { pipelining: 1 }),
    connectTimeout: options.connectTimeoutMs,
    keepAliveTimeout: options.idleTimeoutMs,
    keepAliveMaxTimeout: options.idleTimeoutMs,
    // Our own per-request timer bounds the call; undici's are only a backstop.
    headersTimeout: 0,
    bodyTimeout: 0,
    ...(options.maxRequestsPerConnection > 0 ? { maxRequestsPerClient: options.maxRequestsPerConnection } : {}),
  });
}

/** The pool options both upstream clients take from the settings. */
function poolOptions(options: ForwarderOptions): PoolOptions {
  return {
    connections: poolConnections(options.concurrency),
    connectTimeoutMs: options.upstream.connectTimeoutMs,
    maxRequestsPerConnection: options.upstream.maxRequestsPerConnection,
    idleTimeoutMs: options.upstream.idleTimeoutMs,
  };
}

/** Upstream connections to keep: enough for the highest limit the sidecar may admit. */
export function poolConnections(concurrency: Settings['concurrency']): number {
  return concurrency.mode === 'static' ? concurrency.limit : concurrency.max;
}

/** The protocol spoken to the upstream (`sidecar.upstream.protocol`). */
export type UpstreamProtocol = Settings['upstream']['protocol'];

/** The knobs {@link forwarder} reads on every request (the {@link Forwarder} changes them on reload). */
export interface ForwardOptions {
  /** time the upstream has to start its answer (its head) */
  timeoutMs: number;
  /** after the head, the longest gap between two pieces of the answer (default: no limit) */
  streamIdleTimeoutMs?: number;
  /** `auto` (default): HTTP/2 clients' requests go h2c, HTTP/1.1 ones HTTP/1.1 */
  protocol?: UpstreamProtocol;
  /** client deadline header (lower case); rewritten upstream to the budget left after queueing */
  deadlineHeader?: string;
  /** called with the upstream call's duration in milliseconds (metrics) */
  readonly onUpstreamDone?: (ms: number) => void;
}

/**
 * What an upstream call is, whichever client makes it: the cancellation listener of the request, the target
 * of its one timer, and the settling of the forwarder's promise. No per-request closures on the hot path.
 */
abstract class Call implements CancelListener {
  timer: NodeJS.Timeout | undefined;
  /** `performance.now()` when the timer fires */
  dueAt = Infinity;
  status = 0;
  /** the cut comes from the client's deadline, not the upstream timeout */
  byDeadline = false;
  /** `performance.now()` when the head arrived (0 before), and when the last piece of the answer did */
  headAt = 0;
  lastDataAt = 0;
  /** a gRPC call's grpc-status: from the trailers, or the head of a trailers-only answer */
  grpcStatus: number | undefined = undefined;
  protected done = false;
  resolve!: (status: number) => void;
  reject!: (err: Error) => void;

  constructor(
    readonly request: ProxyRequest,
    readonly streamIdleTimeoutMs: number,
  ) {}

  /** the upstream client's handle on this call, once it has started it (undici's and the engine's alike) */
  private upstream: { abort(reason: Error): void } | undefined;

  /** The upstream client started the call: abort it at once if the request was cancelled meanwhile. */
  onRequestStart(controller: { abort(reason: Error): void }): void {
    this.upstream = controller;
    const reason = this.request.cancellation.reason;
    if (reason !== undefined) controller.abort(reason);
  }

  /** The request was cancelled (client gone, timeout): abort the upstream call, or fail now if not started. */
  handleEvent(): void {
    const reason = this.request.cancellation.reason as Error;
    if (this.upstream !== undefined) this.upstream.abort(reason);
    else this.fail(reason);
  }

  /**
   * The answer's head has arrived. The upstream timeout bounded the wait for it; from now on only an idle
   * stream, or the client's deadline, is cut: a stream that is producing runs as long as it produces. The
   * timer already set stays when it fires no later than an idle cut could be due (the usual case: the upstream
   * timeout is shorter than the stream idle timeout), so a call sets one timer, not two.
   */
  protected headArrived(): void {
    const now = (this.headAt = this.lastDataAt = performance.now());
    if (!this.byDeadline && this.dueAt > now + this.streamIdleTimeoutMs) {
      clearTimeout(this.timer);
      this.arm(this.streamIdleTimeoutMs, now);
    }
  }

  /** Sets the timer for `ms`, or for the client's deadline when that comes first (then the deadline cuts). */
  arm(ms: number, now: number): void {
    const toDeadline = this.request.deadline - now;
    if (toDeadline <= ms) this.byDeadline = true;
    const wait = Math.min(ms, toDeadline);
    this.dueAt = now + wait;
    if (wait !== Infinity) this.timer = setTimeout(onTimeout, Math.max(0, wait), this);
  }

  /** The answer is complete. */
  protected succeed(): void {
    this.finish();
    this.resolve(this.status);
  }

  /** The call failed: the cancellation's reason when it was cancelled, else what the error means. */
  fail(err: Error): void {
    if (this.done) return;
    this.finish();
    this.reject(this.request.cancellation.reason ?? classify(err));
  }

  private finish(): void {
    this.done = true;
    clearTimeout(this.timer);
    this.request.cancellation.unlisten(this);
  }
}

/** A call through undici (HTTP/2 clients, and HTTP/1.1 clients sent h2c): writes the answer straight to `res`. */
class UndiciCall extends Call implements Dispatcher.DispatchHandler {
  /** the upstream's end-to-end headers, held back until the first body byte (then sent in one writeHead) */
  private headers: Record<string, string | string[]> | undefined;
  /** bytes of body still expected (the upstream's content-length), -1 when unknown */
  private remaining = -1;

  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders): void {
    if (statusCode < 200) return; // informational answers are not relayed
    // Held until the first body byte: an upstream that fails before it still gets a clean 502.
    this.headers = endToEnd(headers);
    this.status = statusCode;
    const request = this.request;
    if (request.grpc) {
      const status = headers['grpc-status'];
      if (typeof status === 'string') this.grpcStatus = Number(status);
    }
    // HTTP/2 answers may end with trailers: they end at onResponseEnd, not at the last content-length byte.
    const length = request.protocol === 'h2' ? undefined : headers['content-length'];
    this.remaining = typeof length === 'string' ? Number(length) : -1;
    this.headArrived();
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    const res = this.request.res;
    this.lastDataAt = performance.now();
    this.writeHead(res);
    // The chunk that completes a content-length body ends the response: a small answer is one write.
    if (this.remaining >= 0 && (this.remaining -= chunk.length) <= 0) res.end(chunk);
    else if (!(res as Http1Response).write(chunk)) {
      controller.pause();
      res.once('drain', () => controller.resume());
    }
  }

  onResponseEnd(_controller: Dispatcher.DispatchController, trailers?: IncomingHttpHeaders): void {
    if (this.done) return;
    const { res, protocol, grpc } = this.request;
    if (protocol === 'h2') this.endH2(res as Http2ServerResponse, trailers);
    else {
      this.writeHead(res);
      if (!res.writableEnded) res.end();
    }
    if (grpc && trailers !== undefined) {
      const status = trailers['grpc-status'];
      if (typeof status === 'string') this.grpcStatus = Number(status);
    }
    this.succeed();
  }

  onResponseError(_controller: Dispatcher.DispatchController | undefined, err: Error): void {
    this.fail(err);
  }

  /**
   * Ends an HTTP/2 client's answer as the upstream ended it: a bodiless answer is one HEADERS frame that ends
   * the stream (gRPC's trailers-only), trailers go as trailers.
   */
  private endH2(res: Http2ServerResponse, trailers: IncomingHttpHeaders | undefined): void {
    const tail = trailers === undefined ? undefined : endToEnd(trailers);
    const hasTrailers = tail !== undefined && Object.keys(tail).length > 0;
    if (this.headers !== undefined && !hasTrailers) {
      const { stream } = res;
      if (!stream.destroyed && !stream.headersSent)
        stream.respond({ ...this.headers, ':status': this.status }, { endStream: true });
      this.headers = undefined;
      return;
    }
    this.writeHead(res);
    if (hasTrailers) res.addTrailers(tail);
    if (!res.writableEnded) res.end();
  }

  private writeHead(res: ClientResponse): void {
    if (this.headers === undefined) return;
    (res as Http1Response).writeHead(this.status, this.headers);
    this.headers = undefined;
  }
}

/**
 * A call over the HTTP/1.1 engine's client (an HTTP/1.1 client's request sent HTTP/1.1, the common path):
 * raw header lists both ways, the answer written straight to the client's socket.
 */
class Http1Call extends Call implements UpstreamHandler {
  /** the upstream's end-to-end head, held back until the first body byte (then written with it) */
  private headers: string[] | undefined;
  private message: string | undefined;
  private length = -1;

  onResponseStart(_controller: UpstreamController, statusCode: number, rawHeaders: string[], message: string): void {
    const headers: string[] = [];
    this.length = endToEndRaw(rawHeaders, headers);
    this.headers = headers;
    this.status = statusCode;
    this.message = message;
    if (this.request.grpc) this.grpcStatus = rawGrpcStatus(rawHeaders);
    this.headArrived();
  }

  onResponseData(controller: UpstreamController, chunk: Buffer): void {
    const res = this.request.res as Http1Response;
    this.lastDataAt = performance.now();
    this.writeHead(res);
    if (!res.write(chunk)) {
      controller.pause();
      res.once('drain', () => controller.resume());
    }
  }

  onResponseEnd(_controller: UpstreamController, rawTrailers: string[] | undefined): void {
    if (this.done) return;
    const res = this.request.res as Http1Response;
    this.writeHead(res);
    let trailers: string[] | undefined;
    if (rawTrailers !== undefined && rawTrailers.length > 0) {
      endToEndRaw(rawTrailers, (trailers = []));
      if (this.request.grpc) this.grpcStatus = rawGrpcStatus(rawTrailers) ?? this.grpcStatus;
    }
    res.end(undefined, trailers);
    this.succeed();
  }

  onResponseError(_controller: UpstreamController | undefined, err: Error): void {
    this.fail(err);
  }

  private writeHead(res: Http1Response): void {
    if (this.headers === undefined) return;
    res.writeRawHead(this.status, this.message, this.headers, this.length);
    this.headers = undefined;
  }
}

/** A raw header list's grpc-status, if it has one. */
function rawGrpcStatus(raw: readonly string[]): number | undefined {
  for (let i = 0; i < raw.length; i += 2)
    if ((raw[i] as string).toLowerCase() === 'grpc-status') return Number(raw[i + 1]);
  return undefined;
}

/** The upstream clients the forwarder calls through. */
export interface Upstreams {
  /** undici: HTTP/2 clients' requests (HTTP/1.1 or h2c upstream), and HTTP/1.1 ones sent h2c */
  undici(h2c: boolean): Dispatcher;
  /** the HTTP/1.1 engine's client: HTTP/1.1 clients' requests sent HTTP/1.1 */
  http1?(): Http1Pool;
}

/**
 * The only code that touches the network: streams the request to the upstream and the answer back to the
 * client. Resolves with the status once the answer is complete; a 5xx is passed through to the client and
 * then rejected as `UpstreamStatusError` so the breaker counts it.
 * @throws UpstreamTimeoutError, UpstreamUnavailableError, UpstreamProtocolError, or the abort reason
 */
export function forwarder(upstreams: Upstreams, options: ForwardOptions): Handler {
  return async function forward(request: ProxyRequest) {
    const h2c = options.protocol === 'h2c' || (options.protocol !== 'http1' && request.protocol === 'h2');
    const engine = !h2c && request.protocol === 'http1' && upstreams.http1 !== undefined;
    const streamIdle = options.streamIdleTimeoutMs ?? Infinity;
    if (!engine && undici === undefined) await loadUndici();
    const call: Call = engine ? new Http1Call(request, streamIdle) : new UndiciCall(request, streamIdle);
    const started = performance.now();
    const remaining = request.deadline - started;
    const finished = new Promise<number>((resolve, reject) => {
      call.resolve = resolve;
      call.reject = reject;
    });
    call.arm(options.timeoutMs, started);
    request.cancellation.listen(call);
    let status: number;
    try {
      try {
        if (engine) dispatchHttp1(upstreams, request, remaining, options, call as Http1Call);
        else dispatchUndici(upstreams, request, h2c, remaining, options, call as UndiciCall);
      } catch (err) {
        // A request the client refuses outright (closed pool, invalid option) settles here, not at the timeout.
        call.fail(err as Error);
      }
      status = await finished;
    } finally {
      options.onUpstreamDone?.(performance.now() - started);
    }
    const { grpcStatus } = call;
    if (upstreamFailed(status, grpcStatus)) throw new UpstreamStatusError(status, grpcStatus, call.headAt);
    return { status, grpcStatus, headAt: call.headAt };
  };
}

function dispatchHttp1(
  upstreams: Upstreams,
  request: ProxyRequest,
  remaining: number,
  options: ForwardOptions,
  call: Http1Call,
): void {
  const req = request.req as Http1Request;
  (upstreams.http1 as () => Http1Pool)().dispatch(
    {
      method: req.method,
      path: request.path,
      headers: upstreamRawHeaders(
        req.rawHeaders,
        req.socket.remoteAddress,
        options.deadlineHeader,
        remaining,
        request.grpc,
      ),
      body: req.bodyLength !== 0 ? req : null,
      bodyLength: req.bodyLength,
    },
    call,
  );
}

function dispatchUndici(
  upstreams: Upstreams,
  request: ProxyRequest,
  h2c: boolean,
  remaining: number,
  options: ForwardOptions,
  call: UndiciCall,
): void {
  const { req } = request;
  const hasBody =
    request.protocol === 'h2'
      ? !(req as Http2ServerRequest).stream.endAfterHeaders
      : (req as Http1Request).bodyLength !== 0;
  const headers = withBudget(
    upstreamHeaders(req.headers, req.socket.remoteAddress),
    options.deadlineHeader,
    remaining,
    request.grpc,
  );
  // gRPC servers want `te: trailers` (the one TE value HTTP/2 allows); hop-by-hop, so passed on per hop.
  if (h2c && req.headers.te === 'trailers') headers.te = 'trailers';
  upstreams.undici(h2c).dispatch(
    {
      path: request.path,
      method: req.method as Dispatcher.HttpMethod,
      headers,
      body: hasBody
        ? request.protocol === 'h2'
          ? (req as Http2ServerRequest)
          : bodyStream(req as Http1Request)
        : null,
    },
    call,
  );
}

/** A Readable of an HTTP/1.1 request's body, for undici (an HTTP/1.1 client's request sent h2c). */
function bodyStream(source: BodySource): Readable {
  const stream = new Readable({ read: () => source.resume() });
  source.start({
    data: (chunk) => {
      if (!stream.push(chunk)) source.pause();
    },
    end: () => stream.push(null),
    error: (err) => stream.destroy(err),
  });
  return stream;
}

/**
 * The call's timer: before the head, the upstream timeout (or the client's deadline) has passed; after it,
 * the stream is cut when it has been idle for the stream idle timeout or the deadline has passed, and
 * otherwise the timer is set again for what is left (one timer per call, not one per chunk).
 */
function onTimeout(call: Call): void {
  const { request } = call;
  if (call.headAt === 0 || call.byDeadline) {
    request.cancellation.cancel(
      new UpstreamTimeoutError(
        call.byDeadline
          ? 'the client deadline passed while the upstream was answering'
          : 'the upstream did not answer in time',
        call.byDeadline,
      ),
    );
    return;
  }
  const now = performance.now();
  const idleMs = now - call.lastDataAt;
  if (idleMs >= call.streamIdleTimeoutMs) {
    request.cancellation.cancel(new UpstreamTimeoutError('the upstream stream was idle longer than allowed'));
    return;
  }
  call.arm(call.streamIdleTimeoutMs - idleMs, now);
}

function classify(err: unknown): Error {
  const code = (err as { code?: string } | null)?.code;
  const message = (err as Error | null)?.message ?? String(err);
  // The code only: the system's message names the upstream's address, which is the pod's business.
  if (code !== undefined && UNAVAILABLE_CODES.has(code))
    return new UpstreamUnavailableError(`upstream unavailable: the model server cannot be reached (${code})`);
  return new UpstreamProtocolError(`upstream error: ${message}`);
}

/** What the forwarder reads from the settings: the upstream section, the deadline header, and the limit (pool size). */
export type ForwarderOptions = Pick<Settings, 'upstream' | 'deadline' | 'concurrency'>;

/**
 * The innermost part of the pipeline: {@link forwarder} over keep-alive pools to the one upstream origin, one
 * per protocol (HTTP/1.1, h2c; `sidecar.upstream.protocol` chooses per request). A reload changes the
 * timeouts, protocol and deadline header in place and swaps the pools when their settings changed.
 */
export class Forwarder implements Reconfigurable<ForwarderOptions> {
  /** The handler the layers wrap. */
  readonly handle: Handler;
  /** the HTTP/1.1 engine's pool (HTTP/1.1 clients), made when a request first needs it, as the others */
  private http1Pool: Http1Pool | undefined;
  /** undici's HTTP/1.1 pool (HTTP/2 clients with `upstream.protocol: http1`) */
  private pool: Pool | undefined;
  /** undici's h2c pool */
  private h2Pool: Pool | undefined;
  private options: ForwarderOptions;
  private readonly knobs: ForwardOptions;

  /**
   * @param origin the upstream, e.g. `http://127.0.0.1:8000`
   * @param onUpstreamDone called with each upstream call's duration in ms (metrics)
   */
  constructor(
    private readonly origin: string,
    options: ForwarderOptions,
    onUpstreamDone?: (ms: number) => void,
  ) {
    this.options = options;
    this.knobs = {
      timeoutMs: options.upstream.timeoutMs,
      streamIdleTimeoutMs: options.upstream.streamIdleTimeoutMs,
      protocol: options.upstream.protocol,
      deadlineHeader: options.deadline.header,
      onUpstreamDone,
    };
    this.handle = forwarder(
      {
        undici: (h2c) =>
          h2c ? (this.h2Pool ??= this.newPool(this.options, true)) : (this.pool ??= this.newPool(this.options, false)),
        http1: () => (this.http1Pool ??= this.newHttp1Pool(this.options)),
      },
      this.knobs,
    );
  }

  /** Applies reloaded options; new pools when the upstream settings or the pool size changed. */
  reconfigure(options: ForwarderOptions): void {
    const previous = this.options;
    this.options = options;
    this.knobs.timeoutMs = options.upstream.timeoutMs;
    this.knobs.streamIdleTimeoutMs = options.upstream.streamIdleTimeoutMs;
    this.knobs.protocol = options.upstream.protocol;
    this.knobs.deadlineHeader = options.deadline.header;
    if (
      !isDeepStrictEqual(previous.upstream, options.upstream) ||
      poolConnections(previous.concurrency) !== poolConnections(options.concurrency)
    ) {
      const old = [this.http1Pool, this.pool, this.h2Pool];
      this.http1Pool = this.pool = this.h2Pool = undefined;
      for (const pool of old) void pool?.close();
    }
  }

  /** Closes the pools' connections; closing again (a stop after a drain) is a no-op. */
  async close(): Promise<void> {
    await Promise.all(
      [this.http1Pool, this.pool, this.h2Pool].map((pool) =>
        pool === undefined || pool.closed ? undefined : pool.close(),
      ),
    );
  }

  private newHttp1Pool(options: ForwarderOptions): Http1Pool {
    return new Http1Pool(this.origin, poolOptions(options));
  }

  private newPool(options: ForwarderOptions, h2c: boolean): Pool {
    return createPool(this.origin, {
      ...poolOptions(options),
      h2c,
      maxConcurrentStreams: options.upstream.maxConcurrentStreams,
    });
  }
}
