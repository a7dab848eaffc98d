// Grafana dashboards as code: each entry is written to grafana/dashboards/<file>.
import type * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import { abDashboard } from './ab.js';
import { sidecarDashboard } from './sidecar.js';

export { expressions } from './panels.js';
export { abDashboard } from './ab.js';
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
