// withServiceTime: the real iris model on a fixed number of slots with a minimum service time.
import { loadModel, type Classifier } from '../src/model.js';
import { withServiceTime } from '../src/service-time.js';
import { REFERENCE_MODEL } from './helpers.js';

describe('withServiceTime', () => {
  let model: Classifier;
  beforeAll(async () => { model = await loadModel({ modelFilepath: REFERENCE_MODEL }); });
  afterAll(async () => { await model.close(); });

  const row = (): Float32Array => Float32Array.from(model.sample);

  it('returns the model itself when both options are 0', () => {
    expect(withServiceTime(model, { concurrency: 0, minMs: 0 })).toBe(model);
  });

  it('runs at most `concurrency` inferences at once, each holding its slot minMs, later ones in arrival order', async () => {
    const shaped = withServiceTime(model, { concurrency: 2, minMs: 100 });
    const t0 = performance.now();
    const done: { index: number; ms: number }[] = [];
    const answers = await Promise.all(Array.from({ length: 6 }, async (_, index) => {
      const p = await shaped.predict(row(), 1);
      done.push({ index, ms: performance.now() - t0 });
      return Array.from(p);
    }));
    // Same answers as the bare model: the shaping only changes when they come.
    const plain = Array.from(await model.predict(row(), 1));
    for (const a of answers) a.forEach((v, i) => expect(v).toBeCloseTo(plain[i] as number, 6));
    // Three waves of two: none before 100 ms, the second pair not before 200 ms, the last not before 300 ms.
    expect(done.map((d) => d.index)).toEqual([0, 1, 2, 3, 4, 5]);
    done.forEach((d) => expect(d.ms).toBeGreaterThanOrEqual(100 * (Math.floor(d.index / 2) + 1) - 2));
  });

  it('frees the slot when the model throws, so later calls still run', async () => {
    const failing: Classifier = { ...model, predict: () => Promise.reject(new Error('boom')) };
    const shaped = withServiceTime(failing, { concurrency: 1, minMs: 0 });
    await expect(shaped.predict(row(), 1)).rejects.toThrow('boom');
    await expect(shaped.predict(row(), 1)).rejects.toThrow('boom'); // would hang if the slot leaked
  });
});
