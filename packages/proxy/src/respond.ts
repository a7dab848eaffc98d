import type { ServerResponse } from 'node:http';
import type { Reason } from './errors.js';
import type { BadRequestError } from './errors.js';
import { CircuitOpenError, ClientClosedError, SidecarError } from './errors.js';

/** Metric outcome of a request: `forwarded`, a reason code, or `client-closed`. */
export type Outcome = 'forwarded' | Reason | 'client-closed';

/** Status code recorded for a client that went away before its answer (nginx's convention). */
export const CLIENT_CLOSED_STATUS = 499;

/** HTTP status of each sidecar-made answer. */
export const STATUS_BY_REASON: Readonly<Record<Reason, number>> = {
  overload: 503,
  'queue-timeout': 503,
  deadline: 503,
  'circuit-open': 503,
  'upstream-unavailable': 503,
  'upstream-timeout': 504,
  'upstream-error': 502,
};

/** What `fail` did, for the metrics. */
export interface Recorded {
  outcome: Outcome;
  code: number;
}

const recorded: Recorded = { outcome: 'forwarded', code: 0 };

/**
 * The only place that turns an error into an answer: status, `Retry-After` (seconds), `x-cb-reason`,
 * `{"error":{"code","message"}}`. When the upstream's answer has already started it cannot be replaced,
 * so the client connection is cut instead. Returns the metric labels (a shared object, read at once).
 */
export function fail(res: ServerResponse, err: unknown): Recorded {
  if (err instanceof ClientClosedError) {
    if (!res.destroyed) res.destroy();
    return set('client-closed', CLIENT_CLOSED_STATUS);
  }
  const known = err instanceof SidecarError ? err : undefined;
  const reason: Reason = known?.reason ?? 'upstream-error';
  const status = STATUS_BY_REASON[reason];
  if (res.headersSent) {
    res.destroy();
    return set(reason, res.statusCode);
  }
  // Headers of an upstream answer that failed before its first byte went out must not leak into ours.
  for (const name of res.getHeaderNames()) if (name !== 'connection') res.removeHeader(name);
  const retryAfterS = err instanceof CircuitOpenError ? Math.max(1, Math.ceil(err.retryAfterMs / 1000)) : 1;
  const body = JSON.stringify({
    error: {
      code: known?.code ?? 'CB_UPSTREAM_ERROR',
      message: known?.message ?? 'the upstream call failed unexpectedly',
    },
  });
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    'retry-after': String(retryAfterS),
    'x-cb-reason': reason,
    'cache-control': 'no-store',
  });
  res.end(body);
  return set(reason, status);
}

/** Refuses a request that cannot be proxied (CONNECT, Upgrade, bad target) on a response object. */
export function refuse(res: ServerResponse, err: BadRequestError): void {
  const body = JSON.stringify({ error: { code: err.code, message: err.message } });
  res.writeHead(err.status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    connection: 'close',
  });
  res.end(body);
}

/** Refuses on a raw socket (Node hands CONNECT and Upgrade requests over as sockets). */
export function refuseRaw(socket: { end(data: string): void; destroyed: boolean }, err: BadRequestError): void {
  if (socket.destroyed) return;
  const body = JSON.stringify({ error: { code: err.code, message: err.message } });
  const reasonPhrase =
    err.status === 405 ? 'Method Not Allowed' : err.status === 501 ? 'Not Implemented' : 'Bad Request';
  socket.end(
    `HTTP/1.1 ${err.status} ${reasonPhrase}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
      `${err.status === 405 ? 'allow: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS\r\n' : ''}connection: close\r\n\r\n${body}`,
  );
}

function set(outcome: Outcome, code: number): Recorded {
  recorded.outcome = outcome;
  recorded.code = code;
  return recorded;
}
