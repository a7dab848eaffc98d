import { isDeepStrictEqual } from 'node:util';
import CircuitBreaker from 'opossum';
import type { Settings } from '../config.js';
import { CircuitOpenError, SidecarError, UpstreamStatusError, UpstreamUnavailableError } from '../errors.js';
import { GRPC_GATEWAY_FAILURES, type BreakerState, type StateDocument } from '../outcomes.js';
import type { Layer, ProxyRequest, ProxyResponse, Reconfigurable } from '../pipeline.js';

export type { BreakerState } from '../outcomes.js';

/** What the breaker layer reads from the settings: `sidecar.breaker` plus Istio's consecutive-error counts (ms). */
export type BreakerOptions = Pick<Settings, 'breaker'>;

/** Called once per state change; metrics and the log line subscribe through this. */
export type TransitionListener = (from: BreakerState, to: BreakerState) => void;

type Action = (request: ProxyRequest) => Promise<ProxyResponse>;

/**
 * What opossum runs: the next handler, or, with `settled`, the failure of a call the fast path already made
 * (so opossum counts and judges it exactly as if it had run the call itself).
 */
type Replayable = (request: ProxyRequest, settled?: { readonly error: unknown }) => Promise<ProxyResponse>;

/** The part of opossum's window the fast path writes to (opossum's typings leave `increment` out). */
interface Window {
  increment(event: 'fires' | 'successes'): void;
}

/**
 * Only upstream failures count: 5xx answers, gRPC answers whose grpc-status says the upstream failed
 * (UNAVAILABLE, DEADLINE_EXCEEDED, INTERNAL, UNKNOWN; the forwarder raises those), upstream timeouts,
 * connection and protocol errors.
 */
function isUpstreamFailure(err: unknown): boolean {
  return err instanceof UpstreamStatusError || (err instanceof SidecarError && err.upstreamFailure);
}

function isGatewayFailure(err: unknown): boolean {
  if (err instanceof UpstreamStatusError)
    return err.grpcStatus === undefined
      ? err.status === 502 || err.status === 503 || err.status === 504
      : GRPC_GATEWAY_FAILURES.has(err.grpcStatus);
  return err instanceof SidecarError && err.upstreamFailure;
}

/**
 * The one adapter around opossum: error rate over a rolling window, consecutive failures like Istio's
 * outlier detection, an open interval that backs off exponentially while probes fail, one probe when
 * half-open. opossum's own timeout, capacity and shared AbortController are not used.
 *
 * The open interval depends on how the upstream failed last. A model that answers badly or slowly is
 * struggling, and its probes back off (resetTimeout, doubling to maxResetTimeout). A model that cannot be
 * reached at all (its container is restarting) is not: a probe is refused in microseconds and costs it
 * nothing, so the breaker probes every `unreachableResetTimeout` (250 ms) and closes within that of the
 * model's return (the lab's fault run: 3.3 s after the model came back with the backoff alone).
 */
export class Breaker implements Reconfigurable<BreakerOptions> {
  /** counters since start, for /state */
  readonly counters = { failures: 0, rejected: 0, opened: 0 };
  private cb: CircuitBreaker<Parameters<Replayable>, ProxyResponse> | undefined;
  private next: Action | undefined;
  private current: BreakerState = 'closed';
  private openUntil = 0;
  /** the open interval after a struggling upstream's failed probe: doubles, back to resetTimeout on close */
  private backoffMs = 0;
  private consecutive5xx = 0;
  private consecutiveGateway = 0;
  private readonly listeners: TransitionListener[] = [];

  private options: Settings['breaker'];

  constructor(options: BreakerOptions) {
    this.options = options.breaker;
    this.backoffMs = this.options.resetTimeoutMs;
  }

  /** The current state. */
  get state(): BreakerState {
    return this.current;
  }

  /** Milliseconds until the breaker lets a probe through (0 when closed). */
  retryAfterMs(): number {
    return this.current === 'open' ? Math.max(0, this.openUntil - Date.now()) : 0;
  }

  /** Subscribes to state changes. */
  onTransition(listener: TransitionListener): void {
    this.listeners.push(listener);
  }

  /** Applies reloaded options when they changed: the window restarts, an open breaker closes. */
  reconfigure({ breaker }: BreakerOptions): void {
    if (isDeepStrictEqual(this.options, breaker)) return;
    this.options = breaker;
    if (this.next === undefined) return;
    const old = this.cb;
    this.cb = this.create(this.next);
    old?.shutdown();
    this.consecutive5xx = this.consecutiveGateway = 0;
    this.backoffMs = breaker.resetTimeoutMs;
    this.transition('closed');
  }

  /** Stops opossum's timers. */
  async close(): Promise<void> {
    this.cb?.shutdown();
  }

  /** The breaker part of the /state document. */
  snapshot(): StateDocument['breaker'] {
    return { state: this.current, retryAfterMs: this.retryAfterMs(), ...this.counters };
  }

  /**
   * The breaker layer: open → immediate `CircuitOpenError`; upstream failures are counted.
   * @throws Error when applied to a second handler
   */
  readonly layer: Layer = (next) => {
    if (this.next !== undefined) throw new Error('a Breaker guards one handler: create one Breaker per pipeline');
    this.next = next;
    this.cb = this.create(next);
    return async (request) => {
      const cb = this.cb as CircuitBreaker<Parameters<Replayable>, ProxyResponse>;
      try {
        let response: ProxyResponse;
        if (cb.closed) {
          // Fast path: while closed, the call runs here and a success is two counts in opossum's window. Only a
          // failure goes through opossum.fire (replayed: the call is not made twice), which counts it, decides
          // whether to open and rejects with it. opossum's own path costs two promises, a rest-args copy and
          // two events per call.
          try {
            response = await next(request);
          } catch (err) {
            // Opened meanwhile (by other calls): opossum would have counted this failure in the window that
            // opened, which changes nothing now; the caller still gets the upstream's own failure.
            if (!cb.closed) throw err;
            return await cb.fire(request, { error: err });
          }
          const window = cb.status as unknown as Window;
          window.increment('fires');
          window.increment('successes');
        } else response = await cb.fire(request);
        this.consecutive5xx = this.consecutiveGateway = 0;
        return response;
      } catch (err) {
        if ((err as { code?: string }).code === 'EOPENBREAKER') {
          this.counters.rejected++;
          throw new CircuitOpenError(
            this.current === 'open' ? 'the circuit is open' : 'the circuit is half-open and its probe is in flight',
            this.retryAfterMs(),
          );
        }
        if (isUpstreamFailure(err)) this.countFailure(err);
        // A 5xx (a failing gRPC call) has already been streamed to the client: report it as an answer, not an error.
        if (err instanceof UpstreamStatusError)
          return { status: err.status, grpcStatus: err.grpcStatus, headAt: err.headAt };
        throw err;
      }
    };
  };

  private countFailure(err: unknown): void {
    this.counters.failures++;
    this.consecutive5xx++;
    if (isGatewayFailure(err)) this.consecutiveGateway++;
    else this.consecutiveGateway = 0;
    const { consecutive5xxErrors, consecutiveGatewayErrors } = this.options;
    const tripped =
      (consecutive5xxErrors > 0 && this.consecutive5xx >= consecutive5xxErrors) ||
      (consecutiveGatewayErrors > 0 && this.consecutiveGateway >= consecutiveGatewayErrors);
    if (tripped && this.current === 'closed') this.cb?.open();
  }

  private create(next: Action): CircuitBreaker<Parameters<Replayable>, ProxyResponse> {
    const o = this.options;
    const replayable: Replayable = (request, settled) =>
      settled === undefined ? next(request) : Promise.reject(settled.error as Error);
    const cb = new CircuitBreaker<Parameters<Replayable>, ProxyResponse>(replayable, {
      timeout: false, // the forwarder times out each request with its own signal
      errorThresholdPercentage: o.errorThresholdPercentage,
      volumeThreshold: o.volumeThreshold,
      rollingCountTimeout: o.rollingWindowMs,
      rollingCountBuckets: 10,
      // opossum otherwise concatenates and sorts every latency in the window for percentiles nobody reads,
      // once a second for its snapshot event and again on every failure (so worst during an error storm).
      rollingPercentilesEnabled: false,
      enableSnapshots: false,
      resetTimeout: o.resetTimeoutMs,
      // Returning true means "not a failure": 4xx never reach here; admission rejections,
      // client disconnects and opossum's own ESEMLOCKED are not the upstream's fault. opossum calls it before
      // it decides to open, so the open interval it then takes follows this failure's kind.
      errorFilter: (err: unknown) => {
        if (!isUpstreamFailure(err)) return true;
        live.resetTimeout =
          err instanceof UpstreamUnavailableError
            ? Math.min(o.unreachableResetTimeoutMs, this.backoffMs)
            : this.backoffMs;
        return false;
      },
    });
    // opossum reads options.resetTimeout each time it opens; its typings do not expose the object.
    const live = (cb as unknown as { options: { resetTimeout: number } }).options;
    live.resetTimeout = this.backoffMs;
    cb.on('open', () => {
      if (this.cb !== cb) return;
      this.counters.opened++;
      this.openUntil = Date.now() + live.resetTimeout;
      this.transition('open');
    });
    cb.on('halfOpen', (openedMs: number) => {
      if (this.cb !== cb) return;
      // If this probe fails with a struggling upstream, the next open interval is twice as long (capped).
      if (openedMs >= this.backoffMs) this.backoffMs = Math.min(this.backoffMs * 2, o.maxResetTimeoutMs);
      live.resetTimeout = this.backoffMs;
      this.transition('half-open');
    });
    cb.on('close', () => {
      if (this.cb !== cb) return;
      this.backoffMs = o.resetTimeoutMs;
      live.resetTimeout = o.resetTimeoutMs;
      this.consecutive5xx = this.consecutiveGateway = 0;
      this.transition('closed');
    });
    return cb;
  }

  private transition(to: BreakerState): void {
    const from = this.current;
    if (from === to) return;
    this.current = to;
    for (const listener of this.listeners) listener(from, to);
  }
}
