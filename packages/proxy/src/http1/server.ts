import { EventEmitter } from 'node:events';
import { STATUS_CODES, type IncomingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import type { BodySink, BodySource } from './client.js';
import {
  kOnBody,
  kOnHeaders,
  kOnHeadersComplete,
  kOnMessageComplete,
  METHODS,
  newParser,
  REQUEST,
  type NativeParser,
  type OnHeaders,
  type OnHeadersComplete,
  type ParseError,
} from './llhttp.js';

// The sidecar's HTTP/1.1 server: connections from `net`, requests parsed by Node's own llhttp binding (the
// parser node:http uses, strict), and answers written straight to the socket. What node:http does per message
// with streams (an IncomingMessage and a ServerResponse, their buffers, events and timers) is done here with
// two small objects per request and one sweep a second for every connection's timeouts. It serves what a
// reverse proxy for one upstream needs and no more: keep-alive, pipelining answered in order, HTTP/1.0,
// `Expect: 100-continue`, chunked answers, the slowloris timeouts; CONNECT and Upgrade are handed over as
// sockets, to be refused.

/** The server's limits (the listener's LISTENER). */
export interface Http1ServerOptions {
  readonly maxHeaderSize: number;
  /** a request's head must be complete this long after its first byte */
  readonly headersTimeoutMs: number;
  /** a request (head and body) must be complete this long after its first byte */
  readonly requestTimeoutMs: number;
  /** an idle keep-alive connection is closed after this */
  readonly keepAliveTimeoutMs: number;
  /** how often the timeouts are checked */
  readonly checkIntervalMs: number;
}

/** What the server hands over: requests, the sockets of CONNECT and Upgrade requests, and parse errors. */
export interface Http1Handlers {
  request(req: Http1Request, res: Http1Response): void;
  /** a CONNECT request: the socket, no longer read by the server */
  connect(socket: Socket): void;
  /** a request with `Upgrade`: the socket, no longer read by the server */
  upgrade(socket: Socket): void;
  /** a request that is not valid HTTP/1.1 (`code` HPE_*, HPE_HEADER_OVERFLOW) or came too slowly (ERR_HTTP_REQUEST_TIMEOUT) */
  clientError(err: Error & { code?: string }, socket: Socket): void;
}

/** Request bodies buffered beyond this (before the upstream takes them) stop the socket's reading. */
const BODY_HIGH_WATER = 64 * 1024;
/** A first body chunk up to this size goes out in one write with the head. */
const SMALL_CHUNK = 16 * 1024;

/** Header names node:http keeps only the first of (the rest are dropped), as `IncomingMessage.headers` does. */
const SINGLE = new Set([
  'content-type',
  'content-length',
  'user-agent',
  'referer',
  'host',
  'authorization',
  'proxy-authorization',
  'if-modified-since',
  'if-unmodified-since',
  'from',
  'location',
  'max-forwards',
  'retry-after',
  'etag',
  'last-modified',
  'server',
  'age',
  'expires',
]);

/** A message's headers as node:http presents them: lower-case names, repeated ones joined (`set-cookie` a list). */
export function headersObject(raw: readonly string[]): IncomingHttpHeaders {
  const out: Record<string, string | string[]> = {};
  for (let i = 0; i < raw.length; i += 2) {
    const name = (raw[i] as string).toLowerCase();
    const value = raw[i + 1] as string;
    const prior = out[name];
    if (prior === undefined) out[name] = name === 'set-cookie' ? [value] : value;
    else if (name === 'set-cookie') (prior as string[]).push(value);
    else if (SINGLE.has(name)) continue;
    else out[name] = `${prior as string}${name === 'cookie' ? '; ' : ', '}${value}`;
  }
  return out;
}

/**
 * A request body's length from its raw head, in one pass: content-length (llhttp refused conflicting ones), else
 * -1 for a chunked body, else 0.
 */
function bodyLengthOf(raw: readonly string[]): number {
  let chunked = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (name.length === 14 && name.toLowerCase() === 'content-length') return Number(raw[i + 1]);
    if (name.length === 17 && name.toLowerCase() === 'transfer-encoding') chunked = true;
  }
  return chunked ? -1 : 0;
}

let dateText = new Date().toUTCString();
let clock = Date.now();
/** The coarse clock of the timeouts and the Date header, moved on by the sweep. */
function tick(): void {
  clock = Date.now();
  dateText = new Date(clock).toUTCString();
}

/**
 * A client's request: method, target, version and headers as node:http's IncomingMessage has them, and the
 * body as a {@link BodySource} (buffered until the upstream call starts it, then passed through).
 */
export class Http1Request implements BodySource {
  /** `1.1` or `1.0` */
  readonly httpVersion: string;
  /** the body's length when known (content-length, 0 without a body), -1 for a chunked body */
  readonly bodyLength: number;
  /** true once the whole body has arrived */
  complete = false;
  private headersObject: IncomingHttpHeaders | undefined = undefined;
  private sink: BodySink | undefined = undefined;
  private buffered: Buffer[] | undefined = undefined;
  private bufferedBytes = 0;
  private failed: Error | undefined = undefined;

  constructor(
    private readonly connection: Connection,
    readonly method: string,
    readonly url: string,
    readonly httpVersionMinor: number,
    readonly rawHeaders: string[],
  ) {
    this.httpVersion = httpVersionMinor === 0 ? '1.0' : '1.1';
    this.bodyLength = bodyLengthOf(rawHeaders);
  }

  /** The headers as node:http's IncomingMessage has them, made on first use (the request path reads single headers). */
  get headers(): IncomingHttpHeaders {
    return (this.headersObject ??= headersObject(this.rawHeaders));
  }

  /**
   * One header's value (`name` in lower case) as `headers[name]` would give it, without making the headers
   * object when the name occurs at most once.
   */
  header(name: string): string | undefined {
    const raw = this.rawHeaders;
    let value: string | undefined;
    for (let i = 0; i < raw.length; i += 2) {
      const candidate = raw[i] as string;
      if (candidate.length !== name.length || candidate.toLowerCase() !== name) continue;
      if (value !== undefined) return this.headers[name] as string | undefined; // repeated: node:http's joining rules
      value = raw[i + 1] as string;
    }
    return value;
  }

  /** The client's socket (its remote address). */
  get socket(): Socket {
    return this.connection.socket;
  }

  start(sink: BodySink): void {
    this.sink = sink;
    const buffered = this.buffered;
    if (buffered !== undefined) {
      this.buffered = undefined;
      this.bufferedBytes = 0;
      for (const chunk of buffered) sink.data(chunk);
      this.connection.resumeReading(PAUSED_BY_BODY);
    }
    if (this.failed !== undefined) sink.error(this.failed);
    else if (this.complete) sink.end();
  }

  pause(): void {
    this.connection.pauseReading(PAUSED_BY_UPSTREAM);
  }

  resume(): void {
    this.connection.resumeReading(PAUSED_BY_UPSTREAM);
  }

  /** @internal the answer has gone out before the body was all read: the rest is read and dropped */
  discard(): void {
    this.sink = DISCARD;
    this.buffered = undefined;
    this.bufferedBytes = 0;
    this.connection.resumeReading(PAUSED_BY_BODY | PAUSED_BY_UPSTREAM);
  }

  /** @internal a piece of the body from the parser */
  body(chunk: Buffer): void {
    if (this.sink !== undefined) return this.sink.data(chunk);
    (this.buffered ??= []).push(chunk);
    if ((this.bufferedBytes += chunk.length) > BODY_HIGH_WATER) this.connection.pauseReading(PAUSED_BY_BODY);
  }

  /** @internal the body is complete */
  end(): void {
    this.complete = true;
    this.sink?.end();
  }

  /** @internal the connection ended before the body did */
  fail(err: Error): void {
    if (this.complete || this.failed !== undefined) return;
    this.failed = err;
    this.sink?.error(err);
  }
}

/** Where the rest of a body nobody wants goes. */
const DISCARD: BodySink = { data() {}, end() {}, error() {} };

const PAUSED_BY_BODY = 1;
const PAUSED_BY_UPSTREAM = 2;
const PAUSED_BY_QUEUE = 4;

/**
 * The answer to one request, written straight to the socket: `writeHead` (node:http's signature, for the
 * sidecar's own answers) or `writeRawHead` (a forwarded head as received), then `write`/`end`. The head waits
 * for the first piece of body so a small answer is one write. Emits `close` once (answered or cut) and `drain`.
 */
export class Http1Response extends EventEmitter {
  statusCode = 200;
  headersSent = false;
  writableEnded = false;
  writableFinished = false;
  destroyed = false;
  /** the connection closes after this answer (the client asked, the server drains, or the body is close-delimited) */
  closeAfter: boolean;
  /** called once, as a `close` listener would be, without an emitter's listener list per answer */
  onClose: ((this: Http1Response) => void) | undefined = undefined;
  private chunked = false;
  /** the head, until the first write sends it */
  private head: string | undefined = undefined;
  private noBody: boolean;

  constructor(
    private readonly connection: Connection,
    readonly req: Http1Request,
    keepAlive: boolean,
  ) {
    super();
    this.closeAfter = !keepAlive;
    this.noBody = req.method === 'HEAD';
  }

  /** Only `connection: close` is kept (the sidecar's drain); every other header goes through writeHead. */
  setHeader(name: string, value: string): this {
    if (name.toLowerCase() === 'connection' && value.toLowerCase() === 'close') this.closeAfter = true;
    return this;
  }

  getHeaderNames(): string[] {
    return [];
  }

  removeHeader(_name: string): void {}

  /** node:http's writeHead for an answer of the sidecar's own (headers as an object). */
  writeHead(status: number, headers: Readonly<Record<string, string | number | readonly string[]>> = {}): this {
    const raw: string[] = [];
    let length = -1;
    for (const name in headers) {
      const value = headers[name] as string | number | readonly string[];
      const lower = name.toLowerCase();
      if (lower === 'content-length') {
        length = Number(value);
        continue;
      } else if (lower === 'connection') {
        if (String(value).toLowerCase() === 'close') this.closeAfter = true;
        continue;
      } else if (lower === 'transfer-encoding') continue;
      if (Array.isArray(value)) for (const v of value as readonly string[]) raw.push(name, v);
      else raw.push(name, String(value));
    }
    return this.writeRawHead(status, undefined, raw, length);
  }

  /**
   * The head of the answer: `rawHeaders` end-to-end only (no connection, transfer-encoding or content-length:
   * the framing is this hop's), `bodyLength` the content-length to announce or -1 (chunked for an HTTP/1.1
   * client, close-delimited for HTTP/1.0).
   */
  writeRawHead(
    status: number,
    statusMessage: string | undefined,
    rawHeaders: readonly string[],
    bodyLength: number,
  ): this {
    if (this.headersSent || this.destroyed) return this;
    this.statusCode = status;
    this.headersSent = true;
    let head = `HTTP/1.1 ${status} ${statusMessage ?? STATUS_CODES[status] ?? 'Unknown'}\r\n`;
    let date = false;
    for (let i = 0; i < rawHeaders.length; i += 2) {
      const name = rawHeaders[i] as string;
      if (!date && name.length === 4 && name.toLowerCase() === 'date') date = true;
      head += `${name}: ${rawHeaders[i + 1] as string}\r\n`;
    }
    if (!date) head += `date: ${dateText}\r\n`;
    const bodiless = status === 204 || status === 304 || status < 200;
    if (bodyLength >= 0) {
      if (status !== 204) head += `content-length: ${bodyLength}\r\n`;
    } else if (!bodiless && !this.noBody) {
      if (this.req.httpVersionMinor >= 1) {
        head += 'transfer-encoding: chunked\r\n';
        this.chunked = true;
      } else this.closeAfter = true; // HTTP/1.0: the body ends with the connection
    }
    if (bodiless) this.noBody = true;
    if (this.connection.draining) this.closeAfter = true;
    if (this.closeAfter) head += 'connection: close\r\n';
    else if (this.req.httpVersionMinor === 0) head += 'connection: keep-alive\r\n';
    this.head = `${head}\r\n`;
    return this;
  }

  /** Writes a piece of body; false when the socket's buffer is full (`drain` follows). */
  write(chunk: Buffer | string): boolean {
    if (this.writableEnded || this.destroyed) return false;
    if (!this.headersSent) this.writeHead(this.statusCode);
    const socket = this.connection.socket;
    const head = this.head;
    this.head = undefined;
    const length = typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length;
    if (this.noBody || length === 0)
      return head === undefined ? !socket.writableNeedDrain : socket.write(head, 'latin1');
    if (this.chunked) {
      socket.cork();
      socket.write(`${head ?? ''}${length.toString(16)}\r\n`, 'latin1');
      socket.write(chunk);
      const ok = socket.write('\r\n', 'latin1');
      socket.uncork();
      return ok;
    }
    if (head !== undefined) {
      if (typeof chunk !== 'string' && length <= SMALL_CHUNK)
        return socket.write(head + chunk.toString('latin1'), 'latin1');
      socket.cork();
      socket.write(head, 'latin1');
      const ok = socket.write(chunk);
      socket.uncork();
      return ok;
    }
    return socket.write(chunk);
  }

  /** Ends the answer, with a last piece of body and, for a chunked answer, trailers (flat name, value list). */
  end(chunk?: Buffer | string, rawTrailers?: readonly string[]): this {
    if (this.writableEnded || this.destroyed) return this;
    if (!this.headersSent) this.writeHead(this.statusCode);
    const socket = this.connection.socket;
    if (this.chunked) {
      if (chunk !== undefined) this.write(chunk);
      let tail = `${this.head ?? ''}0\r\n`;
      this.head = undefined;
      if (rawTrailers !== undefined)
        for (let i = 0; i < rawTrailers.length; i += 2)
          tail += `${rawTrailers[i] as string}: ${rawTrailers[i + 1] as string}\r\n`;
      socket.write(`${tail}\r\n`, 'latin1');
    } else if (chunk !== undefined) this.write(chunk);
    else if (this.head !== undefined) {
      socket.write(this.head, 'latin1');
      this.head = undefined;
    }
    this.writableEnded = this.writableFinished = true;
    this.connection.answered(this);
    this.onClose?.();
    this.emit('close');
    return this;
  }

  /** Cuts the answer: HTTP/1.1 has no way to end one answer early but to close its connection. */
  destroy(): this {
    if (this.destroyed) return this;
    this.destroyed = true;
    this.connection.socket.destroy();
    return this;
  }

  /** @internal the connection closed before the answer ended */
  closed(): void {
    if (this.writableEnded) return;
    this.destroyed = true;
    this.onClose?.();
    this.emit('close');
  }
}

/** One client connection: its parser, the request being parsed, and the answers owed in order. */
class Connection {
  draining = false;
  /** the request whose head or body is being parsed */
  private parsing: Http1Request | undefined = undefined;
  /** answers owed, oldest first: the first is being answered, the others wait (pipelining) */
  private readonly owed: Http1Response[] = [];
  /** requests parsed while an earlier answer is owed: handed over in order */
  private readonly waiting: Http1Response[] = [];
  /** the clock when the current request's first byte came (0: no request in progress), and when its head did */
  private startedAt = 0;
  private headDone = false;
  /** the clock when the connection became idle (no request in progress, nothing owed) */
  idleSince: number;
  private paused = 0;
  private pieces: string[] | undefined = undefined;
  private urlPieces = '';
  private gone = false;
  private readonly parser: NativeParser;

  constructor(
    readonly socket: Socket,
    private readonly server: Http1Server,
  ) {
    this.idleSince = clock;
    const parser = (this.parser = newParser(REQUEST, server.options.maxHeaderSize));
    parser[kOnHeaders] = this.onHeaders;
    parser[kOnHeadersComplete] = this.onHeadersComplete;
    parser[kOnBody] = this.onBody;
    parser[kOnMessageComplete] = this.onMessageComplete;
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('close', this.onClose);
    socket.on('error', this.onError);
    socket.on('drain', this.onDrain);
  }

  /** idle: no request in progress and no answer owed */
  get idle(): boolean {
    return this.parsing === undefined && this.owed.length === 0 && this.startedAt === 0;
  }

  pauseReading(reason: number): void {
    if (this.paused === 0) this.socket.pause();
    this.paused |= reason;
  }

  resumeReading(reason: number): void {
    if ((this.paused & reason) === 0) return;
    this.paused &= ~reason;
    if (this.paused === 0 && !this.gone) this.socket.resume();
  }

  /** The sweep: the slowloris timeouts and the keep-alive idle timeout. */
  check(now: number): void {
    const { options } = this.server;
    if (this.startedAt > 0) {
      const limit = this.headDone ? options.requestTimeoutMs : options.headersTimeoutMs;
      if (now - this.startedAt >= limit) {
        // Answered with `close` while its body was still coming (a shed upload): nothing left to answer, cut.
        if (this.gone) return void this.socket.destroy();
        const err = Object.assign(new Error('the request did not arrive in time'), {
          code: 'ERR_HTTP_REQUEST_TIMEOUT',
        });
        this.refuse(err);
      }
    } else if (this.owed.length === 0 && (this.draining || now - this.idleSince >= options.keepAliveTimeoutMs))
      this.socket.destroy(); // idle too long, or idle at all once the server drains
  }

  private readonly onData = (data: Buffer): void => {
    if (this.startedAt === 0) {
      this.startedAt = clock;
      this.headDone = false;
    }
    const result = this.parser.execute(data);
    if (typeof result !== 'number') this.refuse(result);
  };

  private readonly onHeaders: OnHeaders = (raw, url) => {
    (this.pieces ??= []).push(...raw);
    this.urlPieces += url;
  };

  private readonly onHeadersComplete: OnHeadersComplete = (
    _major,
    minor,
    raw,
    method,
    url,
    _status,
    _message,
    upgrade,
    keepAlive,
  ) => {
    if (raw === undefined) {
      raw = this.pieces ?? [];
      url = this.urlPieces;
      this.pieces = undefined;
      this.urlPieces = '';
    }
    const name = METHODS[method ?? -1] ?? 'GET';
    this.headDone = true;
    if (upgrade) {
      this.handOver(name === 'CONNECT');
      return 0;
    }
    const req = new Http1Request(this, name, url ?? '', minor, raw);
    const res = new Http1Response(this, req, keepAlive);
    this.parsing = req;
    this.owed.push(res);
    if (this.owed.length === 1) this.hand(res);
    else {
      this.waiting.push(res);
      this.pauseReading(PAUSED_BY_QUEUE);
    }
    return 0;
  };

  private readonly onBody = (chunk: Buffer): void => {
    this.parsing?.body(chunk);
  };

  private readonly onMessageComplete = (): void => {
    this.parsing?.end();
    this.parsing = undefined;
    this.startedAt = 0;
    // A body that ends after its answer (an upload shed or answered early) leaves the connection idle now.
    if (this.owed.length === 0) this.idleSince = clock;
  };

  /** Hands a request to the handler: answers `Expect` first as node:http does (100 Continue, or 417). */
  private hand(res: Http1Response): void {
    const req = res.req;
    const expect = req.header('expect');
    if (expect !== undefined && req.httpVersionMinor >= 1) {
      if (/^100-continue$/i.test(expect)) this.socket.write('HTTP/1.1 100 Continue\r\n\r\n', 'latin1');
      else {
        res.writeHead(417, { 'content-length': '0' });
        res.end();
        return;
      }
    }
    this.server.handlers.request(req, res);
  }

  /** @internal an answer has ended: the next pipelined request goes to the handler, or the connection closes. */
  answered(res: Http1Response): void {
    if (this.owed[0] !== res) return;
    this.owed.shift();
    // An answer given before the body was all read (a shed upload): the rest of the body is read and dropped.
    if (!res.req.complete) res.req.discard();
    if (res.closeAfter) {
      this.gone = true;
      this.socket.end();
      return;
    }
    const next = this.waiting.shift();
    if (next !== undefined) this.hand(next);
    else {
      this.resumeReading(PAUSED_BY_QUEUE);
      if (this.startedAt === 0 && this.parsing === undefined) this.idleSince = clock;
    }
  }

  /** Stops reading and hands the socket over (CONNECT, Upgrade): what follows the head is theirs. */
  private handOver(connect: boolean): void {
    this.detach();
    if (connect) this.server.handlers.connect(this.socket);
    else this.server.handlers.upgrade(this.socket);
  }

  /**
   * A parse error or a timeout, as node:http answers it: at once, with the connection's end. Requests of the
   * connection still owed an answer cannot get one any more (they are closed: their upstream calls stop);
   * when an answer is already on the wire the connection can only be cut.
   */
  private refuse(err: Error & { code?: string }): void {
    if (this.gone) return;
    this.startedAt = 0;
    const answering = this.owed[0]?.headersSent === true;
    this.detach();
    // The answers first: their requests are cancelled as the client's (not the upstream's) doing before the
    // body's failure can reach the upstream call.
    const owed = this.owed.splice(0);
    this.waiting.length = 0;
    for (const res of owed) res.closed();
    this.parsing?.fail(err);
    this.parsing = undefined;
    if (answering) this.socket.destroy();
    else this.server.handlers.clientError(err, this.socket);
  }

  private detach(): void {
    this.gone = true;
    this.socket.off('data', this.onData);
    this.socket.off('end', this.onEnd);
    this.server.forget(this);
  }

  /** The client ended its side: as node:http does (no half-open), what it had asked is dropped. */
  private readonly onEnd = (): void => {
    const result = this.parser.finish();
    if (result !== undefined && this.owed.length === 0 && this.parsing !== undefined && !this.gone) {
      this.refuse(result as ParseError);
      return;
    }
    this.socket.destroy();
  };

  private readonly onClose = (): void => {
    this.gone = true;
    this.server.forget(this);
    for (const res of this.owed) res.closed();
    this.owed.length = 0;
    this.parsing?.fail(new Error('the client closed the connection'));
    this.waiting.length = 0;
    this.parser.free();
  };

  private readonly onError = (): void => {
    // 'close' follows.
  };

  private readonly onDrain = (): void => {
    this.owed[0]?.emit('drain');
  };
}

/**
 * The HTTP/1.1 server: takes connections (the listener's detection hands them over), parses their requests
 * and hands them to {@link Http1Handlers.request}.
 */
export class Http1Server {
  private readonly connections = new Set<Connection>();
  private sweep: NodeJS.Timeout | undefined;

  constructor(
    readonly options: Http1ServerOptions,
    readonly handlers: Http1Handlers,
  ) {}

  /** Serves `socket` (bytes already read from it were put back with unshift; it may be paused). */
  handle(socket: Socket): void {
    const connection = new Connection(socket, this);
    this.connections.add(connection);
    if (this.sweep === undefined) {
      tick();
      this.sweep = setInterval(() => this.check(), this.options.checkIntervalMs);
      this.sweep.unref();
    }
    socket.resume();
  }

  /** Closes connections with no request in progress and no answer owed; draining ones close after their answer. */
  closeIdleConnections(): void {
    for (const connection of this.connections) {
      connection.draining = true;
      if (connection.idle) connection.socket.destroy();
    }
  }

  /** Cuts every connection. */
  closeAllConnections(): void {
    for (const connection of this.connections) connection.socket.destroy();
  }

  /** Stops the timeouts' sweep (the connections stay until closed: call it once they have). */
  close(): void {
    clearInterval(this.sweep);
    this.sweep = undefined;
  }

  /** @internal */
  forget(connection: Connection): void {
    this.connections.delete(connection);
  }

  private check(): void {
    tick();
    for (const connection of this.connections) connection.check(clock);
  }
}
