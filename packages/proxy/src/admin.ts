import { createServer, type Server } from 'node:http';
import { connect } from 'node:net';
import type { Registry } from 'prom-client';
import type { Admission } from './layers/admission.js';
import type { Breaker } from './layers/breaker.js';
import type { AdminEndpoint } from './metrics.js';
import type { StateDocument } from './outcomes.js';
import type { Responder } from './respond.js';
import { VERSION } from './version.js';

/** What the admin server needs to know about the sidecar. */
export interface AdminSource {
  readonly registry: Registry;
  /** writes and counts every admin answer */
  readonly respond: Responder;
  /** true from the moment SIGTERM arrives */
  draining(): boolean;
  /** true when readiness should fail because the breaker is open (readiness.failWhenOpen) */
  failingWhenOpen(): boolean;
  /** upstream origin probed by /readyz */
  readonly upstream: string;
  /** the /state document */
  state(): StateDocument;
}

/** How long /readyz waits for a TCP connection to the upstream. */
export const READY_PROBE_TIMEOUT_MS = 1000;

const ENDPOINTS: Readonly<Record<string, AdminEndpoint>> = {
  '/metrics': 'metrics',
  '/healthz': 'healthz',
  '/readyz': 'readyz',
  '/state': 'state',
};

/**
 * The admin server: `GET /metrics`, `/healthz` (process alive), `/readyz` (not draining, upstream
 * accepts connections, and the breaker is not open when `readiness.failWhenOpen`), `/state` (JSON).
 * Every answer is counted in `cb_admin_requests_total`.
 */
export function createAdminServer(source: AdminSource): Server {
  const { hostname, port } = new URL(source.upstream);
  const { respond } = source;
  return createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const endpoint = ENDPOINTS[path] ?? 'other';
    if (req.method !== 'GET' && req.method !== 'HEAD')
      return respond.adminError(res, endpoint, 'admin-bad-method', 'admin endpoints accept GET only');
    switch (endpoint) {
      case 'metrics':
        source.registry.metrics().then(
          (text) => respond.admin(res, endpoint, 200, text, source.registry.contentType),
          (err: Error) => respond.adminError(res, endpoint, 'admin-metrics-failed', err.message),
        );
        return;
      case 'healthz':
        return respond.admin(res, endpoint, 200, { status: 'ok' });
      case 'readyz':
        if (source.draining()) return respond.admin(res, endpoint, 503, { status: 'draining' });
        if (source.failingWhenOpen()) return respond.admin(res, endpoint, 503, { status: 'circuit-open' });
        void reachable(hostname.replace(/^\[(.*)\]$/, '$1'), Number(port || 80)).then((ok) =>
          respond.admin(res, endpoint, ok ? 200 : 503, { status: ok ? 'ready' : 'upstream-unreachable' }),
        );
        return;
      case 'state':
        return respond.admin(res, endpoint, 200, source.state());
      default:
        return respond.adminError(
          res,
          endpoint,
          'admin-not-found',
          `no admin endpoint ${path}; try /metrics, /healthz, /readyz, /state`,
        );
    }
  });
}

/** What `/state` is assembled from. */
export interface StateSource {
  readonly upstream: string;
  readonly draining: boolean;
  /** requests the listener is handling */
  readonly activeRequests: number;
  readonly admission: Admission;
  readonly breaker: Breaker;
  /** requests whose priority header held a value that is not a class */
  readonly unknownPriority: number;
}

/** The `/state` document: breaker, limit, in flight, queue, admission counters, and admission by class. */
export function stateDocument(source: StateSource): StateDocument {
  const admission = source.admission.snapshot();
  return {
    version: VERSION,
    draining: source.draining,
    upstream: source.upstream,
    breaker: source.breaker.snapshot(),
    concurrency: admission.concurrency,
    inflight: admission.inflight,
    queue: admission.queue,
    admission: admission.admission,
    classes: admission.classes,
    unknownPriority: source.unknownPriority,
    activeRequests: source.activeRequests,
  };
}

/** True when a TCP connection to host:port opens within the probe timeout. */
export function reachable(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port, timeout: READY_PROBE_TIMEOUT_MS });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.once('connect', () => done(true));
    socket.once('timeout', () => done(false));
    socket.once('error', () => done(false));
  });
}
