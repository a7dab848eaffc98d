import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Pool } from 'undici';

/** What the closed-loop probe measured. */
export interface CapacityProbe {
  /**
   * Successful (2xx) answers per second at saturation: the capacity. The median of the per-window rates
   * (`windowsRps`), so one window disturbed by the rest of the machine does not move it.
   */
  capacityRps: number;
  /** 2xx per second over the whole measured time (the plain mean). */
  meanRps: number;
  /** 2xx per second in each measured window, in order. */
  windowsRps: number[];
  /** Median latency of the probe's successes (ms), with `concurrency` requests outstanding. */
  p50Ms: number;
  /** Requests outstanding in all (`concurrency` per target x targets). */
  concurrency: number;
  durationSeconds: number;
  /** What was probed: `replicas` (each API directly, as the lab does) or the URL given. */
  target: string;
  /** Non-2xx answers and errors during the measured time. */
  failures: number;
}

/** Options of {@link probeCapacity}. */
export interface ProbeOptions {
  /** Requests outstanding per target origin. */
  concurrencyPerTarget: number;
  /** The path the body is POSTed to (default /predict; MLServer's /v2/models/iris/infer). */
  path?: string;
  /** Measured time, after the warm-up. */
  durationSeconds: number;
  /** Discarded first part (default 0.5 s): connections open, JIT warms up. */
  warmupSeconds?: number;
  /** Length of one measured window (default 1 s; the last window may be shorter and then counts pro rata). */
  windowSeconds?: number;
  /** Written into the result's `target`. */
  label?: string;
  signal?: AbortSignal;
}

function median(values: readonly number[]): number {
  if (values.length === 0) return 0;
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/**
 * Measures capacity with a closed loop: `concurrencyPerTarget` workers per target origin each send
 * POST /predict, wait for the answer, and send again, for `warmupSeconds` (discarded) plus
 * `durationSeconds`. Each 2xx counts in the window it completed in; capacity is the median window.
 * Every answer completing in the measured time counts, whenever it was sent.
 */
export async function probeCapacity(
  targets: readonly string[],
  body: string,
  opts: ProbeOptions,
): Promise<CapacityProbe> {
  if (targets.length === 0) throw new RangeError('probeCapacity needs at least one target');
  const pools = targets.map(
    (t) =>
      new Pool(new URL(t).origin, {
        connections: opts.concurrencyPerTarget,
        pipelining: 1,
        headersTimeout: 10_000,
        bodyTimeout: 10_000,
      }),
  );
  const headers = { 'content-type': 'application/json' };
  const path = opts.path ?? '/predict';
  const warmup = (opts.warmupSeconds ?? 0.5) * 1000;
  const windowMs = (opts.windowSeconds ?? 1) * 1000;
  const start = performance.now();
  const measureFrom = start + warmup;
  const measureMs = opts.durationSeconds * 1000;
  const end = measureFrom + measureMs;
  const windows = Array.from({ length: Math.max(1, Math.ceil(measureMs / windowMs - 1e-9)) }, () => 0);
  let ok = 0;
  let failures = 0;
  const latencies: number[] = [];
  const worker = async (pool: Pool): Promise<void> => {
    while (performance.now() < end && opts.signal?.aborted !== true) {
      const t = performance.now();
      let good = false;
      try {
        const res = await pool.request({ method: 'POST', path, headers, body });
        await res.body.dump();
        good = res.statusCode >= 200 && res.statusCode < 300;
      } catch {
        await sleep(5); // a refused connection must not spin
      }
      const done = performance.now();
      // By completion time: in a closed loop the answers completing per second are the throughput. (Counting
      // only requests also *sent* inside the window missed the first latency's worth of answers: with
      // 300 ms answers, a 3 s probe read ~10% low, and its first 1 s window ~30% low.)
      if (done >= measureFrom && done <= end) {
        if (good) {
          ok++;
          latencies.push(done - t);
          const w = Math.min(windows.length - 1, Math.floor((done - measureFrom) / windowMs));
          windows[w] = (windows[w] as number) + 1;
        } else failures++;
      }
    }
  };
  await Promise.all(pools.flatMap((pool) => Array.from({ length: opts.concurrencyPerTarget }, () => worker(pool))));
  await Promise.all(pools.map((p) => p.destroy()));
  latencies.sort((a, b) => a - b);
  const windowsRps = windows.map((n, i) => {
    const len = Math.min(windowMs, measureMs - i * windowMs) / 1000;
    return Math.round((n / len) * 10) / 10;
  });
  return {
    capacityRps: median(windowsRps),
    meanRps: Math.round((ok / opts.durationSeconds) * 10) / 10,
    windowsRps,
    p50Ms: latencies[Math.floor(latencies.length / 2)] ?? 0,
    concurrency: opts.concurrencyPerTarget * targets.length,
    durationSeconds: opts.durationSeconds,
    target: opts.label ?? targets.join(','),
    failures,
  };
}
