import onnxProto from 'onnx-proto';
import { ApiError } from './errors.js';

const { onnx } = onnxProto;
type Graph = onnxProto.onnx.IGraphProto;
type Node = onnxProto.onnx.INodeProto;
type Int = number | { toString(): string };

/** ONNX TensorProto element type of float32, the only input type scikit-learn exports by default. */
const FLOAT = onnx.TensorProto.DataType.FLOAT;
/** The ai.onnx.ml classifier operators skl2onnx emits, whose class labels we can read. */
const CLASSIFIER_OPS = new Set(['SVMClassifier', 'TreeEnsembleClassifier', 'LinearClassifier']);

/** What serving a classifier needs to know, read from the model file itself. */
export interface ClassifierGraph {
  /** The model to hand onnxruntime: the original bytes, or re-encoded without ZipMap. */
  readonly bytes: Uint8Array;
  readonly inputName: string;
  /** The float tensor `[N, classCount]` of class probabilities. */
  readonly outputName: string;
  readonly featureCount: number;
  /** Class labels in probability-column order (ints as numbers, strings as strings). */
  readonly classLabels: readonly (number | string)[];
  /** True when a ZipMap node was cut off and its input exposed as the output. */
  readonly zipMapRemoved: boolean;
  readonly producer: string;
  readonly opsetVersion: number;
}

function toInt(value: Int | null | undefined): number | undefined {
  return value === null || value === undefined ? undefined : Number(value.toString());
}

/** Class labels from a ZipMap or classifier node's classlabels_* attribute. */
function classLabelsOf(node: Node): (number | string)[] | undefined {
  for (const attr of node.attribute ?? []) {
    if (attr.name === 'classlabels_int64s' || attr.name === 'classlabels_ints') {
      return (attr.ints ?? []).map((i) => toInt(i) as number);
    }
    if (attr.name === 'classlabels_strings') {
      return (attr.strings ?? []).map((s) => Buffer.from(s).toString('utf8'));
    }
  }
  return undefined;
}

function onlyInput(graph: Graph): onnxProto.onnx.IValueInfoProto {
  const initializers = new Set((graph.initializer ?? []).map((t) => t.name));
  const inputs = (graph.input ?? []).filter((i) => !initializers.has(i.name));
  if (inputs.length !== 1) {
    throw new ApiError(
      'MODEL_UNSUPPORTED',
      `the model has ${inputs.length} inputs; a single [N, features] input is supported`,
    );
  }
  return inputs[0]!;
}

function featureCountOf(input: onnxProto.onnx.IValueInfoProto): number {
  const tensor = input.type?.tensorType;
  if (tensor?.elemType !== FLOAT) {
    throw new ApiError('MODEL_UNSUPPORTED', `input "${input.name}" is not a float32 tensor`);
  }
  const dims = tensor.shape?.dim ?? [];
  const features = toInt(dims[1]?.dimValue);
  if (dims.length !== 2 || features === undefined || features < 1) {
    throw new ApiError(
      'MODEL_UNSUPPORTED',
      `input "${input.name}" is not a [N, features] tensor with a fixed feature count`,
    );
  }
  return features;
}

/**
 * Parses an ONNX classifier and, when it ends in ZipMap (a sequence of maps, which onnxruntime-node
 * cannot return), rewrites the graph so the probability tensor feeding ZipMap is the only output.
 * @throws {ApiError} MODEL_INVALID when the bytes are not an ONNX model, MODEL_UNSUPPORTED when it is
 *   not a single-input float classifier with readable class labels
 */
export function inspectClassifier(bytes: Uint8Array): ClassifierGraph {
  let model: onnxProto.onnx.ModelProto;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (err) {
    throw new ApiError('MODEL_INVALID', `not an ONNX model: ${(err as Error).message}`, { cause: err });
  }
  const graph = model.graph;
  if (!graph || (graph.node ?? []).length === 0) throw new ApiError('MODEL_INVALID', 'not an ONNX model: no graph');
  const input = onlyInput(graph);
  const featureCount = featureCountOf(input);
  const nodes = graph.node ?? [];
  const classifier = nodes.find((n) => CLASSIFIER_OPS.has(n.opType ?? ''));
  const zipMap = nodes.find((n) => n.opType === 'ZipMap');
  const meta = {
    inputName: input.name ?? '',
    featureCount,
    producer: `${model.producerName ?? ''} ${model.producerVersion ?? ''}`.trim(),
    opsetVersion: toInt(model.opsetImport?.find((o) => !o.domain)?.version) ?? 0,
  };

  if (zipMap) {
    const outputName = zipMap.input?.[0];
    const classLabels = classLabelsOf(zipMap);
    if (!outputName || !classLabels || classLabels.length === 0) {
      throw new ApiError('MODEL_UNSUPPORTED', 'the ZipMap node has no input or no class labels');
    }
    graph.node = nodes.filter((n) => n !== zipMap);
    graph.output = [
      onnx.ValueInfoProto.create({
        name: outputName,
        type: {
          tensorType: { elemType: FLOAT, shape: { dim: [{ dimParam: 'N' }, { dimValue: classLabels.length }] } },
        },
      }),
    ];
    return { ...meta, bytes: onnx.ModelProto.encode(model).finish(), outputName, classLabels, zipMapRemoved: true };
  }

  // No ZipMap (exported with zipmap=False): the probabilities are the float [N, C] graph output.
  const probabilities = (graph.output ?? []).filter(
    (o) => o.type?.tensorType?.elemType === FLOAT && o.type.tensorType.shape?.dim?.length === 2,
  );
  const output = probabilities.at(-1);
  const classLabels = classifier ? classLabelsOf(classifier) : undefined;
  if (!output?.name || !classLabels || classLabels.length === 0) {
    throw new ApiError(
      'MODEL_UNSUPPORTED',
      'the model has no float [N, classes] probability output with readable class labels',
    );
  }
  return { ...meta, bytes, outputName: output.name, classLabels, zipMapRemoved: false };
}
