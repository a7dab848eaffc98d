import ort from 'onnxruntime-node';
import { readFileSync } from 'node:fs';

it('runs the model in jest', async () => {
  const s = await ort.InferenceSession.create(readFileSync('/work/shared/models/iris_svc.onnx'));
  const r = await s.run({ float_input: new ort.Tensor('float32', Float32Array.from([5.1, 3.5, 1.4, 0.2]), [1, 4]) }, ['output_label']);
  expect(r.output_label!.data[0]).toBe(0n);
});
