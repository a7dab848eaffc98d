import { setTimeout as sleep } from 'node:timers/promises';

/** How {@link InferenceSlots} shapes inference. */
export interface InferenceSlotsOptions {
  /** Most inferences at once; the rest wait their turn in arrival order. 0 = no limit. */
  readonly concurrency: number;
  /** Each inference holds its slot at least this long (ms), waiting after the model answered. 0 = as fast as the model. */
  readonly minMs: number;
}

/**
 * Serves inference like a heavier model on a fixed number of execution slots (a model server's instances,
 * an accelerator's streams): at most `concurrency` inferences run at once, each holds its slot for at
 * least `minMs`, later ones wait in FIFO order. Capacity is then `concurrency / minMs` per process,
 * independent of the CPU, and a backlog shows as latency, as in a real inference server. The real model
 * still computes every answer.
 */
export class InferenceSlots {
  private free: number;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly options: InferenceSlotsOptions) {
    this.free = options.concurrency > 0 ? options.concurrency : Number.POSITIVE_INFINITY;
  }

  /** True when the options shape anything (otherwise callers skip the slots altogether). */
  static enabled(options: InferenceSlotsOptions): boolean {
    return options.concurrency > 0 || options.minMs > 0;
  }

  /** Runs `inference` in a slot, holding the slot at least `minMs` from the start of the run. */
  async run<T>(inference: () => Promise<T>): Promise<T> {
    if (this.free > 0) this.free--;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    const started = performance.now();
    try {
      const result = await inference();
      // A timer can fire a little early (it counts from the event loop's cached time): sleep until the
      // hold has really elapsed.
      const held = (): number => performance.now() - started;
      while (held() < this.options.minMs) await sleep(Math.ceil(this.options.minMs - held()));
      return result;
    } finally {
      const next = this.waiting.shift();
      if (next !== undefined) next();
      else this.free++;
    }
  }
}
