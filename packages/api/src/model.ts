import { createHash } from 'node:crypto';
import { access, readFile } from 'node:fs/promises';
import ort from 'onnxruntime-node';
import { SHIPPED_LABEL_FILEPATH, SHIPPED_MODEL_FILEPATH } from './config.js';
import { ApiError } from './errors.js';
import { loadClassNames } from './labels.js';
import { inspectClassifier } from './onnx-graph.js';

/** The seed's sample row, used by /predict/test and /metadata for 4-feature models. */
export const IRIS_SAMPLE: readonly number[] = Object.freeze([5.1, 3.5, 1.4, 0.2]);

/** Facts about the loaded model, served by /metadata and the model info metric. */
export interface ModelInfo {
  readonly filepath: string;
  /** True when MODEL_FILEPATH was missing and the shipped model is served. */
  readonly shipped: boolean;
  readonly sha256: string;
  readonly sizeBytes: number;
  readonly inputName: string;
  readonly outputName: string;
  readonly featureCount: number;
  readonly classCount: number;
  readonly classLabels: readonly (number | string)[];
  readonly classNames: readonly string[];
  readonly classNamesSource: 'file' | 'model';
  readonly labelFilepath: string;
  readonly zipMapRemoved: boolean;
  readonly producer: string;
  readonly opsetVersion: number;
}

/** Where to find the model and its labels. */
export interface LoadModelOptions {
  readonly modelFilepath?: string;
  readonly labelFilepath?: string;
}

/** A loaded, warmed-up classifier. */
export interface Classifier {
  readonly info: ModelInfo;
  /** The sample row of /predict/test (the seed's for 4 features, else zeros). */
  readonly sample: readonly number[];
  /** Class probabilities of {@link sample}, computed at warm-up. */
  readonly sampleProbabilities: readonly number[];
  /**
   * Class probabilities, row-major `rows x classCount`, for row-major `rows x featureCount` features.
   * @throws {ApiError} INFERENCE_FAILED when onnxruntime fails
   */
  predict(features: Float32Array, rows: number): Promise<Float32Array>;
  /** Releases the onnxruntime session. */
  close(): Promise<void>;
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

/** MODEL_FILEPATH if present, else the shipped model, as the seed does. */
async function resolveModelPath(filepath: string): Promise<{ path: string; shipped: boolean }> {
  if (await exists(filepath)) return { path: filepath, shipped: filepath === SHIPPED_MODEL_FILEPATH };
  if (await exists(SHIPPED_MODEL_FILEPATH)) return { path: SHIPPED_MODEL_FILEPATH, shipped: true };
  throw new ApiError('MODEL_NOT_FOUND', `no model at ${filepath} nor at ${SHIPPED_MODEL_FILEPATH}`);
}

/** One session per process: inference requests are tiny, so one thread each avoids oversubscribing cores. */
const SESSION_OPTIONS: ort.InferenceSession.SessionOptions = {
  intraOpNumThreads: 1,
  interOpNumThreads: 1,
  executionMode: 'sequential',
  graphOptimizationLevel: 'all',
};

class OnnxClassifier implements Classifier {
  readonly #session: ort.InferenceSession;
  readonly #fetches: readonly string[];
  sample: readonly number[] = [];
  sampleProbabilities: readonly number[] = [];

  constructor(
    session: ort.InferenceSession,
    readonly info: ModelInfo,
  ) {
    this.#session = session;
    this.#fetches = [info.outputName];
  }

  async predict(features: Float32Array, rows: number): Promise<Float32Array> {
    const { inputName, outputName, featureCount } = this.info;
    try {
      const tensor = new ort.Tensor('float32', features, [rows, featureCount]);
      const result = await this.#session.run({ [inputName]: tensor }, this.#fetches);
      return result[outputName]!.data as Float32Array;
    } catch (err) {
      throw new ApiError('INFERENCE_FAILED', `onnxruntime: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Runs the sample once so the first request does not pay for lazy initialisation; checks the output shape. */
  async warmUp(): Promise<void> {
    const { featureCount, classCount } = this.info;
    const sample = featureCount === IRIS_SAMPLE.length ? [...IRIS_SAMPLE] : new Array<number>(featureCount).fill(0);
    const probabilities = await this.predict(Float32Array.from(sample), 1);
    if (probabilities.length !== classCount) {
      throw new ApiError(
        'MODEL_UNSUPPORTED',
        `the probability output has ${probabilities.length} values per row, expected ${classCount} classes`,
      );
    }
    this.sample = Object.freeze(sample);
    this.sampleProbabilities = Object.freeze(Array.from(probabilities));
  }

  async close(): Promise<void> {
    await this.#session.release();
  }
}

/**
 * Loads an ONNX classifier (any scikit-learn classifier exported by skl2onnx, ZipMap or not),
 * its class names, and warms it up once.
 * @throws {ApiError} MODEL_NOT_FOUND, MODEL_INVALID, MODEL_UNSUPPORTED or LABELS_INVALID
 */
export async function loadModel(options: LoadModelOptions = {}): Promise<Classifier> {
  const { path, shipped } = await resolveModelPath(options.modelFilepath ?? SHIPPED_MODEL_FILEPATH);
  const bytes = await readFile(path);
  const graph = inspectClassifier(bytes);
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(graph.bytes, SESSION_OPTIONS);
  } catch (err) {
    throw new ApiError('MODEL_INVALID', `${path}: onnxruntime cannot load it: ${(err as Error).message}`, {
      cause: err,
    });
  }
  const labelFilepath =
    options.labelFilepath !== undefined && (await exists(options.labelFilepath))
      ? options.labelFilepath
      : SHIPPED_LABEL_FILEPATH;
  const names = await loadClassNames(labelFilepath, graph.classLabels);
  const classifier = new OnnxClassifier(
    session,
    Object.freeze({
      filepath: path,
      shipped,
      sha256: createHash('sha256').update(bytes).digest('hex'),
      sizeBytes: bytes.length,
      inputName: graph.inputName,
      outputName: graph.outputName,
      featureCount: graph.featureCount,
      classCount: graph.classLabels.length,
      classLabels: graph.classLabels,
      classNames: names.names,
      classNamesSource: names.source,
      labelFilepath,
      zipMapRemoved: graph.zipMapRemoved,
      producer: graph.producer,
      opsetVersion: graph.opsetVersion,
    }),
  );
  try {
    await classifier.warmUp();
  } catch (err) {
    await classifier.close();
    throw err;
  }
  return classifier;
}
