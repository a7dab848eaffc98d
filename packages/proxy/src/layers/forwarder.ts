import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import { isDeepStrictEqual } from 'node:util';
import type { Dispatcher } from 'undici';
import { Pool } from 'undici';
import type { Settings } from '../config.js';
import {
  UpstreamProtocolError,
  UpstreamStatusError,
  UpstreamTimeoutError,
  UpstreamUnavailableError,
} from '../errors.js';
import { upstreamFailed } from '../outcomes.js';
import type { CancelListener, ClientResponse, Handler, ProxyRequest, Reconfigurable } from '../pipeline.js';
import { endToEnd, upstreamHeaders, withBudget } from './headers.js';

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

/** Creates the keep-alive pool to the one upstream origin (HTTP/1.1, or h2c: streams over few connections). */
export function createPool(origin: string, options: PoolOptions): Pool {
  return new Pool(origin, {
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
 * One upstream call: undici's dispatch handler, the cancellation listener of the request and the timer
 * target, all in one object (no per-request closures on the hot path). Writes the answer straight to `res`.
 */
class UpstreamCall implements Dispatcher.DispatchHandler, CancelListener {
  timer: NodeJS.Timeout | undefined;
  status = 0;
  /** the cut comes from the client's deadline, not the upstream timeout */
  byDeadline = false;
  /** `performance.now()` when the head arrived (0 before), and when the last piece of the answer did */
  headAt = 0;
  lastDataAt = 0;
  /** a gRPC call's grpc-status: from the trailers, or the head of a trailers-only answer */
  grpcStatus: number | undefined = undefined;
  /** the upstream's end-to-end headers, held back until the first body byte (then sent in one writeHead) */
  private headers: Record<string, string | string[]> | undefined;
  /** bytes of body still expected (the upstream's content-length), -1 when unknown */
  private remaining = -1;
  private upstream: Dispatcher.DispatchController | undefined;
  private done = false;
  resolve!: (status: number) => void;
  reject!: (err: Error) => void;

  constructor(
    readonly request: ProxyRequest,
    readonly streamIdleTimeoutMs: number,
  ) {}

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.upstream = controller;
    const reason = this.request.cancellation.reason;
    if (reason !== undefined) controller.abort(reason);
  }

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
    // The upstream timeout bounded the wait for the head; from now on only an idle stream, or the client's
    // deadline, is cut: a stream that is producing runs as long as it produces.
    this.headAt = this.lastDataAt = performance.now();
    if (!this.byDeadline) {
      clearTimeout(this.timer);
      this.arm(this.streamIdleTimeoutMs, this.headAt);
    }
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    const res = this.request.res;
    this.lastDataAt = performance.now();
    this.writeHead(res);
    // The chunk that completes a content-length body ends the response: a small answer is one write.
    if (this.remaining >= 0 && (this.remaining -= chunk.length) <= 0) res.end(chunk);
    else if (!(res as ServerResponse).write(chunk)) {
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
    this.finish();
    this.resolve(this.status);
  }

  onResponseError(_controller: Dispatcher.DispatchController | undefined, err: Error): void {
    if (this.done) return;
    this.finish();
    const reason = this.request.cancellation.reason;
    this.reject(reason ?? classify(err));
  }

  /** The request was cancelled (client gone, timeout): abort the upstream call, or fail now if not started. */
  handleEvent(): void {
    const reason = this.request.cancellation.reason as Error;
    if (this.upstream !== undefined) this.upstream.abort(reason);
    else this.onResponseError(undefined, reason);
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

  /** Sets the timer for `ms`, or for the client's deadline when that comes first (then the deadline cuts). */
  arm(ms: number, now: number): void {
    const toDeadline = this.request.deadline - now;
    if (toDeadline <= ms) this.byDeadline = true;
    const wait = Math.min(ms, toDeadline);
    if (wait !== Infinity) this.timer = setTimeout(onTimeout, Math.max(0, wait), this);
  }

  private writeHead(res: ClientResponse): void {
    if (this.headers === undefined) return;
    (res as ServerResponse).writeHead(this.status, this.headers);
    this.headers = undefined;
  }

  private finish(): void {
    this.done = true;
    clearTimeout(this.timer);
    this.request.cancellation.unlisten(this);
  }
}

/**
 * The only code that touches the network: streams the request to the upstream on `dispatcher` and the
 * answer back to the client. Resolves with the status once the answer is complete; a 5xx is passed
 * through to the client and then rejected as `UpstreamStatusError` so the breaker counts it.
 * @throws UpstreamTimeoutError, UpstreamUnavailableError, UpstreamProtocolError, or the abort reason
 */
export function forwarder(getDispatcher: (h2c: boolean) => Dispatcher, options: ForwardOptions): Handler {
  return async function forward(request: ProxyRequest) {
    const { req } = request;
    const call = new UpstreamCall(request, options.streamIdleTimeoutMs ?? Infinity);
    const remaining = request.deadline - performance.now();
    const byDeadline = (call.byDeadline = remaining < options.timeoutMs);
    const finished = new Promise<number>((resolve, reject) => {
      call.resolve = resolve;
      call.reject = reject;
    });
    call.timer = setTimeout(onTimeout, byDeadline ? Math.max(0, remaining) : options.timeoutMs, call);
    request.cancellation.listen(call);
    const started = performance.now();
    let status: number;
    try {
      const h2c = options.protocol === 'h2c' || (options.protocol !== 'http1' && request.protocol === 'h2');
      const hasBody =
        request.protocol === 'h2'
          ? !(req as Http2ServerRequest).stream.endAfterHeaders
          : req.headers['content-length'] !== undefined
            ? req.headers['content-length'] !== '0'
            : req.headers['transfer-encoding'] !== undefined;
      const headers = withBudget(
        upstreamHeaders(req.headers, req.socket.remoteAddress),
        options.deadlineHeader,
        remaining,
        request.grpc,
      );
      // gRPC servers want `te: trailers` (the one TE value HTTP/2 allows); hop-by-hop, so passed on per hop.
      if (h2c && req.headers.te === 'trailers') headers.te = 'trailers';
      try {
        getDispatcher(h2c).dispatch(
          {
            path: request.path,
            method: req.method as Dispatcher.HttpMethod,
            headers,
            body: hasBody ? req : null,
          },
          call,
        );
      } catch (err) {
        // A request undici refuses outright (closed pool, invalid option) settles here, not at the timeout.
        call.onResponseError(undefined, err as Error);
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

/**
 * The call's timer: before the head, the upstream timeout (or the client's deadline) has passed; after it,
 * the stream is cut when it has been idle for the stream idle timeout or the deadline has passed, and
 * otherwise the timer is set again for what is left (one timer per call, not one per chunk).
 */
function onTimeout(call: UpstreamCall): void {
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
  private pool: Pool;
  /** the h2c pool, made when a request first needs it */
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
    this.pool = this.newPool(options, false);
    this.knobs = {
      timeoutMs: options.upstream.timeoutMs,
      streamIdleTimeoutMs: options.upstream.streamIdleTimeoutMs,
      protocol: options.upstream.protocol,
      deadlineHeader: options.deadline.header,
      onUpstreamDone,
    };
    this.handle = forwarder(
      (h2c) => (h2c ? (this.h2Pool ??= this.newPool(this.options, true)) : this.pool),
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
      const old = [this.pool, this.h2Pool];
      this.pool = this.newPool(options, false);
      this.h2Pool = undefined;
      for (const pool of old) void pool?.close();
    }
  }

  /** Closes the pools' connections; closing again (a stop after a drain) is a no-op. */
  async close(): Promise<void> {
    await Promise.all(
      [this.pool, this.h2Pool].map((pool) => (pool === undefined || pool.closed ? undefined : pool.close())),
    );
  }

  private newPool(options: ForwarderOptions, h2c: boolean): Pool {
    return createPool(this.origin, {
      connections: poolConnections(options.concurrency),
      connectTimeoutMs: options.upstream.connectTimeoutMs,
      maxRequestsPerConnection: options.upstream.maxRequestsPerConnection,
      idleTimeoutMs: options.upstream.idleTimeoutMs,
      h2c,
      maxConcurrentStreams: options.upstream.maxConcurrentStreams,
    });
  }
}
