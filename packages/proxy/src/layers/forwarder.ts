import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
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
import type { CancelListener, Handler, ProxyRequest, Reconfigurable } from '../pipeline.js';
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

/** Upstream connections to keep: enough for the highest limit the sidecar may admit. */
export function poolConnections(concurrency: Settings['concurrency']): number {
  return concurrency.mode === 'static' ? concurrency.limit : concurrency.max;
}

/** The knobs {@link forwarder} reads on every request (the {@link Forwarder} changes them on reload). */
export interface ForwardOptions {
  /** time the upstream has to finish its answer */
  timeoutMs: number;
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
  /** the upstream's end-to-end headers, held back until the first body byte (then sent in one writeHead) */
  private headers: Record<string, string | string[]> | undefined;
  /** bytes of body still expected (the upstream's content-length), -1 when unknown */
  private remaining = -1;
  private upstream: Dispatcher.DispatchController | undefined;
  private done = false;
  resolve!: (status: number) => void;
  reject!: (err: Error) => void;

  constructor(readonly request: ProxyRequest) {}

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
    const length = headers['content-length'];
    this.remaining = typeof length === 'string' ? Number(length) : -1;
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    const res = this.request.res;
    this.writeHead(res);
    // The chunk that completes a content-length body ends the response: a small answer is one write.
    if (this.remaining >= 0 && (this.remaining -= chunk.length) <= 0) res.end(chunk);
    else if (!res.write(chunk)) {
      controller.pause();
      res.once('drain', () => controller.resume());
    }
  }

  onResponseEnd(): void {
    if (this.done) return;
    const res = this.request.res;
    this.writeHead(res);
    if (!res.writableEnded) res.end();
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

  private writeHead(res: ServerResponse): void {
    if (this.headers === undefined) return;
    res.writeHead(this.status, this.headers);
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
export function forwarder(getDispatcher: () => Dispatcher, options: ForwardOptions): Handler {
  return async function forward(request: ProxyRequest) {
    const { req } = request;
    const call = new UpstreamCall(request);
    const remaining = request.deadline - performance.now();
    const byDeadline = remaining < options.timeoutMs;
    const finished = new Promise<number>((resolve, reject) => {
      call.resolve = resolve;
      call.reject = reject;
    });
    call.timer = setTimeout(onTimeout, byDeadline ? Math.max(0, remaining) : options.timeoutMs, request, byDeadline);
    request.cancellation.listen(call);
    const started = performance.now();
    let status: number;
    try {
      const hasBody =
        req.headers['content-length'] !== undefined
          ? req.headers['content-length'] !== '0'
          : req.headers['transfer-encoding'] !== undefined;
      try {
        getDispatcher().dispatch(
          {
            path: request.path,
            method: req.method as Dispatcher.HttpMethod,
            headers: withBudget(
              upstreamHeaders(req.headers, req.socket.remoteAddress),
              options.deadlineHeader,
              remaining,
            ),
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
    if (status >= 500) throw new UpstreamStatusError(status);
    return { status };
  };
}

function onTimeout(request: ProxyRequest, byDeadline: boolean): void {
  request.cancellation.cancel(
    new UpstreamTimeoutError(
      byDeadline
        ? 'the client deadline passed while the upstream was answering'
        : 'the upstream did not answer in time',
      byDeadline,
    ),
  );
}

function classify(err: unknown): Error {
  const code = (err as { code?: string } | null)?.code;
  const message = (err as Error | null)?.message ?? String(err);
  if (code !== undefined && UNAVAILABLE_CODES.has(code))
    return new UpstreamUnavailableError(`upstream unavailable: ${message}`);
  return new UpstreamProtocolError(`upstream error: ${message}`);
}

/** What the forwarder reads from the settings: the upstream section, the deadline header, and the limit (pool size). */
export type ForwarderOptions = Pick<Settings, 'upstream' | 'deadline' | 'concurrency'>;

/**
 * The innermost part of the pipeline: {@link forwarder} over a keep-alive pool to the one upstream origin.
 * A reload changes the timeout and deadline header in place and swaps the pool when its settings changed.
 */
export class Forwarder implements Reconfigurable<ForwarderOptions> {
  /** The handler the layers wrap. */
  readonly handle: Handler;
  private pool: Pool;
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
    this.pool = this.newPool(options);
    this.knobs = { timeoutMs: options.upstream.timeoutMs, deadlineHeader: options.deadline.header, onUpstreamDone };
    this.handle = forwarder(() => this.pool, this.knobs);
  }

  /** Applies reloaded options; a new pool when the upstream settings or the pool size changed. */
  reconfigure(options: ForwarderOptions): void {
    const previous = this.options;
    this.options = options;
    this.knobs.timeoutMs = options.upstream.timeoutMs;
    this.knobs.deadlineHeader = options.deadline.header;
    if (
      !isDeepStrictEqual(previous.upstream, options.upstream) ||
      poolConnections(previous.concurrency) !== poolConnections(options.concurrency)
    ) {
      const old = this.pool;
      this.pool = this.newPool(options);
      void old.close();
    }
  }

  /** Closes the pool's connections. */
  close(): Promise<void> {
    return this.pool.close();
  }

  private newPool(options: ForwarderOptions): Pool {
    return createPool(this.origin, {
      connections: poolConnections(options.concurrency),
      connectTimeoutMs: options.upstream.connectTimeoutMs,
      maxRequestsPerConnection: options.upstream.maxRequestsPerConnection,
      idleTimeoutMs: options.upstream.idleTimeoutMs,
    });
  }
}
