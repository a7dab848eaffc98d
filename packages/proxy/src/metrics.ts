import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { HotCounter, HotHistogram, type HistogramCell } from './hot-metrics.js';
import type { Admission } from './layers/admission.js';
import type { Breaker } from './layers/breaker.js';
import {
  BREAKER_STATES,
  PRIORITY_CLASSES,
  type BreakerState,
  type PriorityClass,
  type ProxyOutcome,
} from './outcomes.js';
import type { ClientProtocol } from './pipeline.js';

const LATENCY_BUCKETS_S = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** The `outcome` label of `cb_requests_total`: `forwarded`, or the proxy's own answer (outcomes.ts). */
export type RequestOutcome = 'forwarded' | ProxyOutcome;

/** The `endpoint` label of `cb_admin_requests_total`. */
export type AdminEndpoint = 'metrics' | 'healthz' | 'readyz' | 'state' | 'other';

/** The sidecar's Prometheus metrics on their own registry (one per sidecar instance). */
export class SidecarMetrics {
  /** the registry the admin server exposes */
  readonly registry = new Registry();
  // The request path's metrics: an observation is a few additions, not prom-client's label hash and closure.
  private readonly requests: HotCounter;
  private readonly duration: HotHistogram;
  private readonly upstream: HistogramCell;
  private readonly transitions: Counter<'from' | 'to'>;
  private readonly adminRequests: Counter<'endpoint' | 'code'>;
  private readonly protocols: HotCounter;

  /** @param unknownPriority requests whose priority header held a value that is not a class, so far */
  constructor(version: string, admission: Admission, breaker: Breaker, unknownPriority: () => number) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    this.requests = new HotCounter(
      'cb_requests_total',
      'Requests by outcome (forwarded, or the answer the sidecar made), status code and priority class.',
      ['outcome', 'code', 'class'],
      this.registry,
    );
    // Its own metric, so cb_requests_total's series stay as they were: the protocol and a gRPC call's status.
    this.protocols = new HotCounter(
      'cb_requests_by_protocol_total',
      'Requests by client protocol (http1, h2), outcome and grpc-status (empty unless gRPC).',
      ['protocol', 'outcome', 'grpc_status'],
      this.registry,
    );
    this.duration = new HotHistogram(
      'cb_request_duration_seconds',
      'Time from request arrival to answer, by outcome.',
      LATENCY_BUCKETS_S,
      this.registry,
      'outcome',
    );
    this.upstream = new HotHistogram(
      'cb_upstream_request_duration_seconds',
      'Duration of upstream calls.',
      LATENCY_BUCKETS_S,
      this.registry,
    ).cell();
    // Its own metric, so scrapes and probes never mix into request rates.
    this.adminRequests = new Counter({
      name: 'cb_admin_requests_total',
      help: 'Admin server answers by endpoint and status code.',
      labelNames: ['endpoint', 'code'],
      registers,
    });
    this.transitions = new Counter({
      name: 'cb_breaker_transitions_total',
      help: 'Breaker state changes.',
      labelNames: ['from', 'to'],
      registers,
    });
    // Gauges are read at scrape time: nothing on the hot path.
    new Gauge({
      name: 'cb_inflight_requests',
      help: 'Requests in flight to the upstream, by priority class.',
      labelNames: ['class'],
      registers,
      collect() {
        for (const [i, c] of PRIORITY_CLASSES.entries()) this.set({ class: c }, admission.inflightBy[i] as number);
      },
    });
    new Gauge({
      name: 'cb_queue_depth',
      help: 'Requests waiting for admission, by priority class.',
      labelNames: ['class'],
      registers,
      collect() {
        for (const [i, c] of PRIORITY_CLASSES.entries()) this.set({ class: c }, admission.queuedBy[i] as number);
      },
    });
    new Counter({
      name: 'cb_priority_unknown_total',
      help: 'Requests whose priority header held a value that is not a class (served as default).',
      registers,
      collect() {
        this.reset();
        this.inc(unknownPriority());
      },
    });
    new Gauge({
      name: 'cb_concurrency_limit',
      help: 'Current concurrency limit.',
      registers,
      collect() {
        this.set(admission.limit);
      },
    });
    new Gauge({
      name: 'cb_breaker_state',
      help: 'Breaker state: 1 for the current state, 0 for the others.',
      labelNames: ['state'],
      registers,
      collect() {
        const current = breaker.state;
        for (const s of BREAKER_STATES) this.set({ state: s }, s === current ? 1 : 0);
      },
    });
    new Gauge({ name: 'cb_build_info', help: 'Build information.', labelNames: ['version'], registers }).set(
      { version },
      1,
    );
  }

  /**
   * Counts one answered request of a priority class; `seconds` from arrival to answer feeds the duration
   * histogram (undefined for answers made before a request was parsed: malformed HTTP, CONNECT, Upgrade);
   * the client's protocol and a gRPC call's grpc-status go to `cb_requests_by_protocol_total`.
   */
  request(
    outcome: RequestOutcome,
    code: number,
    seconds: number | undefined,
    priority: PriorityClass,
    protocol: ClientProtocol = 'http1',
    grpcStatus?: number,
  ): void {
    this.protocols.inc(protocol, outcome, grpcStatus === undefined ? '' : String(grpcStatus));
    this.requests.inc(outcome, code, priority);
    if (seconds !== undefined) this.duration.cell(outcome).observe(seconds);
  }

  /** Counts one admin answer. */
  admin(endpoint: AdminEndpoint, code: number): void {
    this.adminRequests.labels(endpoint, String(code)).inc();
  }

  /** Records one upstream call's duration. */
  upstreamDone(ms: number): void {
    this.upstream.observe(ms / 1000);
  }

  /** Counts one breaker transition. */
  transition(from: BreakerState, to: BreakerState): void {
    this.transitions.labels(from, to).inc();
  }
}
