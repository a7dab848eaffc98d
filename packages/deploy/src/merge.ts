// Merges the raw k6 results of several callers (k6 --out csv, one row per sample) into one report with the same
// figures k6/lib.ts's summary gives for one: requests and rate, success latency, status codes, rejections by
// cause. Percentiles come from every caller's samples together, never from averaging the callers' percentiles.

/** The merged figures of all callers. */
export interface K6Report {
  callers: number;
  requests: number;
  /** requests per second over the span from the first to the last sample */
  rate: number;
  statusCodes: Record<string, number>;
  rejectionsByReason: Record<string, number>;
  droppedIterations: number;
  /** latency of 200 answers (k6's expected responses), ms */
  successLatencyMs: Percentiles;
  /** latency of every answer, ms */
  allLatencyMs: Percentiles;
}

/** p50, p90, p99 and max (undefined when there were no samples). */
export interface Percentiles {
  p50?: number;
  p90?: number;
  p99?: number;
  max?: number;
}

/** The same percentile k6 reports (linear interpolation between closest ranks). */
export function percentile(sorted: readonly number[], p: number): number | undefined {
  if (sorted.length === 0) return undefined;
  const rank = (p / 100) * (sorted.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (rank - lo);
}

function percentiles(values: number[]): Percentiles {
  const sorted = values.sort((a, b) => a - b);
  return {
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    max: sorted.at(-1),
  };
}

/** Merges the CSV output of each caller. */
export function mergeK6Csv(csvs: readonly string[]): K6Report {
  const report: K6Report = {
    callers: csvs.length,
    requests: 0,
    rate: 0,
    statusCodes: {},
    rejectionsByReason: {},
    droppedIterations: 0,
    successLatencyMs: {},
    allLatencyMs: {},
  };
  const ok: number[] = [];
  const all: number[] = [];
  let first = Infinity;
  let last = -Infinity;
  for (const csv of csvs) {
    const lines = csv.split('\n').filter(Boolean);
    const header = (lines.shift() ?? '').split(',');
    const col = (name: string): number => header.indexOf(name);
    const [metric, time, value, status, expected, extra] = [
      col('metric_name'),
      col('timestamp'),
      col('metric_value'),
      col('status'),
      col('expected_response'),
      col('extra_tags'),
    ];
    if (metric < 0 || value < 0) throw new Error('not k6 CSV output: no metric_name/metric_value columns');
    for (const line of lines) {
      // k6's CSV has no quoted fields in the columns read here (tags are k=v&k=v in extra_tags).
      const f = line.split(',');
      const v = Number(f[value]);
      switch (f[metric]) {
        case 'http_reqs': {
          report.requests += v;
          const code = f[status] || '0';
          report.statusCodes[code] = (report.statusCodes[code] ?? 0) + v;
          const t = Number(f[time]);
          first = Math.min(first, t);
          last = Math.max(last, t);
          break;
        }
        case 'http_req_duration':
          all.push(v);
          if (f[expected] === 'true') ok.push(v);
          break;
        case 'rejected_by_reason': {
          const reason = /(?:^|&)reason=([^&]+)/.exec(f[extra] ?? '')?.[1] ?? 'other';
          report.rejectionsByReason[reason] = (report.rejectionsByReason[reason] ?? 0) + v;
          break;
        }
        case 'dropped_iterations':
          report.droppedIterations += v;
          break;
      }
    }
  }
  // Timestamps are whole seconds: the span covers the last second too.
  report.rate = report.requests > 0 ? report.requests / (last - first + 1) : 0;
  report.successLatencyMs = percentiles(ok);
  report.allLatencyMs = percentiles(all);
  return report;
}

function ms(v: number | undefined): string {
  return v === undefined ? '-' : `${v.toFixed(2)}ms`;
}

/** The merged report as text, laid out like one caller's k6 summary (k6/lib.ts). */
export function formatK6Report(r: K6Report): string {
  const codes = Object.entries(r.statusCodes)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([c, n]) => `${c}:${n}`)
    .join('  ');
  const reasons = Object.entries(r.rejectionsByReason)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([c, n]) => `${c}:${n}`)
    .join('  ');
  const lat = (p: Percentiles): string => `${ms(p.p50)}, ${ms(p.p90)}, ${ms(p.p99)}, ${ms(p.max)}`;
  return [
    `Callers                                      ${r.callers}`,
    `Requests      [total, rate]                  ${r.requests}, ${r.rate.toFixed(2)}`,
    `Success lat.  [p50, p90, p99, max]           ${lat(r.successLatencyMs)}`,
    `All latency   [p50, p90, p99, max]           ${lat(r.allLatencyMs)}`,
    `Status Codes  [code:count]                   ${codes || '-'}`,
    `Rejections    [reason:count]                 ${reasons || '-'}`,
    `Dropped iterations                           ${r.droppedIterations}`,
    '',
  ].join('\n');
}
