// Label selectors for the two arms. Both arms sit in the mesh, so the calling Envoy (reporter="source",
// the callers) measures them at the same point; cb-sidecar's own metrics add the causes Envoy cannot see.
//
// Two sources describe the calling Envoys. Istio's telemetry (istio_requests_total, istio_request_duration_*)
// comes from the stats filter Istio adds to its Envoys: a stock Envoy (the lab's) has none of it. Envoy's own
// cluster stats (envoy_cluster_*) exist in both, but named differently: Istio's bootstrap replaces Envoy's default
// tag extractors (stats_tags, use_all_default_tags: false), so the same stat carries other label names.

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

/** The label names an Envoy gives its cluster stats' tags. */
export interface EnvoyTags {
  /** The cluster's name. */
  cluster: string;
  /** The status of `upstream_rq_<code>` (`envoy_cluster_upstream_rq{<code>="503"}`). */
  code: string;
}

/**
 * Istio's sidecar: its bootstrap's own `cluster_name` and `response_code` extractors
 * (istio/istio tools/packaging/common/envoy_bootstrap.json), on clusters named by FQDN.
 */
export const ISTIO_TAGS: EnvoyTags = { cluster: 'cluster_name', code: 'response_code' };
/** A stock Envoy, the lab's: Envoy's default tag extractors. */
export const STOCK_TAGS: EnvoyTags = { cluster: 'envoy_cluster_name', code: 'envoy_response_code' };

/**
 * The Envoy clusters the dashboards read, as regexes of the cluster's name (`[|]` and `[.]` rather than
 * backslashes, which JSON and PromQL would each double):
 * - `outbound`: the callers' cluster for iris-svc: `outbound|8000|<subset>|iris-svc.<ns>.svc.cluster.local` in
 *   Istio, `outbound|8000|<subset>|iris-svc` in the lab; where the DestinationRule's limits and outlier detection act.
 * - `inbound`: the model pods' own Envoy (`inbound|<port>||`), which applies the DestinationRule's connection
 *   pool per replica, shared by every caller.
 */
export const ENVOY_CLUSTERS = {
  outbound: 'outbound[|]8000[|][^|]*[|]iris-svc([.].+)?',
  inbound: 'inbound[|][0-9]+[|].*',
} as const;

/** One of {@link ENVOY_CLUSTERS}. */
export type EnvoyCluster = keyof typeof ENVOY_CLUSTERS;

/** Builds one PromQL expression from a selector maker and the tag names of one naming. */
export type EnvoyExpr = (select: (metric: string, extra?: string) => string, tags: EnvoyTags) => string;

/**
 * An expression over Envoy cluster stats that reads a real Istio sidecar and a stock Envoy alike: `build` runs
 * once per naming (Istio's first) and the two are joined by `or`, so whichever exists answers. `select(metric,
 * extra)` gives `metric{namespace<match>"ns",<cluster label>=~"<cluster>"<extra>}`. Wrap the result in
 * parentheses before combining it with other operators (`or` binds loosest).
 */
export function envoyStat(build: EnvoyExpr, ns: string, opts: { match?: Match; cluster?: EnvoyCluster } = {}): string {
  const match = opts.match ?? '=';
  const cluster = ENVOY_CLUSTERS[opts.cluster ?? 'outbound'];
  return [ISTIO_TAGS, STOCK_TAGS]
    .map((tags) =>
      build((metric, extra = '') => `${metric}{namespace${match}"${ns}",${tags.cluster}=~"${cluster}"${extra}}`, tags),
    )
    .join(' or ');
}

/** cb-sidecar series of namespace variable `ns`, optionally narrowed to pods matching `$pod`. */
export function sidecar(metric: string, ns: string, extra = ''): string {
  return `${metric}{namespace="${ns}"${extra}}`;
}
