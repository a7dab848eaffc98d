// Label selectors for the two arms. Both arms sit in the mesh, so the calling Envoy (reporter="source",
// the callers) measures them at the same point; cb-sidecar's own metrics add the causes Envoy cannot see.

/** How a selector matches the namespace: exactly (`$istio_ns`) or by regex (`$istio_ns|$sidecar_ns`). */
export type Match = '=' | '=~';

/** Requests to iris-svc seen by the calling Envoy in namespace `ns` (a variable such as `$istio_ns`, or a regex). */
export function clientSeen(ns: string, extra = '', match: Match = '='): string {
  return `istio_requests_total{reporter="source",destination_service_namespace${match}"${ns}",destination_service_name="iris-svc"${extra}}`;
}

/** Istio's request duration histogram (milliseconds), as seen by the calling Envoy. */
export function clientSeenDuration(ns: string, extra = '', match: Match = '='): string {
  return `istio_request_duration_milliseconds_bucket{reporter="source",destination_service_namespace${match}"${ns}",destination_service_name="iris-svc"${extra}}`;
}

/** The Envoy cluster that carries calls to iris-svc (its circuit breakers and outlier detection). */
export function envoyCluster(ns: string): string {
  return `namespace="${ns}",cluster_name=~"outbound\\\\|8000\\\\|\\\\|iris-svc\\\\..*"`;
}

/** cb-sidecar series of namespace variable `ns`, optionally narrowed to pods matching `$pod`. */
export function sidecar(metric: string, ns: string, extra = ''): string {
  return `${metric}{namespace="${ns}"${extra}}`;
}
