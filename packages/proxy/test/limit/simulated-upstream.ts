import type { ConcurrencyLimit } from '../../src/limit/limit.js';

/** The upstream model: `parallelism` workers, a FIFO queue of `queueCapacity`, service time set per phase. */
export interface SimulatedUpstreamOptions {
  parallelism: number;
  /** Service time in ms as a function of simulated time (ms). */
  serviceMs: (nowMs: number) => number;
  /** Requests the upstream queues beyond its workers; more are rejected (a drop) after 0.5 ms. Default Infinity. */
  queueCapacity?: number;
  /** Relative jitter of service times (uniform +-jitter). Default 0.1. */
  jitter?: number;
  /** Parallelism as a function of time, overriding `parallelism` when given. */
  parallelismAt?: (nowMs: number) => number;
  /**
   * A dynamic-batching server instead of workers (an inference server that runs whatever is waiting as one
   * batch, up to `maxBatch`): one batch at a time, taking `fixedMs + perItemMs x size` (with jitter).
   * Its latency rises with the calls in flight long before its throughput stops rising. Overrides
   * `parallelism` and `serviceMs`.
   */
  batch?: { fixedMs: number; perItemMs: number; maxBatch: number };
}

/** What one simulated run measured. */
export interface SimulationResult {
  /** Successful completions per window of `bucketMs`. */
  completions: number[];
  /** The limit at the end of each window. */
  limits: number[];
  /** Smallest and largest limit ever seen. */
  minLimit: number;
  maxLimit: number;
  bucketMs: number;
  /** Calls the upstream rejected because its queue was full. */
  drops: number;
}

interface Call {
  admittedMs: number;
  inflightAtAdmission: number;
  endMs: number;
  dropped: boolean;
}

/**
 * Drives a limit with a saturating caller (always `limit` calls in flight, as admission does under
 * overload) against a queueing server on a fake clock. Deterministic: seeded jitter.
 */
export function simulate(
  limit: ConcurrencyLimit,
  upstream: SimulatedUpstreamOptions,
  durationMs: number,
  clock: { now: number },
  bucketMs = 250,
): SimulationResult {
  let seed = 42;
  const random = (): number => {
    seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
    return seed / 2_147_483_648;
  };
  const jitter = upstream.jitter ?? 0.1;
  const queueCapacity = upstream.queueCapacity ?? Infinity;
  const running: Call[] = []; // in service or being rejected; each has an end time
  const queued: Call[] = [];
  let busyWorkers = 0;
  let inflight = 0;
  const completions: number[] = [];
  const limits: number[] = [];
  let minLimit = limit.limit;
  let maxLimit = limit.limit;
  let drops = 0;
  const startMs = clock.now;

  const batch = upstream.batch;
  let batchLeft = 0;
  const startBatch = (nowMs: number): void => {
    if (batch === undefined || batchLeft > 0 || queued.length === 0) return;
    const size = Math.min(batch.maxBatch, queued.length);
    const endMs = nowMs + (batch.fixedMs + batch.perItemMs * size) * (1 + jitter * (2 * random() - 1));
    for (const call of queued.splice(0, size)) {
      call.endMs = endMs;
      running.push(call);
    }
    batchLeft = size;
  };
  const serve = (call: Call, nowMs: number): void => {
    busyWorkers++;
    call.endMs = nowMs + upstream.serviceMs(nowMs) * (1 + jitter * (2 * random() - 1));
    running.push(call);
  };
  const admit = (nowMs: number): void => {
    while (inflight < limit.limit) {
      inflight++;
      const call: Call = { admittedMs: nowMs, inflightAtAdmission: inflight, endMs: 0, dropped: false };
      const parallelism = upstream.parallelismAt?.(nowMs) ?? upstream.parallelism;
      if (batch !== undefined) {
        queued.push(call);
        startBatch(nowMs);
      } else if (busyWorkers < parallelism) serve(call, nowMs);
      else if (queued.length < queueCapacity) queued.push(call);
      else {
        drops++;
        call.dropped = true;
        call.endMs = nowMs + 0.5;
        running.push(call);
      }
    }
  };

  admit(clock.now);
  while (clock.now - startMs < durationMs) {
    let next = 0;
    for (let i = 1; i < running.length; i++) if (running[i]!.endMs < running[next]!.endMs) next = i;
    const call = running[next]!;
    running.splice(next, 1);
    const bucket = Math.floor((call.endMs - startMs) / bucketMs);
    while (limits.length <= bucket) {
      limits.push(limit.limit);
      completions.push(0);
    }
    clock.now = call.endMs;
    inflight--;
    if (batch !== undefined) {
      completions[bucket]!++;
      batchLeft--;
    } else if (!call.dropped) {
      busyWorkers--;
      completions[bucket]!++;
      const parallelism = upstream.parallelismAt?.(clock.now) ?? upstream.parallelism;
      while (busyWorkers < parallelism && queued.length > 0) serve(queued.shift()!, clock.now);
    }
    limit.onSample(call.endMs - call.admittedMs, call.inflightAtAdmission, call.dropped);
    limits[bucket] = limit.limit;
    minLimit = Math.min(minLimit, limit.limit);
    maxLimit = Math.max(maxLimit, limit.limit);
    admit(clock.now);
    startBatch(clock.now);
  }
  return { completions, limits, minLimit, maxLimit, bucketMs, drops };
}

/** Mean of `values[from..to)`. */
export function mean(values: number[], from: number, to: number): number {
  let sum = 0;
  for (let i = from; i < to; i++) sum += values[i] ?? 0;
  return sum / (to - from);
}
