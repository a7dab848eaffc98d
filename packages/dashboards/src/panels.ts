// Small builders shared by the dashboards: every panel queries the Prometheus chosen by the
// `datasource` variable, and every query is a PromQL expression with a legend.
import type * as cog from '@grafana/grafana-foundation-sdk/cog';
import { LegendDisplayMode, LegendPlacement, VizLegendOptionsBuilder } from '@grafana/grafana-foundation-sdk/common';
import type * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import { DatasourceVariableBuilder } from '@grafana/grafana-foundation-sdk/dashboard';
import { DataqueryBuilder } from '@grafana/grafana-foundation-sdk/prometheus';
import { PanelBuilder as StatPanelBuilder } from '@grafana/grafana-foundation-sdk/stat';
import { PanelBuilder as TimeseriesPanelBuilder } from '@grafana/grafana-foundation-sdk/timeseries';

/** One PromQL query of a panel: the expression and its legend. */
export interface Query {
  expr: string;
  legend: string;
}

/** Where a panel sits: width and height in Grafana grid units (24 columns). */
export interface Size {
  w: number;
  h: number;
}

/** The datasource every panel uses: the `$datasource` variable. */
export const prometheus = { type: 'prometheus', uid: '${datasource}' } as const;

/** The `datasource` variable: any Prometheus data source. */
export function datasourceVariable(): DatasourceVariableBuilder {
  return new DatasourceVariableBuilder('datasource').label('Prometheus').type('prometheus');
}

function targets(queries: Query[]): cog.Builder<cog.Dataquery>[] {
  return queries.map((q, i) =>
    new DataqueryBuilder()
      .expr(q.expr)
      .legendFormat(q.legend)
      .refId(String.fromCharCode(65 + i))
      .datasource(prometheus),
  );
}

function panel<T extends TimeseriesPanelBuilder | StatPanelBuilder>(
  builder: T,
  title: string,
  description: string,
  unit: string,
  queries: Query[],
  size: Size,
): T {
  builder
    .title(title)
    .description(description)
    .datasource(prometheus)
    .unit(unit)
    .targets(targets(queries))
    .span(size.w)
    .height(size.h);
  return builder;
}

/**
 * A time series panel of the given queries, in `unit` (Grafana unit id), with its legend shown: panels overlay
 * arms, and the same quantity read from Istio's telemetry and from Envoy's own stats.
 */
export function timeseries(
  title: string,
  description: string,
  unit: string,
  queries: Query[],
  size: Size,
): TimeseriesPanelBuilder {
  const legend = new VizLegendOptionsBuilder()
    .showLegend(true)
    .displayMode(LegendDisplayMode.List)
    .placement(LegendPlacement.Bottom)
    .calcs([]);
  return panel(new TimeseriesPanelBuilder(), title, description, unit, queries, size).legend(legend);
}

/** A single-value panel showing the latest value of each query. */
export function stat(title: string, description: string, unit: string, queries: Query[], size: Size): StatPanelBuilder {
  return panel(new StatPanelBuilder(), title, description, unit, queries, size);
}

/** Every PromQL expression of a built dashboard (rows and panels), for checks and tests. */
export function expressions(built: dashboard.Dashboard): string[] {
  const out: string[] = [];
  const visit = (panels: unknown[] | undefined): void => {
    for (const p of panels ?? []) {
      const panel = p as { targets?: { expr?: string }[]; panels?: unknown[] };
      for (const t of panel.targets ?? []) if (t.expr) out.push(t.expr);
      visit(panel.panels);
    }
  };
  visit(built.panels as unknown[] | undefined);
  return out;
}
