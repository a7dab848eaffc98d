import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

/**
 * CPU time a process's main thread has used, in ms (`/proc/<pid>/schedstat`, nanosecond resolution).
 * For iris-api that is where the time goes: HTTP, JSON and onnxruntime's `run` (measured: ~85%, the rest
 * is V8's GC threads).
 */
export function cpuTimeMs(pid: number): number | undefined {
  try {
    const first = readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0];
    return Number(first) / 1e6;
  } catch {
    return undefined;
  }
}

/** Options of {@link CpuQuota}. */
export interface CpuQuotaOptions {
  /** Processes to limit (each gets its own quota). */
  pids: readonly number[];
  /** CPU each process may use, as a fraction of one core (a pod's `limits.cpu`: 0.5 = 500m). */
  cpu: number;
  /** CFS period: the budget a process may burst is `cpu x periodMs`. */
  periodMs: number;
  /** How often usage is checked. */
  tickMs?: number;
}

interface Tracked {
  pid: number;
  lastCpuMs: number;
  budgetMs: number;
  stopped: boolean;
}

/**
 * A user-space CPU limit, like a pod's `limits.cpu` under CFS bandwidth control: each process earns
 * `cpu` ms of CPU per ms of wall time, may bank at most `cpu x periodMs`, and is stopped (SIGSTOP) while
 * its budget is spent, until it has earned it back (SIGCONT). Overshoot between checks is paid back
 * later, so the long-run share is exact even when the checks are late. An idle process is never stopped.
 * Needs no privileges; reads /proc/<pid>/schedstat (Linux).
 */
export class CpuQuota {
  private readonly tracked: Tracked[];
  private timer: NodeJS.Timeout | undefined;
  private lastTick = 0;
  /** How many times a process was stopped (how often the limit bit). */
  stops = 0;

  /** @throws RangeError when `cpu` is not in (0, 64] or the period is under 5 ms */
  constructor(private readonly opts: CpuQuotaOptions) {
    if (!(opts.cpu > 0 && opts.cpu <= 64)) throw new RangeError(`cpu must be in (0, 64], got ${opts.cpu}`);
    if (!(opts.periodMs >= 5)) throw new RangeError(`periodMs must be >= 5, got ${opts.periodMs}`);
    this.tracked = opts.pids.map((pid) => ({ pid, lastCpuMs: cpuTimeMs(pid) ?? 0, budgetMs: opts.cpu * opts.periodMs, stopped: false }));
  }

  /** Starts enforcing. */
  start(): void {
    this.lastTick = performance.now();
    for (const t of this.tracked) t.lastCpuMs = cpuTimeMs(t.pid) ?? t.lastCpuMs;
    this.timer = setInterval(() => this.tick(), this.opts.tickMs ?? 1);
  }

  private tick(): void {
    const now = performance.now();
    const earned = (now - this.lastTick) * this.opts.cpu;
    this.lastTick = now;
    const burst = this.opts.cpu * this.opts.periodMs;
    for (const t of this.tracked) {
      const cpu = cpuTimeMs(t.pid);
      if (cpu === undefined) continue;
      t.budgetMs = Math.min(burst, t.budgetMs + earned - (cpu - t.lastCpuMs));
      t.lastCpuMs = cpu;
      if (!t.stopped && t.budgetMs <= 0) {
        this.send(t.pid, 'SIGSTOP');
        t.stopped = true;
        this.stops++;
      } else if (t.stopped && t.budgetMs > 0) {
        this.send(t.pid, 'SIGCONT');
        t.stopped = false;
      }
    }
  }

  private send(pid: number, sig: NodeJS.Signals): void {
    try {
      process.kill(pid, sig);
    } catch {
      /* the process is gone */
    }
  }

  /** Stops enforcing and lets every process run again. */
  stop(): void {
    clearInterval(this.timer);
    for (const t of this.tracked) {
      if (t.stopped) this.send(t.pid, 'SIGCONT');
      t.stopped = false;
    }
  }
}
