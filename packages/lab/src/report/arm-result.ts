import { ENVOY_OVERLOADED } from '../drivers/open-loop.js';
import type { EnvoyStats } from '../envoy.js';
import type { FaultResult } from '../fault.js';
import type { ClassFigures, LatencySummary, SecondPoint } from '../results.js';
import type { MachineStats, RuntimeStats } from '../runtime-stats.js';
import type { ScrapePoint } from '../scraper.js';
import type { ArmName } from '../plan.js';

/** Whether the machine, not the arm, set a run's figures (see arm-run.ts VOID_BUSY_PCT, VOID_STEAL_PCT). */
export interface MachineVerdict {
  /** True: the run is reported but not counted (acceptance, medians). */
  void: boolean;
  /** Why, in words; null when the run counts. */
  reason: string | null;
}

/** Everything the lab knows about one arm after its attack: the unit of summary.json and the reports. */
export interface ArmResult {
  arm: ArmName;
  /** Callers (client pods) that shared the offered rate, each with its own connections (and Envoy in mesh arms). */
  callers: number;
  /** `<arm>-c<callers>`: the key of this run in the raw files and acceptance. */
  key: string;
  driver: string;
  replicas: number;
  /** Requests recorded; always `sum(status_codes) + errors`. */
  requests: number;
  /** The rate the driver was asked for (req/s). */
  offered_rate: number;
  /** The rate requests were actually sent at (req/s, vegeta's `rate`). */
  rate: number;
  /** Attack duration: first to last send (s). */
  duration_s: number;
  /** Time from the last send to the last answer (s, vegeta's `wait`). */
  wait_s: number;
  /** Successful answers per second over attack + wait (vegeta's `throughput`). */
  throughput: number;
  /** 2xx answered per second while the attack was sending: the comparison table's goodput. */
  goodput_rps: number;
  success_ratio: number;
  /** Answers by HTTP status (errors without an answer are not here). */
  status_codes: Record<string, number>;
  /** Requests with no HTTP answer (refused, reset, timeout, in-flight bound). */
  errors: number;
  /** Distinct error texts with counts (vegeta's Error Set, counted). */
  error_set: Record<string, number>;
  /** Rejections by `x-cb-reason` (builtin driver; empty for vegeta and k6, which do not keep headers). */
  rejection_reasons: Record<string, number>;
  bytes_in: number;
  bytes_out: number;
  latency_ms: { all: LatencySummary; success: LatencySummary; rejection: LatencySummary };
  /**
   * Answers by priority class (`--mix`: the share of each class went out in `x-request-priority`); null
   * without a mix. A sidecar sheds the lower classes first; Envoy does not read the header.
   */
  classes: Record<string, ClassFigures> | null;
  /**
   * p99 of the sidecars' own rejections (`cb_request_duration_seconds` outcomes other than forwarded and
   * client-closed, all sidecars; the upper bound of its bucket, ms): the time inside the sidecar, without
   * the Service, the load generator and the scheduler in between. Null in `direct` or without rejections.
   */
  sidecar_rejection_p99_ms: number | null;
  /**
   * How late the builtin driver sent requests after their scheduled times (ms; null for vegeta and k6):
   * the load generator's own share of every latency, since latency counts from the scheduled time.
   */
  driver_send_lag_ms: LatencySummary | null;
  /**
   * Event loop delay and GC pauses during the attack: the builtin driver's worker thread (null for the
   * tools) and the lab's main thread (scrapes, progress, histograms); and the whole machine's CPU use and
   * steal (null off Linux).
   */
  runtime: { driver: RuntimeStats | null; lab: RuntimeStats; machine: MachineStats | null };
  /** Void runs are shown but not counted: the machine was too busy or its hypervisor stole too much. */
  void: MachineVerdict;
  /** Highest number of requests the API of one replica had in flight. */
  max_upstream_concurrency: number | null;
  /** Where that number comes from. */
  max_upstream_concurrency_source: string;
  /**
   * Closed-loop capacity of this arm's replicas (each API probed directly, the protection under test not
   * in the loop), measured just before its attack (req/s): the median 1 s window of the probe.
   */
  capacity_rps: number | null;
  /** `throughput / capacity_rps`. */
  goodput_ratio: number | null;
  /** The sidecar config file this arm ran with (sidecar arms). */
  sidecar_config: string | null;
  /**
   * Mesh arms: Envoy's own statistics during the attack, summed over the callers' Envoys and over the
   * replicas' inbound Envoys (null in the other arms).
   */
  envoy: { callers: EnvoyStats; inbound: EnvoyStats } | null;
  /** The fault run (`--fault`): what killing one replica's model did to this arm. */
  fault?: FaultResult;
  /** Per-second series and scrapes (also written raw to raw/<arm>.json). */
  series: SecondPoint[];
  scrapes: ScrapePoint[];
}

/**
 * A mesh run's 503s by who answered them. As the callers got them: Envoy's own overflow answers (503 UO,
 * `x-envoy-overloaded`, which the builtin driver records as the reason `envoy-overloaded`) and the rest,
 * upstream 503s the Envoys passed on; null with vegeta and k6, which do not keep headers. And from Envoy's
 * counters, which count attempts (in a profile whose mesh retries 503s one request can make several):
 * overflow answers made by the callers' Envoys and by the replicas' inbound Envoys, and the app's own 503s
 * at the inbound Envoys.
 */
export interface EnvoyRejections {
  answeredOverflow: number | null;
  answeredUpstream: number | null;
  overflowCallers: number;
  overflowInbound: number;
  app503: number;
}

/** Splits a mesh run's rejections (null in the arms without Envoys). */
export function envoyRejections(
  r: Pick<ArmResult, 'envoy' | 'driver' | 'status_codes' | 'rejection_reasons'>,
): EnvoyRejections | null {
  if (r.envoy === null) return null;
  const overflow = (s: EnvoyStats): number => s.upstream_rq_pending_overflow + s.upstream_rq_overflow;
  const inbound = overflow(r.envoy.inbound);
  const seen = r.driver === 'builtin' ? (r.rejection_reasons[ENVOY_OVERLOADED] ?? 0) : null;
  return {
    answeredOverflow: seen,
    answeredUpstream: seen === null ? null : Math.max(0, (r.status_codes['503'] ?? 0) - seen),
    overflowCallers: overflow(r.envoy.callers),
    overflowInbound: inbound,
    // Envoy counts its own overflow answers among the upstream 503s too (measured: an istio run whose app
    // never answers 503 had as many inbound upstream_rq_503 as inbound overflows).
    app503: Math.max(0, r.envoy.inbound.upstream_rq_503 - inbound),
  };
}
