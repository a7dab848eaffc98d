import type { EnvoyStats } from '../envoy.js';
import { ARM_NAMES } from '../plan.js';
import type { RuntimeStats } from '../runtime-stats.js';
import { BOOK } from './acceptance.js';
import { envoyRejections, type ArmResult, type EnvoyRejections } from './arm-result.js';
import { goDuration, vegetaLine } from './format.js';

/** One arm's report in exactly `vegeta report -type=text` layout. */
export function vegetaText(r: ArmResult): string {
  const l = r.latency_ms.all;
  const codes = Object.entries(r.status_codes).map(([c, n]) => [Number(c), n] as const);
  if (r.errors > 0) codes.push([0, r.errors]); // vegeta lists answerless requests as code 0
  codes.sort((a, b) => a[0] - b[0]);
  const mean = (bytes: number): string => (r.requests === 0 ? '0.00' : (bytes / r.requests).toFixed(2));
  return [
    vegetaLine(
      'Requests',
      '[total, rate, throughput]',
      `${r.requests}, ${r.rate.toFixed(2)}, ${r.throughput.toFixed(2)}`,
    ),
    vegetaLine(
      'Duration',
      '[total, attack, wait]',
      `${goDuration((r.duration_s + r.wait_s) * 1000)}, ${goDuration(r.duration_s * 1000)}, ${goDuration(r.wait_s * 1000)}`,
    ),
    vegetaLine(
      'Latencies',
      '[min, mean, 50, 90, 95, 99, max]',
      [l.min, l.mean, l.p50, l.p90, l.p95, l.p99, l.max].map(goDuration).join(', '),
    ),
    vegetaLine('Bytes In', '[total, mean]', `${r.bytes_in}, ${mean(r.bytes_in)}`),
    vegetaLine('Bytes Out', '[total, mean]', `${r.bytes_out}, ${mean(r.bytes_out)}`),
    vegetaLine('Success', '[ratio]', `${(r.success_ratio * 100).toFixed(2)}%`),
    vegetaLine('Status Codes', '[code:count]', codes.map(([c, n]) => `${c}:${n}  `).join('')),
    'Error Set:',
    ...Object.keys(r.error_set),
  ].join('\n');
}

function loop(s: RuntimeStats | null): string {
  return s === null ? '-' : goDuration(s.event_loop_delay_ms.p99);
}

function gcMax(s: RuntimeStats | null): string {
  return s === null || s.gc_pause_ms.count === 0 ? '-' : goDuration(s.gc_pause_ms.max);
}

function ms(v: number | undefined): string {
  return v === undefined || v === 0 ? '-' : goDuration(v);
}

/**
 * With `--mix`: per class, its success ratio and the p99 of its successes in each arm (`-` where the arm ran
 * without a mix). The sidecar arms shed the lower classes first; Envoy sheds every class alike.
 */
function classRows(arms: readonly ArmResult[]): [string, ...string[]][] {
  const names = [...new Set(arms.flatMap((r) => Object.keys(r.classes ?? {})))];
  return names.map((cls) => [
    `success / 2xx p99: ${cls}`,
    ...arms.map((r) => {
      const c = r.classes?.[cls];
      return c === undefined ? '-' : `${(c.success_ratio * 100).toFixed(1)}% / ${ms(c.success_p99_ms)}`;
    }),
  ]);
}

/** A column's heading: the arm, with its callers when more than one. */
export function columnName(r: ArmResult): string {
  return r.callers === 1 ? r.arm : `${r.arm}@${r.callers}`;
}

function envoyRow(r: ArmResult, f: (e: NonNullable<ArmResult['envoy']>) => string): string {
  return r.envoy === null ? '-' : f(r.envoy);
}

/** The rows of the side-by-side comparison: label and one value per arm (and the book's, with the seed preset). */
export function comparisonRows(arms: readonly ArmResult[]): [string, ...string[]][] {
  const row = (label: string, f: (r: ArmResult) => string): [string, ...string[]] => [label, ...arms.map(f)];
  const fault = (f: (x: NonNullable<ArmResult['fault']>) => string) => (r: ArmResult) =>
    r.fault === undefined ? '-' : f(r.fault);
  const split = (f: (s: EnvoyRejections) => string) => (r: ArmResult) => {
    const s = envoyRejections(r);
    return s === null ? '-' : f(s);
  };
  // Envoy's figures and the fault's, only when a run has them.
  const meshRows = arms.some((r) => r.envoy !== null)
    ? [
        row(
          '503s answered: Envoy overflow (UO) / upstream',
          split((s) => (s.answeredOverflow === null ? '-' : `${s.answeredOverflow} / ${s.answeredUpstream ?? '-'}`)),
        ),
        row(
          'Envoy overflow attempts: callers / inbound',
          split((s) => `${s.overflowCallers} / ${s.overflowInbound}`),
        ),
        row(
          "the app's 503s at the inbound Envoys",
          split((s) => String(s.app503)),
        ),
        row('mesh retries (ok / refused)', (r) =>
          envoyRow(
            r,
            (e) =>
              `${e.callers.upstream_rq_retry} (${e.callers.upstream_rq_retry_success} / ${e.callers.upstream_rq_retry_overflow})`,
          ),
        ),
        row('max_connections reached: callers / inbound', (r) =>
          envoyRow(r, (e) => `${e.callers.upstream_cx_overflow} / ${e.inbound.upstream_cx_overflow}`),
        ),
        row('outlier ejections', (r) => envoyRow(r, (e) => String(e.callers.outlier_ejections_enforced))),
      ]
    : [];
  const faultRows = arms.some((r) => r.fault !== undefined)
    ? [
        row(
          'fault: answers while the model was down',
          fault((x) => codesText(x.answers_during)),
        ),
        row(
          'fault: requests unanswered',
          fault((x) => String(x.unanswered)),
        ),
        row(
          'fault: s to recover after its return',
          fault((x) => (x.recovered_after_s === null ? 'not in the run' : String(x.recovered_after_s))),
        ),
      ]
    : [];
  return [
    row('callers', (r) => String(r.callers)),
    row('offered rate (req/s)', (r) => r.offered_rate.toFixed(0)),
    row('requests', (r) => String(r.requests)),
    row('success ratio', (r) => `${(r.success_ratio * 100).toFixed(2)}%`),
    row('goodput (2xx/s of the attack)', (r) => r.goodput_rps.toFixed(1)),
    row('capacity (probe, req/s)', (r) => (r.capacity_rps === null ? '-' : r.capacity_rps.toFixed(1))),
    row('goodput / capacity', (r) => (r.goodput_ratio === null ? '-' : `${(r.goodput_ratio * 100).toFixed(0)}%`)),
    row('2xx p50', (r) => ms(r.latency_ms.success.p50)),
    row('2xx p99', (r) => ms(r.latency_ms.success.p99)),
    row('2xx max', (r) => ms(r.latency_ms.success.max)),
    row('all p50 / p90', (r) => `${ms(r.latency_ms.all.p50)} / ${ms(r.latency_ms.all.p90)}`),
    row('all p99', (r) => ms(r.latency_ms.all.p99)),
    row('rejections (5xx)', (r) => String(r.latency_ms.rejection.count)),
    row('rejection p99', (r) => ms(r.latency_ms.rejection.p99)),
    row('rejection p99 inside sidecar (<=)', (r) =>
      r.sidecar_rejection_p99_ms === null ? '-' : goDuration(r.sidecar_rejection_p99_ms),
    ),
    row('rejections by reason', (r) => codesText(r.rejection_reasons)),
    ...classRows(arms),
    ...meshRows,
    ...faultRows,
    row('errors (no answer)', (r) => String(r.errors)),
    row('max upstream concurrency', (r) =>
      r.max_upstream_concurrency === null ? '-' : String(r.max_upstream_concurrency),
    ),
    row('driver send lag p99', (r) => (r.driver_send_lag_ms === null ? '-' : goDuration(r.driver_send_lag_ms.p99))),
    row('loop delay p99: driver/lab', (r) => `${loop(r.runtime.driver)} / ${loop(r.runtime.lab)}`),
    row('GC pause max: driver/lab', (r) => `${gcMax(r.runtime.driver)} / ${gcMax(r.runtime.lab)}`),
    row('machine CPU busy / steal', (r) =>
      r.runtime.machine === null ? '-' : `${r.runtime.machine.busy_pct.toFixed(0)}% / ${r.runtime.machine.steal_ms}ms`,
    ),
    row('counted', (r) => (r.void.void ? 'VOID' : 'yes')),
  ];
}

/** Counts by key as `200:5 503:12` ('-' for none). */
export function codesText(codes: Record<string, number>): string {
  return (
    Object.entries(codes)
      .map(([c, n]) => `${c}:${n}`)
      .join(' ') || '-'
  );
}

/** The book's column beside the seed preset's arms: its figures where it has them, '-' elsewhere. */
function bookColumn(labels: readonly string[]): string[] {
  const known: Record<string, string> = {
    callers: '1',
    'offered rate (req/s)': String(BOOK.rate),
    requests: String(BOOK.requests),
    'success ratio': `${(BOOK.successRatio * 100).toFixed(2)}%`,
    'goodput (2xx/s of the attack)': (BOOK.statusCodes['200'] / BOOK.durationSeconds).toFixed(1),
    'all p50 / p90': `${goDuration(BOOK.latencyMs.p50)} / ${goDuration(BOOK.latencyMs.p90)}`,
    'all p99': goDuration(BOOK.latencyMs.p99),
    'rejections (5xx)': String(BOOK.statusCodes['503']),
    '503s answered: Envoy overflow (UO) / upstream': `${BOOK.statusCodes['503']} / 0`,
    'errors (no answer)': '0',
  };
  return labels.map((l) => known[l] ?? '-');
}

/**
 * The side-by-side table: a heading row, then one row per figure with a cell per run; with the seed preset the
 * book's run is the first column.
 */
export function comparisonTable(arms: readonly ArmResult[], preset?: 'seed' | null): string[][] {
  const body = comparisonRows(arms);
  const seed = preset === 'seed';
  const book = seed ? bookColumn(body.map((r) => r[0])) : [];
  return [
    ['', ...(seed ? ['book (Istio)'] : []), ...arms.map(columnName)],
    ...body.map(([label, ...cells], i) => [label, ...(seed ? [book[i] ?? '-'] : []), ...cells]),
  ];
}

/** Rows as aligned text: the first column left-aligned, the others right-aligned. */
function alignedText(rows: readonly (readonly string[])[]): string {
  const widths = (rows[0] ?? []).map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows
    .map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  '))
    .join('\n');
}

/** The side-by-side table of the arms as aligned text; with the seed preset the book's run is the first column. */
export function comparisonText(arms: readonly ArmResult[], preset?: 'seed'): string {
  return alignedText(comparisonTable(arms, preset));
}

/**
 * The caller-count table: one row per run, arm by arm in the plan's order and by callers, with what the callers
 * plot shows (goodput, accepted p50/p99, rejections, the peak in flight at one replica's model).
 */
export function callersTable(arms: readonly ArmResult[]): string[][] {
  const order = (r: ArmResult): number => ARM_NAMES.indexOf(r.arm);
  const runs = [...arms].sort((a, b) => order(a) - order(b) || a.callers - b.callers);
  return [
    [
      'arm',
      'callers',
      'goodput (2xx/s)',
      '2xx p50',
      '2xx p99',
      'rejections',
      'peak in flight at one replica',
      'counted',
    ],
    ...runs.map((r) => [
      r.arm,
      String(r.callers),
      r.goodput_rps.toFixed(1),
      ms(r.latency_ms.success.p50),
      ms(r.latency_ms.success.p99),
      String(r.latency_ms.rejection.count),
      r.max_upstream_concurrency === null ? '-' : String(r.max_upstream_concurrency),
      r.void.void ? 'VOID' : 'yes',
    ]),
  ];
}

/** The caller-count table as aligned text. */
export function callersText(arms: readonly ArmResult[]): string {
  return alignedText(callersTable(arms));
}

/** The figures with Envoy's own stat name (under `cluster.<name>.`) and what each counts. */
const ENVOY_FIGURES: readonly [keyof EnvoyStats, string, string][] = [
  ['upstream_rq_total', 'upstream_rq_total', 'requests sent upstream'],
  ['upstream_rq_pending_overflow', 'upstream_rq_pending_overflow', '503 UO: the pending queue was full'],
  ['upstream_rq_overflow', 'upstream_rq_overflow', '503 UO: max_requests reached'],
  ['upstream_cx_overflow', 'upstream_cx_overflow', 'max_connections reached (the request waits in the pending queue)'],
  ['upstream_rq_pending_total', 'upstream_rq_pending_total', 'requests that waited in the pending queue'],
  ['upstream_rq_retry', 'upstream_rq_retry', 'retries sent'],
  ['upstream_rq_retry_success', 'upstream_rq_retry_success', 'retries that succeeded'],
  ['upstream_rq_retry_overflow', 'upstream_rq_retry_overflow', 'retries refused by max_retries'],
  ['upstream_rq_5xx', 'upstream_rq_5xx', 'upstream 5xx answers'],
  ['upstream_rq_503', 'upstream_rq_503', 'upstream 503 answers'],
  ['outlier_ejections_enforced', 'outlier_detection.ejections_enforced_total', 'ejections enforced'],
  ['outlier_ejections_active', 'outlier_detection.ejections_active', 'hosts ejected at the end'],
  ['upstream_rq_no_healthy', 'upstream_cx_none_healthy', 'no healthy host (503 UH)'],
];

/** A mesh run's Envoy statistics: one row per figure, Envoy's own name for it, the callers' and the inbound Envoys'. */
export function envoyRows(r: ArmResult): [string, string, string][] {
  if (r.envoy === null) return [];
  const e = r.envoy;
  return ENVOY_FIGURES.map(([k, name, what]) => [`${name}: ${what}`, String(e.callers[k]), String(e.inbound[k])]);
}
