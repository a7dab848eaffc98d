// How a real Istio sidecar names and filters Envoy's stats, applied to a bootstrap of @infer-cb/policy, so that a
// real Envoy exposes on /stats/prometheus what an Istio sidecar would. The facts, from istio/istio at
// 86c9f01f (2026-08):
// - tools/packaging/common/envoy_bootstrap.json: `stats_config` with `use_all_default_tags: false` and Istio's own
//   `stats_tags` (so a cluster's tag is `cluster_name`, not Envoy's `envoy_cluster_name`), and a `stats_matcher`
//   inclusion list: `reporter=` (its telemetry), the required prefixes, suffixes and regexes, `component`, `istio`.
// - pkg/bootstrap/config.go (getStatsOptions): required prefixes `cluster_manager,listener_manager,server,
//   cluster.xds-grpc,wasm`, suffixes `rbac.allowed,rbac.denied,shadow_allowed,shadow_denied`, regex
//   `vhost\..*\.route\..*`; ProxyConfig's `proxyStatsMatcher` (the `proxy.istio.io/config` annotation) adds to them.
// - pilot/pkg/networking/core (cluster_builder.go, listener.go): every cluster's `alt_stat_name` and every HTTP
//   connection manager's `stat_prefix` end with the delimiter `;`, which Istio's tag regexes anchor on, so names
//   with dots (`outbound|8000||iris-svc.<ns>.svc.cluster.local`) stay whole.
// Without a proxyStatsMatcher a sidecar therefore exports none of the iris-svc cluster's stats.
import type { EnvoyBootstrap } from '@infer-cb/policy';

/** Istio's `stats_tags`, in its bootstrap's order (the optional extraStatTags left out). */
const ISTIO_STATS_TAGS = [
  { tag_name: 'cluster_name', regex: '^cluster(\\.(.+);)' },
  {
    tag_name: 'http_conn_manager_prefix',
    regex: '^http\\.(((?:[_.[:digit:]\\w]*|[_\\[\\]aAbBcCdDeEfF[:digit:]\\w\\:]*));\\.)',
  },
  { tag_name: 'thread_name', regex: '^server(\\.(.+))\\.watchdog' },
  { tag_name: 'tcp_prefix', regex: '^tcp\\.((.*?)\\.)\\w+?$' },
  { tag_name: 'response_code', regex: '_rq(_(\\d{3}))$' },
  { tag_name: 'response_code_class', regex: '_rq(_(\\dxx))$' },
  {
    tag_name: 'http_conn_manager_listener_prefix',
    regex: '^listener(?=\\.).*?\\.http\\.(((?:[_.[:digit:]]*|[_\\[\\]aAbBcCdDeEfF[:digit:]]*))\\.)',
  },
  { tag_name: 'listener_address', regex: '^listener\\.(((?:[_.[:digit:]]*|[_\\[\\]aAbBcCdDeEfF[:digit:]]*))\\.)' },
  { tag_name: 'mongo_prefix', regex: '^mongo\\.(.+?)\\.(collection|cmd|cx_|op_|delays_|decoding_)(.*?)$' },
  { tag_name: 'cache', regex: '(cache\\.(.+?)\\.)' },
  { tag_name: 'component', regex: '(component\\.(.+?)\\.)' },
  { tag_name: 'tag', regex: '(tag\\.(.+?);\\.)' },
  { tag_name: 'wasm_filter', regex: '(wasm_filter\\.(.+?)\\.)' },
  { tag_name: 'authz_enforce_result', regex: 'rbac(\\.(allowed|denied))' },
  { tag_name: 'authz_dry_run_action', regex: '(\\.istio_dry_run_(allow|deny)_)' },
  { tag_name: 'authz_dry_run_result', regex: '(\\.shadow_(allowed|denied))' },
];

const REQUIRED_PREFIXES = ['cluster_manager', 'listener_manager', 'server', 'cluster.xds-grpc', 'wasm'];
const REQUIRED_SUFFIXES = ['rbac.allowed', 'rbac.denied', 'shadow_allowed', 'shadow_denied'];
const REQUIRED_REGEXPS = ['vhost\\..*\\.route\\..*'];

/** The `proxyStatsMatcher` of a pod's `proxy.istio.io/config` annotation. */
export interface ProxyStatsMatcher {
  inclusionPrefixes?: string[];
  inclusionSuffixes?: string[];
  inclusionRegexps?: string[];
}

/** Istio's `stats_matcher` for a pod with `matcher` as its proxyStatsMatcher (getStatsOptions + the template). */
export function istioStatsMatcher(matcher: ProxyStatsMatcher = {}): Record<string, unknown> {
  const prefixes = [...(matcher.inclusionPrefixes ?? []), ...REQUIRED_PREFIXES];
  const suffixes = [...(matcher.inclusionSuffixes ?? []), ...REQUIRED_SUFFIXES];
  const regexps = [...(matcher.inclusionRegexps ?? []), ...REQUIRED_REGEXPS];
  return {
    inclusion_list: {
      patterns: [
        { prefix: 'reporter=' },
        ...prefixes.map((prefix) => ({ prefix })),
        ...suffixes.map((suffix) => ({ suffix })),
        ...regexps.map((regex) => ({ safe_regex: { regex } })),
        { prefix: 'component' },
        { prefix: 'istio' },
      ],
    },
  };
}

/**
 * `bootstrap` (from callerBootstrap or inboundBootstrap) with an Istio sidecar's stats naming and filtering:
 * Istio's stats_config and the `;`-delimited cluster and connection-manager stat names.
 */
export function withIstioStats(bootstrap: EnvoyBootstrap, matcher: ProxyStatsMatcher = {}): EnvoyBootstrap {
  const copy = structuredClone(bootstrap) as {
    static_resources: {
      clusters: { name: string; alt_stat_name?: string }[];
      listeners: { filter_chains: { filters: { typed_config: { stat_prefix?: string } }[] }[] }[];
    };
  };
  for (const cluster of copy.static_resources.clusters) cluster.alt_stat_name = `${cluster.name};`;
  for (const listener of copy.static_resources.listeners)
    for (const chain of listener.filter_chains)
      for (const filter of chain.filters)
        if (filter.typed_config.stat_prefix !== undefined) filter.typed_config.stat_prefix += ';';
  return {
    ...copy,
    stats_config: {
      use_all_default_tags: false,
      stats_tags: ISTIO_STATS_TAGS,
      stats_matcher: istioStatsMatcher(matcher),
    },
  };
}
