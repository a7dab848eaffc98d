// The Open Inference Protocol v2's tensors for this model, shared by REST and gRPC: one input of shape
// [rows, features] (FP32 or FP64) becomes a Batch; the probabilities and labels become output tensors.
import { FLOAT32_MAX, type Batch } from '../batch.js';
import { argmax } from '../engine.js';
import { ApiError } from '../errors.js';
import type { Classifier } from '../model.js';

/** The outputs this model produces, in the order they are answered when a request names none. */
export const OUTPUTS = ['probabilities', 'label'] as const;
/** One of {@link OUTPUTS}. */
export type OutputName = (typeof OUTPUTS)[number];
/** The input datatypes the model takes (converted to float32, as the book's endpoints do). */
export const INPUT_DATATYPES = ['FP32', 'FP64'] as const;
/** One of {@link INPUT_DATATYPES}. */
export type InputDatatype = (typeof INPUT_DATATYPES)[number];

/** What every v2 inference request carries, whatever its protocol. */
export interface TensorHeader {
  readonly datatype?: unknown;
  readonly shape?: unknown;
}

/** The row count of an input of shape [rows, featureCount] and a datatype we take. @throws {ApiError} */
export function checkInput(
  input: TensorHeader,
  featureCount: number,
  maxBatchRows: number,
): { rows: number; datatype: InputDatatype } {
  const { datatype, shape } = input;
  if (typeof datatype !== 'string' || !(INPUT_DATATYPES as readonly string[]).includes(datatype)) {
    throw new ApiError(
      'INVALID_TENSOR',
      `input datatype ${JSON.stringify(datatype)} is not supported; use ${INPUT_DATATYPES.join(' or ')}`,
    );
  }
  if (
    !Array.isArray(shape) ||
    shape.length !== 2 ||
    !shape.every((d) => typeof d === 'number' && Number.isSafeInteger(d) && d >= 0)
  ) {
    throw new ApiError('INVALID_TENSOR', `input shape ${JSON.stringify(shape)} must be [rows, ${featureCount}]`);
  }
  const [rows, features] = shape as [number, number];
  if (features !== featureCount) {
    throw new ApiError(
      'WRONG_FEATURE_COUNT',
      `input shape [${rows}, ${features}]: the model takes ${featureCount} features`,
    );
  }
  if (rows === 0) throw new ApiError('EMPTY_BATCH', 'input shape has 0 rows');
  if (rows > maxBatchRows)
    throw new ApiError('TOO_MANY_ROWS', `input has ${rows} rows; at most ${maxBatchRows} are allowed`);
  return { rows, datatype: datatype as InputDatatype };
}

/** Packs `count` values read by `at` into float32, refusing values float32 cannot hold. @throws {ApiError} */
export function packFeatures(count: number, at: (i: number) => unknown, featureCount: number): Float32Array {
  const features = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    const value = at(i);
    if (typeof value === 'number' && Number.isFinite(value) && Math.abs(value) <= FLOAT32_MAX) {
      features[i] = value;
      continue;
    }
    // Only a refusal needs the position in words.
    const where = `row ${Math.floor(i / featureCount)}, feature ${i % featureCount}`;
    if (typeof value !== 'number') throw new ApiError('INVALID_TENSOR', `input data at ${where} is not a number`);
    throw new ApiError('NON_FINITE_VALUE', `input data at ${where} is not a finite float32 number`);
  }
  return features;
}

/** Flattens the JSON `data` of a REST input (flat, or nested row-major as the protocol allows). */
function flatten(data: unknown, out: unknown[], depth: number): void {
  if (!Array.isArray(data)) {
    out.push(data);
    return;
  }
  if (depth > 2) throw new ApiError('INVALID_TENSOR', 'input data is nested deeper than its shape');
  for (const item of data) flatten(item, out, depth + 1);
}

/** A REST input's `data` as a Batch of `rows` rows. @throws {ApiError} */
export function batchFromJson(data: unknown, rows: number, featureCount: number): Batch {
  if (!Array.isArray(data)) throw new ApiError('INVALID_TENSOR', 'input "data" must be a list of numbers');
  const values: unknown[] = [];
  flatten(data, values, 0);
  if (values.length !== rows * featureCount) {
    throw new ApiError(
      'INVALID_TENSOR',
      `input data has ${values.length} values; its shape [${rows}, ${featureCount}] needs ${rows * featureCount}`,
    );
  }
  return { rows, features: packFeatures(values.length, (i) => values[i], featureCount) };
}

/** The outputs a request asks for (all of them when it names none). @throws {ApiError} on an unknown name */
export function requestedOutputs(names: readonly unknown[] | undefined): readonly OutputName[] {
  if (names === undefined || names.length === 0) return OUTPUTS;
  return names.map((name) => {
    if (typeof name !== 'string' || !(OUTPUTS as readonly string[]).includes(name)) {
      throw new ApiError(
        'INVALID_TENSOR',
        `output ${JSON.stringify(name)} is not produced by this model; it has ${OUTPUTS.join(', ')}`,
      );
    }
    return name as OutputName;
  });
}

/** The class names of each row's most probable class. */
export function labels(model: Classifier, probabilities: Float32Array, rows: number): string[] {
  const { classCount, classNames } = model.info;
  const out = new Array<string>(rows);
  for (let r = 0; r < rows; r++) out[r] = classNames[argmax(probabilities, r * classCount, classCount)]!;
  return out;
}

/** The v2 metadata of the model's tensors (-1: any number of rows). */
export function tensorMetadata(model: Classifier): {
  inputs: { name: string; datatype: string; shape: number[] }[];
  outputs: { name: OutputName; datatype: string; shape: number[] }[];
} {
  const { inputName, featureCount, classCount } = model.info;
  return {
    inputs: [{ name: inputName, datatype: 'FP32', shape: [-1, featureCount] }],
    outputs: [
      { name: 'probabilities', datatype: 'FP32', shape: [-1, classCount] },
      { name: 'label', datatype: 'BYTES', shape: [-1] },
    ],
  };
}

/** Checks the model a request names against the one served. @throws {ApiError} UNKNOWN_MODEL */
export function checkModelName(asked: string, served: string): void {
  if (asked !== served) {
    throw new ApiError(
      'UNKNOWN_MODEL',
      `model ${JSON.stringify(asked)} is not served here; this server serves ${JSON.stringify(served)}`,
    );
  }
}

/** Checks the version a request names, if any: the served model has one version, "1". @throws {ApiError} */
export function checkModelVersion(asked: string | undefined): void {
  if (asked !== undefined && asked !== '' && asked !== MODEL_VERSION) {
    throw new ApiError(
      'UNKNOWN_MODEL',
      `model version ${JSON.stringify(asked)} is not served; only "${MODEL_VERSION}" is`,
    );
  }
}

/** The served model's only version. */
export const MODEL_VERSION = '1';
