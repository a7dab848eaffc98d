import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
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
  private readonly requests: Counter<'outcome' | 'code' | 'class'>;
  private readonly duration: Histogram<'outcome'>;
  private readonly upstream: Histogram;
  private readonly transitions: Counter<'from' | 'to'>;
  private readonly adminRequests: Counter<'endpoint' | 'code'>;
  // prom-client hashes labels on every call; children are cached per label value instead.
  private readonly requestChildren = new Map<string, Map<number, Partial<Record<PriorityClass, Counter.Internal>>>>();
  private readonly durationChildren = new Map<string, Histogram.Internal<'outcome'>>();
  private readonly protocols: Counter<'protocol' | 'outcome' | 'grpc_status'>;
  /** children of `cb_requests_by_protocol_total`, by `protocol|outcome|grpc_status` */
  private readonly protocolChildren = new Map<string, Counter.Internal>();

  /** @param unknownPriority requests whose priority header held a value that is not a class, so far */
  constructor(version: string, admission: Admission, breaker: Breaker, unknownPriority: () => number) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    this.requests = new Counter({
      name: 'cb_requests_total',
      help: 'Requests by outcome (forwarded, or the answer the sidecar made), status code and priority class.',
      labelNames: ['outcome', 'code', 'class'],
      registers,
    });
    // Its own metric, so cb_requests_total's series stay as they were: the protocol and a gRPC call's status.
    this.protocols = new Counter({
      name: 'cb_requests_by_protocol_total',
      help: 'Requests by client protocol (http1, h2), outcome and grpc-status (empty unless gRPC).',
      labelNames: ['protocol', 'outcome', 'grpc_status'],
      registers,
    });
    this.duration = new Histogram({
      name: 'cb_request_duration_seconds',
      help: 'Time from request arrival to answer, by outcome.',
      labelNames: ['outcome'],
      buckets: LATENCY_BUCKETS_S,
      registers,
    });
    this.upstream = new Histogram({
      name: 'cb_upstream_request_duration_seconds',
      help: 'Duration of upstream calls.',
      buckets: LATENCY_BUCKETS_S,
      registers,
    });
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
    const key =
      grpcStatus === undefined
        ? protocol === 'http1'
          ? outcome
          : `h2|${outcome}`
        : `${protocol}|${outcome}|${grpcStatus}`;
    let child = this.protocolChildren.get(key);
    if (child === undefined)
      this.protocolChildren.set(
        key,
        (child = this.protocols.labels(protocol, outcome, grpcStatus === undefined ? '' : String(grpcStatus))),
      );
    child.inc();
    let byCode = this.requestChildren.get(outcome);
    if (byCode === undefined) this.requestChildren.set(outcome, (byCode = new Map()));
    let byClass = byCode.get(code);
    if (byClass === undefined) byCode.set(code, (byClass = {}));
    (byClass[priority] ??= this.requests.labels(outcome, String(code), priority)).inc();
    if (seconds === undefined) return;
    let histogram = this.durationChildren.get(outcome);
    if (histogram === undefined) this.durationChildren.set(outcome, (histogram = this.duration.labels(outcome)));
    histogram.observe(seconds);
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
