import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ApiError } from '../src/errors.js';
import { loadModel, type Classifier } from '../src/model.js';
import { inspectClassifier } from '../src/onnx-graph.js';
import { FIXTURES, REFERENCE_MODEL } from './helpers.js';

interface Expected {
  file: string;
  classes: (number | string)[];
  inputs: number[][];
  probabilities: number[][];
}
const expected = JSON.parse(readFileSync(join(FIXTURES, 'expected.json'), 'utf8')) as Record<string, Expected>;
const scratch = mkdtempSync(join(tmpdir(), 'iris-api-model-'));

async function codeOf(promise: Promise<unknown>): Promise<string> {
  return promise.then(
    () => 'OK',
    (err: ApiError) => err.code,
  );
}

describe('loadModel with skl2onnx default exports (ZipMap kept)', () => {
  it.each(Object.entries(expected))('%s serves sklearn predict_proba', async (_name, e) => {
    const model = await loadModel({ modelFilepath: join(FIXTURES, e.file) });
    try {
      expect(model.info.zipMapRemoved).toBe(true);
      expect(model.info.classLabels).toEqual(e.classes);
      expect(model.info.featureCount).toBe(4);
      const probabilities = await model.predict(Float32Array.from(e.inputs.flat()), e.inputs.length);
      expect(probabilities).toHaveLength(e.inputs.length * e.classes.length);
      e.probabilities.flat().forEach((p, i) => expect(probabilities[i]).toBeCloseTo(p, 5));
    } finally {
      await model.close();
    }
  });
});

describe('loadModel with the reference model', () => {
  let model: Classifier;
  beforeAll(async () => {
    model = await loadModel({ modelFilepath: REFERENCE_MODEL });
  });
  afterAll(async () => {
    await model.close();
  });

  it('reads input name, feature count and class labels from the model', () => {
    expect(model.info).toMatchObject({
      inputName: 'float_input',
      outputName: 'probabilities',
      featureCount: 4,
      classCount: 3,
      classLabels: [0, 1, 2],
      classNames: ['setosa', 'versicolor', 'virginica'],
      classNamesSource: 'file',
      sha256: '53856dda7040348575b82319fef5506ad8479d800c87b5ba102b756d842f94e2',
      shipped: false,
    });
  });

  it('warms up on the seed sample and matches the seed metadata probabilities', () => {
    expect(model.sample).toEqual([5.1, 3.5, 1.4, 0.2]);
    [0.97093159, 0.01558308, 0.01348537].forEach((p, i) => expect(model.sampleProbabilities[i]).toBeCloseTo(p, 6));
  });
});

describe('loadModel class names and fallbacks', () => {
  it('falls back to the shipped model when MODEL_FILEPATH is missing', async () => {
    const model = await loadModel({ modelFilepath: join(scratch, 'absent.onnx') });
    expect(model.info.shipped).toBe(true);
    expect(model.info.filepath).toMatch(/packages\/api\/models\/iris_svc\.onnx$/);
    await model.close();
  });

  it('uses the model class labels when the label file names other classes', async () => {
    const model = await loadModel({ modelFilepath: join(FIXTURES, 'svc_binary.onnx') });
    expect(model.info).toMatchObject({ classNames: ['0', '1'], classNamesSource: 'model' });
    await model.close();
  });

  it('uses string class labels as names', async () => {
    const model = await loadModel({ modelFilepath: join(FIXTURES, 'logistic_regression_strings.onnx') });
    expect(model.info.classLabels).toEqual(['setosa', 'versicolor', 'virginica']);
    expect(model.info.classNames).toEqual(['setosa', 'versicolor', 'virginica']);
    await model.close();
  });

  it('uses a label file that names the model classes', async () => {
    const labels = join(scratch, 'binary.json');
    writeFileSync(labels, JSON.stringify({ 0: 'versicolor', 1: 'virginica' }));
    const model = await loadModel({ modelFilepath: join(FIXTURES, 'svc_binary.onnx'), labelFilepath: labels });
    expect(model.info).toMatchObject({ classNames: ['versicolor', 'virginica'], classNamesSource: 'file' });
    await model.close();
  });

  it('rejects a label file that is not a JSON object of names', async () => {
    const labels = join(scratch, 'bad.json');
    writeFileSync(labels, '["setosa"]');
    expect(await codeOf(loadModel({ modelFilepath: REFERENCE_MODEL, labelFilepath: labels }))).toBe('LABELS_INVALID');
  });

  it('rejects a file that is not an ONNX model', async () => {
    const bogus = join(scratch, 'bogus.onnx');
    writeFileSync(bogus, 'this is not a model\n'.repeat(20));
    expect(await codeOf(loadModel({ modelFilepath: bogus }))).toBe('MODEL_INVALID');
  });
});

describe('inspectClassifier', () => {
  it('cuts ZipMap off and exposes the probability tensor as the only output', () => {
    const graph = inspectClassifier(readFileSync(REFERENCE_MODEL));
    expect(graph).toMatchObject({ zipMapRemoved: true, outputName: 'probabilities', inputName: 'float_input' });
    const again = inspectClassifier(graph.bytes);
    expect(again).toMatchObject({ zipMapRemoved: false, outputName: 'probabilities', classLabels: [0, 1, 2] });
  });
});
