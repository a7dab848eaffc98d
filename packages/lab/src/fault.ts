// The fault run: one replica's model is killed in the middle of the attack and comes back a few seconds
// later; the arm's answers during the outage and its time to recover are read from the recorder.
import { FINE_BIN_MS, type FineBin } from './results.js';

/** When and for how long the model of replica 0 is down (`--fault`). */
export interface FaultSpec {
  /** Which replica's model is killed. */
  replica: number;
  /** How long after the attack starts (s). */
  atSeconds: number;
  /** How long the model stays dead before it is started again (s). */
  downSeconds: number;
}

/** What the fault did to an arm (summary.json `fault`). */
export interface FaultResult {
  replica: number;
  /** When the model was killed, since the attack started (s). */
  killed_at_s: number;
  /** When the model answered its readiness check again (s); null if it never did during the run. */
  returned_at_s: number | null;
  /** 2xx/s in the 2 s before the kill: the level the arm must return to. */
  goodput_before_rps: number;
  /** Answers by status completed while the model was down. */
  answers_during: Record<string, number>;
  /** Requests with no answer at all (timeouts, resets) completed while it was down or after. */
  unanswered: number;
  /**
   * Seconds from the model's return to the start of the first 500 ms in which the arm's goodput is back to
   * 90% of `goodput_before_rps` (null: not within the run). Answers take a service time, so this is at least
   * the time to the returned model's first answers.
   */
  recovered_after_s: number | null;
}

/** The share of the pre-fault goodput that counts as recovered. */
export const RECOVERED_SHARE = 0.9;
const WINDOW_BINS = 500 / FINE_BIN_MS;

/** Reads a fault's figures from the recorder's fine bins (`FINE_BIN_MS` each, by completion time). */
export function faultResult(
  bins: readonly FineBin[],
  replica: number,
  killedAtMs: number,
  returnedAtMs: number | null,
): FaultResult {
  const bin = (ms: number): number => Math.floor(ms / FINE_BIN_MS);
  const k = bin(killedAtMs);
  const before = bins.slice(Math.max(0, k - 2000 / FINE_BIN_MS), k);
  const goodputBefore =
    before.length === 0 ? 0 : before.reduce((a, b) => a + b.ok, 0) / ((before.length * FINE_BIN_MS) / 1000);
  const answers = new Map<number, number>();
  const end = returnedAtMs === null ? bins.length : bin(returnedAtMs);
  for (const b of bins.slice(k, end)) for (const [code, n] of b.codes) answers.set(code, (answers.get(code) ?? 0) + n);
  const unanswered = bins.slice(k).reduce((a, b) => a + b.errors, 0);
  let recovered: number | null = null;
  if (returnedAtMs !== null) {
    const need = goodputBefore * RECOVERED_SHARE * ((WINDOW_BINS * FINE_BIN_MS) / 1000);
    for (let i = bin(returnedAtMs); i + WINDOW_BINS <= bins.length; i++) {
      const ok = bins.slice(i, i + WINDOW_BINS).reduce((a, b) => a + b.ok, 0);
      if (ok >= need) {
        // From the start of the first 500 ms back at that level: when the arm was whole again.
        recovered = Math.max(0, Math.round(i * FINE_BIN_MS - returnedAtMs) / 1000);
        break;
      }
    }
  }
  return {
    replica,
    killed_at_s: Math.round(killedAtMs) / 1000,
    returned_at_s: returnedAtMs === null ? null : Math.round(returnedAtMs) / 1000,
    goodput_before_rps: Math.round(goodputBefore * 10) / 10,
    answers_during: Object.fromEntries([...answers].sort((a, b) => a[0] - b[0]).map(([c, n]) => [String(c), n])),
    unanswered,
    recovered_after_s: recovered,
  };
}
