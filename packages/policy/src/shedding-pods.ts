import type { MeshPolicy, OutlierDetection } from './policy.js';
import type { Profile } from './profiles.js';

/**
 * The mesh policy as it must be deployed when the model pods shed load themselves (cb-sidecar inside the
 * mesh): the callers' outlier detection must not take a pod's 503s for a host failure. With the rule as
 * Istio-only breaking writes it, five shed answers in a row eject a pod from that caller for
 * `baseEjectionTime`, its load moves to the others, they shed in turn and are ejected too: the lab's
 * `istio-sidecar` arm with the DestinationRule of manifests/ answered every request 503 UH (no healthy
 * upstream) for 30 s after its warm-up. So:
 * - `current` (Istio 1.11+): 5xx answers no longer eject (`consecutive5xxErrors: 0`); connect failures,
 *   resets and timeouts are counted apart (`splitExternalLocalOriginErrors`) and eject after
 *   `consecutiveLocalOriginFailures` (the rule's `consecutive5xxErrors`, or Envoy's 5);
 * - `book` (Istio 1.9 has no local-origin split): `consecutive5xxErrors: 0`, so nothing ejects; a pod
 *   that is gone is still retried away from (connect-failure) by the default retry policy.
 * Gateway-error ejection (`consecutiveGatewayErrors`, 502/503/504) is turned off as well, for the same
 * reason. Everything else is kept. The result is frozen, like every {@link MeshPolicy}.
 */
export function withSheddingPods(policy: MeshPolicy, profile: Profile): MeshPolicy {
  const od = policy.trafficPolicy.outlierDetection;
  if (od === undefined) return policy;
  const failures = od.consecutive5xxErrors !== undefined && od.consecutive5xxErrors > 0 ? od.consecutive5xxErrors : 5;
  const { consecutiveErrors: _ignored, ...rest } = od;
  const outlierDetection: OutlierDetection =
    profile === 'current'
      ? {
          ...rest,
          consecutive5xxErrors: 0,
          consecutiveGatewayErrors: 0,
          splitExternalLocalOriginErrors: true,
          consecutiveLocalOriginFailures: failures,
        }
      : { ...rest, consecutive5xxErrors: 0, consecutiveGatewayErrors: 0 };
  return Object.freeze({
    ...policy,
    source: `${policy.source} (outlier detection for pods that shed load)`,
    trafficPolicy: Object.freeze({ ...policy.trafficPolicy, outlierDetection: Object.freeze(outlierDetection) }),
  });
}
