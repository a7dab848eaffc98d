import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Histogram } from 'hdr-histogram-js';
import { Pool } from 'undici';
import { build } from 'hdr-histogram-js';
import { isRejection, isSuccess, summarize, type LatencySummary } from './results.js';
import { RuntimeMonitor, type RuntimeStats } from './runtime-stats.js';
import type { BackendStats } from './service.js';

/** The path the balancer answers itself with its counters (JSON); never forwarded. */
export const BALANCER_STATS_PATH = '/-/balancer';
/**
 * Its timings (`GET`; `POST` answers them, then starts them afresh): apart from the counters, which the
 * lab scrapes twice a second, because summarizing histograms is work the balancer's event loop would do
 * while requests wait.
 */
export const BALANCER_TIMINGS_PATH = '/-/balancer/timings';

/** Options of {@link Balancer}. */
export interface BalancerOptions {
  /** Backend origins, e.g. `http://127.0.0.1:8001`. */
  backends: readonly string[];
  /** Keep-alive connections per backend; requests beyond them wait in the balancer. */
  connectionsPerBackend?: number;
  /** Upper bound on a backend's answer (headers and body); then 503, so the balancer never hangs. */
  responseTimeoutMs?: number;
  /** Upper bound on connecting to a backend. */
  connectTimeoutMs?: number;
}

/** What `GET /-/balancer` answers. */
export interface BalancerStats {
  requests: number;
  errors: number;
  backends: BackendStats[];
}

/** What `GET /-/balancer/timings` answers (`POST` answers the same, then starts the timings afresh). */
export interface BalancerTimings {
  /**
   * Time inside the balancer per forwarded request, from its `request` event to the end of the answer
   * (ms), for 2xx answers and for rejections (5xx, 429): the balancer's share of what the load generator
   * measures end to end. Since the last `POST`.
   */
  latency_ms: { success: LatencySummary; rejection: LatencySummary };
  /** The balancer process's own event loop delay and GC pauses since the last `POST`. */
  runtime: RuntimeStats;
}

interface Backend {
  pool: Pool;
  stats: BackendStats;
}

/** Longest time the balancer's histograms hold (µs): its own response timeout. */
const TIMING_MAX_US = 120_000_000;

/**
 * A fixed-size HDR histogram (µs, 3 digits, 32-bit counts): recording is an index and an increment. The
 * lab's default (packed, auto-resizing) histogram cost the balancer, the process every request passes
 * through, enough to lift the end-to-end rejection p99 (measured ~18 ms -> ~60 ms).
 */
function timings(): Histogram {
  return build({ bitBucketSize: 32, numberOfSignificantValueDigits: 3, lowestDiscernibleValue: 1, highestTrackableValue: TIMING_MAX_US, autoResize: false });
}

// Hop-by-hop headers (RFC 9110 7.6.1) are the connection's, not the message's.
const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'host',
]);

function endToEnd(headers: Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(headers)) if (v !== undefined && !HOP_BY_HOP.has(k)) out[k] = v;
  return out;
}

/** Error codes of a backend that gave no answer at all, so the request can go to another one. */
const NO_ANSWER = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED']);

function readAll(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.once('end', () => resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks)));
    req.once('error', reject);
  });
}

/**
 * A round-robin HTTP balancer in the role of a Kubernetes Service: each request goes to the next
 * backend over a keep-alive undici Pool; statuses and bodies pass through unchanged. A request a backend
 * gave no answer to (refused, socket closed) goes to the next backend; when none answers, or one does not
 * answer in time, the balancer answers 503 with an error body, counted in the stats.
 *
 * The lab's arms run behind HAProxy (service.ts), which costs a fraction of this process's CPU and adds
 * no GC pauses; this in-process balancer remains for the rolling-restart test, whose point is its
 * re-send of a request a replica refused while it restarted (as endpoint removal does in a cluster).
 */
export class Balancer {
  private readonly backends: Backend[];
  private next = 0;
  private readonly totals = { requests: 0, errors: 0 };
  private server: Server | undefined;
  private okTimes: Histogram = timings();
  private rejectedTimes: Histogram = timings();
  private readonly runtime = new RuntimeMonitor().start();

  /** @throws RangeError when there is no backend */
  constructor(private readonly options: BalancerOptions) {
    if (options.backends.length === 0) throw new RangeError('backends must name at least one backend');
    const timeout = options.responseTimeoutMs ?? 60_000;
    this.backends = options.backends.map((url) => ({
      pool: new Pool(url, {
        connections: options.connectionsPerBackend ?? 128,
        pipelining: 1,
        keepAliveTimeout: 30_000,
        headersTimeout: timeout,
        bodyTimeout: timeout,
        connectTimeout: options.connectTimeoutMs ?? 2000,
      }),
      stats: { url, requests: 0, inflight: 0, maxInflight: 0, errors: 0 },
    }));
  }

  /** A snapshot of the counters. */
  stats(): BalancerStats {
    return { ...this.totals, backends: this.backends.map((b) => ({ ...b.stats })) };
  }

  /** Its timings since the last reset. */
  timings(): BalancerTimings {
    return {
      latency_ms: { success: summarize(this.okTimes), rejection: summarize(this.rejectedTimes) },
      runtime: this.runtime.snapshot(),
    };
  }

  /** Starts the timings afresh (the lab does this when an attack starts, after the probe). */
  resetTimings(): void {
    this.okTimes = timings();
    this.rejectedTimes = timings();
    this.runtime.reset();
  }

  /** Handles one request: stats path, or forward round-robin. */
  readonly handle = (req: IncomingMessage, res: ServerResponse): void => {
    if (req.url === BALANCER_STATS_PATH) {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(this.stats()));
      return;
    }
    if (req.url === BALANCER_TIMINGS_PATH) {
      const timings = this.timings();
      if (req.method === 'POST') this.resetTimings();
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(timings));
      return;
    }
    void this.forward(this.pick(), req, res, 0, undefined, performance.now());
  };

  /** Records how long an answer took inside the balancer, once it is written. */
  private timed(t0: number, status: number): void {
    const us = Math.min(TIMING_MAX_US, Math.max(1, Math.round((performance.now() - t0) * 1000)));
    if (isSuccess(status)) this.okTimes.recordValue(us);
    else if (isRejection(status)) this.rejectedTimes.recordValue(us);
  }

  private pick(): Backend {
    const backend = this.backends[this.next++ % this.backends.length] as Backend;
    if (this.next >= 1e9) this.next = 0;
    return backend;
  }

  private after(backend: Backend): Backend {
    return this.backends[(this.backends.indexOf(backend) + 1) % this.backends.length] as Backend;
  }

  /**
   * Sends one request to `backend`. When the backend gave no answer at all (refused the connection, or
   * closed an idle keep-alive socket as the request went out: a replica restarting), the buffered request
   * goes to the next backend, as a Service's endpoints would no longer list a replica that is going away.
   */
  private async forward(
    backend: Backend, req: IncomingMessage, res: ServerResponse, attempt: number, buffered: Buffer | null | undefined, t0: number,
  ): Promise<void> {
    const s = backend.stats;
    this.totals.requests++;
    s.requests++;
    s.inflight++;
    if (s.inflight > s.maxInflight) s.maxInflight = s.inflight;
    const abort = new AbortController();
    const onClose = (): void => {
      if (!res.writableFinished) abort.abort();
    };
    res.once('close', onClose);
    let body = buffered;
    let retry = false;
    try {
      const hasBody = req.method !== 'GET' && req.method !== 'HEAD';
      // Inference bodies are small: buffering both ways is cheaper than piping streams.
      body ??= hasBody ? await readAll(req) : null;
      const answer = await backend.pool.request({
        method: req.method as 'GET',
        path: req.url ?? '/',
        headers: endToEnd(req.headers),
        body,
        signal: abort.signal,
      });
      const payload = Buffer.from(await answer.body.arrayBuffer());
      const headers = endToEnd(answer.headers);
      headers['content-length'] = String(payload.length);
      res.writeHead(answer.statusCode, headers).end(payload);
      this.timed(t0, answer.statusCode);
    } catch (err) {
      if (abort.signal.aborted) return; // the client left (res 'close' aborted us): nothing to answer, not the backend's fault
      retry = attempt < this.backends.length - 1 && !res.headersSent && NO_ANSWER.has((err as { code?: string }).code ?? '');
      if (retry) return;
      this.totals.errors++;
      s.errors++;
      if (!res.headersSent) {
        const message = `backend ${s.url} failed: ${err instanceof Error ? err.message : String(err)}`;
        res
          .writeHead(503, { 'content-type': 'application/json', 'retry-after': '1' })
          .end(JSON.stringify({ error: { code: 'BACKEND_UNAVAILABLE', message } }));
        this.timed(t0, 503);
      } else {
        res.destroy();
      }
    } finally {
      s.inflight--;
      res.off('close', onClose);
      if (retry) void this.forward(this.after(backend), req, res, attempt + 1, body, t0);
    }
  }

  /** Listens on `host:port` (port 0 picks one); resolves to the bound port. */
  listen(port: number, host = '127.0.0.1'): Promise<number> {
    const server = createServer({ keepAliveTimeout: 30_000 }, this.handle);
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        const addr = server.address();
        resolve(typeof addr === 'object' && addr !== null ? addr.port : port);
      });
    });
  }

  /** Stops listening, drops idle client connections and closes every pool. */
  async close(): Promise<void> {
    this.runtime.stop();
    const server = this.server;
    if (server !== undefined) {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    }
    await Promise.all(this.backends.map((b) => b.pool.destroy()));
  }
}
