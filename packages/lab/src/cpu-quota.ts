import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

/**
 * CPU time a process's main thread has used, in ms (`/proc/<pid>/schedstat`, nanosecond resolution).
 * For iris-api that is where the time goes: HTTP, JSON and onnxruntime's `run` (measured: ~85%, the rest
 * is V8's GC threads).
 */
export function cpuTimeMs(pid: number): number | undefined {
  try {
    return schedstatMs(readFileSync(`/proc/${pid}/schedstat`, 'latin1'));
  } catch {
    return undefined;
  }
}

/** The first field of a schedstat line (ns on a CPU) in ms; undefined for anything else. */
function schedstatMs(text: string): number | undefined {
  const end = text.indexOf(' ');
  const ns = Number(end < 0 ? text : text.slice(0, end));
  return text.length === 0 || Number.isNaN(ns) ? undefined : ns / 1e6;
}

/**
 * Reads a process's main-thread CPU time like {@link cpuTimeMs}, from a file descriptor kept open:
 * one `pread` per reading instead of open, read and close (the quota reads every API every tick).
 */
class SchedstatReader {
  private fd: number | undefined;
  private readonly buf = Buffer.alloc(128);

  constructor(private readonly pid: number) {
    try {
      this.fd = openSync(`/proc/${pid}/schedstat`, 'r');
    } catch {
      this.fd = undefined;
    }
  }

  /** Main-thread CPU ms, or undefined once the process is gone. */
  read(): number | undefined {
    if (this.fd === undefined) return cpuTimeMs(this.pid);
    try {
      const n = readSync(this.fd, this.buf, 0, this.buf.length, 0);
      return schedstatMs(this.buf.toString('latin1', 0, n));
    } catch {
      this.close();
      return undefined;
    }
  }

  close(): void {
    if (this.fd === undefined) return;
    try {
      closeSync(this.fd);
    } catch {
      /* already closed */
    }
    this.fd = undefined;
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
  /**
   * Shortest time between two checks (default 1 ms). A check comes no later than a running process
   * could have spent its budget (its main thread uses at most 1 ms of CPU per ms) and exactly when a
   * stopped one has earned it back, so the quota sleeps while every process is stopped or idle with a
   * full budget instead of waking every millisecond.
   */
  tickMs?: number;
}

interface Tracked {
  pid: number;
  reader: SchedstatReader;
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
  private running = false;
  /** How many times a process was stopped (how often the limit bit). */
  stops = 0;

  /** @throws RangeError when `cpu` is not in (0, 64] or the period is under 5 ms */
  constructor(private readonly opts: CpuQuotaOptions) {
    if (!(opts.cpu > 0 && opts.cpu <= 64)) throw new RangeError(`cpu must be in (0, 64], got ${opts.cpu}`);
    if (!(opts.periodMs >= 5)) throw new RangeError(`periodMs must be >= 5, got ${opts.periodMs}`);
    this.tracked = opts.pids.map((pid) => {
      const reader = new SchedstatReader(pid);
      return { pid, reader, lastCpuMs: reader.read() ?? 0, budgetMs: opts.cpu * opts.periodMs, stopped: false };
    });
  }

  /** Starts enforcing. */
  start(): void {
    this.lastTick = performance.now();
    for (const t of this.tracked) t.lastCpuMs = t.reader.read() ?? t.lastCpuMs;
    this.running = true;
    this.schedule(this.opts.tickMs ?? 1);
  }

  private schedule(ms: number): void {
    if (this.running) this.timer = setTimeout(() => this.tick(), ms);
  }

  private tick(): void {
    const now = performance.now();
    const earned = (now - this.lastTick) * this.opts.cpu;
    this.lastTick = now;
    const burst = this.opts.cpu * this.opts.periodMs;
    const minTick = this.opts.tickMs ?? 1;
    let next = Number.POSITIVE_INFINITY;
    for (const t of this.tracked) {
      const cpu = t.reader.read();
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
      // Stopped: when the budget is back above 0. Running: before it can spend what it has left.
      next = Math.min(next, t.stopped ? -t.budgetMs / this.opts.cpu + 0.05 : t.budgetMs);
    }
    this.schedule(Math.max(minTick, Number.isFinite(next) ? next : burst));
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
    this.running = false;
    clearTimeout(this.timer);
    for (const t of this.tracked) {
      if (t.stopped) this.send(t.pid, 'SIGCONT');
      t.stopped = false;
      t.reader.close();
    }
  }
}
