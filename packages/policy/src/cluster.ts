import { durationToMs } from '@infer-cb/common';
import { envoyDuration, seconds } from './envoy.js';
import type { ConnectionPoolSettings, MeshPolicy, OutlierDetection } from './policy.js';
import { MESH_CONNECT_TIMEOUT_MS, UNLIMITED, type ProfileFacts } from './profiles.js';

// The outbound and inbound cluster's fields, as istio/istio pilot/pkg/networking/core/cluster_traffic_policy.go
// builds them (the function named in each comment).

/**
 * `circuit_breakers` (applyConnectionPool): one threshold, priority DEFAULT, every limit 2^32-1 unless the
 * pool sets it above 0 (Istio cannot tell an explicit 0 from unset, so 0 means unlimited too).
 */
export function circuitBreakers(
  pool: ConnectionPoolSettings | undefined,
  facts: ProfileFacts,
): Record<string, unknown> {
  const set = (v: number | undefined): number => (v !== undefined && v > 0 ? v : UNLIMITED);
  return {
    thresholds: [
      {
        priority: 'DEFAULT',
        max_connections: set(pool?.tcp?.maxConnections),
        max_pending_requests: set(pool?.http?.http1MaxPendingRequests),
        max_requests: set(pool?.http?.http2MaxRequests),
        max_retries: set(pool?.http?.maxRetries),
        ...(facts.trackRemaining ? { track_remaining: true } : {}),
      },
    ],
  };
}

/** The cluster's connect timeout: `tcp.connectTimeout`, else the mesh's 10 s (applyDefaultConnectionPool). */
export function connectTimeout(pool: ConnectionPoolSettings | undefined): string {
  const text = pool?.tcp?.connectTimeout;
  return text !== undefined ? seconds(text) : envoyDuration(MESH_CONNECT_TIMEOUT_MS);
}

/**
 * The cluster fields that carry the rest of the pool (applyConnectionPool, applyTCPKeepalive): HTTP
 * protocol options (idle timeout, requests per connection, connection lifetime) and TCP keepalive.
 */
export function poolClusterFields(
  pool: ConnectionPoolSettings | undefined,
  facts: ProfileFacts,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const idle = pool?.http?.idleTimeout ?? (facts.laterPoolFields ? pool?.tcp?.idleTimeout : undefined);
  const perConnection = pool?.http?.maxRequestsPerConnection ?? 0;
  const lifetime = facts.laterPoolFields ? pool?.tcp?.maxConnectionDuration : undefined;
  const common: Record<string, unknown> = {
    ...(idle !== undefined ? { idle_timeout: seconds(idle) } : {}),
    ...(perConnection > 0 ? { max_requests_per_connection: perConnection } : {}),
    ...(lifetime !== undefined ? { max_connection_duration: seconds(lifetime) } : {}),
  };
  if (Object.keys(common).length > 0) {
    out['typed_extension_protocol_options'] = {
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
        '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
        common_http_protocol_options: common,
        // The model speaks HTTP/1.1 (the mesh's default h2UpgradePolicy does not upgrade).
        explicit_http_config: { http_protocol_options: {} },
      },
    };
  }
  const ka = pool?.tcp?.tcpKeepalive;
  if (ka !== undefined) {
    out['upstream_connection_options'] = {
      tcp_keepalive: {
        ...(ka.probes !== undefined && ka.probes > 0 ? { keepalive_probes: ka.probes } : {}),
        ...(ka.time !== undefined ? { keepalive_time: Math.floor(durationToMs(ka.time) / 1000) } : {}),
        ...(ka.interval !== undefined ? { keepalive_interval: Math.floor(durationToMs(ka.interval) / 1000) } : {}),
      },
    };
  }
  return out;
}

/** Envoy's default max_ejection_time (300 s). */
const ENVOY_MAX_EJECTION_TIME_MS = 300_000;

/**
 * `outlier_detection` and the panic threshold (applyOutlierDetection); undefined without an
 * outlierDetection block, as Istio leaves the cluster without one.
 */
export function outlierDetection(
  od: OutlierDetection | undefined,
  facts: ProfileFacts,
): { outlier_detection: Record<string, unknown>; healthy_panic_threshold: { value: number } } | undefined {
  if (od === undefined) return undefined;
  // Success-rate ejection is always off; the consecutive counters are enforced 100% when above 0.
  const out: Record<string, unknown> = { enforcing_success_rate: 0 };
  if (od.consecutive5xxErrors !== undefined) {
    out['consecutive_5xx'] = od.consecutive5xxErrors;
    out['enforcing_consecutive_5xx'] = od.consecutive5xxErrors > 0 ? 100 : 0;
  }
  if (od.consecutiveGatewayErrors !== undefined) {
    out['consecutive_gateway_failure'] = od.consecutiveGatewayErrors;
    out['enforcing_consecutive_gateway_failure'] = od.consecutiveGatewayErrors > 0 ? 100 : 0;
  }
  if (od.interval !== undefined) out['interval'] = seconds(od.interval);
  if (od.baseEjectionTime !== undefined) {
    out['base_ejection_time'] = seconds(od.baseEjectionTime);
    if (facts.maxEjectionTimeFromBase && durationToMs(od.baseEjectionTime) > ENVOY_MAX_EJECTION_TIME_MS)
      out['max_ejection_time'] = seconds(od.baseEjectionTime);
  }
  if ((od.maxEjectionPercent ?? 0) > 0) out['max_ejection_percent'] = od.maxEjectionPercent;
  if (facts.localOriginSplit && od.splitExternalLocalOriginErrors === true) {
    out['split_external_local_origin_errors'] = true;
    if ((od.consecutiveLocalOriginFailures ?? 0) > 0) {
      out['consecutive_local_origin_failure'] = od.consecutiveLocalOriginFailures;
      out['enforcing_consecutive_local_origin_failure'] = 100;
    }
    out['enforcing_local_origin_success_rate'] = 0;
  }
  // minHealthPercent is a plain int32: unset reads 0, which turns Envoy's panic mode (default 50%) off.
  return { outlier_detection: out, healthy_panic_threshold: { value: od.minHealthPercent ?? 0 } };
}

/** `lb_policy` from `loadBalancer.simple` (applyLoadBalancer), else the profile's default. */
export function lbPolicy(policy: MeshPolicy, facts: ProfileFacts): string {
  switch (policy.trafficPolicy.loadBalancer?.simple) {
    case 'LEAST_CONN':
    case 'LEAST_REQUEST':
      return 'LEAST_REQUEST';
    case 'RANDOM':
      return 'RANDOM';
    case 'ROUND_ROBIN':
      return 'ROUND_ROBIN';
    default:
      return facts.defaultLbPolicy;
  }
}
