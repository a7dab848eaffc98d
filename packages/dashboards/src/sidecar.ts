// The single-sidecar dashboard: one namespace, optionally some pods, everything cb-sidecar exports.
import type * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import { DashboardBuilder, QueryVariableBuilder, RowBuilder } from '@grafana/grafana-foundation-sdk/dashboard';
import { datasourceVariable, prometheus, stat, timeseries } from './panels.js';
import type { Query } from './panels.js';

const W = '$__rate_interval';
const SEL = 'namespace="$namespace",pod=~"$pod"';
// prom-client's process metrics of the sidecar only (the API exports the same names).
const PROCESS = `${SEL},job=~".*cb-sidecar"`;
const third = { w: 8, h: 8 };
const half = { w: 12, h: 8 };

function quantiles(metric: string, extra: string, by: string, legend: string): Query[] {
  return [0.5, 0.9, 0.99].map((q) => ({
    expr: `histogram_quantile(${q}, sum by (le${by ? `, ${by}` : ''}) (rate(${metric}{${SEL}${extra}}[${W}])))`,
    legend: `p${q * 100}${legend}`,
  }));
}

/** Builds the single-sidecar dashboard (uid cb-sidecar). */
export function sidecarDashboard(): dashboard.Dashboard {
  return new DashboardBuilder('cb-sidecar')
    .uid('cb-sidecar')
    .description('One cb-sidecar deployment: admissions, rejections by cause, latency, limit and breaker.')
    .tags(['circuit-breaker', 'cb-sidecar'])
    .refresh('5s')
    .time({ from: 'now-15m', to: 'now' })
    .withVariable(datasourceVariable())
    .withVariable(
      new QueryVariableBuilder('namespace')
        .label('Namespace')
        .datasource(prometheus)
        .query('label_values(cb_build_info, namespace)')
        .refresh(1),
    )
    .withVariable(
      new QueryVariableBuilder('pod')
        .label('Pod')
        .datasource(prometheus)
        .query('label_values(cb_build_info{namespace="$namespace"}, pod)')
        .refresh(2)
        .multi(true)
        .includeAll(true)
        .allValue('.*'),
    )

    .withRow(new RowBuilder('Traffic'))
    .withPanel(
      timeseries(
        'Requests by outcome',
        'forwarded = the API answered; every other outcome is an answer the sidecar made (x-cb-reason) or client-closed.',
        'reqps',
        [{ expr: `sum by (outcome) (rate(cb_requests_total{${SEL}}[${W}]))`, legend: '{{outcome}}' }],
        third,
      ),
    )
    .withPanel(
      timeseries(
        'Answers by status',
        'HTTP status of every answer, forwarded or made by the sidecar.',
        'reqps',
        [{ expr: `sum by (code) (rate(cb_requests_total{${SEL}}[${W}]))`, legend: '{{code}}' }],
        third,
      ),
    )
    .withPanel(
      timeseries(
        'Success ratio',
        'Forwarded 200s among all answers.',
        'percentunit',
        [
          {
            expr: `sum(rate(cb_requests_total{${SEL},outcome="forwarded",code="200"}[${W}])) / sum(rate(cb_requests_total{${SEL}}[${W}]))`,
            legend: 'success',
          },
        ],
        third,
      ),
    )

    .withRow(new RowBuilder('Latency'))
    .withPanel(
      timeseries(
        'Answer latency (forwarded)',
        'Client-facing duration of forwarded requests, queueing included.',
        's',
        quantiles('cb_request_duration_seconds_bucket', ',outcome="forwarded"', '', ''),
        half,
      ),
    )
    .withPanel(
      timeseries(
        'Upstream latency',
        'Time the API took, as the sidecar measured it.',
        's',
        quantiles('cb_upstream_request_duration_seconds_bucket', '', '', ' upstream'),
        half,
      ),
    )

    .withRow(new RowBuilder('Admission and breaker'))
    .withPanel(
      timeseries(
        'In flight, queued and limit',
        'Per pod: concurrency in use, queue depth and the current (adaptive) limit.',
        'short',
        [
          { expr: `sum by (pod) (cb_inflight_requests{${SEL}})`, legend: 'in flight {{pod}}' },
          { expr: `sum by (pod) (cb_queue_depth{${SEL}})`, legend: 'queued {{pod}}' },
          { expr: `sum by (pod) (cb_concurrency_limit{${SEL}})`, legend: 'limit {{pod}}' },
        ],
        third,
      ),
    )
    .withPanel(
      stat(
        'Breaker state',
        'Pods in each breaker state.',
        'short',
        [{ expr: `sum by (state) (cb_breaker_state{${SEL}})`, legend: '{{state}}' }],
        third,
      ),
    )
    .withPanel(
      timeseries(
        'Breaker flips',
        'How often the open state was entered or left in the last 5 minutes.',
        'short',
        [{ expr: `sum by (pod) (changes(cb_breaker_state{${SEL},state="open"}[5m]))`, legend: '{{pod}}' }],
        third,
      ),
    )

    .withRow(new RowBuilder('Process'))
    .withPanel(
      timeseries(
        'CPU',
        'CPU seconds per second of the sidecar process.',
        'percentunit',
        [{ expr: `sum by (pod) (rate(process_cpu_seconds_total{${PROCESS}}[${W}]))`, legend: '{{pod}}' }],
        third,
      ),
    )
    .withPanel(
      timeseries(
        'Memory (RSS)',
        'Resident memory of the sidecar process.',
        'bytes',
        [{ expr: `sum by (pod) (process_resident_memory_bytes{${PROCESS}})`, legend: '{{pod}}' }],
        third,
      ),
    )
    .withPanel(
      timeseries(
        'Event loop lag p99',
        'Node event-loop delay: a busy sidecar answers late.',
        's',
        [{ expr: `max by (pod) (nodejs_eventloop_lag_p99_seconds{${PROCESS}})`, legend: '{{pod}}' }],
        third,
      ),
    )
    .build();
}
