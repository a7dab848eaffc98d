import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isDeepStrictEqual } from 'node:util';
import { pino, type Logger } from 'pino';
import { createAdminServer, stateDocument } from './admin.js';
import type { Config, Settings } from './config.js';
import { Intake } from './intake.js';
import { Admission } from './layers/admission.js';
import { Breaker } from './layers/breaker.js';
import { Forwarder } from './layers/forwarder.js';
import { Listener } from './listener.js';
import { SidecarMetrics } from './metrics.js';
import type { StateDocument } from './outcomes.js';
import { compose, type Handler, type ProxyRequest, type Reconfigurable } from './pipeline.js';
import { Responder } from './respond.js';
import { VERSION } from './version.js';

export { LISTENER } from './listener.js';

/** Options of {@link Sidecar.start}. */
export interface SidecarOptions {
  /** pino logger; silent by default */
  readonly logger?: Logger;
}

/**
 * A running sidecar: the listener and its lifecycle (start, reload, drain, close). A request goes
 * intake → admission → breaker → forwarder, and every answer through the responder.
 */
export class Sidecar {
  /** the port the proxy listens on */
  port = 0;
  /** the port the admin server listens on */
  adminPort = 0;
  readonly metrics: SidecarMetrics;
  private settings: Settings;
  private readonly intake: Intake;
  private readonly admission: Admission;
  private readonly breaker: Breaker;
  private readonly forwarder: Forwarder;
  /** Every part that takes options from the settings, in request order: a reload is one loop over them. */
  private readonly parts: readonly Reconfigurable<Settings>[];
  private readonly respond: Responder;
  private readonly handle: Handler;
  private readonly server: Listener;
  private readonly admin: Server;
  private readonly log: Logger;
  private active = 0;
  private draining = false;
  private idle: (() => void) | undefined;
  private closing: Promise<void> | undefined;

  private constructor(
    readonly config: Config,
    options: SidecarOptions,
  ) {
    this.log = options.logger ?? pino({ level: 'silent' });
    const s = (this.settings = config.settings);
    this.admission = new Admission(s);
    this.breaker = new Breaker(s);
    this.metrics = new SidecarMetrics(VERSION, this.admission, this.breaker, () => this.intake.unknownPriority);
    this.forwarder = new Forwarder(config.upstream, s, (ms) => this.metrics.upstreamDone(ms));
    this.respond = new Responder(this.metrics, this.log);
    this.intake = new Intake(s, this.respond, (request) => void this.serve(request));
    this.parts = [this.intake, this.admission, this.breaker, this.forwarder];
    this.handle = compose(this.admission.layer, this.breaker.layer)(this.forwarder.handle);

    this.breaker.onTransition((from, to) => {
      this.metrics.transition(from, to);
      this.log.warn({ from, to, retryAfterMs: this.breaker.retryAfterMs() }, `breaker ${from} -> ${to}`);
    });
    this.admission.onLimitChange((limit) => this.log.debug({ limit }, 'concurrency limit changed'));
    this.server = new Listener(this.intake.onSilent, this.intake.http1, this.intake.h2);
    this.admin = createAdminServer({
      registry: this.metrics.registry,
      respond: this.respond,
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
      sidecar.server.listen(config.listen.port, config.listen.host),
      listen(sidecar.admin, config.adminPort, config.listen.host),
    ]);
    sidecar.port = sidecar.server.port;
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

  private async serve(request: ProxyRequest): Promise<void> {
    this.active++;
    try {
      const { status, grpcStatus } = await this.handle(request);
      this.respond.forwarded(request, status, grpcStatus);
    } catch (err) {
      this.respond.failed(request, err);
    } finally {
      this.intake.done(request);
      if (--this.active === 0 && this.idle !== undefined) this.idle();
    }
  }

  /** Applies new settings from a reloaded file (SIGHUP): each part takes its sections; logs which changed. */
  reload(next: Settings): void {
    const prev = this.settings;
    const changed = (Object.keys(next) as (keyof Settings)[]).filter((k) => !isDeepStrictEqual(prev[k], next[k]));
    this.settings = next;
    for (const part of this.parts) part.reconfigure(next);
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
    this.draining = this.intake.draining = true;
    this.log.info(
      { delayMs: this.settings.drain.delayMs, graceMs: this.settings.drain.graceMs },
      'draining: readiness fails now',
    );
    await new Promise((resolve) => setTimeout(resolve, this.settings.drain.delayMs));
    const closed = this.server.close();
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
    this.draining = this.intake.draining = true;
    const closed = this.server.close();
    this.server.closeAllConnections();
    await closed;
    await this.shutdown();
  }

  private async shutdown(): Promise<void> {
    const admin = new Promise((resolve) => this.admin.close(resolve));
    this.admin.closeAllConnections();
    await Promise.all([admin, ...this.parts.map((part) => part.close())]);
  }

  /** The /state document (admin.ts assembles it). */
  state(): StateDocument {
    return stateDocument({
      upstream: this.config.upstream,
      draining: this.draining,
      activeRequests: this.active,
      admission: this.admission,
      breaker: this.breaker,
      unknownPriority: this.intake.unknownPriority,
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
