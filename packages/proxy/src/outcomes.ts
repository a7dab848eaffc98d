/**
 * Every answer cb-sidecar makes itself, one row each: the proxy listener's sheds, upstream failures and
 * refusals, and the admin server's errors. The error classes (errors.ts), the answers (respond.ts) and the
 * metric labels (metrics.ts) are derived from this table; nothing else decides a status or a code.
 *
 * Columns, beside the row's key (the reason: `x-cb-reason` and the `outcome` metric label):
 * - `status`: the HTTP status (499 is recorded, never sent: the client had gone);
 * - `code`: the stable `error.code` of the JSON body;
 * - `retryAfter`: `Retry-After` on the answer: one second, or the breaker's time to its probe;
 * - `reasonHeader`: the answer carries `x-cb-reason`;
 * - `upstreamFailure`: the breaker counts it against the upstream;
 * - `headers`: further headers of the answer;
 * - `classHeader`: the answer carries `x-cb-class`, the request's priority class (the admission layer's sheds);
 * - `admin`: the admin server's answer (counted in `cb_admin_requests_total`), not the proxy listener's;
 * - `grpc`: the `grpc-status` a gRPC call gets instead (HTTP 200, a trailers-only answer), on every proxy row;
 * - `pushback`: `grpc-retry-pushback-ms` on that answer where a retry is welcome (gRPC A6): one second, or the
 *   breaker's time to its probe; rows without it send none, and the client's own retry policy decides.
 *
 * A new column is one more optional field here and one line where respond.ts builds the answer.
 *
 * Zero dependencies: the lab and other light consumers import it as `@infer-cb/proxy/outcomes`.
 */

/** One row of {@link OUTCOMES}. */
export interface OutcomeRow {
  readonly status: number;
  readonly code: string;
  readonly retryAfter?: 'second' | 'breaker';
  readonly reasonHeader?: true;
  readonly upstreamFailure?: true;
  readonly headers?: Readonly<Record<string, string>>;
  readonly classHeader?: true;
  readonly admin?: true;
  readonly grpc?: GrpcStatus;
  readonly pushback?: 'second' | 'breaker';
}

/** The gRPC status codes the sidecar sends or reads (grpc/doc/statuscodes.md). */
export const GRPC_STATUS = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  RESOURCE_EXHAUSTED: 8,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
} as const;

/** A gRPC status code of {@link GRPC_STATUS}. */
export type GrpcStatus = (typeof GRPC_STATUS)[keyof typeof GRPC_STATUS];

/**
 * The grpc-status values of an upstream's answer that the breaker counts against it, as it counts an HTTP
 * 5xx: the model is not there, too slow, or broken. The others (NOT_FOUND, INVALID_ARGUMENT, ...) are the
 * caller's business, as a 4xx is.
 */
export const GRPC_UPSTREAM_FAILURES: ReadonlySet<number> = new Set([
  GRPC_STATUS.UNAVAILABLE,
  GRPC_STATUS.DEADLINE_EXCEEDED,
  GRPC_STATUS.INTERNAL,
  GRPC_STATUS.UNKNOWN,
]);

/** True for an upstream answer the breaker and the limit count as a failure: an HTTP 5xx or a failing grpc-status. */
export function upstreamFailed(status: number, grpcStatus: number | undefined): boolean {
  return status >= 500 || (grpcStatus !== undefined && GRPC_UPSTREAM_FAILURES.has(grpcStatus));
}

/** Of {@link GRPC_UPSTREAM_FAILURES}, the gateway failures (as 502/503/504 are for consecutiveGatewayErrors). */
export const GRPC_GATEWAY_FAILURES: ReadonlySet<number> = new Set([
  GRPC_STATUS.UNAVAILABLE,
  GRPC_STATUS.DEADLINE_EXCEEDED,
]);

/** Methods a reverse proxy for one upstream forwards (CONNECT is refused). */
const PROXIED_METHODS = 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS';

/** The header that keeps Envoy (a mesh's callers) from retrying an answer on another pod. */
const SHED: Readonly<Record<string, string>> = { 'x-envoy-ratelimited': 'true' };

const G = GRPC_STATUS;

/** The outcome table (see the module comment for its columns). */
// prettier-ignore
export const OUTCOMES = {
  // Shed for load before the upstream: the client may come back after Retry-After; a mesh should not send
  // it to another pod at once (they are as loaded), and Envoy's router retries no answer that carries
  // x-envoy-ratelimited (Istio before 1.24 retries every other 503 twice; docs/istio-arm.md).
  // They name the request's priority class (x-cb-class): a caller sees which class was shed.
  overload:               { status: 503, code: 'CB_OVERLOAD',             retryAfter: 'second',  reasonHeader: true, headers: SHED, classHeader: true, grpc: G.RESOURCE_EXHAUSTED, pushback: 'second' },
  'queue-timeout':        { status: 503, code: 'CB_QUEUE_TIMEOUT',        retryAfter: 'second',  reasonHeader: true, headers: SHED, classHeader: true, grpc: G.RESOURCE_EXHAUSTED, pushback: 'second' },
  // The deadline cannot be met: a retry cannot meet it either.
  deadline:               { status: 503, code: 'CB_DEADLINE',             retryAfter: 'second',  reasonHeader: true, headers: SHED, classHeader: true, grpc: G.DEADLINE_EXCEEDED },
  // This pod's model is failing: another pod may well answer, so a mesh may retry elsewhere.
  'circuit-open':         { status: 503, code: 'CB_CIRCUIT_OPEN',         retryAfter: 'breaker', reasonHeader: true,                grpc: G.UNAVAILABLE, pushback: 'breaker' },
  // The upstream failed: the breaker counts these against it. A timed-out or broken call may have been
  // processed, so no pushback invites a retry; an unreachable upstream saw nothing.
  'upstream-timeout':     { status: 504, code: 'CB_UPSTREAM_TIMEOUT',     retryAfter: 'second',  reasonHeader: true, upstreamFailure: true, grpc: G.DEADLINE_EXCEEDED },
  'upstream-unavailable': { status: 503, code: 'CB_UPSTREAM_UNAVAILABLE', retryAfter: 'second',  reasonHeader: true, upstreamFailure: true, grpc: G.UNAVAILABLE, pushback: 'second' },
  'upstream-error':       { status: 502, code: 'CB_UPSTREAM_ERROR',       retryAfter: 'second',  reasonHeader: true, upstreamFailure: true, grpc: G.UNAVAILABLE },
  // The client went away before its answer: recorded, never sent.
  'client-closed':        { status: 499, code: 'CB_CLIENT_CLOSED',                                                          grpc: G.CANCELLED },
  // Requests the sidecar cannot proxy at all.
  'method-not-allowed':   { status: 405, code: 'CB_METHOD_NOT_ALLOWED',   headers: { allow: PROXIED_METHODS },              grpc: G.UNIMPLEMENTED },
  'upgrade-refused':      { status: 501, code: 'CB_UPGRADE_REFUSED',                                                        grpc: G.UNIMPLEMENTED },
  'bad-target':           { status: 400, code: 'CB_BAD_TARGET',                                                             grpc: G.INTERNAL },
  'bad-request':          { status: 400, code: 'CB_BAD_REQUEST',                                                            grpc: G.INTERNAL },
  'request-timeout':      { status: 408, code: 'CB_REQUEST_TIMEOUT',                                                        grpc: G.DEADLINE_EXCEEDED },
  'headers-too-large':    { status: 431, code: 'CB_HEADERS_TOO_LARGE',                                                      grpc: G.RESOURCE_EXHAUSTED },
  // The admin server's own errors (counted in cb_admin_requests_total, not with the requests).
  'admin-not-found':      { status: 404, code: 'CB_NOT_FOUND',            admin: true },
  'admin-bad-method':     { status: 405, code: 'CB_METHOD_NOT_ALLOWED',   admin: true, headers: { allow: 'GET, HEAD' } },
  'admin-metrics-failed': { status: 500, code: 'CB_METRICS_FAILED',       admin: true },
} as const satisfies Record<string, OutcomeRow>;

type Table = typeof OUTCOMES;

/** Every outcome of the table. */
export type OutcomeName = keyof Table;

/** An answer of the proxy listener: a metric `outcome` label of `cb_requests_total`. */
export type ProxyOutcome = { [K in OutcomeName]: Table[K] extends { admin: true } ? never : K }[OutcomeName];

/** An answer of the admin server's own. */
export type AdminOutcome = Exclude<OutcomeName, ProxyOutcome>;

/** An `x-cb-reason` value: the proxy's answers that carry the header (sheds and upstream failures). */
export type Reason = { [K in OutcomeName]: Table[K] extends { reasonHeader: true } ? K : never }[OutcomeName];

/** The stable `error.code` of every answer. */
export type OutcomeCode = Table[OutcomeName]['code'];

const NAMES = Object.keys(OUTCOMES) as OutcomeName[];

/** Every `x-cb-reason` value, in the table's order (clients, the lab and the k6 scripts match on these). */
export const REASONS: readonly Reason[] = NAMES.filter((n): n is Reason => 'reasonHeader' in OUTCOMES[n]);

/** The HTTP status of each `x-cb-reason` answer. */
export const STATUS_BY_REASON = Object.fromEntries(REASONS.map((r) => [r, OUTCOMES[r].status])) as Readonly<
  Record<Reason, number>
>;

/** Every `outcome` label of `cb_requests_total`: `forwarded` (the upstream answered), then the proxy's own answers. */
export const REQUEST_OUTCOMES: readonly ('forwarded' | ProxyOutcome)[] = [
  'forwarded',
  ...NAMES.filter((n): n is ProxyOutcome => !('admin' in OUTCOMES[n])),
];

/**
 * Priority classes, highest first: the values of the priority header, the `class` label of `cb_requests_total`
 * and of the in-flight and queue gauges, and the keys of `/state`'s `classes`.
 */
export const PRIORITY_CLASSES = ['critical', 'default', 'sheddable'] as const;

/** A priority class. */
export type PriorityClass = (typeof PRIORITY_CLASSES)[number];

/** Admission's counters since start in `/state`: admitted, and shed by reason. */
export interface AdmissionCounters {
  readonly admitted: number;
  readonly overload: number;
  readonly queueTimeout: number;
  readonly deadline: number;
  readonly clientClosedWhileQueued: number;
}

/** The admission figures of one priority class in `/state`. */
export interface ClassState extends AdmissionCounters {
  /** slots of the current limit reserved for the class (its share; critical reserves none: it is served first) */
  readonly reserved: number;
  readonly inflight: number;
  readonly queued: number;
  /** admitted after waiting in the queue */
  readonly admittedFromQueue: number;
}

/** Breaker states, as `/state` and `cb_breaker_state{state}` report them. */
export const BREAKER_STATES = ['closed', 'open', 'half-open'] as const;

/** A breaker state. */
export type BreakerState = (typeof BREAKER_STATES)[number];

/** The admin server's `GET /state` document. */
export interface StateDocument {
  readonly version: string;
  /** true from the moment SIGTERM arrives */
  readonly draining: boolean;
  readonly upstream: string;
  readonly breaker: {
    readonly state: BreakerState;
    /** ms until the open breaker lets a probe through (0 unless open) */
    readonly retryAfterMs: number;
    readonly failures: number;
    readonly rejected: number;
    readonly opened: number;
  };
  readonly concurrency: { readonly mode: 'static' | 'adaptive'; readonly limit: number };
  /** requests in flight to the upstream */
  readonly inflight: number;
  readonly queue: { readonly depth: number; readonly size: number };
  readonly admission: AdmissionCounters & {
    /** the learned upstream service time (EWMA, ms) */
    readonly serviceTimeMs: number;
  };
  /** admission by priority class */
  readonly classes: Readonly<Record<PriorityClass, ClassState>>;
  /** requests whose priority header held an unknown value (served as `default`) */
  readonly unknownPriority: number;
  /** requests the listener is handling (queued, forwarded or being answered) */
  readonly activeRequests: number;
}
