// Grafana dashboards and Prometheus alerts as code: each dashboard is written to grafana/dashboards/<file> and
// to the monitoring component's copy; the alerts to the component's PrometheusRule.
import type * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import { abDashboard } from './ab.js';
import { prometheusRule } from './alerts.js';
import { sidecarDashboard } from './sidecar.js';

export { expressions } from './panels.js';
export { abDashboard } from './ab.js';
export { alertGroups, prometheusRule, SHED_RATIO, type AlertRule, type RuleGroup } from './alerts.js';
export { sidecarDashboard } from './sidecar.js';

/** A dashboard and the file name it is generated into. */
export interface DashboardFile {
  file: string;
  build: () => dashboard.Dashboard;
}

/** Every dashboard this package generates. */
export const dashboards: readonly DashboardFile[] = [
  { file: 'circuit-breaker-ab.json', build: abDashboard },
  { file: 'cb-sidecar.json', build: sidecarDashboard },
];

/** The committed text of a dashboard: stable 2-space JSON with a trailing newline. */
export function render(d: DashboardFile): string {
  return `${JSON.stringify(d.build(), null, 2)}\n`;
}

/** Directories (relative to the repository root) that hold each dashboard's JSON. */
export const DASHBOARD_DIRS = ['grafana/dashboards', 'manifests/components/monitoring/dashboards'] as const;
/** Where the alerts go: the monitoring component's PrometheusRule. */
export const PROMETHEUS_RULE_PATH = 'manifests/components/monitoring/prometheusrule.yaml';

/** Every generated file, as committed: its path relative to the repository root and its text. */
export function generatedFiles(): { path: string; text: string }[] {
  return [
    ...dashboards.flatMap((d) => DASHBOARD_DIRS.map((dir) => ({ path: `${dir}/${d.file}`, text: render(d) }))),
    { path: PROMETHEUS_RULE_PATH, text: prometheusRule() },
  ];
}
