import type { ServerResponse } from 'node:http';
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
import { OUTCOMES, type AdminOutcome, type OutcomeName, type OutcomeRow } from './outcomes.js';
import type { ProxyRequest } from './pipeline.js';

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
  forwarded(request: ProxyRequest, status: number): void {
    this.metrics.request('forwarded', status, (performance.now() - request.arrivedAt) / 1000, request.priority);
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
    if (known instanceof ClientClosedError) {
      if (!res.destroyed) res.destroy();
      return this.metrics.request('client-closed', CLIENT_CLOSED_STATUS, seconds, request.priority);
    }
    if (res.headersSent) {
      res.destroy();
      return this.metrics.request(known.reason, res.statusCode, seconds, request.priority);
    }
    // Headers of an upstream answer that failed before its first byte went out must not leak into ours.
    for (const name of res.getHeaderNames()) if (name !== 'connection') res.removeHeader(name);
    const body = errorBody(known.code, known.message);
    const retryAfterMs = known instanceof CircuitOpenError ? known.retryAfterMs : 0;
    const { status } = OUTCOMES[known.reason];
    res.writeHead(status, outcomeHeaders(known.reason, body, { retryAfterMs, priority: request.priority }));
    res.end(body);
    this.metrics.request(known.reason, status, seconds, request.priority);
  }

  /** Refuses a request before it enters the pipeline (a target that is not a path, a bad deadline header). */
  refuse(res: ServerResponse, err: BadRequestError, arrivedAt: number): void {
    const body = errorBody(err.code, err.message);
    res.writeHead(err.status, outcomeHeaders(err.reason, body, { close: true }));
    res.end(body);
    this.metrics.request(err.reason, err.status, (performance.now() - arrivedAt) / 1000, 'default');
  }

  /** Refuses on a raw socket: Node hands CONNECT, Upgrade and malformed requests over as sockets. */
  refuseRaw(socket: { end(data: string): void; destroyed: boolean }, err: BadRequestError): void {
    if (socket.destroyed) return;
    const body = errorBody(err.code, err.message);
    writeRawAnswer(socket, err.status, outcomeHeaders(err.reason, body, { close: true }), body);
    this.metrics.request(err.reason, err.status, undefined, 'default');
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
