import type { RuntimeStats } from '../runtime-stats.js';
import type { ArmResult } from './arm-result.js';
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

/** The rows of the side-by-side comparison: label and one value per arm. */
export function comparisonRows(arms: readonly ArmResult[]): [string, ...string[]][] {
  const row = (label: string, f: (r: ArmResult) => string): [string, ...string[]] => [label, ...arms.map(f)];
  return [
    row('offered rate (req/s)', (r) => r.offered_rate.toFixed(0)),
    row('requests', (r) => String(r.requests)),
    row('success ratio', (r) => `${(r.success_ratio * 100).toFixed(2)}%`),
    row('goodput (2xx/s)', (r) => r.throughput.toFixed(1)),
    row('capacity (probe, req/s)', (r) => (r.capacity_rps === null ? '-' : r.capacity_rps.toFixed(1))),
    row('goodput / capacity', (r) => (r.goodput_ratio === null ? '-' : `${(r.goodput_ratio * 100).toFixed(0)}%`)),
    row('2xx p50', (r) => ms(r.latency_ms.success.p50)),
    row('2xx p99', (r) => ms(r.latency_ms.success.p99)),
    row('2xx max', (r) => ms(r.latency_ms.success.max)),
    row('rejections (5xx)', (r) => String(r.latency_ms.rejection.count)),
    row('rejection p99', (r) => ms(r.latency_ms.rejection.p99)),
    row('rejection p99 inside sidecar (<=)', (r) =>
      r.sidecar_rejection_p99_ms === null ? '-' : goDuration(r.sidecar_rejection_p99_ms),
    ),
    row('driver send lag p99', (r) => (r.driver_send_lag_ms === null ? '-' : goDuration(r.driver_send_lag_ms.p99))),
    row('loop delay p99: driver/lab', (r) => `${loop(r.runtime.driver)} / ${loop(r.runtime.lab)}`),
    row('GC pause max: driver/lab', (r) => `${gcMax(r.runtime.driver)} / ${gcMax(r.runtime.lab)}`),
    row('machine CPU busy / steal', (r) =>
      r.runtime.machine === null ? '-' : `${r.runtime.machine.busy_pct.toFixed(0)}% / ${r.runtime.machine.steal_ms}ms`,
    ),
    row(
      'rejections by x-cb-reason',
      (r) =>
        Object.entries(r.rejection_reasons)
          .map(([k, v]) => `${k}:${v}`)
          .join(' ') || '-',
    ),
    row('errors (no answer)', (r) => String(r.errors)),
    row('all p99', (r) => ms(r.latency_ms.all.p99)),
    row('max upstream concurrency', (r) =>
      r.max_upstream_concurrency === null ? '-' : String(r.max_upstream_concurrency),
    ),
  ];
}

/** The side-by-side table of the arms as aligned text. */
export function comparisonText(arms: readonly ArmResult[]): string {
  const rows: string[][] = [['', ...arms.map((a) => a.arm)], ...comparisonRows(arms)];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows
    .map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  '))
    .join('\n');
}
