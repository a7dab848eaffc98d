import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Pool } from 'undici';
import type { AttackSpec, Driver } from './driver.js';

/** The request body every driver sends: the seed's `vegeta/data.json`. */
export function readSeedBody(repoRoot: string): string {
  return readFileSync(join(repoRoot, 'vegeta', 'data.json'), 'utf8');
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

const TICK_MS = 1;

/**
 * The builtin load generator: open model (constant arrival rate), each request's latency measured from
 * its *scheduled* send time so a slow server cannot slow the clock down (no coordinated omission).
 * In-flight requests are bounded (`maxInflight`: beyond it a request is recorded as an error, not
 * delayed) and every request is aborted at `timeoutMs` after its scheduled time.
 */
export class BuiltinDriver implements Driver {
  readonly name = 'builtin';

  async attack(spec: AttackSpec): Promise<string[]> {
    const url = new URL(spec.baseUrl);
    if (url.hostname !== '127.0.0.1') throw new RangeError(`the builtin driver targets 127.0.0.1 only, got ${url.hostname}`);
    const body = readSeedBody(spec.repoRoot);
    const bytesOut = Buffer.byteLength(body);
    const pool = new Pool(url.origin, {
      connections: Math.min(spec.maxInflight, 512),
      pipelining: 1,
      keepAliveTimeout: 30_000,
      headersTimeout: spec.timeoutMs,
      bodyTimeout: spec.timeoutMs,
      connectTimeout: Math.min(spec.timeoutMs, 5000),
    });
    const rec = spec.recorder;
    const total = Math.round(spec.rate * spec.durationSeconds);
    const intervalMs = 1000 / spec.rate;
    const headers = { 'content-type': 'application/json' };
    let inflight = 0;
    let scheduled = 0;
    let settle: () => void = () => {};
    const drained = new Promise<void>((resolve) => (settle = resolve));
    const t0 = performance.now();

    const one = async (sendMs: number): Promise<void> => {
      const late = performance.now() - t0 - sendMs;
      rec.sendLag(late);
      const remaining = spec.timeoutMs - late;
      try {
        if (remaining <= 0) throw Object.assign(new Error('timeout'), { name: 'TimeoutError' });
        const res = await pool.request({
          method: 'POST',
          path: '/predict',
          headers,
          body,
          signal: AbortSignal.timeout(Math.max(1, Math.floor(remaining))),
        });
        let bytesIn = 0;
        for await (const chunk of res.body) bytesIn += (chunk as Buffer).length;
        const latency = performance.now() - t0 - sendMs;
        const err = res.statusCode >= 200 && res.statusCode < 300 ? undefined : statusText(res.statusCode);
        const reason = res.headers['x-cb-reason'];
        if (typeof reason === 'string') rec.reason(reason);
        rec.record(sendMs, latency, res.statusCode, bytesIn, bytesOut, err);
      } catch (err) {
        rec.record(sendMs, performance.now() - t0 - sendMs, 0, 0, bytesOut, errorText(err));
      } finally {
        inflight--;
        if (scheduled === total && inflight === 0) settle();
      }
    };

    await new Promise<void>((resolve) => {
      const tick = (): void => {
        const now = performance.now() - t0;
        while (scheduled < total && scheduled * intervalMs <= now) {
          if (spec.signal?.aborted === true) break;
          const sendMs = scheduled * intervalMs;
          scheduled++;
          rec.scheduled = scheduled;
          if (inflight >= spec.maxInflight) {
            rec.record(sendMs, 0, 0, 0, 0, `max in-flight ${spec.maxInflight} reached`);
            continue;
          }
          inflight++;
          void one(sendMs);
        }
        if (scheduled >= total || spec.signal?.aborted === true) resolve();
        else setTimeout(tick, TICK_MS);
      };
      tick();
    });
    if (spec.signal?.aborted === true) {
      // Count what was never scheduled as nothing: the attack ended early, requests = what was sent.
      if (inflight > 0) await Promise.race([drained, new Promise((r) => setTimeout(r, spec.timeoutMs))]);
    } else if (inflight > 0) {
      await drained;
    }
    await pool.destroy();
    return [];
  }
}

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request', 404: 'Not Found', 413: 'Payload Too Large', 422: 'Unprocessable Entity',
  429: 'Too Many Requests', 500: 'Internal Server Error', 502: 'Bad Gateway', 503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

/** vegeta's error text for a non-2xx answer: `503 Service Unavailable`. */
export function statusText(status: number): string {
  return `${status} ${STATUS_TEXT[status] ?? 'Status'}`.trim();
}
