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
      event_loop_delay_ms: count === 0 ? { p50: 0, p99: 0, max: 0 }
        : { p50: ms(this.delay.percentile(50)), p99: ms(this.delay.percentile(99)), max: ms(this.delay.max) },
      gc_pause_ms: { ...summarize(this.gc), total: Math.round(this.gcTotalMs * 1000) / 1000 },
    };
  }

  stop(): void {
    this.delay.disable();
    this.observer.disconnect();
  }
}
