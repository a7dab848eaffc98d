// Shared pieces of the k6 scenarios: the request the reference sends, the 503-by-cause counter,
// and a summary written as JSON (for machines) and text (for people).
import http from 'k6/http';
import { Counter } from 'k6/metrics';
import type { Options } from 'k6/options';

/** Where the load goes: the Service in the cluster, or the local lab. */
export const baseUrl: string = (__ENV.BASE_URL ?? 'http://iris-svc:8000').replace(/\/+$/, '');

/**
 * The reference body (vegeta/data.json), resolved relative to this file like vegeta's `@vegeta/data.json`; BODY_FILE
 * and PREDICT_PATH send another (the lab's v2 inference request to MLServer: POST /v2/models/iris/infer).
 */
const body: string = open(__ENV.BODY_FILE ?? '../vegeta/data.json');
/** Where the body goes. */
const predictPath: string = __ENV.PREDICT_PATH ?? '/predict';

/**
 * Every cause a 503/504/502 can carry: the sidecar's x-cb-reason values, Envoy's overflow, or unknown. A copy:
 * the client image holds only k6/, so this cannot import the sidecar's list; test/k6-reasons.test.ts pins it
 * to `REASONS` of @infer-cb/proxy.
 */
export const rejectionReasons = [
  'overload',
  'queue-timeout',
  'deadline',
  'circuit-open',
  'upstream-timeout',
  'upstream-unavailable',
  'upstream-error',
  'envoy-overloaded',
  'other',
] as const;

/** Counts 5xx answers tagged by `reason` (x-cb-reason, or envoy-overloaded when Envoy sheds). */
const rejected = new Counter('rejected_by_reason');
/** Counts answers tagged by HTTP `status`, so the summary shows 200s and 503s side by side. */
const answered = new Counter('responses_by_status');

/** Statuses listed in the summary (one threshold-backed sub-metric each). */
const summaryStatuses = ['200', '502', '503', '504'] as const;

/**
 * Thresholds: success latency and error budget, plus count>=0 entries that only make k6 keep
 * per-tag sub-metrics (503s by reason, answers by status) in the summary.
 */
export const thresholds: NonNullable<Options['thresholds']> = {
  'http_req_duration{expected_response:true}': ['p(99)<1500'],
  http_req_failed: ['rate<0.5'],
  ...Object.fromEntries(rejectionReasons.map((r) => [`rejected_by_reason{reason:${r}}`, ['count>=0']])),
  ...Object.fromEntries(summaryStatuses.map((s) => [`responses_by_status{status:${s}}`, ['count>=0']])),
};

/**
 * The reference scenario: a constant arrival rate of RATE/s for DURATION, VUs sized for ~100 ms answers; with VUS,
 * a closed loop of that many VUs instead (a capacity measurement, bench/oip).
 */
export function referenceScenarios(rate: number): NonNullable<Options['scenarios']> {
  if (__ENV.VUS !== undefined) {
    return { reference: { executor: 'constant-vus', vus: Number(__ENV.VUS), duration: __ENV.DURATION ?? '10s' } };
  }
  return {
    reference: {
      executor: 'constant-arrival-rate',
      rate,
      timeUnit: '1s',
      duration: __ENV.DURATION ?? '10s',
      preAllocatedVUs: Number(__ENV.PRE_ALLOCATED_VUS ?? Math.max(10, Math.ceil(rate / 10))),
      maxVUs: Number(__ENV.MAX_VUS ?? Math.max(50, rate)),
    },
  };
}

/** Trend statistics kept in the summary: the seed's vegeta report quotes p50, p90, p99 and max. */
export const summaryTrendStats = ['avg', 'min', 'med', 'max', 'p(90)', 'p(95)', 'p(99)'];

/** Sends the reference POST /predict (or PREDICT_PATH) and records the answer's status and rejection cause. */
export function predict(): void {
  const res = http.post(`${baseUrl}${predictPath}`, body, {
    headers: { 'Content-Type': 'application/json' },
    responseCallback: http.expectedStatuses(200),
  });
  const status = String(res.status);
  answered.add(1, { status });
  if (res.status >= 500) {
    const cbReason = res.headers['X-Cb-Reason'];
    const reason = cbReason ?? (res.headers['X-Envoy-Overloaded'] !== undefined ? 'envoy-overloaded' : 'other');
    rejected.add(1, { reason });
  }
}

interface MetricValues {
  [stat: string]: number;
}
interface SummaryMetric {
  values: MetricValues;
}
interface SummaryData {
  metrics: Record<string, SummaryMetric | undefined>;
}

function count(data: SummaryData, name: string): number {
  return data.metrics[name]?.values['count'] ?? 0;
}

function ms(v: number | undefined): string {
  return v === undefined ? '-' : `${v.toFixed(2)}ms`;
}

/** Renders the few figures the A/B comparison reads, in the spirit of `vegeta report`. */
export function textSummary(data: SummaryData): string {
  const reqs = data.metrics['http_reqs']?.values ?? {};
  const ok = data.metrics['http_req_duration{expected_response:true}']?.values ?? {};
  const statuses = summaryStatuses.map((s) => `${s}:${count(data, `responses_by_status{status:${s}}`)}`).join('  ');
  const reasons = rejectionReasons
    .map((r) => [r, count(data, `rejected_by_reason{reason:${r}}`)] as const)
    .filter(([, n]) => n > 0)
    .map(([r, n]) => `${r}:${n}`)
    .join('  ');
  return [
    `Requests      [total, rate]                  ${reqs['count'] ?? 0}, ${(reqs['rate'] ?? 0).toFixed(2)}`,
    `Success lat.  [p50, p90, p99, max]           ${ms(ok['med'])}, ${ms(ok['p(90)'])}, ${ms(ok['p(99)'])}, ${ms(ok['max'])}`,
    `Status Codes  [code:count]                   ${statuses}`,
    `Rejections    [reason:count]                 ${reasons || '-'}`,
    `Dropped iterations                           ${count(data, 'dropped_iterations')}`,
    '',
  ].join('\n');
}

/** k6 handleSummary: JSON to $SUMMARY_JSON (default k6-summary.json) and text to stdout. */
export function summaryOutputs(data: SummaryData): Record<string, string> {
  return {
    stdout: textSummary(data),
    [__ENV.SUMMARY_JSON ?? 'k6-summary.json']: JSON.stringify(data, null, 2),
  };
}
