import { connect, type Socket } from 'node:net';
import {
  HTTPParser,
  kOnBody,
  kOnHeaders,
  kOnHeadersComplete,
  kOnMessageComplete,
  newParser,
  RESPONSE,
  type NativeParser,
  type ParseError,
} from './llhttp.js';
import type { BodySink, UpstreamController, UpstreamHandler, UpstreamRequest } from './client.js';

// One upstream connection of the HTTP/1.1 client (client.ts): a `net` socket and its llhttp parser, reused
// across requests, and the Exchange, the one object a request allocates (its controller, its body's sink and
// its state). The pool decides which exchange goes where; this file speaks HTTP/1.1 on the wire.

/** What a connection needs from its pool (Http1Pool). */
export interface Owner {
  /** `host: <origin>\r\n`, sent when the caller gives no host */
  readonly hostLine: string;
  readonly maxRequestsPerConnection: number;
  readonly idleTimeoutMs: number;
  /** ends `ex` with `err`: its connection is destroyed */
  fail(ex: Exchange, err: Error): void;
  /** `conn` finished an answer */
  release(conn: Connection): void;
  /** `conn` is going down while idle */
  dropIdle(conn: Connection): void;
  /** `conn`'s socket closed, `ex` unfinished on it or not */
  connectionClosed(conn: Connection, ex: Exchange | undefined): void;
}

/**
 * A failure of the client with a stable `code`: undici's codes where undici has one (`UND_ERR_CONNECT_TIMEOUT`,
 * `UND_ERR_SOCKET`, ...) so the forwarder classifies as before, llhttp's `HPE_*` for an unparsable answer.
 * System errors (ECONNREFUSED, ECONNRESET, ...) are passed on as Node raised them.
 */
export class Http1ClientError extends Error {
  override readonly name = 'Http1ClientError';
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

/** Methods a stale keep-alive connection's request may be sent again for (RFC 9110 §9.2.2). */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE']);
/** Methods whose empty body is still announced (`content-length: 0`), as undici does (RFC 9110 §8.6). */
const EXPECTS_PAYLOAD = new Set(['POST', 'PUT', 'PATCH']);
/** Socket failures that mean "the upstream had closed this idle connection" when no answer byte came. */
const STALE_CODES = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET']);
/** Subtracted from the upstream's `Keep-Alive: timeout` so we never send on a connection it is closing. */
const KEEP_ALIVE_MARGIN_MS = 1000;
/** Body chunks up to this size join the head (or their chunk framing) in one string write. */
const SMALL_CHUNK = 16 * 1024;
const LAST_CHUNK = '0\r\n\r\n';

type Latin1Buffer = Buffer & { latin1Slice(start: number, end: number): string };

/** The bytes of `chunk` as a latin1 string (one byte per char: the socket writes them back unchanged). */
function latin1(chunk: Buffer): string {
  return (chunk as Latin1Buffer).latin1Slice(0, chunk.length);
}

/** One request in the pool: its controller, its body's sink and its state, in one object. */
export class Exchange implements UpstreamController, BodySink {
  /** the connection carrying it (undefined while queued, and once it ended) */
  conn: Connection | undefined = undefined;
  done = false;
  bodyStarted = false;
  bodyDone = false;
  bodyPaused = false;
  responsePaused = false;
  retried = false;
  bodyBytes = 0;
  /** the request head, held back until the first body chunk or the end so both go in one write */
  head: string | undefined = undefined;

  constructor(
    readonly pool: Owner,
    readonly request: UpstreamRequest,
    readonly handler: UpstreamHandler,
  ) {}

  abort(reason: Error): void {
    this.pool.fail(this, reason);
  }

  /**
   * Marks the exchange ended (answered or failed). A body source we paused is resumed: what it delivers from
   * now on is ignored, and a paused source would hold its client's connection up for nothing.
   */
  settle(): void {
    this.done = true;
    this.conn = undefined;
    if (this.bodyPaused) {
      this.bodyPaused = false;
      this.request.body?.resume();
    }
  }

  pause(): void {
    this.responsePaused = true;
    this.conn?.socket.pause();
  }

  resume(): void {
    this.responsePaused = false;
    this.conn?.socket.resume();
  }

  data(chunk: Buffer): void {
    this.conn?.sendBody(this, chunk);
  }

  end(): void {
    this.conn?.endBody(this);
  }

  error(err: Error): void {
    this.pool.fail(this, err);
  }
}

// Connection states. DONE: the answer completed inside parser.execute(); the pool takes the connection back
// once execute() returned, so bytes after the answer in the same read are seen as unsolicited first.
const BUSY = 0;
const DONE = 1;
const IDLE = 2;
const DEAD = 3;

/** One upstream socket and its parser. */
export class Connection {
  readonly socket: Socket;
  readonly parser: NativeParser;
  exchange: Exchange | undefined = undefined;
  state = BUSY;
  /** requests started on this connection, the current one included */
  requests = 0;
  /** the first byte of the current answer arrived */
  begun = false;
  /** the current message is a 1xx */
  informational = false;
  /** the current answer lets the connection be reused (llhttp's verdict: version, Connection, framing) */
  keepAlive = false;
  /** how long the connection may idle, from the options and the upstream's Keep-Alive hint */
  idleMs: number;
  /** why the socket is going down (reported to the exchange at 'close') */
  error: Error | undefined = undefined;
  /** a long head's or the trailers' lines, as kOnHeaders delivers them */
  private pieces: string[] | undefined = undefined;
  private connectTimer: NodeJS.Timeout | undefined;
  private idleTimer: NodeJS.Timeout | undefined = undefined;
  private idleTimerMs = 0;

  constructor(
    readonly pool: Owner,
    host: string,
    port: number,
    connectTimeoutMs: number,
  ) {
    this.idleMs = pool.idleTimeoutMs;
    const socket = (this.socket = connect({ host, port, noDelay: true }));
    socket.on('connect', () => clearTimeout(this.connectTimer));
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('end', () => this.onEnd());
    socket.on('drain', () => this.onDrain());
    socket.on('error', (err: Error) => this.destroy(err));
    socket.on('close', () => this.onClose());
    this.connectTimer = setTimeout(onConnectTimeout, connectTimeoutMs, this, connectTimeoutMs);
    const parser = (this.parser = newParser(RESPONSE, 0));
    parser[HTTPParser.kOnMessageBegin] = () => this.onMessageBegin();
    parser[kOnHeaders] = (raw: string[]) => this.onHeaders(raw);
    parser[kOnHeadersComplete] = (
      _major: number,
      _minor: number,
      raw: string[] | undefined,
      _method: unknown,
      _url: unknown,
      status: number,
      message: string | undefined,
      upgrade: boolean,
      keepAlive: boolean,
    ) => this.onHeadersComplete(raw, status, message, upgrade, keepAlive);
    parser[kOnBody] = (chunk: Buffer) => this.onBody(chunk);
    parser[kOnMessageComplete] = () => this.onMessageComplete();
  }

  /** Sends `ex`'s head (now, or with the first body chunk). */
  start(ex: Exchange): void {
    this.exchange = ex;
    ex.conn = this;
    this.state = BUSY;
    this.requests++;
    this.begun = false;
    this.keepAlive = false;
    if (ex.responsePaused) this.socket.pause();
    const { method, path, headers, body, bodyLength } = ex.request;
    let head = `${method} ${path} HTTP/1.1\r\n`;
    let host = false;
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i] as string;
      if (name.length === 4 && name.toLowerCase() === 'host') host = true;
      head += `${name}: ${headers[i + 1] as string}\r\n`;
    }
    if (!host) head += this.pool.hostLine;
    const max = this.pool.maxRequestsPerConnection;
    // The last request announces the close, so the upstream does not hold the connection open for another.
    if (max > 0 && this.requests >= max) head += 'connection: close\r\n';
    if (body === null) {
      ex.bodyDone = true;
      this.socket.write(EXPECTS_PAYLOAD.has(method) ? `${head}content-length: 0\r\n\r\n` : `${head}\r\n`, 'latin1');
      return;
    }
    ex.head =
      bodyLength >= 0 ? `${head}content-length: ${bodyLength}\r\n\r\n` : `${head}transfer-encoding: chunked\r\n\r\n`;
    ex.bodyStarted = true;
    body.start(ex);
  }

  sendBody(ex: Exchange, chunk: Buffer): void {
    if (this.exchange !== ex || this.state !== BUSY || ex.bodyDone) return;
    const length = chunk.length;
    if (length === 0) return; // an empty chunk would end a chunked body
    const { bodyLength } = ex.request;
    ex.bodyBytes += length;
    if (bodyLength >= 0 && ex.bodyBytes > bodyLength) return this.pool.fail(ex, lengthMismatch(ex));
    const socket = this.socket;
    const head = ex.head ?? '';
    ex.head = undefined;
    let ok: boolean;
    if (bodyLength >= 0) {
      if (head === '') ok = socket.write(chunk);
      else if (length <= SMALL_CHUNK) ok = socket.write(head + latin1(chunk), 'latin1');
      else {
        socket.cork();
        socket.write(head, 'latin1');
        ok = socket.write(chunk);
        socket.uncork();
      }
    } else {
      const size = `${head}${length.toString(16)}\r\n`;
      if (length <= SMALL_CHUNK) ok = socket.write(`${size}${latin1(chunk)}\r\n`, 'latin1');
      else {
        socket.cork();
        socket.write(size, 'latin1');
        socket.write(chunk);
        ok = socket.write('\r\n', 'latin1');
        socket.uncork();
      }
    }
    if (!ok && !ex.bodyPaused) {
      ex.bodyPaused = true;
      ex.request.body?.pause();
    }
  }

  endBody(ex: Exchange): void {
    if (this.exchange !== ex || this.state !== BUSY || ex.bodyDone) return;
    const { bodyLength } = ex.request;
    if (bodyLength >= 0 && ex.bodyBytes !== bodyLength) return this.pool.fail(ex, lengthMismatch(ex));
    ex.bodyDone = true;
    const tail = bodyLength < 0 ? LAST_CHUNK : '';
    const out = ex.head === undefined ? tail : ex.head + tail;
    ex.head = undefined;
    if (out !== '') this.socket.write(out, 'latin1');
  }

  /** Ends the connection, for `err` (reported to its exchange at 'close') or none (not reusable, idle, closing). */
  destroy(err?: Error): void {
    if (this.state === IDLE) this.pool.dropIdle(this);
    this.state = DEAD;
    if (err !== undefined) this.error ??= err;
    this.socket.destroy();
  }

  /** Back in the idle list: closed after {@link idleMs} unless taken again (one timer, refreshed per idle spell). */
  idle(): void {
    this.state = IDLE;
    const ms = this.idleMs;
    if (this.idleTimer !== undefined && this.idleTimerMs === ms) {
      this.idleTimer.refresh();
      return;
    }
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(onIdleTimeout, ms, this).unref();
    this.idleTimerMs = ms;
  }

  /**
   * A request failed here may go again on a fresh connection only when this connection had served before, the
   * upstream closed or reset it before a byte of the answer, the method is idempotent and no byte of the body
   * was taken from its source (the source cannot be replayed). The request may have reached the upstream (a
   * reset can follow a read), which is why non-idempotent methods (POST: inference) fail instead.
   */
  mayRetry(ex: Exchange): boolean {
    const code = (this.error as { code?: unknown } | undefined)?.code;
    return (
      this.requests > 1 &&
      !this.begun &&
      !ex.retried &&
      !ex.bodyStarted &&
      IDEMPOTENT.has(ex.request.method) &&
      typeof code === 'string' &&
      STALE_CODES.has(code)
    );
  }

  private onData(chunk: Buffer): void {
    let parsed: number | ParseError;
    try {
      parsed = this.parser.execute(chunk);
    } catch (err) {
      // A handler threw inside a parser callback: the exchange fails with it, the connection is not trusted.
      return this.destroy(err as Error);
    }
    if (this.state === DEAD) return;
    if (typeof parsed !== 'number')
      this.destroy(
        new Http1ClientError(
          `upstream sent an invalid HTTP response (${parsed.code}: ${parsed.reason ?? parsed.message})`,
          parsed.code,
        ),
      );
    else if (this.state === DONE) this.pool.release(this);
  }

  private onEnd(): void {
    if (this.state === BUSY && this.begun) {
      // A close-delimited body ends here; any other answer cut short is a socket error.
      let result: ParseError | undefined;
      try {
        result = this.parser.finish();
      } catch (err) {
        return this.destroy(err as Error); // a handler threw
      }
      if (result === undefined && (this.state as number) === DONE) return this.pool.release(this);
    }
    if (this.state === BUSY)
      return this.destroy(
        new Http1ClientError(
          this.begun
            ? 'upstream closed the connection before the answer was complete'
            : 'upstream closed the connection before answering',
          'UND_ERR_SOCKET',
        ),
      );
    this.destroy();
  }

  private onDrain(): void {
    const ex = this.exchange;
    if (ex !== undefined && ex.bodyPaused) {
      ex.bodyPaused = false;
      ex.request.body?.resume();
    }
  }

  private onClose(): void {
    clearTimeout(this.connectTimer);
    clearTimeout(this.idleTimer);
    const ex = this.exchange;
    this.exchange = undefined;
    this.state = DEAD;
    this.parser.remove();
    this.parser.close();
    this.pool.connectionClosed(this, ex);
  }

  private onMessageBegin(): void {
    if (this.state === BUSY) this.begun = true;
    // Bytes after the answer, or on an idle connection: nothing asked for them, the connection is not trusted.
    else this.destroy();
  }

  private onHeaders(raw: string[]): void {
    if (this.pieces === undefined) this.pieces = raw;
    else for (const item of raw) this.pieces.push(item);
  }

  private onHeadersComplete(
    raw: string[] | undefined,
    status: number,
    message: string | undefined,
    upgrade: boolean,
    keepAlive: boolean,
  ): number {
    const ex = this.exchange;
    if (this.state !== BUSY || ex === undefined) return 1;
    if (raw === undefined) {
      raw = this.pieces ?? [];
      this.pieces = undefined;
    }
    if (upgrade) {
      this.destroy(new Http1ClientError(`upstream switched protocols (${status}) unasked`, 'UND_ERR_SOCKET'));
      return 1;
    }
    if (status < 200) {
      this.informational = true;
      return 1; // no body, and the final answer follows
    }
    this.keepAlive = keepAlive;
    if (keepAlive) this.idleMs = keepAliveMs(raw, this.pool.idleTimeoutMs);
    ex.handler.onResponseStart(ex, status, raw, message ?? '');
    return ex.request.method === 'HEAD' ? 1 : 0;
  }

  private onBody(chunk: Buffer): void {
    const ex = this.exchange;
    if (this.state === BUSY && ex !== undefined) ex.handler.onResponseData(ex, chunk);
  }

  private onMessageComplete(): void {
    const ex = this.exchange;
    if (this.state !== BUSY || ex === undefined) return;
    if (this.informational) {
      this.informational = false;
      return;
    }
    const trailers = this.pieces;
    this.pieces = undefined;
    // An answer that came before the body was all sent leaves the connection mid-request: not reused.
    if (!ex.bodyDone) this.keepAlive = false;
    this.state = DONE;
    this.exchange = undefined;
    ex.settle();
    if (ex.responsePaused) this.socket.resume();
    ex.handler.onResponseEnd(ex, trailers);
  }
}

function onConnectTimeout(conn: Connection, ms: number): void {
  if (conn.socket.connecting)
    conn.destroy(new Http1ClientError(`connect timed out after ${ms} ms`, 'UND_ERR_CONNECT_TIMEOUT'));
}

function onIdleTimeout(conn: Connection): void {
  if (conn.state === IDLE) conn.destroy();
}

function lengthMismatch(ex: Exchange): Error {
  return new Http1ClientError(
    `request body length does not match content-length ${ex.request.bodyLength}`,
    'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH',
  );
}

/** The idle time the upstream allows by its `Keep-Alive: timeout=N` (less a margin), if lower than `ms`; 0: none. */
function keepAliveMs(raw: string[], ms: number): number {
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (name.length !== 10 || name.toLowerCase() !== 'keep-alive') continue;
    const match = /timeout=(\d+)/i.exec(raw[i + 1] as string);
    if (match !== null) return Math.max(0, Math.min(ms, Number(match[1]) * 1000 - KEEP_ALIVE_MARGIN_MS));
  }
  return ms;
}
