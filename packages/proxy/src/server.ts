import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { isDeepStrictEqual } from 'node:util';
import { pino, type Logger } from 'pino';
import type { Pool } from 'undici';
import { Admission } from './admission.js';
import { createAdminServer } from './admin.js';
import { Breaker } from './breaker.js';
import type { Config, Settings } from './config.js';
import { BadRequestError, ClientClosedError, SidecarError } from './errors.js';
import { createPool, forwarder, type ForwarderOptions } from './forwarder.js';
import { createLimit, poolConnections } from './limits.js';
import { SidecarMetrics } from './metrics.js';
import { Cancellation, compose, type Handler, type ProxyRequest } from './pipeline.js';
import { fail, refuse, refuseRaw } from './respond.js';
import { VERSION } from './version.js';

/** Limits of the client-facing listener (slowloris and header-bomb protection). */
export const LISTENER = {
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 60_000,
  maxHeaderSize: 16 * 1024, // bytes
  keepAliveTimeoutMs: 65_000, // longer than callers' idle timeouts, so they close first
  // Node checks the two timeouts above only this often (default 30 s, which let slowloris hold 40 s).
  connectionsCheckingIntervalMs: 1000,
} as const;

const CLIENT_CLOSED = new ClientClosedError('the client closed the connection before the answer');
const CONNECT_REFUSED = new BadRequestError(
  'CB_METHOD_NOT_ALLOWED',
  405,
  'CONNECT is not supported: this is a reverse proxy for one upstream',
);
const UPGRADE_REFUSED = new BadRequestError(
  'CB_UPGRADE_REFUSED',
  501,
  'protocol upgrades (WebSocket, h2c) are not supported',
);
const BAD_TARGET = new BadRequestError(
  'CB_BAD_TARGET',
  400,
  'the request target must be a path (origin-form or absolute-form)',
);
const EXCHANGE = Symbol('exchange');

type TrackedResponse = ServerResponse & { [EXCHANGE]?: ProxyRequest };

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
  const exchange = this[EXCHANGE];
  if (exchange !== undefined && !this.writableFinished) exchange.cancellation.cancel(CLIENT_CLOSED);
}

/** Options of {@link Sidecar.start}. */
export interface SidecarOptions {
  /** pino logger; silent by default */
  readonly logger?: Logger;
}

/** A running sidecar: listener, admin server, pipeline. */
export class Sidecar {
  /** the port the proxy listens on */
  port = 0;
  /** the port the admin server listens on */
  adminPort = 0;
  readonly metrics: SidecarMetrics;
  private settings: Settings;
  private readonly admission: Admission;
  private readonly breaker: Breaker;
  private pool: Pool;
  private readonly forwarderOptions: ForwarderOptions;
  private readonly handle: Handler;
  private readonly server: Server;
  private readonly admin: Server;
  private readonly log: Logger;
  private active = 0;
  private draining = false;
  private idle: (() => void) | undefined;
  private closing: Promise<void> | undefined;
  private lastUnexpectedLogAt = 0;

  private constructor(
    readonly config: Config,
    options: SidecarOptions,
  ) {
    this.log = options.logger ?? pino({ level: 'silent' });
    this.settings = config.settings;
    const s = this.settings;
    this.admission = new Admission(createLimit(s.concurrency), { ...s.queue });
    this.breaker = new Breaker(s.breaker);
    this.metrics = new SidecarMetrics(
      VERSION,
      () => this.admission,
      () => this.breaker,
    );
    this.breaker.onTransition((from, to) => {
      this.metrics.transition(from, to);
      this.log.warn({ from, to, retryAfterMs: this.breaker.retryAfterMs() }, `breaker ${from} -> ${to}`);
    });
    this.watchLimit();
    this.pool = this.newPool(s);
    this.forwarderOptions = {
      timeoutMs: s.upstream.timeoutMs,
      deadlineHeader: s.deadline.header,
      onUpstreamDone: (ms) => this.metrics.upstreamDone(ms),
    };
    this.handle = compose(this.admission.layer, this.breaker.layer)(forwarder(() => this.pool, this.forwarderOptions));
    this.server = createServer(
      {
        maxHeaderSize: LISTENER.maxHeaderSize,
        headersTimeout: LISTENER.headersTimeoutMs,
        requestTimeout: LISTENER.requestTimeoutMs,
        keepAliveTimeout: LISTENER.keepAliveTimeoutMs,
        connectionsCheckingInterval: LISTENER.connectionsCheckingIntervalMs,
      },
      this.onRequest,
    );
    this.server.on('connect', (_req: IncomingMessage, socket: Socket) => refuseRaw(socket, CONNECT_REFUSED));
    this.server.on('upgrade', (_req: IncomingMessage, socket: Socket) => refuseRaw(socket, UPGRADE_REFUSED));
    this.server.on('clientError', (err: Error & { code?: string }, socket: Socket) => {
      if (!socket.writable) return socket.destroy();
      const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
      refuseRaw(socket, new BadRequestError('CB_BAD_TARGET', status, `bad request: ${err.code ?? err.message}`));
    });
    this.admin = createAdminServer({
      registry: this.metrics.registry,
      upstream: config.upstream,
      draining: () => this.draining,
      failingWhenOpen: () => this.settings.readiness.failWhenOpen && this.breaker.state === 'open',
      state: () => this.state(),
    });
  }

  /** Starts listener and admin server; resolves once both listen. */
  static async start(config: Config, options: SidecarOptions = {}): Promise<Sidecar> {
    const sidecar = new Sidecar(config, options);
    await Promise.all([
      listen(sidecar.server, config.listen.port, config.listen.host),
      listen(sidecar.admin, config.adminPort, config.listen.host),
    ]);
    sidecar.port = (sidecar.server.address() as AddressInfo).port;
    sidecar.adminPort = (sidecar.admin.address() as AddressInfo).port;
    sidecar.log.info(
      {
        listen: sidecar.port,
        admin: sidecar.adminPort,
        upstream: config.upstream,
        settings: config.settings,
        version: VERSION,
      },
      'cb-sidecar started',
    );
    return sidecar;
  }

  /** The settings in force (after any reload). */
  get activeSettings(): Settings {
    return this.settings;
  }

  private readonly onRequest = (req: IncomingMessage, res: TrackedResponse): void => {
    const path = upstreamPath(req.url);
    if (path === undefined) return refuse(res, BAD_TARGET);
    const arrivedAt = performance.now();
    let deadline = Infinity;
    const budget = req.headers[this.settings.deadline.header];
    if (budget !== undefined) {
      const ms = Number(budget);
      if (!Number.isFinite(ms) || budget === '') {
        return refuse(
          res,
          new BadRequestError(
            'CB_BAD_TARGET',
            400,
            `${this.settings.deadline.header} must be a number of milliseconds, got ${JSON.stringify(budget)}`,
          ),
        );
      }
      deadline = arrivedAt + ms;
    }
    if (this.draining) res.setHeader('connection', 'close');
    const exchange: ProxyRequest = { req, res, cancellation: new Cancellation(), path, arrivedAt, deadline };
    res[EXCHANGE] = exchange;
    res.on('close', onResponseClose); // a response closes once: `on` spares `once`'s wrapper
    this.active++;
    void this.serve(exchange);
  };

  private async serve(exchange: ProxyRequest): Promise<void> {
    try {
      const { status } = await this.handle(exchange);
      this.metrics.request('forwarded', status, (performance.now() - exchange.arrivedAt) / 1000);
    } catch (err) {
      if (!(err instanceof SidecarError || err instanceof ClientClosedError)) this.logUnexpected(err);
      const { outcome, code } = fail(exchange.res, err);
      this.metrics.request(outcome, code, (performance.now() - exchange.arrivedAt) / 1000);
    } finally {
      (exchange.res as TrackedResponse)[EXCHANGE] = undefined;
      if (--this.active === 0 && this.idle !== undefined) this.idle();
    }
  }

  /** Applies new settings from a reloaded file (SIGHUP); logs which sections changed. */
  reload(next: Settings): void {
    const prev = this.settings;
    const changed = (Object.keys(next) as (keyof Settings)[]).filter((k) => !isDeepStrictEqual(prev[k], next[k]));
    this.settings = next;
    if (!isDeepStrictEqual(prev.concurrency, next.concurrency)) {
      this.admission.setLimit(createLimit(next.concurrency));
      this.watchLimit();
    }
    Object.assign(this.admission.queue, next.queue);
    this.admission.drainQueue();
    if (!isDeepStrictEqual(prev.breaker, next.breaker)) this.breaker.reconfigure(next.breaker);
    this.forwarderOptions.timeoutMs = next.upstream.timeoutMs;
    this.forwarderOptions.deadlineHeader = next.deadline.header;
    if (
      !isDeepStrictEqual(prev.upstream, next.upstream) ||
      poolConnections(prev.concurrency) !== poolConnections(next.concurrency)
    ) {
      const old = this.pool;
      this.pool = this.newPool(next);
      void old.close();
    }
    this.log.info(
      { changed, settings: next },
      changed.length > 0 ? `config reloaded: ${changed.join(', ')} changed` : 'config reloaded: no change',
    );
  }

  /**
   * Graceful drain (SIGTERM): readiness fails at once, the listener keeps serving for `drain.delay` while
   * endpoints update, then stops accepting; resolves when every in-flight request has finished.
   */
  async drain(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    this.log.info(
      { delayMs: this.settings.drain.delayMs, graceMs: this.settings.drain.graceMs },
      'draining: readiness fails now',
    );
    await new Promise((resolve) => setTimeout(resolve, this.settings.drain.delayMs));
    const closed = new Promise((resolve) => this.server.close(resolve));
    this.server.closeIdleConnections();
    if (this.active > 0) await new Promise<void>((resolve) => (this.idle = resolve));
    this.server.closeIdleConnections();
    await closed;
    await this.shutdown();
    this.log.info('drained');
  }

  /** Stops at once: closes listener, connections, admin server and pool. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.closeNow();
    return this.closing;
  }

  private async closeNow(): Promise<void> {
    this.draining = true;
    const closed = new Promise((resolve) => this.server.close(resolve));
    this.server.closeAllConnections();
    await closed;
    await this.shutdown();
  }

  private async shutdown(): Promise<void> {
    this.breaker.close();
    const admin = new Promise((resolve) => this.admin.close(resolve));
    this.admin.closeAllConnections();
    await Promise.all([admin, this.pool.close()]);
  }

  /** The /state document. */
  state(): Record<string, unknown> {
    return {
      version: VERSION,
      draining: this.draining,
      upstream: this.config.upstream,
      breaker: { state: this.breaker.state, retryAfterMs: this.breaker.retryAfterMs(), ...this.breaker.counters },
      concurrency: { mode: this.settings.concurrency.mode, limit: this.admission.limit.limit },
      inflight: this.admission.inflight,
      queue: { depth: this.admission.queued, size: this.admission.queue.size },
      admission: { ...this.admission.counters, serviceTimeMs: Number(this.admission.serviceTimeMs.toFixed(3)) },
      activeRequests: this.active,
    };
  }

  /** A bug on the request path (not a typed error): answered 502, logged at most once a second. */
  private logUnexpected(err: unknown): void {
    const now = Date.now();
    if (now - this.lastUnexpectedLogAt < 1000) return;
    this.lastUnexpectedLogAt = now;
    this.log.error({ err }, 'unexpected error on the request path (answered 502 upstream-error)');
  }

  /** Logs (debug) every change of the limit in force. */
  private watchLimit(): void {
    const limit = this.admission.limit;
    limit.onChange((value) => {
      if (limit === this.admission.limit) this.log.debug({ limit: value }, 'concurrency limit changed');
    });
  }

  private newPool(s: Settings): Pool {
    return createPool(this.config.upstream, {
      connections: poolConnections(s.concurrency),
      connectTimeoutMs: s.upstream.connectTimeoutMs,
      maxRequestsPerConnection: s.upstream.maxRequestsPerConnection,
      idleTimeoutMs: s.upstream.idleTimeoutMs,
    });
  }
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}
