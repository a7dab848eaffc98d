import { hasSidecar } from '../plan.js';
import { envoyRejections, type ArmResult } from './arm-result.js';

/** The book's vegeta run (../shared/REFERENCE.md): 1000 req/s for 10 s through Istio, 3 pods. */
export const BOOK = {
  rate: 1000,
  durationSeconds: 10,
  requests: 10_000,
  successRatio: 0.7828,
  statusCodes: { '200': 7828, '503': 2172 },
  latencyMs: { p50: 90, p90: 428, p99: 1419, max: 2929 },
  bytesIn: 747_376,
  /** Envoy's own overflow answer: a 503 with this many bytes of body (`upstream connect error ... overflow`). */
  overflowBodyBytes: 81,
} as const;

/** One criterion: what was measured, the bound, and whether it held (null: nothing to compare with). */
export interface Criterion {
  name: string;
  value: number | null;
  bound: string;
  ok: boolean | null;
}

/** The verdict of one run (an arm at a number of callers). */
export interface ArmVerdict {
  arm: string;
  callers: number;
  /** Void runs are listed but not judged. */
  void: boolean;
  criteria: Criterion[];
  /** False when any criterion failed; null when none applied or the run is void. */
  passed: boolean | null;
}

/** Verdicts by run key plus the lines the CLI prints. */
export interface Acceptance {
  arms: Record<string, ArmVerdict>;
  passed: boolean;
  lines: string[];
}

function criterion(name: string, value: number | null, bound: string, ok: (v: number) => boolean): Criterion {
  return { name, value, bound, ok: value === null ? null : ok(value) };
}

const round1 = (v: number): number => Math.round(v * 10) / 10;

/** The sidecar arms against `direct` at the same callers: the lab's first criteria. */
function againstDirect(r: ArmResult, direct: ArmResult | undefined): Criterion[] {
  const mine = r.latency_ms.success.p99;
  const improvement = direct === undefined || mine === 0 ? null : round1(direct.latency_ms.success.p99 / mine);
  return [
    criterion('2xx p99 x lower than direct', improvement, '>= 5x', (v) => v >= 5),
    criterion('goodput / capacity', r.goodput_ratio, '>= 80%', (v) => v >= 0.8),
  ];
}

/** The sidecar arms against `istio` at the same callers: the comparison that decides the product. */
function againstIstio(r: ArmResult, istio: ArmResult | undefined): Criterion[] {
  if (istio === undefined) return [];
  const goodput = istio.goodput_rps === 0 ? null : Math.round((r.goodput_rps / istio.goodput_rps) * 1000) / 1000;
  const p99 = r.latency_ms.success.p99 === 0 ? null : round1(istio.latency_ms.success.p99 / r.latency_ms.success.p99);
  return [
    criterion("goodput / istio's", goodput, '>= 0.98x', (v) => v >= 0.98),
    criterion('2xx p99 x lower than istio', p99, '>= 3x', (v) => v >= 3),
  ];
}

/** The istio arm under the seed preset against the book's run: its shape, not its goodput (calibrated). */
function againstBook(r: ArmResult): Criterion[] {
  const success = Math.round(r.success_ratio * 10_000) / 100;
  const p90 = r.latency_ms.all.p90;
  const rejected = r.status_codes['503'] ?? 0;
  const otherFailures = r.requests - rejected - (r.status_codes['200'] ?? 0);
  const split = envoyRejections(r);
  // Every 503 was Envoy's own overflow answer, and nothing timed out or was reset. The driver saw the header
  // where it keeps headers (builtin); otherwise Envoy's counters: no 503 from the app or for want of a
  // healthy host, and at least as many overflow answers (attempts) as 503s.
  let allOverflow: number | null = null;
  if (split !== null && r.envoy !== null) {
    const ok =
      otherFailures === 0 &&
      (split.answeredOverflow !== null
        ? split.answeredOverflow === rejected
        : split.app503 === 0 &&
          r.envoy.callers.upstream_rq_no_healthy === 0 &&
          split.overflowCallers + split.overflowInbound >= rejected);
    allOverflow = ok ? 1 : 0;
  }
  return [
    criterion(
      'success %',
      success,
      `${BOOK.successRatio * 100} +- 8`,
      (v) => Math.abs(v - BOOK.successRatio * 100) <= 8,
    ),
    criterion('every 503 an Envoy overflow (UO), no timeouts or resets', allOverflow, 'all', (v) => v === 1),
    criterion(
      "p90 / book's 428 ms",
      Math.round((p90 / BOOK.latencyMs.p90) * 100) / 100,
      '0.7-1.3',
      (v) => v >= 0.7 && v <= 1.3,
    ),
  ];
}

function format(c: Criterion): string {
  const mark = c.ok === null ? 'n/a' : c.ok ? 'PASS' : 'FAIL';
  return `${c.name} ${c.value ?? '-'} (${c.bound}) ${mark}`;
}

/**
 * Judges every counted run:
 * - the sidecar arms against `direct` at the same callers: 2xx p99 >= 5x lower, goodput >= 80% of capacity;
 * - the sidecar arms against `istio` at the same callers: goodput >= 0.98x, 2xx p99 >= 3x lower;
 * - the sidecar arms: rejection p99 <= 10 ms;
 * - with the seed preset, `istio` against the book's run: success within 8 points of 78.28%, every 503 an
 *   Envoy overflow answer, all-answer p90 within 0.7-1.3x of 428 ms.
 * `direct` and `istio` otherwise are the references and get a line of figures. Void runs are not judged.
 */
export function acceptance(results: readonly ArmResult[], preset?: 'seed'): Acceptance {
  const counted = results.filter((r) => !r.void.void);
  const at = (arm: string, callers: number): ArmResult | undefined =>
    counted.find((r) => r.arm === arm && r.callers === callers);
  const arms: Record<string, ArmVerdict> = {};
  const lines: string[] = [];
  let passed = true;
  for (const r of results) {
    const criteria: Criterion[] = [];
    if (!r.void.void) {
      if (hasSidecar(r.arm)) {
        const direct = at('direct', r.callers);
        if (direct !== undefined) criteria.push(...againstDirect(r, direct));
        else criteria.push(criterion('goodput / capacity', r.goodput_ratio, '>= 80%', (v) => v >= 0.8));
        criteria.push(...againstIstio(r, at('istio', r.callers)));
        const rej = r.latency_ms.rejection.count === 0 ? null : r.latency_ms.rejection.p99;
        criteria.push(criterion('rejection p99 ms', rej, '<= 10', (v) => v <= 10));
        if (r.fault !== undefined) {
          // A dead model is answered (503), never left hanging, and the arm is whole within 1 s of its return.
          criteria.push(criterion('fault: requests unanswered', r.fault.unanswered, '0', (v) => v === 0));
          criteria.push(
            criterion(
              'fault: s to recover after the model returned',
              r.fault.recovered_after_s ?? 1e9,
              '<= 1',
              (v) => v <= 1,
            ),
          );
        }
      } else if (r.arm === 'istio' && preset === 'seed') {
        criteria.push(...againstBook(r));
      }
    }
    const judged = criteria.filter((c) => c.ok !== null);
    const ok = r.void.void || judged.length === 0 ? null : judged.every((c) => c.ok === true);
    if (ok === false) passed = false;
    arms[r.key] = { arm: r.arm, callers: r.callers, void: r.void.void, criteria, passed: ok };
    const who = `acceptance ${r.arm} (${r.callers} caller${r.callers === 1 ? '' : 's'})`;
    if (r.void.void) lines.push(`${who}: VOID, not counted: ${r.void.reason}`);
    else if (criteria.length > 0) lines.push(`${who}: ${criteria.map(format).join('; ')}`);
    else {
      lines.push(
        `${who}: reference: goodput ${r.goodput_rps} req/s (${r.goodput_ratio === null ? '-' : Math.round(r.goodput_ratio * 100)}% of capacity), ` +
          `2xx p99 ${r.latency_ms.success.p99} ms, ${r.latency_ms.rejection.count} rejections`,
      );
    }
  }
  return { arms, passed, lines };
}
