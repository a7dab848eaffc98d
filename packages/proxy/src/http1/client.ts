import { Connection, Exchange, Http1ClientError, type Owner } from './connection.js';

export { Http1ClientError } from './connection.js';

// The sidecar's upstream HTTP/1.1 client: a keep-alive pool of `net` sockets, each with one llhttp parser
// (Node's own, see llhttp.ts) reused across its requests. One request at a time per connection (no
// pipelining). Per request it allocates one Exchange (the controller, the body sink and the state in one
// object) and the head string; no closures, emitters or promises.
//
// The caller guarantees the request line and header values are valid HTTP (they come from llhttp or from
// our own code), so they are written as they are, as latin1 (byte-preserving for what llhttp decoded).

/** Options of an {@link Http1Pool}. */
export interface Http1PoolOptions {
  /** max open upstream connections; requests beyond wait FIFO for a free one */
  readonly connections: number;
  readonly connectTimeoutMs: number;
  /** 0 = unlimited; after N requests the connection is closed, not reused */
  readonly maxRequestsPerConnection: number;
  /** an idle keep-alive connection is closed after this (or the upstream's `Keep-Alive: timeout` less 1 s, if lower) */
  readonly idleTimeoutMs: number;
}

/** A request body (the sidecar's server request implements it). */
export interface BodySource {
  /** Starts delivery to `sink`: data()/end()/error() are called later (possibly synchronously for buffered chunks). */
  start(sink: BodySink): void;
  /** the upstream socket's write buffer is full */
  pause(): void;
  /** the upstream socket drained, or the exchange ended while paused (what comes after is ignored) */
  resume(): void;
}

/** Where a {@link BodySource} delivers. Calls after the exchange ended are ignored. */
export interface BodySink {
  data(chunk: Buffer): void;
  end(): void;
  error(err: Error): void;
}

/** One request to the upstream. */
export interface UpstreamRequest {
  readonly method: string;
  readonly path: string;
  /** flat [name, value, ...], end-to-end only (no hop-by-hop, content-length or transfer-encoding) */
  readonly headers: readonly string[];
  readonly body: BodySource | null;
  /** the body's length when known (sent as content-length), -1 unknown (sent chunked) */
  readonly bodyLength: number;
}

/** Lets a handler cancel its request or hold the answer's bytes back. */
export interface UpstreamController {
  /** Destroys the connection (never reused) and fails the request with `reason`. */
  abort(reason: Error): void;
  pause(): void;
  resume(): void;
}

/** Receives one request's answer. */
export interface UpstreamHandler {
  /** synchronously inside dispatch() */
  onRequestStart(controller: UpstreamController): void;
  /** final (>= 200) answers only; 1xx are swallowed */
  onResponseStart(
    controller: UpstreamController,
    statusCode: number,
    rawHeaders: string[],
    statusMessage: string,
  ): void;
  /** body bytes (de-chunked) */
  onResponseData(controller: UpstreamController, chunk: Buffer): void;
  onResponseEnd(controller: UpstreamController, rawTrailers: string[] | undefined): void;
  /** at most once, never after onResponseEnd; `controller` undefined when dispatch refused the request */
  onResponseError(controller: UpstreamController | undefined, err: Error): void;
}

/**
 * A keep-alive pool of HTTP/1.1 connections to one origin, one request at a time per connection; requests
 * beyond `connections` wait FIFO. Connection failures carry the system's code (ECONNREFUSED...), undici's
 * codes for its own failures ({@link Http1ClientError}).
 */
export class Http1Pool implements Owner {
  readonly hostLine: string;
  readonly maxRequestsPerConnection: number;
  readonly idleTimeoutMs: number;
  private readonly host: string;
  private readonly port: number;
  private readonly connections: number;
  private readonly connectTimeoutMs: number;
  private readonly open = new Set<Connection>();
  /** idle connections, most recently used last (taken first: the others may idle out) */
  private readonly idle: Connection[] = [];
  private readonly queue: Exchange[] = [];
  private closing = false;
  private whenClosed: Promise<void> | undefined;
  private resolveClosed: (() => void) | undefined;

  /**
   * @param origin `http://host:port`
   * @throws Error naming every option that is not valid
   */
  constructor(origin: string, options: Http1PoolOptions) {
    const url = new URL(origin);
    const problems: string[] = [];
    if (url.protocol !== 'http:') problems.push(`origin must be http://host:port, got ${JSON.stringify(origin)}`);
    const check = (name: keyof Http1PoolOptions, min: number): void => {
      const value = options[name];
      if (!Number.isInteger(value) || value < min) problems.push(`${name} must be an integer >= ${min}, got ${value}`);
    };
    check('connections', 1);
    check('connectTimeoutMs', 1);
    check('maxRequestsPerConnection', 0);
    check('idleTimeoutMs', 1);
    if (problems.length > 0) throw new Error(`invalid HTTP/1.1 pool options: ${problems.join('; ')}`);
    this.host = url.hostname.replace(/^\[(.*)\]$/, '$1');
    this.port = url.port === '' ? 80 : Number(url.port);
    this.hostLine = `host: ${url.host}\r\n`;
    this.connections = options.connections;
    this.connectTimeoutMs = options.connectTimeoutMs;
    this.maxRequestsPerConnection = options.maxRequestsPerConnection;
    this.idleTimeoutMs = options.idleTimeoutMs;
  }

  /** True once {@link close} or {@link destroy} was called: new requests are refused. */
  get closed(): boolean {
    return this.closing;
  }

  /** Sends `request` on an idle connection, a new one, or when one is free; the answer goes to `handler`. */
  dispatch(request: UpstreamRequest, handler: UpstreamHandler): void {
    if (this.closing) {
      handler.onResponseError(undefined, new Http1ClientError('the upstream pool is closed', 'UND_ERR_CLOSED'));
      return;
    }
    const ex = new Exchange(this, request, handler);
    handler.onRequestStart(ex);
    if (ex.done) return; // aborted at once
    const conn = this.idle.pop();
    if (conn !== undefined) conn.start(ex);
    else if (this.open.size < this.connections) this.connect(ex);
    else this.queue.push(ex);
  }

  /**
   * Refuses new requests and closes idle connections now; requests in flight and waiting still complete
   * (a reload swaps pools under traffic), each connection closes after its last. Resolves when all are closed.
   */
  close(): Promise<void> {
    if (!this.closing) {
      this.closing = true;
      for (const conn of this.idle.splice(0)) conn.destroy();
    }
    return this.settled();
  }

  /** Like {@link close}, but fails waiting and in-flight requests with `reason` now. */
  destroy(reason: Error = new Http1ClientError('the upstream pool was destroyed', 'UND_ERR_DESTROYED')): Promise<void> {
    this.closing = true;
    for (const ex of this.queue.splice(0)) this.fail(ex, reason);
    for (const conn of this.open) {
      const ex = conn.exchange;
      if (ex !== undefined) this.fail(ex, reason);
      else conn.destroy();
    }
    this.idle.length = 0;
    return this.settled();
  }

  /** Ends `ex` with `err` (abort, a body error): its connection, if any, is destroyed, never reused. */
  fail(ex: Exchange, err: Error): void {
    if (ex.done) return;
    const conn = ex.conn;
    ex.settle();
    if (conn !== undefined) {
      conn.exchange = undefined;
      conn.destroy(err);
    } else {
      const i = this.queue.indexOf(ex);
      if (i >= 0) this.queue.splice(i, 1);
    }
    ex.handler.onResponseError(ex, err);
  }

  /** `conn` is going down while idle: it is not handed out again. */
  dropIdle(conn: Connection): void {
    const i = this.idle.indexOf(conn);
    if (i >= 0) this.idle.splice(i, 1);
  }

  /** `conn` finished an answer: it takes the next waiting request, idles, or closes. */
  release(conn: Connection): void {
    const max = this.maxRequestsPerConnection;
    if (!conn.keepAlive || conn.idleMs <= 0 || (max > 0 && conn.requests >= max)) return conn.destroy();
    const next = this.queue.shift();
    if (next !== undefined) conn.start(next);
    else if (this.closing) conn.destroy();
    else {
      conn.idle();
      this.idle.push(conn);
    }
  }

  /** `conn`'s socket closed, with `ex` unfinished on it or not: retry or fail it, and open for waiting requests. */
  connectionClosed(conn: Connection, ex: Exchange | undefined): void {
    this.open.delete(conn);
    if (ex !== undefined && !ex.done) {
      ex.conn = undefined;
      if (conn.mayRetry(ex)) {
        ex.retried = true;
        this.connect(ex);
      } else {
        ex.settle();
        const err = conn.error ?? new Http1ClientError('other side closed', 'UND_ERR_SOCKET');
        ex.handler.onResponseError(ex, err);
      }
    }
    while (this.queue.length > 0 && this.open.size < this.connections) this.connect(this.queue.shift() as Exchange);
    if (this.open.size === 0) this.resolveClosed?.();
  }

  private connect(ex: Exchange): void {
    const conn = new Connection(this, this.host, this.port, this.connectTimeoutMs);
    this.open.add(conn);
    conn.start(ex);
  }

  private settled(): Promise<void> {
    if (this.whenClosed === undefined) {
      if (this.open.size === 0) this.whenClosed = Promise.resolve();
      else this.whenClosed = new Promise<void>((resolve) => (this.resolveClosed = resolve));
    }
    return this.whenClosed;
  }
}
