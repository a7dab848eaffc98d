/**
 * The two Istio generations the translator can imitate. Everything that differs between them is here,
 * each with the istio/istio source it comes from (docs/istio-arm.md has the whole mapping).
 */

/** `book`: Istio ~1.9 (the book's era); `current`: Istio 1.24 and later. */
export type Profile = 'book' | 'current';

/** Every profile, in a stable order. */
export const PROFILES: readonly Profile[] = ['book', 'current'];

/** What one Istio generation pushes differently. */
export interface ProfileFacts {
  /** The Istio versions it stands for. */
  readonly istio: string;
  /**
   * `lb_policy` when the DestinationRule sets no `loadBalancer.simple`: Envoy's own default (ROUND_ROBIN)
   * in 1.9 (applyLoadBalancer returned early); LEAST_REQUEST from 1.14 (defaultLBAlgorithm).
   */
  readonly defaultLbPolicy: 'ROUND_ROBIN' | 'LEAST_REQUEST';
  /**
   * The default route retry policy's `retriable_status_codes` (route/retry/retry.go DefaultPolicy):
   * [503] up to 1.23, none from 1.24 (istio#52111, EXCLUDE_UNSAFE_503_FROM_DEFAULT_RETRY).
   */
  readonly defaultRetriableStatusCodes: readonly number[];
  /** `track_remaining` on the circuit-breaker threshold (getDefaultCircuitBreakerThresholds; not in 1.9). */
  readonly trackRemaining: boolean;
  /**
   * 1.9's applyOutlierDetection set `max_ejection_time` = `baseEjectionTime` when that exceeds Envoy's
   * 300 s default; later versions leave it to Envoy (which then uses the larger of the two as well).
   */
  readonly maxEjectionTimeFromBase: boolean;
  /** The inbound route's retry policy (route.go BuildDefaultHTTPInboundRoute, ENABLE_INBOUND_RETRY_POLICY, 1.24+). */
  readonly inboundRetry: { readonly retryOn: string; readonly numRetries: number } | undefined;
  /**
   * Pool fields added after 1.9 are applied (applyConnectionPool): `tcp.idleTimeout` when `http.idleTimeout`
   * is unset, and `tcp.maxConnectionDuration`.
   */
  readonly laterPoolFields: boolean;
  /** `splitExternalLocalOriginErrors` / `consecutiveLocalOriginFailures` are applied (not in 1.9's applyOutlierDetection). */
  readonly localOriginSplit: boolean;
  /** VirtualService retry fields of later Istio (retryIgnorePreviousHosts 1.26, backoff 1.26) honoured. */
  readonly newRetryFields: boolean;
}

/** The facts of each profile. */
export const PROFILE_FACTS: Readonly<Record<Profile, ProfileFacts>> = Object.freeze({
  book: Object.freeze({
    istio: '1.9',
    defaultLbPolicy: 'ROUND_ROBIN',
    defaultRetriableStatusCodes: Object.freeze([503]),
    trackRemaining: false,
    maxEjectionTimeFromBase: true,
    inboundRetry: undefined,
    laterPoolFields: false,
    localOriginSplit: false,
    newRetryFields: false,
  }),
  current: Object.freeze({
    istio: '1.24+',
    defaultLbPolicy: 'LEAST_REQUEST',
    defaultRetriableStatusCodes: Object.freeze([]),
    trackRemaining: true,
    maxEjectionTimeFromBase: false,
    inboundRetry: Object.freeze({ retryOn: 'reset-before-request', numRetries: 2 }),
    laterPoolFields: true,
    localOriginSplit: true,
    newRetryFields: true,
  }),
});

/** The mesh's default connect timeout (MeshConfig.connectTimeout), used when `tcp.connectTimeout` is unset. */
export const MESH_CONNECT_TIMEOUT_MS = 10_000;

/** Envoy's 2^32-1: Istio's value for every circuit-breaker threshold the DestinationRule leaves unset. */
export const UNLIMITED = 4_294_967_295;
