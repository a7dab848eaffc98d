import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

/** CPU time a process has used, in ms (`/proc/<pid>/schedstat`, nanosecond resolution). */
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
  /** CPU each process may use per period, as a fraction of one core (a pod's `limits.cpu`: 0.5 = 500m). */
  cpu: number;
  /** The accounting period (CFS uses 100 ms). */
  periodMs: number;
  /** How often usage is checked. */
  tickMs?: number;
}

/**
 * A user-space CFS bandwidth limit, like a pod's CPU limit: each process may use `cpu x periodMs` of CPU
 * per period; once it has, it is stopped (SIGSTOP) until the period ends (SIGCONT). An idle process is
 * never stopped. Needs no privileges; reads /proc/<pid>/schedstat (Linux).
 */
export class CpuQuota {
  private readonly state: { pid: number; base: number; stopped: boolean }[];
  private timer: NodeJS.Timeout | undefined;
  private periodEnd = 0;
  /** Periods in which at least one process was stopped (how often the limit bit). */
  throttledPeriods = 0;
  periods = 0;

  /** @throws RangeError when `cpu` is not in (0, 64] or the period is under 5 ms */
  constructor(private readonly opts: CpuQuotaOptions) {
    if (!(opts.cpu > 0 && opts.cpu <= 64)) throw new RangeError(`cpu must be in (0, 64], got ${opts.cpu}`);
    if (!(opts.periodMs >= 5)) throw new RangeError(`periodMs must be >= 5, got ${opts.periodMs}`);
    this.state = opts.pids.map((pid) => ({ pid, base: cpuTimeMs(pid) ?? 0, stopped: false }));
  }

  /** Starts enforcing. */
  start(): void {
    this.newPeriod(performance.now());
    this.timer = setInterval(() => this.tick(), this.opts.tickMs ?? 1);
  }

  private newPeriod(now: number): void {
    this.periodEnd = now + this.opts.periodMs;
    this.periods++;
    let throttled = false;
    for (const s of this.state) {
      s.base = cpuTimeMs(s.pid) ?? s.base;
      if (s.stopped) {
        throttled = true;
        this.send(s.pid, 'SIGCONT');
        s.stopped = false;
      }
    }
    if (throttled) this.throttledPeriods++;
  }

  private tick(): void {
    const now = performance.now();
    if (now >= this.periodEnd) {
      this.newPeriod(now);
      return;
    }
    const quota = this.opts.cpu * this.opts.periodMs;
    for (const s of this.state) {
      if (s.stopped) continue;
      const used = (cpuTimeMs(s.pid) ?? s.base) - s.base;
      if (used >= quota) {
        this.send(s.pid, 'SIGSTOP');
        s.stopped = true;
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
    for (const s of this.state) {
      if (s.stopped) this.send(s.pid, 'SIGCONT');
      s.stopped = false;
    }
  }
}
