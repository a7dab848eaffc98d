// report.html: one self-contained page (uPlot and the data inlined; nothing is loaded from the network).
import type { LabSummary } from '../lab.js';
import { envoyRejections, type ArmResult } from './arm-result.js';
import { chartCss, chartScripts, chartSlot } from './chart-page.js';
import { hasCallerSweep, reportCharts } from './charts.js';
import { callersTable, codesText, columnName, comparisonTable, envoyRows, vegetaText } from './text.js';

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** A table whose first row is the heading; `columnClass(i)` classes the cells of data column i (0-based). */
function table(rows: readonly (readonly string[])[], cls: string, columnClass?: (i: number) => string): string {
  const [head = [], ...body] = rows;
  const cell = (tag: 'th' | 'td', c: string, i: number): string => {
    const k = i === 0 ? '' : (columnClass?.(i - 1) ?? '');
    return `<${tag}${k === '' ? '' : ` class="${k}"`}>${esc(c)}</${tag}>`;
  };
  return (
    `<div class="scroll"><table class="${cls}"><tr>${head.map((c, i) => cell('th', c, i)).join('')}</tr>` +
    body.map((r) => `<tr>${r.map((c, i) => cell(i === 0 ? 'th' : 'td', c, i)).join('')}</tr>`).join('') +
    `</table></div>`
  );
}

function lineClass(line: string): string {
  if (line.includes('VOID')) return 'void';
  if (line.includes('FAIL')) return 'fail';
  if (line.includes(': reference:')) return 'ref';
  return 'pass';
}

/** A mesh run's rejections by who answered them, and Envoy's own statistics. */
function envoySection(r: ArmResult): string {
  const split = envoyRejections(r);
  if (split === null || r.envoy === null) return '';
  const answered = r.status_codes['503'] ?? 0;
  const seen =
    split.answeredOverflow === null
      ? "(the driver kept no headers, so Envoy's counters below are the split)"
      : `<b>${split.answeredOverflow}</b> Envoy overflow answers (503 UO, <code>x-envoy-overloaded</code>) and <b>${split.answeredUpstream ?? 0}</b> upstream 503s passed on`;
  const c = r.envoy.callers;
  return (
    `<p class="envoy">503 answers the callers got: <b>${answered}</b>: ${seen}. ` +
    `Envoy's counters, which count attempts (a retried request once per attempt): overflow answers ` +
    `<b>${split.overflowCallers}</b> at the callers' Envoys and <b>${split.overflowInbound}</b> at the replicas' inbound Envoys; ` +
    `the app's own 503s at the inbound Envoys <b>${split.app503}</b>; retries ${c.upstream_rq_retry} ` +
    `(${c.upstream_rq_retry_success} answered 2xx, ${c.upstream_rq_retry_overflow} refused by max_retries).</p>` +
    table(
      [["Envoy's statistics during the attack", "callers' Envoys (sum)", 'inbound Envoys (sum)'], ...envoyRows(r)],
      'envoy',
    )
  );
}

/** What the fault (`--fault`) did to a run. */
function faultSection(r: ArmResult): string {
  const f = r.fault;
  if (f === undefined) return '';
  const back = f.returned_at_s === null ? 'did not come back during the run' : `was back at ${f.returned_at_s} s`;
  const recovered =
    f.recovered_after_s === null
      ? 'goodput did not recover to 90% of its level before within the run'
      : `goodput was back to 90% of its level before (${f.goodput_before_rps} 2xx/s) ${f.recovered_after_s} s after the model's return`;
  return (
    `<p class="fault">Fault: replica ${f.replica}'s model killed at ${f.killed_at_s} s, ${back}. ` +
    `Answers while it was down: ${esc(codesText(f.answers_during))}; requests never answered: <b>${f.unanswered}</b>; ${recovered}.</p>`
  );
}

function runSection(r: ArmResult): string {
  const banner = r.void.void ? `<p class="void">VOID, not counted: ${esc(r.void.reason ?? '')}</p>` : '';
  return (
    `<section class="run${r.void.void ? ' void' : ''}" id="run-${esc(r.key)}"><h3>${esc(columnName(r))}</h3>${banner}` +
    `<pre>${esc(vegetaText(r))}</pre>${faultSection(r)}${envoySection(r)}` +
    `<p class="note">max upstream concurrency: ${r.max_upstream_concurrency ?? '-'} (${esc(r.max_upstream_concurrency_source)})` +
    `${r.sidecar_config === null ? '' : `; sidecar config: ${esc(r.sidecar_config)}`}</p></section>`
  );
}

/**
 * The report page: the comparison table (with the book's column under the seed preset) and the acceptance
 * lines, the charts with every run on one axis, the caller-count table and plot when an arm ran at several
 * caller counts, then each run's vegeta text and, in mesh arms, Envoy's statistics.
 */
export function renderHtml(summary: LabSummary, results: readonly ArmResult[]): string {
  const c = summary.config;
  const preset = c.preset;
  const charts = reportCharts(results, preset);
  const sweep = hasCallerSweep(results);
  const offset = preset === 'seed' ? 1 : 0; // the book's column comes first
  const comparison = table(comparisonTable(results, preset), 'comparison', (i) =>
    i < offset ? 'book' : results[i - offset]?.void.void === true ? 'void' : '',
  );
  const slots = (ids: (id: string) => boolean): string =>
    `<div class="charts">${charts
      .filter((ch) => ids(ch.id))
      .map(chartSlot)
      .join('')}</div>`;
  const callers = sweep
    ? `<h2 id="callers">By number of callers</h2>${table(callersTable(results), 'callers')}${slots((id) => id.startsWith('callers-'))}`
    : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>cb-lab report ${esc(summary.started_at)}</title>
<style>
body{font:14px/1.4 sans-serif;margin:16px;color:#222;background:#fafafa}
table{border-collapse:collapse;margin:8px 0}th,td{border:1px solid #ccc;padding:3px 8px}td{text-align:right;font-family:monospace}
th{text-align:left;background:#f0f0f0}pre{background:#fff;border:1px solid #ddd;padding:8px;overflow-x:auto}
.scroll{overflow-x:auto}.note{color:#555}.pass{color:#2a9d3a}.fail{color:#d62728}.ref{color:#555}
td.book{background:#eef3fa}td.void,th.void{color:#999;text-decoration:line-through}p.void,li.void{color:#b35c00;font-weight:600}
section.void pre{color:#999}
.charts{display:flex;flex-direction:column}figure.chart{margin:8px 0;background:#fff;border:1px solid #ddd;padding:6px;max-width:1120px}
figure.chart .plot{width:100%}figcaption{color:#555;font-size:12px}
${chartCss()}</style></head><body>
<h1>cb-lab: ${summary.arms.map((a) => esc(a.callers === 1 ? a.arm : `${a.arm}@${a.callers}`)).join(' vs ')}</h1>
<p>${esc(summary.started_at)} · ${c.replicas} ${c.model_server === 'mlserver' ? 'MLServer' : 'iris-api'} replica(s), ${c.workers} worker(s) each · ${c.protocol === 'grpc' ? 'gRPC (ModelInfer)' : 'REST'} · driver ${esc(c.driver)} ·
${c.offered_rate} req/s offered (${c.rate_source === 'probe' ? `${c.overload}× the probed capacity` : 'from --rate'}) for ${c.duration_s}s per run ·
Istio profile ${esc(c.istio_profile)}${preset === 'seed' ? " · preset seed: the book's run beside the arms" : ''} ·
host ${summary.host.cpus} CPU(s), Node ${esc(summary.host.node)}</p>
<h2 id="comparison">Comparison</h2>${comparison}
<ul>${summary.acceptance.lines.map((l) => `<li class="${lineClass(l)}">${esc(l)}</li>`).join('')}</ul>
<h2 id="charts">Over time</h2>
<p class="note">Every run on one axis; a run's colour is its arm's, lighter for more callers. Drag across a chart to zoom in,
double-click to zoom out, click a legend entry to hide its line; the legend shows the values under the cursor.</p>
<noscript><p class="fail">The charts need JavaScript (inlined in this file; nothing is loaded from the network).</p></noscript>
${slots((id) => !id.startsWith('callers-'))}
${callers}
<h2 id="runs">Each run</h2>
${results.map(runSection).join('\n')}
${chartScripts(charts)}
</body></html>
`;
}
