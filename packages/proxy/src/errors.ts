/**
 * The error classes of cb-sidecar. Each class of the request path stands for one row of the outcome table
 * (outcomes.ts), which gives it its stable `code`, its status and whether the breaker counts it;
 * `respond.ts` turns them into answers and metric labels.
 */
import { OUTCOMES, type OutcomeCode, type ProxyOutcome } from './outcomes.js';

export { REASONS, type Reason } from './outcomes.js';

/** Base class of every error the request path raises: one outcome of the table. */
export abstract class SidecarError extends Error {
  /** The outcome this error is answered with (`x-cb-reason` where the row sends it). */
  abstract readonly reason: ProxyOutcome;

  /** Stable machine-readable code, e.g. `CB_OVERLOAD` (from the outcome table). */
  get code(): OutcomeCode {
    return OUTCOMES[this.reason].code;
  }

  /** True when the breaker counts this error as an upstream failure (from the outcome table). */
  get upstreamFailure(): boolean {
    return 'upstreamFailure' in OUTCOMES[this.reason];
  }
}

/** Limit and queue are both full (Envoy's `UO`). */
export class OverloadError extends SidecarError {
  readonly reason = 'overload';
  override readonly name = 'OverloadError';
}

/** The request waited in the queue longer than allowed (queue timeout or the CoDel target). */
export class QueueTimeoutError extends SidecarError {
  readonly reason = 'queue-timeout';
  override readonly name = 'QueueTimeoutError';
}

/** The client's deadline has passed or cannot be met. */
export class DeadlineError extends SidecarError {
  readonly reason = 'deadline';
  override readonly name = 'DeadlineError';
}

/** The circuit is open (or half-open with its probe already in flight). */
export class CircuitOpenError extends SidecarError {
  readonly reason = 'circuit-open';
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
  override get upstreamFailure(): boolean {
    return !this.byDeadline;
  }
}

/** The upstream could not be reached: connection refused, connect timeout, DNS failure. */
export class UpstreamUnavailableError extends SidecarError {
  readonly reason = 'upstream-unavailable';
  override readonly name = 'UpstreamUnavailableError';
}

/** The upstream broke the protocol: closed the connection mid-answer, sent an unparsable response. */
export class UpstreamProtocolError extends SidecarError {
  readonly reason = 'upstream-error';
  override readonly name = 'UpstreamProtocolError';
}

/** The client went away before the answer; never answered, counted as `client-closed` (499). */
export class ClientClosedError extends SidecarError {
  readonly reason = 'client-closed';
  override readonly name = 'ClientClosedError';
}

/** Why a request cannot be proxied at all: the refusals of the outcome table. */
export type RefusalReason =
  'method-not-allowed' | 'upgrade-refused' | 'bad-target' | 'bad-request' | 'request-timeout' | 'headers-too-large';

/** The request cannot be proxied at all (CONNECT, Upgrade, a target that is not a path, malformed HTTP). */
export class BadRequestError extends SidecarError {
  override readonly name = 'BadRequestError';
  constructor(
    readonly reason: RefusalReason,
    message: string,
  ) {
    super(message);
  }
  /** The HTTP status of the refusal (from the outcome table). */
  get status(): number {
    return OUTCOMES[this.reason].status;
  }
}

/**
 * The upstream answered with a 5xx, or a gRPC call ended with a failing grpc-status (UNAVAILABLE,
 * DEADLINE_EXCEEDED, INTERNAL, UNKNOWN): the answer is passed through, but the breaker counts a failure.
 */
export class UpstreamStatusError extends Error {
  readonly code = 'CB_UPSTREAM_STATUS';
  override readonly name = 'UpstreamStatusError';
  /**
   * @param status the upstream's HTTP status (>= 500, or 200 with a failing grpcStatus)
   * @param grpcStatus the gRPC call's grpc-status
   * @param headAt `performance.now()` when the answer's head arrived
   */
  constructor(
    readonly status: number,
    readonly grpcStatus?: number,
    readonly headAt?: number,
  ) {
    super(grpcStatus === undefined ? `upstream answered ${status}` : `upstream answered grpc-status ${grpcStatus}`);
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
