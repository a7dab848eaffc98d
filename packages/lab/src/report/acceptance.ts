import type { ArmResult } from './arm-result.js';

/** The issue's acceptance criteria, checked per sidecar arm against `direct` in the same run. */
export interface ArmVerdict {
  /** direct's 2xx p99 / this arm's 2xx p99 (>= 5 passes). */
  p99_improvement: number | null;
  p99_ok: boolean | null;
  /** This arm's rejection p99 (ms; <= 10 passes). */
  rejection_p99_ms: number | null;
  rejection_p99_ok: boolean | null;
  /** Goodput / this arm's probed capacity (>= 0.8 passes). */
  goodput_ratio: number | null;
  goodput_ok: boolean | null;
}

/** Verdicts by arm plus the lines the CLI prints. */
export interface Acceptance {
  arms: Record<string, ArmVerdict>;
  passed: boolean;
  lines: string[];
}

/** Checks: sidecar 2xx p99 >= 5x lower than direct's, rejections p99 <= 10 ms, goodput >= 80% of capacity. */
export function acceptance(results: readonly ArmResult[]): Acceptance {
  const direct = results.find((r) => r.arm === 'direct');
  const arms: Record<string, ArmVerdict> = {};
  const lines: string[] = [];
  let passed = true;
  for (const r of results) {
    if (r.arm === 'direct') continue;
    const mine = r.latency_ms.success.p99;
    const improvement = direct === undefined || mine === 0 ? null : direct.latency_ms.success.p99 / mine;
    const rej = r.latency_ms.rejection.count === 0 ? null : r.latency_ms.rejection.p99;
    const v: ArmVerdict = {
      p99_improvement: improvement === null ? null : Math.round(improvement * 10) / 10,
      p99_ok: improvement === null ? null : improvement >= 5,
      rejection_p99_ms: rej,
      rejection_p99_ok: rej === null ? null : rej <= 10,
      goodput_ratio: r.goodput_ratio,
      goodput_ok: r.goodput_ratio === null ? null : r.goodput_ratio >= 0.8,
    };
    arms[r.arm] = v;
    const mark = (ok: boolean | null): string => (ok === null ? 'n/a' : ok ? 'PASS' : 'FAIL');
    if (v.p99_ok === false || v.rejection_p99_ok === false || v.goodput_ok === false) passed = false;
    lines.push(
      `acceptance ${r.arm}: 2xx p99 ${v.p99_improvement ?? '-'}x lower than direct (>= 5x) ${mark(v.p99_ok)}; ` +
        `rejection p99 ${rej ?? '-'} ms (<= 10 ms) ${mark(v.rejection_p99_ok)}; ` +
        `goodput ${v.goodput_ratio === null ? '-' : `${Math.round(v.goodput_ratio * 100)}%`} of capacity (>= 80%) ${mark(v.goodput_ok)}`,
    );
  }
  return { arms, passed, lines };
}
