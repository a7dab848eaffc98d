/**
 * The error registry of cb-sidecar: every failure the request path can produce has one class and one
 * stable `code`. `respond.ts` is the only place that turns these into HTTP answers and metric labels.
 */

/** Why the sidecar answered itself; sent as `x-cb-reason` and used as the metric `outcome` label. */
export type Reason =
  | 'overload'
  | 'queue-timeout'
  | 'deadline'
  | 'circuit-open'
  | 'upstream-timeout'
  | 'upstream-unavailable'
  | 'upstream-error';

/** Every reason code, in a stable order (metrics pre-create their children from it). */
export const REASONS: readonly Reason[] = [
  'overload',
  'queue-timeout',
  'deadline',
  'circuit-open',
  'upstream-timeout',
  'upstream-unavailable',
  'upstream-error',
];

/** Base class of every error the request path raises; `code` is stable and pinned by a test. */
export abstract class SidecarError extends Error {
  /** Stable machine-readable code, e.g. `CB_OVERLOAD`. */
  abstract readonly code: string;
  /** The `x-cb-reason` this error is answered with. */
  abstract readonly reason: Reason;
  /** True when the breaker counts this error as an upstream failure. */
  abstract readonly upstreamFailure: boolean;
}

/** Limit and queue are both full (Envoy's `UO`). */
export class OverloadError extends SidecarError {
  readonly code = 'CB_OVERLOAD';
  readonly reason = 'overload';
  readonly upstreamFailure = false;
  override readonly name = 'OverloadError';
}

/** The request waited in the queue longer than allowed (queue timeout or the CoDel target). */
export class QueueTimeoutError extends SidecarError {
  readonly code = 'CB_QUEUE_TIMEOUT';
  readonly reason = 'queue-timeout';
  readonly upstreamFailure = false;
  override readonly name = 'QueueTimeoutError';
}

/** The client's deadline has passed or cannot be met. */
export class DeadlineError extends SidecarError {
  readonly code = 'CB_DEADLINE';
  readonly reason = 'deadline';
  readonly upstreamFailure = false;
  override readonly name = 'DeadlineError';
}

/** The circuit is open (or half-open with its probe already in flight). */
export class CircuitOpenError extends SidecarError {
  readonly code = 'CB_CIRCUIT_OPEN';
  readonly reason = 'circuit-open';
  readonly upstreamFailure = false;
  override readonly name = 'CircuitOpenError';
  /** @param retryAfterMs time until the breaker lets a probe through */
  constructor(
    message: string,
    readonly retryAfterMs: number,
  ) {
    super(message);
  }
}

/** The upstream did not answer within the upstream timeout (or the client's deadline, see `byDeadline`). */
export class UpstreamTimeoutError extends SidecarError {
  readonly code = 'CB_UPSTREAM_TIMEOUT';
  readonly reason = 'upstream-timeout';
  override readonly name = 'UpstreamTimeoutError';
  /** @param byDeadline true when the client's own deadline cut the call short (not the upstream's fault) */
  constructor(
    message: string,
    readonly byDeadline = false,
  ) {
    super(message);
  }
  /** A call cut short by the client's deadline is not held against the upstream. */
  get upstreamFailure(): boolean {
    return !this.byDeadline;
  }
}

/** The upstream could not be reached: connection refused, connect timeout, DNS failure. */
export class UpstreamUnavailableError extends SidecarError {
  readonly code = 'CB_UPSTREAM_UNAVAILABLE';
  readonly reason = 'upstream-unavailable';
  readonly upstreamFailure = true;
  override readonly name = 'UpstreamUnavailableError';
}

/** The upstream broke the protocol: closed the connection mid-answer, sent an unparsable response. */
export class UpstreamProtocolError extends SidecarError {
  readonly code = 'CB_UPSTREAM_ERROR';
  readonly reason = 'upstream-error';
  readonly upstreamFailure = true;
  override readonly name = 'UpstreamProtocolError';
}

/** The client went away before the answer; never answered, counted as `client-closed` (499). */
export class ClientClosedError extends Error {
  readonly code = 'CB_CLIENT_CLOSED';
  override readonly name = 'ClientClosedError';
}

/** The upstream answered with a 5xx: the answer is passed through, but the breaker counts a failure. */
export class UpstreamStatusError extends Error {
  readonly code = 'CB_UPSTREAM_STATUS';
  override readonly name = 'UpstreamStatusError';
  /** @param status the upstream's status code (>= 500) */
  constructor(readonly status: number) {
    super(`upstream answered ${status}`);
  }
}

/** The configuration is invalid; `problems` lists every problem found, one per line. */
export class ConfigError extends Error {
  readonly code = 'CB_CONFIG_INVALID';
  override readonly name = 'ConfigError';
  constructor(readonly problems: readonly string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
  }
}

/** The request cannot be proxied at all (CONNECT, Upgrade, a target that is not a path). */
export class BadRequestError extends Error {
  readonly code: 'CB_METHOD_NOT_ALLOWED' | 'CB_UPGRADE_REFUSED' | 'CB_BAD_TARGET';
  override readonly name = 'BadRequestError';
  constructor(
    code: BadRequestError['code'],
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.code = code;
  }
}
