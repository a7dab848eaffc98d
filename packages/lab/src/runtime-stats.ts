import { readFileSync } from 'node:fs';
import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import type { Histogram } from 'hdr-histogram-js';
import { histogram, summarize, type LatencySummary } from './results.js';

/** How a lab process's own event loop fared while it was measured (both ms). */
export interface RuntimeStats {
  /** How late the event loop ran a 10 ms timer (`monitorEventLoopDelay`): time a callback could not run. */
  event_loop_delay_ms: { p50: number; p99: number; max: number };
  /** V8 garbage-collection pauses (`gc` performance entries): every one stops the event loop. */
  gc_pause_ms: LatencySummary & { total: number };
}

/** The delay monitor's timer; its samples are the whole interval, so this much is subtracted. */
const RESOLUTION_MS = 10;

/**
 * Watches the current process's event loop delay and GC pauses from `start()` until `snapshot()`: the
 * lab's own share of the milliseconds it reports, made visible.
 */
export class RuntimeMonitor {
  private readonly delay = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
  private readonly gc: Histogram = histogram();
  private gcTotalMs = 0;
  private readonly observer = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      this.gc.recordValue(Math.max(1, Math.round(e.duration * 1000)));
      this.gcTotalMs += e.duration;
    }
  });

  start(): this {
    this.delay.enable();
    this.observer.observe({ entryTypes: ['gc'] });
    return this;
  }

  snapshot(): RuntimeStats {
    const ms = (ns: number): number => Math.max(0, Math.round(ns / 1e3) / 1e3 - RESOLUTION_MS);
    const count = this.delay.count;
    return {
      event_loop_delay_ms:
        count === 0
          ? { p50: 0, p99: 0, max: 0 }
          : { p50: ms(this.delay.percentile(50)), p99: ms(this.delay.percentile(99)), max: ms(this.delay.max) },
      gc_pause_ms: { ...summarize(this.gc), total: Math.round(this.gcTotalMs * 1000) / 1000 },
    };
  }

  stop(): void {
    this.delay.disable();
    this.observer.disconnect();
  }
}

/** What the whole machine's CPUs did during an attack (Linux `/proc/stat`). */
export interface MachineStats {
  /** Share of all CPUs' time spent running anything (user, nice, system, irq, softirq), in percent. */
  busy_pct: number;
  /**
   * CPU time the hypervisor gave to other guests while this machine wanted to run (ms, summed over CPUs):
   * time in which some process on the path could not run, whatever the lab did.
   */
  steal_ms: number;
}

/** The aggregate `cpu` line of `/proc/stat` (clock ticks), or null where there is none. */
export type CpuTimes = readonly number[];

/** `/proc/stat` counts in USER_HZ ticks, which is 100 on every Linux architecture Node runs on. */
const MS_PER_TICK = 10;

export function readCpuTimes(path = '/proc/stat'): CpuTimes | null {
  try {
    const line = readFileSync(path, 'utf8').split('\n', 1)[0] ?? '';
    const fields = line.trim().split(/\s+/);
    if (fields[0] !== 'cpu' || fields.length < 9) return null;
    const ticks = fields.slice(1, 9).map(Number); // user nice system idle iowait irq softirq steal
    return ticks.every(Number.isFinite) ? ticks : null;
  } catch {
    return null;
  }
}

/** The machine's CPU use between two readings; null when either is missing or no time passed. */
export function machineStats(from: CpuTimes | null, to: CpuTimes | null): MachineStats | null {
  if (from === null || to === null) return null;
  const d = to.map((v, i) => v - (from[i] ?? 0));
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = d;
  const total = user + nice + system + idle + iowait + irq + softirq + steal;
  if (total <= 0) return null;
  return {
    busy_pct: Math.round(((user + nice + system + irq + softirq) / total) * 1000) / 10,
    steal_ms: steal * MS_PER_TICK,
  };
}
