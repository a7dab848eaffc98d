import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { Pool, type Dispatcher } from 'undici';
import { PRIORITY_CLASSES } from '@infer-cb/proxy/outcomes';
import { PRIORITY_HEADER } from '../mix.js';

/** What one open-model attack needs (plain data: it crosses into the driver's worker thread). */
export interface OpenLoopParams {
  /** Base URL of the Service (127.0.0.1 only). */
  baseUrl: string;
  rate: number;
  durationSeconds: number;
  /** Upper bound on one request's time, from its scheduled send to its answer. */
  timeoutMs: number;
  /** Upper bound on requests in flight; beyond it a request is an error, never delayed. */
  maxInflight: number;
  /** The body POSTed to `path`. */
  body: string;
  /** Where the body goes (default /predict). */
  path?: string;
  /** Each request's priority class in turn, repeated (sent in `x-request-priority`); absent: no header. */
  mix?: readonly string[];
}

/** Where the open loop reports (the worker batches it to the lab's ResultRecorder). */
export interface OpenLoopSink {
  /** Requests scheduled so far. */
  scheduled(count: number): void;
  /** How late one request was sent after its scheduled time (ms). */
  sendLag(ms: number): void;
  /**
   * One finished request: latency from its scheduled send; status 0 = no answer (`error` says why); `cls` the
   * index of its class in the mix's classes (-1 without a mix).
   */
  record(
    sendMs: number,
    latencyMs: number,
    status: number,
    bytesIn: number,
    bytesOut: number,
    error?: string,
    reason?: string,
    cls?: number,
  ): void;
}

/** A short error text in vegeta's spirit (`connect ECONNREFUSED`, `timeout`). */
export function errorText(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    if (err.name === 'TimeoutError' || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') {
      return 'timeout';
    }
    return typeof code === 'string' ? `${code}: ${err.message}` : err.message;
  }
  return String(err);
}

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  404: 'Not Found',
  413: 'Payload Too Large',
  422: 'Unprocessable Entity',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

/** vegeta's error text for a non-2xx answer: `503 Service Unavailable`. */
export function statusText(status: number): string {
  return `${status} ${STATUS_TEXT[status] ?? 'Status'}`.trim();
}

/** The rejection reason the lab records for Envoy's own overflow answers (`x-envoy-overloaded`). */
export const ENVOY_OVERLOADED = 'envoy-overloaded';

const TICK_MS = 1;
/** How often requests past their deadline are looked for (their deadlines are in send order). */
const SWEEP_MS = 20;

function timeoutError(): Error {
  return Object.assign(new Error('timeout'), { name: 'TimeoutError' });
}

interface InFlight {
  deadline: number;
  done: boolean;
  expired: boolean;
  controller: Dispatcher.DispatchController | null;
}

/** The driver's own warm-up: requests at this rate for this long, against a throwaway server of its own. */
const WARMUP_RATE = 1000;
const WARMUP_SECONDS = 0.3;

/**
 * Runs the open loop briefly against a server on 127.0.0.1 that this function starts and stops, answering
 * like the lab's stack (200 with a JSON body, 503 with `Retry-After`, `x-cb-reason` and an error body, in
 * turn), and discards what it measured. A fresh worker thread compiles undici's client and this loop on their
 * first requests: the attack's first ~50 ms were sent up to 12 ms late and its first answers read up to ~15 ms
 * late, which the first rejections of an arm showed as latency of the system under test.
 */
export async function warmUpOpenLoop(p: OpenLoopParams): Promise<void> {
  let n = 0;
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const ok = n++ % 2 === 0;
      const body = ok ? '{"predictions":[0]}' : '{"error":{"code":"CB_OVERLOAD","message":"warm-up"}}';
      const headers: Record<string, string> = {
        'content-type': 'application/json',
        'content-length': String(Buffer.byteLength(body)),
      };
      if (!ok) Object.assign(headers, { 'retry-after': '1', 'x-cb-reason': 'overload' });
      res.writeHead(ok ? 200 : 503, headers).end(body);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  const ignore: OpenLoopSink = { scheduled: () => {}, sendLag: () => {}, record: () => {} };
  try {
    await runOpenLoop(
      { ...p, baseUrl: `http://127.0.0.1:${port}`, rate: WARMUP_RATE, durationSeconds: WARMUP_SECONDS },
      ignore,
      () => false,
    );
  } finally {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/**
 * The builtin load generator's loop: open model (constant arrival rate), each request's latency measured
 * from its *scheduled* send time so a slow server cannot slow the clock down (no coordinated omission).
 * Requests go out through undici's dispatch API (no stream, no AbortSignal, no timer per request: their
 * garbage and timers were the driver's GC pauses); one sweep every 20 ms aborts requests `timeoutMs`
 * after their scheduled time, since those deadlines come in send order.
 */
export async function runOpenLoop(p: OpenLoopParams, sink: OpenLoopSink, aborted: () => boolean): Promise<void> {
  const url = new URL(p.baseUrl); // BuiltinDriver.attack has checked it is 127.0.0.1 before starting this worker
  const bytesOut = Buffer.byteLength(p.body);
  const body = Buffer.from(p.body);
  const path = p.path ?? '/predict';
  const pool = new Pool(url.origin, {
    connections: Math.min(p.maxInflight, 512),
    pipelining: 1,
    keepAliveTimeout: 30_000,
    headersTimeout: 0, // the sweep below enforces timeoutMs from the scheduled send
    bodyTimeout: 0,
    connectTimeout: Math.min(p.timeoutMs, 5000),
  });
  const total = Math.round(p.rate * p.durationSeconds);
  const intervalMs = 1000 / p.rate;
  const headers = { 'content-type': 'application/json' };
  // With a mix: each request's class (its index in PRIORITY_CLASSES) and one headers object per class.
  const mix = (p.mix ?? []).map((c) => PRIORITY_CLASSES.indexOf(c as (typeof PRIORITY_CLASSES)[number]));
  const classHeaders = PRIORITY_CLASSES.map((c) => ({ ...headers, [PRIORITY_HEADER]: c }));
  const queue: InFlight[] = [];
  let head = 0;
  let inflight = 0;
  let scheduled = 0;
  let settle: () => void = () => {};
  const drained = new Promise<void>((resolve) => (settle = resolve));
  const t0 = performance.now();

  const sweep = setInterval(() => {
    const now = performance.now() - t0;
    while (head < queue.length) {
      const e = queue[head] as InFlight;
      if (!e.done) {
        if (e.deadline > now) break;
        e.expired = true;
        e.controller?.abort(timeoutError());
      }
      head++;
    }
    if (head > 4096) {
      queue.splice(0, head);
      head = 0;
    }
  }, SWEEP_MS);

  const one = (sendMs: number, cls: number): void => {
    const late = performance.now() - t0 - sendMs;
    sink.sendLag(late);
    const entry: InFlight = {
      deadline: sendMs + p.timeoutMs,
      done: false,
      expired: late >= p.timeoutMs,
      controller: null,
    };
    queue.push(entry);
    let status = 0;
    let reason: string | undefined;
    let bytesIn = 0;
    const finish = (err: unknown): void => {
      if (entry.done) return;
      entry.done = true;
      const latency = performance.now() - t0 - sendMs;
      if (err !== undefined) sink.record(sendMs, latency, 0, 0, bytesOut, errorText(err), undefined, cls);
      else
        sink.record(
          sendMs,
          latency,
          status,
          bytesIn,
          bytesOut,
          status >= 200 && status < 300 ? undefined : statusText(status),
          reason,
          cls,
        );
      inflight--;
      if (scheduled === total && inflight === 0) settle();
    };
    const handler: Dispatcher.DispatchHandler = {
      onRequestStart(controller) {
        entry.controller = controller;
        if (entry.expired) controller.abort(timeoutError());
      },
      onResponseStart(_controller, statusCode, resHeaders) {
        status = statusCode;
        const r = resHeaders['x-cb-reason'];
        if (typeof r === 'string') reason = r;
        // Envoy's own overflow answer (503 UO) says so in a header of its own.
        else if (resHeaders['x-envoy-overloaded'] !== undefined) reason = ENVOY_OVERLOADED;
      },
      onResponseData(_controller, chunk) {
        bytesIn += chunk.length;
      },
      onResponseEnd() {
        finish(undefined);
      },
      onResponseError(_controller, err) {
        finish(err);
      },
    };
    try {
      pool.dispatch({ method: 'POST', path, headers: cls < 0 ? headers : classHeaders[cls], body }, handler);
    } catch (err) {
      finish(err);
    }
  };

  try {
    await new Promise<void>((resolve) => {
      const tick = (): void => {
        const now = performance.now() - t0;
        while (scheduled < total && scheduled * intervalMs <= now) {
          if (aborted()) break;
          const sendMs = scheduled * intervalMs;
          const cls = mix.length === 0 ? -1 : (mix[scheduled % mix.length] as number);
          scheduled++;
          if (inflight >= p.maxInflight) {
            sink.record(sendMs, 0, 0, 0, 0, `max in-flight ${p.maxInflight} reached`, undefined, cls);
            continue;
          }
          inflight++;
          one(sendMs, cls);
        }
        sink.scheduled(scheduled);
        if (scheduled >= total || aborted()) resolve();
        else setTimeout(tick, TICK_MS);
      };
      tick();
    });
    if (aborted()) {
      // Count what was never scheduled as nothing: the attack ended early, requests = what was sent.
      if (inflight > 0) await Promise.race([drained, new Promise((r) => setTimeout(r, p.timeoutMs))]);
    } else if (inflight > 0) {
      await drained;
    }
  } finally {
    clearInterval(sweep);
    await pool.destroy();
  }
}
