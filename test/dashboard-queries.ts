// The dashboards' PromQL as the tests evaluate it: every panel's queries, which source each reads, and Grafana's
// variables substituted.
import { dashboards } from '@infer-cb/dashboards';

/** One query of one panel. */
export interface PanelQuery {
  file: string;
  title: string;
  expr: string;
}

/** Every panel query of every generated dashboard (rows flattened). */
export function panelQueries(): PanelQuery[] {
  type Panel = { title?: string; targets?: { expr?: string }[]; panels?: Panel[] };
  const flat = (panels: Panel[]): Panel[] => panels.flatMap((p) => [p, ...flat(p.panels ?? [])]);
  return dashboards.flatMap((d) =>
    flat((d.build().panels ?? []) as Panel[]).flatMap((p) =>
      (p.targets ?? []).flatMap((t) => (t.expr ? [{ file: d.file, title: p.title ?? '', expr: t.expr }] : [])),
    ),
  );
}

/**
 * True when the query reads only Istio's telemetry (istio_requests_total, istio_request_duration_*): series the
 * stats filter Istio adds to its Envoys makes, which a stock Envoy (the lab's) does not have.
 */
export function istioTelemetryOnly(expr: string): boolean {
  return /(?<![\w$])istio_/.test(expr) && !readsEnvoyStats(expr);
}

/** True when the query reads Envoy's own stats (`envoy_*`), which every Envoy exports. */
export function readsEnvoyStats(expr: string): boolean {
  return /(?<![\w$])envoy_/.test(expr);
}

/** `expr` with each `$variable` replaced by its value in `values` (unknown ones are left as they are). */
export function substitute(expr: string, values: Record<string, string>): string {
  return expr.replace(/\$[a-z_]+/g, (v) => values[v] ?? v);
}
