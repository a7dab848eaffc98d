import type { LabSummary } from '../lab.js';
import type { ScrapePoint } from '../scraper.js';
import type { ArmResult } from './arm-result.js';
import { CHART_CSS, svgChart, type ChartSeries } from './svg-chart.js';
import { hasSidecar } from '../plan.js';
import { columnName, comparisonRows, vegetaText } from './text.js';

const STATUS_COLORS: Record<string, string> = {
  '200': '#2a9d3a',
  '503': '#d62728',
  '504': '#ff7f0e',
  '502': '#9467bd',
};
const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#17becf'];

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function sum(values: readonly (number | null)[]): number | null {
  let total: number | null = null;
  for (const v of values) if (v !== null) total = (total ?? 0) + v;
  return total;
}

function gauge(scrapes: readonly ScrapePoint[], pick: (p: ScrapePoint) => number | null): [number, number][] {
  const out: [number, number][] = [];
  for (const p of scrapes) {
    const v = pick(p);
    if (v !== null) out.push([p.t, v]);
  }
  return out;
}

const BREAKER_LEVEL = { closed: 0, 'half-open': 1, open: 2 } as const;

/** The charts of one arm: throughput by status, latency percentiles, in-flight/limit, breaker state. */
export function armCharts(r: ArmResult): string[] {
  const codes = [...new Set(r.series.flatMap((s) => Object.keys(s.codes)))].sort();
  const throughput: ChartSeries[] = codes.map((code, i) => ({
    name: code,
    color: STATUS_COLORS[code] ?? PALETTE[i % PALETTE.length]!,
    points: r.series.map((s) => [s.t, s.codes[code] ?? 0] as const),
  }));
  if (r.errors > 0)
    throughput.push({ name: 'errors', color: '#555', points: r.series.map((s) => [s.t, s.errors] as const) });
  const sent = r.series.filter((s) => s.sent > 0);
  const latency: ChartSeries[] = (['p50', 'p90', 'p99', 'max'] as const).map((k, i) => ({
    name: k,
    color: PALETTE[i]!,
    points: sent.map((s) => [s.t, s.latency[k]] as const),
  }));
  const charts = [
    svgChart({
      id: `${r.key}-throughput`,
      title: `${columnName(r)}: answers per second by status`,
      xLabel: 'seconds (by completion)',
      yLabel: 'answers/s',
      series: throughput,
    }),
    svgChart({
      id: `${r.key}-latency`,
      title: `${columnName(r)}: latency percentiles (all requests, by send second)`,
      xLabel: 'seconds (by scheduled send)',
      yLabel: 'ms (log)',
      series: latency,
      logY: true,
    }),
  ];
  const sidecar = hasSidecar(r.arm);
  const inflight: ChartSeries[] = [
    { name: 'Service in flight (sum)', color: PALETTE[0]!, points: gauge(r.scrapes, (p) => sum(p.serviceInflight)) },
    { name: 'API in flight (sum)', color: PALETTE[1]!, points: gauge(r.scrapes, (p) => sum(p.apiInflight)) },
  ];
  if (sidecar) {
    inflight.push(
      {
        name: 'sidecar in flight (sum)',
        color: PALETTE[2]!,
        points: gauge(r.scrapes, (p) => sum(p.sidecars.map((s) => s.inflight))),
      },
      { name: 'limit (sum)', color: PALETTE[3]!, points: gauge(r.scrapes, (p) => sum(p.sidecars.map((s) => s.limit))) },
      { name: 'queue (sum)', color: PALETTE[4]!, points: gauge(r.scrapes, (p) => sum(p.sidecars.map((s) => s.queue))) },
    );
  }
  charts.push(
    svgChart({
      id: `${r.key}-inflight`,
      title: `${columnName(r)}: in flight${sidecar ? ', concurrency limit and queue' : ''} (scraped)`,
      xLabel: 'seconds',
      yLabel: 'requests',
      series: inflight,
      step: true,
    }),
  );
  if (sidecar) {
    const replicas = Math.max(0, ...r.scrapes.map((p) => p.sidecars.length));
    const breaker: ChartSeries[] = Array.from({ length: replicas }, (_, i) => ({
      name: `sidecar-${i}`,
      color: PALETTE[i % PALETTE.length]!,
      points: gauge(r.scrapes, (p) => {
        const st = p.sidecars[i]?.breaker;
        return st === undefined || st === 'unknown' ? null : BREAKER_LEVEL[st] + i * 0.04;
      }),
    }));
    charts.push(
      svgChart({
        id: `${r.key}-breaker`,
        title: `${columnName(r)}: breaker state per sidecar (scraped)`,
        xLabel: 'seconds',
        yLabel: 'state',
        series: breaker,
        step: true,
        yTicks: [
          [0, 'closed'],
          [1, 'half-open'],
          [2, 'open'],
        ],
      }),
    );
  }
  return charts;
}

/** The self-contained report page: summary, comparison table, per-arm text report and charts. */
export function renderHtml(summary: LabSummary, results: readonly ArmResult[]): string {
  const rows = comparisonRows(results);
  const table = `<table><tr><th></th>${results.map((r) => `<th>${esc(columnName(r))}</th>`).join('')}</tr>${rows
    .map((row) => `<tr>${row.map((c, i) => (i === 0 ? `<th>${esc(c)}</th>` : `<td>${esc(c)}</td>`)).join('')}</tr>`)
    .join('')}</table>`;
  const c = summary.config;
  const arms = results
    .map(
      (r) =>
        `<section class="arm" id="arm-${esc(r.key)}"><h2>${esc(columnName(r))}</h2><pre>${esc(vegetaText(r))}</pre>` +
        `<p class="note">max upstream concurrency: ${r.max_upstream_concurrency ?? '-'} (${esc(r.max_upstream_concurrency_source)})` +
        `${r.sidecar_config === null ? '' : `; sidecar config: ${esc(r.sidecar_config)}`}</p>` +
        `<div class="charts">${armCharts(r).join('')}</div></section>`,
    )
    .join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>cb-lab report ${esc(summary.started_at)}</title>
<style>
body{font:14px/1.4 sans-serif;margin:16px;color:#222;background:#fafafa}
table{border-collapse:collapse;margin:8px 0}th,td{border:1px solid #ccc;padding:3px 8px}td{text-align:right;font-family:monospace}
th{text-align:left;background:#f0f0f0}pre{background:#fff;border:1px solid #ddd;padding:8px;overflow-x:auto}
.charts{display:flex;flex-wrap:wrap}.note{color:#555}.pass{color:#2a9d3a}.fail{color:#d62728}
${CHART_CSS}</style></head><body>
<h1>cb-lab: ${summary.arms.map((a) => esc(a.callers === 1 ? a.arm : `${a.arm}@${a.callers}`)).join(' vs ')}</h1>
<p>${esc(summary.started_at)} · ${c.replicas} replica(s), ${c.workers} worker(s) each · driver ${esc(c.driver)} ·
${c.offered_rate} req/s offered (${c.rate_source === 'probe' ? `${c.overload}× the probed capacity` : 'from --rate'}) for ${c.duration_s}s per arm ·
host ${summary.host.cpus} CPU(s), Node ${esc(summary.host.node)}</p>
<h2>Comparison</h2>${table}
<ul>${summary.acceptance.lines.map((l) => `<li class="${l.includes('FAIL') ? 'fail' : 'pass'}">${esc(l)}</li>`).join('')}</ul>
${arms}
</body></html>
`;
}
