import { createServer, type Server, type ServerResponse } from 'node:http';
import { connect } from 'node:net';
import type { Registry } from 'prom-client';

/** What the admin server needs to know about the sidecar. */
export interface AdminSource {
  readonly registry: Registry;
  /** true from the moment SIGTERM arrives */
  draining(): boolean;
  /** true when readiness should fail because the breaker is open (readiness.failWhenOpen) */
  failingWhenOpen(): boolean;
  /** upstream origin probed by /readyz */
  readonly upstream: string;
  /** the /state document */
  state(): unknown;
}

/** How long /readyz waits for a TCP connection to the upstream. */
export const READY_PROBE_TIMEOUT_MS = 1000;

/**
 * The admin server: `GET /metrics`, `/healthz` (process alive), `/readyz` (not draining, upstream
 * accepts connections, and the breaker is not open when `readiness.failWhenOpen`), `/state` (JSON).
 */
export function createAdminServer(source: AdminSource): Server {
  const { hostname, port } = new URL(source.upstream);
  return createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD')
      return json(res, 405, { error: { code: 'CB_METHOD_NOT_ALLOWED', message: 'admin endpoints accept GET only' } });
    switch (path) {
      case '/metrics':
        source.registry.metrics().then(
          (text) => {
            res.writeHead(200, { 'content-type': source.registry.contentType });
            res.end(text);
          },
          (err: Error) => json(res, 500, { error: { code: 'CB_METRICS_FAILED', message: err.message } }),
        );
        return;
      case '/healthz':
        return json(res, 200, { status: 'ok' });
      case '/readyz':
        if (source.draining()) return json(res, 503, { status: 'draining' });
        if (source.failingWhenOpen()) return json(res, 503, { status: 'circuit-open' });
        void reachable(hostname.replace(/^\[(.*)\]$/, '$1'), Number(port || 80)).then((ok) =>
          json(res, ok ? 200 : 503, { status: ok ? 'ready' : 'upstream-unreachable' }),
        );
        return;
      case '/state':
        return json(res, 200, source.state());
      default:
        return json(res, 404, {
          error: {
            code: 'CB_NOT_FOUND',
            message: `no admin endpoint ${path}; try /metrics, /healthz, /readyz, /state`,
          },
        });
    }
  });
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
  });
  res.end(text);
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
