import type { Batch } from './batch.js';
import { InferenceSlots, type InferenceSlotsOptions } from './inference-slots.js';
import type { ApiMetrics } from './metrics.js';
import type { Classifier } from './model.js';

/**
 * The one inference path of a process: every protocol (the book's REST endpoints, Open Inference Protocol v2
 * over REST and over gRPC) runs its batches here, so they share the execution slots and the inference metrics.
 */
export interface InferenceEngine {
  readonly model: Classifier;
  /**
   * Class probabilities, row-major `rows x classCount`; with slots, computed inside one.
   * @throws {ApiError} INFERENCE_FAILED when onnxruntime fails
   */
  run(batch: Batch): Promise<Float32Array>;
}

/** Builds the engine of one process around its model, metrics and slots (none when `inference` shapes nothing). */
export function createEngine(
  model: Classifier,
  metrics: ApiMetrics,
  inference?: InferenceSlotsOptions,
): InferenceEngine {
  const slots =
    inference !== undefined && InferenceSlots.enabled(inference) ? new InferenceSlots(inference) : undefined;
  async function runModel(batch: Batch): Promise<Float32Array> {
    const started = performance.now();
    const probabilities = await model.predict(batch.features, batch.rows);
    metrics.inferenceDuration.observe((performance.now() - started) / 1000);
    metrics.batchRows.observe(batch.rows);
    return probabilities;
  }
  return {
    model,
    run: slots === undefined ? runModel : (batch) => slots.run(() => runModel(batch)),
  };
}

/** Index of the largest value of one row of probabilities (the first on ties, as numpy.argmax). */
export function argmax(probabilities: Float32Array, offset: number, classes: number): number {
  let best = 0;
  for (let c = 1; c < classes; c++) if (probabilities[offset + c]! > probabilities[offset + best]!) best = c;
  return best;
}
