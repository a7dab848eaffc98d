import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Pool } from 'undici';

/** What the closed-loop probe measured. */
export interface CapacityProbe {
  /** Successful (2xx) answers per second at saturation: the stack's capacity. */
  capacityRps: number;
  /** Median latency of the probe's successes (ms), with `concurrency` requests outstanding. */
  p50Ms: number;
  concurrency: number;
  durationSeconds: number;
  /** Non-2xx answers and errors during the measured window. */
  failures: number;
}

/**
 * Measures capacity with a closed loop: `concurrency` workers each send POST /predict, wait for the
 * answer, and send again, for `warmupSeconds` (discarded) plus `durationSeconds`.
 */
export async function probeCapacity(
  baseUrl: string,
  body: string,
  opts: { concurrency: number; durationSeconds: number; warmupSeconds?: number; signal?: AbortSignal },
): Promise<CapacityProbe> {
  const pool = new Pool(new URL(baseUrl).origin, { connections: opts.concurrency, pipelining: 1, headersTimeout: 10_000, bodyTimeout: 10_000 });
  const headers = { 'content-type': 'application/json' };
  const warmup = (opts.warmupSeconds ?? 0.5) * 1000;
  const start = performance.now();
  const measureFrom = start + warmup;
  const end = measureFrom + opts.durationSeconds * 1000;
  let ok = 0;
  let failures = 0;
  const latencies: number[] = [];
  const worker = async (): Promise<void> => {
    while (performance.now() < end && opts.signal?.aborted !== true) {
      const t = performance.now();
      let good = false;
      try {
        const res = await pool.request({ method: 'POST', path: '/predict', headers, body });
        await res.body.dump();
        good = res.statusCode >= 200 && res.statusCode < 300;
      } catch {
        await sleep(5); // a refused connection must not spin
      }
      const done = performance.now();
      if (t >= measureFrom && done <= end) {
        if (good) {
          ok++;
          latencies.push(done - t);
        } else failures++;
      }
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency }, worker));
  await pool.destroy();
  latencies.sort((a, b) => a - b);
  return {
    capacityRps: ok / opts.durationSeconds,
    p50Ms: latencies[Math.floor(latencies.length / 2)] ?? 0,
    concurrency: opts.concurrency,
    durationSeconds: opts.durationSeconds,
    failures,
  };
}
