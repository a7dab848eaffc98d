import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import type { Socket } from 'node:net';
import type { Settings } from './config.js';
import { BadRequestError, ClientClosedError } from './errors.js';
import { Http1Request, type Http1Handlers, type Http1Response } from './http1/server.js';
import { grpcTimeoutMs } from './layers/headers.js';
import { classify } from './layers/priority.js';
import {
  Cancellation,
  type ClientProtocol,
  type ClientRequest,
  type ClientResponse,
  type ProxyRequest,
  type Reconfigurable,
} from './pipeline.js';
import type { Responder } from './respond.js';

/** What the intake reads from the settings: the deadline header, the priority header and path rules. */
export type IntakeOptions = Pick<Settings, 'deadline' | 'priority'>;

const CLIENT_CLOSED = new ClientClosedError('the client closed the connection before the answer');
const CONNECT_REFUSED = new BadRequestError(
  'method-not-allowed',
  'CONNECT is not supported: this is a reverse proxy for one upstream',
);
const UPGRADE_REFUSED = new BadRequestError('upgrade-refused', 'protocol upgrades (WebSocket, h2c) are not supported');
const SILENT = new BadRequestError('request-timeout', 'the request did not arrive in time');
const BAD_TARGET = new BadRequestError(
  'bad-target',
  'the request target must be a path (origin-form or absolute-form)',
);
const NO_HOST = new BadRequestError('bad-request', 'an HTTP/1.1 request must carry a Host header');
/** Where the response keeps the request it answers, for the close listener (no closure per request). */
const REQUEST = Symbol('request');

type TrackedResponse = ClientResponse & { [REQUEST]?: ProxyRequest };

/**
 * The request target sent upstream: origin-form as is; absolute-form reduced to its path and query,
 * so neither it nor `Host` ever chooses the destination. Undefined when there is no usable path.
 */
export function upstreamPath(url: string | undefined): string | undefined {
  if (url === undefined || url.length === 0) return undefined;
  if (url.charCodeAt(0) === 47 /* / */) return url;
  if (!/^https?:\/\//i.test(url)) return undefined;
  try {
    const parsed = new URL(url);
    return parsed.pathname + parsed.search;
  } catch {
    return undefined;
  }
}

function onResponseClose(this: TrackedResponse): void {
  const request = this[REQUEST];
  if (request === undefined) return;
  // node:http2's compatibility response reports writableFinished once its stream is gone, reset or not.
  if (!(request.protocol === 'h2' ? this.writableEnded : this.writableFinished))
    request.cancellation.cancel(CLIENT_CLOSED);
}

/** A request header's value (`name` in lower case); an HTTP/1.1 request's without making its headers object. */
function headerOf(req: ClientRequest, name: string): string | string[] | undefined {
  return req instanceof Http1Request ? req.header(name) : req.headers[name];
}

/** True for a gRPC call (gRPC and gRPC-Web: `application/grpc`, `application/grpc+proto`, `application/grpc-web`...). */
function isGrpc(req: ClientRequest): boolean {
  const type = headerOf(req, 'content-type');
  return typeof type === 'string' && type.startsWith('application/grpc');
}

/** What llhttp's refusals mean, in plain words (the code stays in the message for whoever debugs it). */
const PARSE_ERRORS: Readonly<Record<string, string>> = {
  HPE_INVALID_METHOD: 'the method is not an HTTP method',
  HPE_INVALID_URL: 'the request target is not a valid URL or path',
  HPE_INVALID_VERSION: 'the HTTP version is not HTTP/1.0 or HTTP/1.1',
  HPE_INVALID_HEADER_TOKEN: 'a header name or value holds characters HTTP does not allow',
  HPE_INVALID_CONTENT_LENGTH: 'Content-Length is not a single number',
  HPE_UNEXPECTED_CONTENT_LENGTH: 'Content-Length and Transfer-Encoding together make the body length ambiguous',
  HPE_INVALID_TRANSFER_ENCODING: 'Transfer-Encoding must end with chunked',
  HPE_INVALID_CHUNK_SIZE: 'a chunk size is not a hexadecimal number',
  HPE_INVALID_CONSTANT: 'the request line or a header is malformed',
  HPE_LF_EXPECTED: 'a line does not end with CRLF',
  HPE_CR_EXPECTED: 'a line does not end with CRLF',
  HPE_PAUSED_H2_UPGRADE: 'an HTTP/2 connection preface where HTTP/1.1 was expected',
};

/** The refusal for a request Node could not parse: 431 for oversized headers, 408 when it came too slowly. */
function clientErrorRefusal(err: Error & { code?: string }): BadRequestError {
  if (err.code === 'HPE_HEADER_OVERFLOW') return new BadRequestError('headers-too-large', 'request headers too large');
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT')
    return new BadRequestError('request-timeout', 'the request did not arrive in time');
  const what = (err.code !== undefined ? PARSE_ERRORS[err.code] : undefined) ?? 'the request is not valid HTTP/1.1';
  return new BadRequestError('bad-request', `malformed request: ${what} (${err.code ?? 'parse error'})`);
}

/** A deadline budget: a non-negative decimal number of milliseconds (no exponent, hex or sign). */
const BUDGET = /^\d{1,12}(\.\d{1,6})?$/;

/**
 * Request intake, the listener's side of the pipeline: refuses what cannot be proxied (CONNECT, Upgrade,
 * malformed HTTP, a target that is not a path, a deadline header that is not a number) and turns every
 * other request into a {@link ProxyRequest}: its upstream path, arrival time, deadline, priority class, and a
 * cancellation that fires when the client goes away.
 */
export class Intake implements Reconfigurable<IntakeOptions> {
  /** set when the sidecar drains: answers then ask the client to close its connection */
  draining = false;
  /** requests whose priority header held a value that is not a class (served as `default`) */
  unknownPriority = 0;
  private deadlineHeader: string;
  private priority: IntakeOptions['priority'];

  /** @param serve runs one accepted request through the pipeline; it calls {@link done} when it has finished */
  constructor(
    options: IntakeOptions,
    private readonly respond: Responder,
    private readonly serve: (request: ProxyRequest) => void,
  ) {
    this.deadlineHeader = options.deadline.header;
    this.priority = options.priority;
  }

  /** The listener's HTTP/2 requests (the HTTP/1.1 ones come through {@link http1}). */
  readonly h2 = (req: Http2ServerRequest, res: Http2ServerResponse): void => this.accept(req, res, 'h2');

  /** The HTTP/1.1 server's handlers: requests, CONNECT and Upgrade sockets, malformed or slow requests. */
  readonly http1: Http1Handlers = {
    request: (req: Http1Request, res: Http1Response) => this.accept(req, res, 'http1'),
    connect: (socket: Socket) => this.respond.refuseRaw(socket, CONNECT_REFUSED),
    upgrade: (socket: Socket) => this.respond.refuseRaw(socket, UPGRADE_REFUSED),
    clientError: (err: Error & { code?: string }, socket: Socket) => {
      if (!socket.writable) return void socket.destroy();
      this.respond.refuseRaw(socket, clientErrorRefusal(err));
    },
  };

  /** Applies a reloaded deadline header, priority header and path rules. */
  reconfigure(options: IntakeOptions): void {
    this.deadlineHeader = options.deadline.header;
    this.priority = options.priority;
  }

  /** Nothing to release. */
  async close(): Promise<void> {}

  /** The pipeline has finished with `request`: its response no longer cancels it on close. */
  done(request: ProxyRequest): void {
    (request.res as TrackedResponse)[REQUEST] = undefined;
  }

  /** A connection that sent nothing (or only the start of the HTTP/2 preface) within the headers timeout. */
  readonly onSilent = (socket: Socket): void => this.respond.refuseRaw(socket, SILENT);

  private accept(req: ClientRequest, res: TrackedResponse, protocol: ClientProtocol): void {
    const arrivedAt = performance.now();
    const grpc = isGrpc(req);
    const asker = { protocol, grpc };
    // HTTP/1.1's CONNECT never gets here (Node hands it over as a socket); HTTP/2's does.
    if (req.method === 'CONNECT') return this.respond.refuse(res, CONNECT_REFUSED, arrivedAt, asker);
    if (protocol === 'http1' && headerOf(req, 'host') === undefined && (req as Http1Request).httpVersion === '1.1') {
      return this.respond.refuse(res, NO_HOST, arrivedAt, asker);
    }
    const path = upstreamPath(req.url);
    if (path === undefined) return this.respond.refuse(res, BAD_TARGET, arrivedAt, asker);
    let deadline = Infinity;
    const budget = headerOf(req, this.deadlineHeader);
    if (budget !== undefined) {
      if (typeof budget !== 'string' || !BUDGET.test(budget)) {
        const message = `${this.deadlineHeader} must be a number of milliseconds (e.g. 250), got ${JSON.stringify(budget)}`;
        return this.respond.refuse(res, new BadRequestError('bad-request', message), arrivedAt, asker);
      }
      deadline = arrivedAt + Number(budget);
    }
    if (grpc) {
      // gRPC's own deadline header; the earlier of the two deadlines holds.
      const timeout = headerOf(req, 'grpc-timeout');
      if (timeout !== undefined) {
        const ms = typeof timeout === 'string' ? grpcTimeoutMs(timeout) : NaN;
        if (Number.isNaN(ms)) {
          const message = `grpc-timeout must be 1-8 digits and a unit (H, M, S, m, u, n), got ${JSON.stringify(timeout)}`;
          return this.respond.refuse(res, new BadRequestError('bad-request', message), arrivedAt, asker);
        }
        deadline = Math.min(deadline, arrivedAt + ms);
      }
    }
    if (this.draining) {
      // HTTP/1.1: this answer closes the connection; HTTP/2: GOAWAY, the streams in flight finish.
      if (protocol === 'http1') res.setHeader('connection', 'close');
      else (req as Http2ServerRequest).stream.session?.close();
    }
    const { priority, unknown } = classify(headerOf(req, this.priority.header), path, this.priority);
    if (unknown) this.unknownPriority++;
    const request: ProxyRequest = {
      req,
      res,
      cancellation: new Cancellation(),
      path,
      arrivedAt,
      deadline,
      priority,
      protocol,
      grpc,
    };
    res[REQUEST] = request;
    if (protocol === 'http1') (res as Http1Response).onClose = onResponseClose;
    else res.on('close', onResponseClose); // a response closes once: `on` spares `once`'s wrapper
    this.serve(request);
  }
}
