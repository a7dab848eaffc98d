import type { ServerResponse } from 'node:http';
import type { Http2ServerResponse } from 'node:http2';
import type { Http1Response } from './http1/server.js';
import type { Logger } from 'pino';
import { writeRawAnswer } from '@infer-cb/common';
import {
  CircuitOpenError,
  ClientClosedError,
  SidecarError,
  UpstreamProtocolError,
  type BadRequestError,
} from './errors.js';
import type { AdminEndpoint, SidecarMetrics } from './metrics.js';
import { OUTCOMES, type AdminOutcome, type OutcomeName, type OutcomeRow, type ProxyOutcome } from './outcomes.js';
import type { ClientProtocol, ClientResponse, ProxyRequest } from './pipeline.js';

/** Status code recorded for a client that went away before its answer (nginx's convention). */
export const CLIENT_CLOSED_STATUS = OUTCOMES['client-closed'].status;

/** What a bug on the request path (not a typed error) is answered with. */
const UNEXPECTED = new UpstreamProtocolError('the upstream call failed unexpectedly');

/** The JSON error body every answer of the outcome table carries. */
export function errorBody(code: string, message: string): string {
  return JSON.stringify({ error: { code, message } });
}

/**
 * The headers of an answer of the outcome table, from its row: `Retry-After` (seconds; the breaker's time to
 * its probe where the row says so), `x-cb-reason`, `x-cb-class` (the request's priority class), the row's own
 * headers, and `connection: close` when the connection ends with this answer.
 */
export function outcomeHeaders(
  outcome: OutcomeName,
  body: string,
  options: { retryAfterMs?: number; close?: boolean; priority?: string } = {},
): Record<string, string> {
  const row: OutcomeRow = OUTCOMES[outcome];
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(body)),
    'cache-control': 'no-store',
  };
  if (row.retryAfter === 'second') headers['retry-after'] = '1';
  else if (row.retryAfter === 'breaker')
    headers['retry-after'] = String(Math.max(1, Math.ceil((options.retryAfterMs ?? 0) / 1000)));
  if (row.reasonHeader === true) headers['x-cb-reason'] = outcome;
  if (row.classHeader === true && options.priority !== undefined) headers['x-cb-class'] = options.priority;
  if (row.headers !== undefined) Object.assign(headers, row.headers);
  if (options.close === true) headers.connection = 'close';
  return headers;
}

/** A grpc-message value: percent-encoded outside printable ASCII, and `%` itself (gRPC over HTTP/2 spec). */
export function grpcMessage(message: string): string {
  let out = '';
  for (const byte of Buffer.from(message, 'utf8'))
    out +=
      byte >= 0x20 && byte <= 0x7e && byte !== 0x25
        ? String.fromCharCode(byte)
        : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  return out;
}

/**
 * The gRPC form of an answer of the outcome table, from its row: HTTP 200 with `grpc-status` (the row's `grpc`),
 * `grpc-message`, `grpc-retry-pushback-ms` where the row welcomes a retry, `x-cb-reason` and the row's own
 * headers. Sent as a trailers-only answer (one HEADERS frame that ends the stream).
 */
export function grpcHeaders(
  outcome: ProxyOutcome,
  message: string,
  options: { retryAfterMs?: number; priority?: string } = {},
): Record<string, string> {
  const row: OutcomeRow = OUTCOMES[outcome];
  const headers: Record<string, string> = {
    'content-type': 'application/grpc',
    'grpc-status': String(row.grpc ?? 2),
    'grpc-message': grpcMessage(message),
  };
  if (row.pushback === 'second') headers['grpc-retry-pushback-ms'] = '1000';
  else if (row.pushback === 'breaker')
    headers['grpc-retry-pushback-ms'] = String(Math.max(0, Math.ceil(options.retryAfterMs ?? 0)));
  if (row.reasonHeader === true) headers['x-cb-reason'] = outcome;
  if (row.classHeader === true && options.priority !== undefined) headers['x-cb-class'] = options.priority;
  if (row.headers !== undefined) Object.assign(headers, row.headers);
  return headers;
}

/** How the client asked: its protocol, and whether the call is gRPC. */
export interface Asker {
  readonly protocol: ClientProtocol;
  readonly grpc: boolean;
}

const HTTP1: Asker = { protocol: 'http1', grpc: false };

/**
 * The one respond path: every answer of the proxy listener and of the admin server is written here, from
 * its row of the outcome table, and counted (requests in `cb_requests_total`, admin answers in
 * `cb_admin_requests_total`). No other code writes a status.
 */
export class Responder {
  private lastUnexpectedLogAt = 0;

  constructor(
    private readonly metrics: SidecarMetrics,
    private readonly log: Logger,
  ) {}

  /** The upstream's answer has been streamed to the client: count it. */
  forwarded(request: ProxyRequest, status: number, grpcStatus?: number): void {
    const seconds = (performance.now() - request.arrivedAt) / 1000;
    this.metrics.request('forwarded', status, seconds, request.priority, request.protocol, grpcStatus);
  }

  /**
   * An error on the request path: the answer of its outcome (status, `Retry-After`, `x-cb-reason`, JSON body).
   * When the upstream's answer has already started it cannot be replaced, so the client connection is cut
   * instead; a client that went away is only counted.
   */
  failed(request: ProxyRequest, err: unknown): void {
    if (!(err instanceof SidecarError)) this.logUnexpected(err);
    const known = err instanceof SidecarError ? err : UNEXPECTED;
    const { res } = request;
    const seconds = (performance.now() - request.arrivedAt) / 1000;
    const grpcStatus = request.grpc ? OUTCOMES[known.reason].grpc : undefined;
    if (known instanceof ClientClosedError) {
      if (!res.destroyed) res.destroy();
      return this.metrics.request(
        'client-closed',
        CLIENT_CLOSED_STATUS,
        seconds,
        request.priority,
        request.protocol,
        grpcStatus,
      );
    }
    if (res.headersSent) {
      // A gRPC stream over HTTP/2 can still end cleanly: its status goes in the trailers. Anything else is cut
      // (HTTP/1.1: the connection; HTTP/2: only this stream, with RST_STREAM).
      if (request.grpc && request.protocol === 'h2' && !res.writableEnded) {
        const trailers = grpcHeaders(known.reason, known.message);
        (res as Http2ServerResponse).addTrailers({
          'grpc-status': trailers['grpc-status'],
          'grpc-message': trailers['grpc-message'],
        });
        res.end();
      } else res.destroy();
      return this.metrics.request(
        known.reason,
        res.statusCode,
        seconds,
        request.priority,
        request.protocol,
        grpcStatus,
      );
    }
    // Headers of an upstream answer that failed before its first byte went out must not leak into ours.
    for (const name of res.getHeaderNames()) if (name !== 'connection') res.removeHeader(name);
    const retryAfterMs = known instanceof CircuitOpenError ? known.retryAfterMs : 0;
    if (request.grpc) {
      const headers = grpcHeaders(known.reason, known.message, { retryAfterMs, priority: request.priority });
      this.grpcAnswer(res, request.protocol, headers);
      return this.metrics.request(known.reason, 200, seconds, request.priority, request.protocol, grpcStatus);
    }
    const body = errorBody(known.code, known.message);
    const { status } = OUTCOMES[known.reason];
    (res as Http1Response).writeHead(
      status,
      outcomeHeaders(known.reason, body, { retryAfterMs, priority: request.priority }),
    );
    res.end(body);
    this.metrics.request(known.reason, status, seconds, request.priority, request.protocol);
  }

  /**
   * Refuses a request before it enters the pipeline (a target that is not a path, a bad deadline header). An
   * HTTP/1.1 connection is closed after it; an HTTP/2 one carries on (only this stream ends).
   */
  refuse(res: ClientResponse, err: BadRequestError, arrivedAt: number, asker: Asker = HTTP1): void {
    const seconds = (performance.now() - arrivedAt) / 1000;
    if (asker.grpc) {
      this.grpcAnswer(res, asker.protocol, grpcHeaders(err.reason, err.message));
      return this.metrics.request(err.reason, 200, seconds, 'default', asker.protocol, OUTCOMES[err.reason].grpc);
    }
    const body = errorBody(err.code, err.message);
    (res as Http1Response).writeHead(
      err.status,
      outcomeHeaders(err.reason, body, { close: asker.protocol === 'http1' }),
    );
    res.end(body);
    this.metrics.request(err.reason, err.status, seconds, 'default', asker.protocol);
  }

  /**
   * A gRPC answer of the sidecar's own: trailers-only, i.e. over HTTP/2 one HEADERS frame that ends the stream
   * (grpc-status in it), over HTTP/1.1 (gRPC-Web) the same headers and no body.
   */
  private grpcAnswer(res: ClientResponse, protocol: ClientProtocol, headers: Record<string, string>): void {
    if (protocol === 'h2') {
      const { stream } = res as Http2ServerResponse;
      if (!stream.destroyed && !stream.headersSent) stream.respond({ ':status': 200, ...headers }, { endStream: true });
      return;
    }
    (res as Http1Response).writeHead(200, { ...headers, 'content-length': '0' });
    res.end();
  }

  /** Refuses on a raw socket: Node hands CONNECT, Upgrade and malformed requests over as sockets. */
  refuseRaw(socket: { end(data: string): void; destroyed: boolean }, err: BadRequestError): void {
    if (socket.destroyed) return;
    const body = errorBody(err.code, err.message);
    writeRawAnswer(socket, err.status, outcomeHeaders(err.reason, body, { close: true }), body);
    this.metrics.request(err.reason, err.status, undefined, 'default', 'http1');
  }

  /** An admin answer: `body` as JSON unless a content type is given. */
  admin(res: ServerResponse, endpoint: AdminEndpoint, status: number, body: unknown, contentType?: string): void {
    const text = contentType === undefined ? JSON.stringify(body) : String(body);
    res.writeHead(status, {
      'content-type': contentType ?? 'application/json',
      'content-length': Buffer.byteLength(text),
      'cache-control': 'no-store',
    });
    res.end(text);
    this.metrics.admin(endpoint, status);
  }

  /** An admin error of the outcome table. */
  adminError(res: ServerResponse, endpoint: AdminEndpoint, outcome: AdminOutcome, message: string): void {
    const { status, code } = OUTCOMES[outcome];
    const body = errorBody(code, message);
    res.writeHead(status, outcomeHeaders(outcome, body));
    res.end(body);
    this.metrics.admin(endpoint, status);
  }

  /** A bug on the request path (not a typed error): answered 502, logged at most once a second. */
  private logUnexpected(err: unknown): void {
    const now = Date.now();
    if (now - this.lastUnexpectedLogAt < 1000) return;
    this.lastUnexpectedLogAt = now;
    this.log.error({ err }, 'unexpected error on the request path (answered 502 upstream-error)');
  }
}
