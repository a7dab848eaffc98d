import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Server as GrpcServer } from '@grpc/grpc-js';
import { startGrpc, type GrpcHost } from './grpc.js';

/** What the upstream does with the next requests. */
export type FaultMode = 'ok' | 'hang' | 'slow' | '5xx' | 'garbage' | 'headers-then-close' | 'mid-body-close';

/** A handler that replaces the modes: the test answers each request itself. */
export type UpstreamHandler = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

/** How the upstream starts (every field can be changed while it runs). */
export interface UpstreamOptions {
  mode?: FaultMode;
  /** time an answer takes in `ok` mode, ms (0: at once); `slow` takes 10x */
  serviceMs?: number;
  /** answers computed at once, like a model server's workers; more wait in its FIFO (default: no limit) */
  workers?: number;
  /** requests that may wait for a worker; more get 503 at once, as an overloaded model server answers (default: no limit) */
  backlog?: number;
  handler?: UpstreamHandler;
  /** keep every request target in `paths` (default true; a long bench turns it off) */
  recordPaths?: boolean;
  /** answer `/__stats`, `/__control` and `/__reset` (the upstream as a process, driven by a bench) */
  control?: boolean;
  /**
   * also serve gRPC (h2c) on its own port, {@link TestUpstream.grpcPort}: the OIP v2 service, whose ModelInfer
   * follows the mode (`5xx`: fails with {@link TestUpstream.grpcFailStatus}), and the streaming testkit.Tokens
   */
  grpc?: boolean;
}

/** What the upstream has seen. */
export interface UpstreamStats {
  /** requests that reached it */
  received: number;
  /** requests it is holding now (arrived, not yet answered or closed), and the most at once */
  inflight: number;
  maxInflight: number;
  /** answers 200 in `ok`/`slow` mode, and 503 because the backlog was full */
  served: number;
  rejected: number;
  /** workers busy now, and the most at once; requests waiting for one, and the most at once */
  busy: number;
  maxBusy: number;
  queued: number;
  maxQueued: number;
}

/** The answer of `ok` mode: what the iris API's /predict returns. */
export const PREDICTION = JSON.stringify({ prediction: [0.97, 0.02, 0.01] });
const BUSY = JSON.stringify({ error: { code: 'UPSTREAM_BUSY', message: 'all workers busy and the backlog is full' } });
const FAULT = JSON.stringify({ error: { code: 'INTERNAL', message: 'injected fault' } });

function json(res: ServerResponse, status: number, body: string): void {
  if (res.destroyed) return;
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/**
 * The controllable upstream: a real HTTP server on 127.0.0.1 whose behaviour a test or a bench switches at
 * run time. It answers like the API's /predict (after `serviceMs`, within `workers`, with a bounded
 * `backlog`), or never answers, answers late, answers 500, writes bytes that are not HTTP, or cuts its answer
 * short; a `handler` replaces all of that. It counts what reaches it and records every request target, so a
 * test can prove a request never arrived (smuggling, a client gone while queued).
 */
export class TestUpstream implements GrpcHost {
  mode: FaultMode;
  /** the grpc-status ModelInfer fails with in `5xx` mode (14 UNAVAILABLE) */
  grpcFailStatus = 14;
  /** gRPC calls cancelled (by the client or a proxy) before they ended */
  cancelled = 0;
  /** the metadata of the last gRPC call */
  lastMetadata: Record<string, unknown> = {};
  /** the time the last gRPC call had left by its deadline when it arrived, ms (Infinity: none) */
  lastDeadlineMs = Infinity;
  /** the gRPC port (with `grpc: true`) */
  grpcPort = 0;
  private grpcServer: GrpcServer | undefined;
  private readonly grpc: boolean;
  serviceMs: number;
  workers: number;
  backlog: number;
  handler: UpstreamHandler | undefined;
  /** request targets received, in order */
  readonly paths: string[] = [];
  port = 0;
  private readonly stats: UpstreamStats = {
    received: 0,
    inflight: 0,
    maxInflight: 0,
    served: 0,
    rejected: 0,
    busy: 0,
    maxBusy: 0,
    queued: 0,
    maxQueued: 0,
  };
  private readonly waiting: ServerResponse[] = [];
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  readonly timers = new Set<NodeJS.Timeout>();
  private readonly recordPaths: boolean;
  private readonly control: boolean;

  constructor(options: UpstreamOptions = {}) {
    this.mode = options.mode ?? 'ok';
    this.serviceMs = options.serviceMs ?? 0;
    this.workers = options.workers ?? Infinity;
    this.backlog = options.backlog ?? Infinity;
    this.handler = options.handler;
    this.recordPaths = options.recordPaths ?? true;
    this.control = options.control ?? false;
    this.grpc = options.grpc ?? false;
    this.server = createServer({ keepAliveTimeout: 65_000 }, (req, res) => this.onRequest(req, res));
    this.server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
  }

  /** Starts listening on 127.0.0.1: a free port at first, the same port again after {@link crash}. */
  async start(port = this.port): Promise<this> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, '127.0.0.1', () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    this.port = (this.server.address() as AddressInfo).port;
    if (this.grpc) ({ server: this.grpcServer, port: this.grpcPort } = await startGrpc(this, this.grpcPort));
    return this;
  }

  /** A gRPC call arrived: counted as a request; returns what to call when it ends. */
  arrived(path: string): () => void {
    const s = this.stats;
    s.received++;
    if (++s.inflight > s.maxInflight) s.maxInflight = s.inflight;
    if (this.recordPaths) this.paths.push(path);
    return () => {
      s.inflight--;
    };
  }

  /** `http://127.0.0.1:<port>` */
  get origin(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Requests that reached it. */
  get received(): number {
    return this.stats.received;
  }

  /** Requests it holds now. */
  get inflight(): number {
    return this.stats.inflight;
  }

  /** The most requests it held at once. */
  get maxInflight(): number {
    return this.stats.maxInflight;
  }

  /** Everything it counted, as of now. */
  snapshot(): UpstreamStats {
    return { ...this.stats };
  }

  /** Starts the maxima and counters afresh (what it holds now stays the maximum so far). */
  resetStats(): void {
    const s = this.stats;
    Object.assign(s, {
      received: 0,
      served: 0,
      rejected: 0,
      maxInflight: s.inflight,
      maxBusy: s.busy,
      maxQueued: s.queued,
    });
  }

  /** Stops listening and cuts every connection (hanging ones too), as a crashed process would. */
  async crash(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const s of this.sockets) s.destroy();
    this.waiting.length = 0;
    this.stats.busy = this.stats.queued = 0;
    this.grpcServer?.forceShutdown();
    this.grpcServer = undefined;
    await closed;
  }

  /** The same as {@link crash}: nothing is left running. */
  stop(): Promise<void> {
    return this.crash();
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    if (this.control && req.url?.startsWith('/__')) return this.answerControl(req, res);
    const s = this.stats;
    s.received++;
    if (++s.inflight > s.maxInflight) s.maxInflight = s.inflight;
    if (this.recordPaths) this.paths.push(req.url ?? '');
    res.once('close', () => s.inflight--);
    if (this.handler !== undefined) return void this.handler(req, res);
    // Answer once the body is read, as a model server parses its input first.
    req.resume();
    req.once('end', () => this.answer(res));
  }

  private answer(res: ServerResponse): void {
    switch (this.mode) {
      case 'ok':
        return this.work(res, this.serviceMs);
      case 'slow':
        return this.work(res, this.serviceMs * 10);
      case 'hang':
        return; // the socket stays open until the client or crash() closes it
      case '5xx':
        return json(res, 500, FAULT);
      case 'garbage':
        res.socket?.end('SSH-2.0-OpenSSH_9.6 this is not HTTP\r\n\r\n');
        return;
      case 'headers-then-close':
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(PREDICTION.length) });
        res.flushHeaders();
        setImmediate(() => res.socket?.destroy());
        return;
      case 'mid-body-close':
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(PREDICTION.length + 100) });
        res.write(PREDICTION.slice(0, 10), () => res.socket?.destroy());
        return;
    }
  }

  /** Serves within `workers`; more wait in FIFO up to `backlog`, and the rest are answered 503 at once. */
  private work(res: ServerResponse, ms: number): void {
    const s = this.stats;
    if (s.busy < this.workers) return this.serve(res, ms);
    if (this.waiting.length >= this.backlog) {
      s.rejected++;
      return json(res, 503, BUSY);
    }
    this.waiting.push(res);
    s.queued = this.waiting.length;
    if (s.queued > s.maxQueued) s.maxQueued = s.queued;
  }

  private serve(res: ServerResponse, ms: number): void {
    const s = this.stats;
    if (++s.busy > s.maxBusy) s.maxBusy = s.busy;
    if (ms <= 0) return this.finish(res);
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      this.finish(res);
    }, ms);
    this.timers.add(timer);
  }

  private finish(res: ServerResponse): void {
    const s = this.stats;
    s.busy--;
    if (!res.destroyed) {
      s.served++;
      json(res, 200, PREDICTION);
    }
    while (s.busy < this.workers && this.waiting.length > 0) {
      const next = this.waiting.shift() as ServerResponse;
      s.queued = this.waiting.length;
      if (!next.destroyed) this.serve(next, this.mode === 'slow' ? this.serviceMs * 10 : this.serviceMs);
    }
  }

  /** `/__stats` (counters), `/__control?mode=&serviceMs=&workers=&backlog=` (POST), `/__reset`. */
  private answerControl(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://upstream');
    if (url.pathname === '/__stats') return json(res, 200, JSON.stringify(this.snapshot()));
    if (url.pathname === '/__reset') {
      this.resetStats();
      return json(res, 200, JSON.stringify(this.snapshot()));
    }
    if (url.pathname === '/__control') {
      const problems: string[] = [];
      const number = (name: 'serviceMs' | 'workers' | 'backlog', min: number): void => {
        const text = url.searchParams.get(name);
        if (text === null) return;
        const value = Number(text);
        if (!(value >= min)) problems.push(`${name} must be a number >= ${min}, got ${JSON.stringify(text)}`);
        else this[name] = value;
      };
      number('serviceMs', 0);
      number('workers', 1);
      number('backlog', 0);
      const mode = url.searchParams.get('mode');
      if (mode !== null) {
        const modes: FaultMode[] = ['ok', 'hang', 'slow', '5xx', 'garbage', 'headers-then-close', 'mid-body-close'];
        if (modes.includes(mode as FaultMode)) this.mode = mode as FaultMode;
        else problems.push(`mode must be one of ${modes.join(', ')}, got ${JSON.stringify(mode)}`);
      }
      if (problems.length > 0)
        return json(res, 400, JSON.stringify({ error: { code: 'BAD_CONTROL', message: problems.join('; ') } }));
      return json(res, 200, JSON.stringify({ mode: this.mode, serviceMs: this.serviceMs, workers: this.workers }));
    }
    return json(
      res,
      404,
      JSON.stringify({ error: { code: 'NOT_FOUND', message: 'try /__stats, /__control, /__reset' } }),
    );
  }
}

/** Starts a controllable upstream on 127.0.0.1 and a free port. */
export function startUpstream(options: UpstreamOptions | UpstreamHandler = {}): Promise<TestUpstream> {
  return new TestUpstream(typeof options === 'function' ? { handler: options } : options).start();
}

/** A handler that answers `status` after `ms` (and never if the client went away first). */
export function slow(ms: number, status = 200): UpstreamHandler {
  return (_req, res) => {
    const t = setTimeout(() => {
      res.statusCode = status;
      res.end('slow');
    }, ms);
    res.once('close', () => clearTimeout(t));
  };
}
