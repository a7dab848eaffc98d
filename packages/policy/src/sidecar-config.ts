import { failOnOptions } from './envoy.js';
import type { ConnectionPoolSettings, MeshPolicy } from './policy.js';

/**
 * The one derivation of cb-sidecar's per-replica numbers from a mesh policy (docs/istio-arm.md "From the
 * DestinationRule to the sidecar"). Istio's limits are per calling Envoy for the whole Service; the sidecar's
 * are per replica for every caller together, so the mesh's figure per replica is the per-caller limit times
 * the callers divided by the replicas. When the model's capacity is known, the sidecar is sized to that
 * instead, and the mesh's figure is shown beside it.
 */

/** What one replica's model can serve: `concurrency` inferences at once, each taking `serviceTimeMs`. */
export interface ModelCapacity {
  /** Execution slots (the API's INFERENCE_CONCURRENCY; a model server's workers or instances). */
  readonly concurrency: number;
  /** Time one inference holds its slot, in ms (INFERENCE_MIN_MS). */
  readonly serviceTimeMs: number;
}

/** Options of {@link sidecarConfig}. */
export interface SidecarConfigOptions {
  /** Replicas of the model behind the Service. */
  readonly replicas: number;
  /** Calling pods (each with its own Envoy, so its own copy of the DestinationRule's limits). */
  readonly callers: number;
  /** The model's capacity per replica; without it the mesh's per-replica figures are used as they are. */
  readonly model?: ModelCapacity;
  /** `static` limits, or `adaptive` (the limiter learns the limit between `min` and `max`). */
  readonly mode: 'static' | 'adaptive';
  /**
   * Time from a slot freeing until a request the sidecar already forwarded occupies it (ms): the loopback
   * hop and the API's own work outside its slot. Default {@link DEFAULT_HANDOFF_MS}.
   */
  readonly handoffMs?: number;
  /** Numbers given by hand (the lab's --limit, --pending, ...): they win over the rule, and the explanation says so. */
  readonly explicit?: ExplicitNumbers;
  /** Merged into the `sidecar` section last (e.g. the lab's short drain). */
  readonly overrides?: Readonly<Record<string, unknown>>;
}

/** Sidecar numbers a caller may fix instead of deriving them. */
export interface ExplicitNumbers {
  readonly limit?: number;
  readonly pending?: number;
  readonly queueTimeoutMs?: number;
  readonly adaptiveMin?: number;
  readonly adaptiveMax?: number;
}

/**
 * The default handoff time (ms): from a slot freeing until the sidecar's next request occupies it (the answer's
 * way back, admission of the next request, the loopback hop, the API's parsing). Measured by
 * `make bench-service-time` (arm sidecar-slots: the limit at exactly the model's 8 slots, so each slot idles h
 * between answers and the model serves 8 / (T + h)) at 5 ms and 3x overload, where arrivals (0.24 ms apart) are
 * denser than completions and the queue is rarely empty: h = 1.1-1.8 ms over two runs, with the sidecar at ~60%
 * of a core. The idle machine's 1 ms gave limit 10 at 5 ms, which served 85-93% of the model's capacity; 2 ms
 * gives 12 (84-97%, set by the sidecar's own event-loop stalls; BENCHMARKS.md).
 */
export const DEFAULT_HANDOFF_MS = 2;

/**
 * The adaptive ceiling as a multiple of the static limit. The limiter's sawtooth runs between ~0.9 and ~2 times
 * the model's parallelism (docs/adaptive.md); 4x let it park 36 requests at a 200 ms model of 8 slots (28 of
 * them waiting inside the model, where nobody can shed them: accepted p50 449 ms, p99 973 ms against the static
 * limit's 206 / 341 ms, bench-service-time), 2x bounds that at 18 (367 / 553 ms) at the same goodput.
 */
const ADAPTIVE_MAX_FACTOR = 2;

/**
 * CoDel's target (Facebook's 5 ms): once the queue has stood for an interval, queued requests are shed after
 * this rather than the whole queue timeout, so under sustained overload a rejection stays fast; a burst on
 * a queue that drains still gets the whole timeout.
 */
const CODEL_TARGET_MS = 5;

/** The numbers derived for one replica, with the arithmetic in words. */
export interface SidecarDerivation {
  readonly mode: 'static' | 'adaptive';
  /** Static limit (requests in flight to the model); in adaptive mode the limiter's floor. */
  readonly limit: number | undefined;
  /** Requests that may wait in the sidecar's queue. */
  readonly pending: number | undefined;
  /** Longest wait in the queue (ms). */
  readonly queueTimeoutMs: number | undefined;
  /** Adaptive bounds. */
  readonly adaptive: { readonly min: number; readonly max: number } | undefined;
  /** What the mesh lets reach one replica (undefined = unlimited). */
  readonly mesh: {
    readonly perCallerInflight: number | undefined;
    readonly perCallerPending: number | undefined;
    readonly perReplicaInflight: number | undefined;
    readonly perReplicaPending: number | undefined;
    readonly inboundInflight: number | undefined;
  };
  /** The model's figures, when given. */
  readonly model: { readonly capacityRps: number; readonly handoffSlots: number } | undefined;
  /** The arithmetic, one line per step. */
  readonly explanation: readonly string[];
}

/** The cb-sidecar config document: `trafficPolicy` (the DestinationRule's shape) and `sidecar`. */
export type SidecarConfigDocument = {
  trafficPolicy: Record<string, unknown>;
  sidecar: Record<string, unknown>;
};

/** Istio's in-flight bound of a pool: min(maxConnections, http2MaxRequests), 0 or unset = unlimited. */
function inflightOf(pool: ConnectionPoolSettings | undefined): number | undefined {
  const bounds = [pool?.tcp?.maxConnections, pool?.http?.http2MaxRequests].filter(
    (v): v is number => v !== undefined && v > 0,
  );
  return bounds.length > 0 ? Math.min(...bounds) : undefined;
}

function pendingOf(pool: ConnectionPoolSettings | undefined): number | undefined {
  const v = pool?.http?.http1MaxPendingRequests;
  return v !== undefined && v > 0 ? v : undefined;
}

const minDefined = (...vs: (number | undefined)[]): number | undefined => {
  const d = vs.filter((v): v is number => v !== undefined);
  return d.length > 0 ? Math.min(...d) : undefined;
};
const show = (v: number | undefined): string => (v === undefined ? 'unlimited' : String(v));
const msText = (ms: number): string => (ms >= 1000 && ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`);

/**
 * Derives one replica's sidecar numbers from the policy (the rule is in docs/istio-arm.md):
 * - mesh per replica = ceil(per-caller limit × callers / replicas), capped by the inbound pool;
 * - with the model known: limit = slots + handoff slots, handoff slots = max(1, ceil(slots × handoff / service
 *   time)), so a slot that frees finds the next request already at the model; queue timeout = a tenth of the
 *   service time (at least 1 ms); pending = ceil(2 × slots × queue timeout / service time), the completions
 *   expected within the queue timeout, doubled for their jitter; CoDel's target = min(queue timeout, 5 ms);
 * - adaptive: min = that limit, max = 2 × it (without the model: 1 and the mesh's figure).
 * @throws PolicyError POLICY_BAD_OPTIONS listing every problem in `opts`
 */
export function deriveSidecarLimits(policy: MeshPolicy, opts: SidecarConfigOptions): SidecarDerivation {
  checkOptions(opts);
  const d = derive(policy, opts);
  const x = opts.explicit;
  if (x === undefined) return d;
  const lines = [...d.explanation];
  const given = <T>(name: string, value: T | undefined, ruled: T): T => {
    if (value === undefined) return ruled;
    lines.push(`${name} ${String(value)} given explicitly (the rule says ${String(ruled)})`);
    return value;
  };
  const limit = given('limit', x.limit, d.limit);
  let adaptive = d.adaptive;
  if (adaptive !== undefined) {
    const max = given('adaptive max', x.adaptiveMax, adaptive.max);
    let min = given('adaptive min', x.adaptiveMin, adaptive.min);
    if (min > max) {
      lines.push(`adaptive min ${min} lowered to the max ${max}`);
      min = max;
    }
    adaptive = { min, max };
  }
  return {
    ...d,
    limit,
    pending: given('pending', x.pending, d.pending),
    queueTimeoutMs: given('queue timeout (ms)', x.queueTimeoutMs, d.queueTimeoutMs),
    adaptive,
    explanation: lines,
  };
}

function derive(policy: MeshPolicy, opts: SidecarConfigOptions): SidecarDerivation {
  const lines: string[] = [];
  const pool = policy.trafficPolicy.connectionPool;
  const perCallerInflight = inflightOf(pool);
  const perCallerPending = pendingOf(pool);
  const { callers, replicas } = opts;
  const scale = (v: number | undefined): number | undefined =>
    v === undefined ? undefined : Math.ceil((v * callers) / replicas);
  const inboundInflight = inflightOf(policy.inbound.connectionPool);
  const perReplicaInflight = minDefined(scale(perCallerInflight), inboundInflight);
  const perReplicaPending = minDefined(scale(perCallerPending), pendingOf(policy.inbound.connectionPool));
  lines.push(
    `mesh: each caller's Envoy allows ${show(perCallerInflight)} in flight (min of maxConnections, http2MaxRequests) and ${show(perCallerPending)} pending (http1MaxPendingRequests), for the whole Service`,
    `mesh: ${callers} caller(s) x ${show(perCallerInflight)} / ${replicas} replica(s) = ${show(scale(perCallerInflight))} in flight per replica; the inbound pool (${policy.inbound.from}) allows ${show(inboundInflight)}: ${show(perReplicaInflight)} reach one replica`,
  );
  const mesh = { perCallerInflight, perCallerPending, perReplicaInflight, perReplicaPending, inboundInflight };
  const m = opts.model;
  if (m === undefined) {
    lines.push(
      `no model capacity given: the sidecar applies the mesh's per-replica figures (limit ${show(perReplicaInflight)}, pending ${show(perReplicaPending)}); unlimited ones keep cb-sidecar's defaults, and so does the queue timeout (Envoy's pending requests have none)`,
    );
    const adaptive = opts.mode === 'adaptive' ? { min: 1, max: perReplicaInflight ?? 256 } : undefined;
    return {
      mode: opts.mode,
      limit: perReplicaInflight,
      pending: perReplicaPending,
      queueTimeoutMs: undefined,
      adaptive,
      mesh,
      model: undefined,
      explanation: lines,
    };
  }
  const S = m.concurrency;
  const T = m.serviceTimeMs;
  const g = opts.handoffMs ?? DEFAULT_HANDOFF_MS;
  const capacityRps = (S * 1000) / T;
  const handoffSlots = Math.max(1, Math.ceil((S * g) / T));
  const limit = S + handoffSlots;
  const queueTimeoutMs = Math.max(1, Math.round(T / 10));
  const pending = Math.max(1, Math.ceil((2 * S * queueTimeoutMs) / T));
  lines.push(
    `model: ${S} slots x ${msText(T)} = ${round(capacityRps)} req/s per replica (${round(capacityRps * replicas)} req/s for ${replicas})`,
    `limit = slots + handoff slots = ${S} + max(1, ceil(${S} x ${g}ms / ${msText(T)})) = ${limit}: with exactly ${S} in flight a slot idles from each answer until the next request reaches the model; ${handoffSlots} more ${handoffSlots === 1 ? 'waits' : 'wait'} at the model and ${handoffSlots === 1 ? 'takes' : 'take'} a freed slot at once (adding ~${round((handoffSlots * T) / S)}ms of wait)`,
    `queue timeout = service time / 10 = ${msText(queueTimeoutMs)} (at least 1ms): a request may wait a tenth of its own service time for a slot; one that would wait longer is shed at once`,
    `pending = ceil(2 x ${S} slots x ${msText(queueTimeoutMs)} / ${msText(T)}) = ${pending}: the completions expected within the queue timeout, doubled for their jitter; more could not start in time`,
    `CoDel target = min(queue timeout, ${CODEL_TARGET_MS}ms): a burst on a queue that drains may wait the whole queue timeout; once the queue has stood for 100ms (sustained overload) a queued request is shed after ${msText(Math.min(queueTimeoutMs, CODEL_TARGET_MS))}, so rejections stay fast (with the target at the queue timeout the lab's adaptive arm answered its rejections in 21-23ms at p99, with 5ms in 3-5ms at the same goodput)`,
  );
  if (perReplicaInflight === undefined || perReplicaInflight > limit)
    lines.push(
      `against the mesh: ${show(perReplicaInflight)} in flight per replica is more than the model's ${limit}; the rest would wait inside the model, where nobody can shed it`,
    );
  else if (perReplicaInflight < S)
    lines.push(
      `against the mesh: ${perReplicaInflight} in flight per replica leaves ${S - perReplicaInflight} of the model's ${S} slots idle`,
    );
  else lines.push(`against the mesh: ${perReplicaInflight} in flight per replica is about what the model can use`);
  const adaptive = opts.mode === 'adaptive' ? { min: limit, max: ADAPTIVE_MAX_FACTOR * limit } : undefined;
  if (adaptive !== undefined)
    lines.push(
      `adaptive: min = the static limit ${limit} (below it a slot idles for certain), max = ${ADAPTIVE_MAX_FACTOR} x ${limit} = ${adaptive.max} (room for the limiter's sawtooth and a faster model; more would only wait inside the model)`,
    );
  return {
    mode: opts.mode,
    limit,
    pending,
    queueTimeoutMs,
    adaptive,
    mesh,
    model: { capacityRps, handoffSlots },
    explanation: lines,
  };
}

function round(v: number): number {
  return Math.round(v * 10) / 10;
}

function checkOptions(opts: SidecarConfigOptions): void {
  const problems: string[] = [];
  const positiveInt = (v: unknown, name: string): void => {
    if (!Number.isInteger(v) || (v as number) < 1) problems.push(`${name}: must be an integer >= 1, got ${String(v)}`);
  };
  positiveInt(opts.replicas, 'replicas');
  positiveInt(opts.callers, 'callers');
  if (opts.mode !== 'static' && opts.mode !== 'adaptive')
    problems.push(`mode: must be static or adaptive, got ${String(opts.mode)}`);
  if (opts.model !== undefined) {
    positiveInt(opts.model.concurrency, 'model.concurrency');
    if (!(opts.model.serviceTimeMs > 0))
      problems.push(`model.serviceTimeMs: must be > 0, got ${opts.model.serviceTimeMs}`);
  }
  if (opts.handoffMs !== undefined && !(opts.handoffMs >= 0))
    problems.push(`handoffMs: must be >= 0, got ${opts.handoffMs}`);
  for (const [key, value] of Object.entries(opts.explicit ?? {}))
    if (value !== undefined) positiveInt(value, `explicit.${key}`);
  const x = opts.explicit ?? {};
  if (x.adaptiveMin !== undefined && x.adaptiveMax !== undefined && x.adaptiveMin > x.adaptiveMax)
    problems.push(`explicit.adaptiveMin (${x.adaptiveMin}) must be <= adaptiveMax (${x.adaptiveMax})`);
  failOnOptions(problems);
}

/**
 * The cb-sidecar config for one replica, derived from the mesh policy by {@link deriveSidecarLimits}: the
 * DestinationRule's trafficPolicy with its limits replaced by the derived ones, and the `sidecar` section
 * with concurrency, queue and breaker timing (the policy's own `sidecar` section, then `opts.overrides`,
 * merged around them).
 * @throws PolicyError POLICY_BAD_OPTIONS listing every problem in `opts`
 */
export function sidecarConfig(policy: MeshPolicy, opts: SidecarConfigOptions): SidecarConfigDocument {
  const d = deriveSidecarLimits(policy, opts);
  const pool = policy.trafficPolicy.connectionPool;
  const od = policy.trafficPolicy.outlierDetection;
  const ceiling = d.adaptive?.max ?? d.limit;
  const tcp = pick(pool?.tcp, ['connectTimeout', 'idleTimeout']);
  const http = pick(pool?.http, ['maxRequestsPerConnection', 'idleTimeout']);
  if (ceiling !== undefined) {
    tcp['maxConnections'] = ceiling;
    http['http2MaxRequests'] = ceiling;
  }
  if (d.pending !== undefined) http['http1MaxPendingRequests'] = d.pending;
  const trafficPolicy: Record<string, unknown> = {
    connectionPool: {
      ...(Object.keys(tcp).length > 0 ? { tcp } : {}),
      ...(Object.keys(http).length > 0 ? { http } : {}),
    },
    ...(od !== undefined
      ? {
          outlierDetection: pick(od, [
            'consecutive5xxErrors',
            'consecutiveGatewayErrors',
            'interval',
            'baseEjectionTime',
            'maxEjectionPercent',
          ]),
        }
      : {}),
  };
  const derived: Record<string, unknown> = {
    concurrency:
      d.adaptive !== undefined
        ? { mode: 'adaptive', min: d.adaptive.min, max: d.adaptive.max }
        : { mode: 'static', min: 1, max: Math.max(1, d.limit ?? 1) },
    // The DR's baseEjectionTime takes one endpoint out of one caller's pool while the others serve; the
    // sidecar's breaker closes the replica to every caller, so it probes again soon and backs off.
    breaker: { resetTimeout: '2s', maxResetTimeout: '30s' },
  };
  if (d.limit === undefined && d.adaptive === undefined) delete derived['concurrency'];
  if (d.queueTimeoutMs !== undefined) {
    const q = shortDuration(d.queueTimeoutMs);
    derived['queue'] = {
      timeout: q,
      codelTarget: shortDuration(Math.min(d.queueTimeoutMs, CODEL_TARGET_MS)),
      codelInterval: '100ms',
    };
  }
  const sidecar = merge(merge({ ...(policy.sidecarExtensions ?? {}) }, derived), opts.overrides ?? {});
  return { trafficPolicy, sidecar };
}

/** `20ms`, `1s`: Istio duration text for whole milliseconds. */
function shortDuration(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

function pick(from: object | undefined, keys: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const src = (from ?? {}) as Record<string, unknown>;
  for (const k of keys) if (src[k] !== undefined) out[k] = src[k];
  return out;
}

function merge(base: Record<string, unknown>, over: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] =
      typeof v === 'object' &&
      v !== null &&
      !Array.isArray(v) &&
      typeof b === 'object' &&
      b !== null &&
      !Array.isArray(b)
        ? merge(b as Record<string, unknown>, v as Record<string, unknown>)
        : v;
  }
  return out;
}

/** The derivation as YAML comment lines (what `cb-policy limits` prints above the config). */
export function explainAsComments(d: SidecarDerivation): string {
  return d.explanation.map((l) => `# ${l}`).join('\n');
}
