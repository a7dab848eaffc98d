import { setTimeout as sleep } from 'node:timers/promises';
import type { Classifier } from './model.js';

/** How {@link withServiceTime} shapes inference. */
export interface ServiceTimeOptions {
  /** Most inferences at once; the rest wait their turn in arrival order. 0 = no limit. */
  readonly concurrency: number;
  /** Each inference holds its turn at least this long (ms), waiting after the model answered. 0 = as fast as the model. */
  readonly minMs: number;
}

/**
 * Wraps a classifier so it serves like a heavier model on a fixed number of execution slots (a model
 * server's instances, an accelerator's streams): at most `concurrency` inferences run at once, each holds
 * its slot for at least `minMs`, later ones wait in FIFO order. Capacity is then `concurrency / minMs`
 * per process, independent of the CPU, and queueing shows as latency, as in a real inference server.
 * The real model still computes every answer. With both options 0 the classifier is returned unchanged.
 */
export function withServiceTime(model: Classifier, options: ServiceTimeOptions): Classifier {
  const { concurrency, minMs } = options;
  if (concurrency <= 0 && minMs <= 0) return model;
  let free = concurrency > 0 ? concurrency : Number.POSITIVE_INFINITY;
  const waiting: (() => void)[] = [];
  const release = (): void => {
    const next = waiting.shift();
    if (next !== undefined) next();
    else free++;
  };
  return {
    info: model.info,
    sample: model.sample,
    sampleProbabilities: model.sampleProbabilities,
    close: () => model.close(),
    async predict(features, rows) {
      if (free > 0) free--;
      else await new Promise<void>((resolve) => waiting.push(resolve));
      const started = performance.now();
      try {
        const probabilities = await model.predict(features, rows);
        const left = minMs - (performance.now() - started);
        if (left >= 1) await sleep(left);
        return probabilities;
      } finally {
        release();
      }
    },
  };
}
