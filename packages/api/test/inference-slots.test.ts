// InferenceSlots: the real iris model on a fixed number of slots with a minimum service time.
import { loadModel, type Classifier } from '../src/model.js';
import { InferenceSlots } from '../src/inference-slots.js';
import { REFERENCE_MODEL } from './helpers.js';

describe('InferenceSlots', () => {
  let model: Classifier;
  beforeAll(async () => {
    model = await loadModel({ modelFilepath: REFERENCE_MODEL });
  });
  afterAll(async () => {
    await model.close();
  });

  const predict = (): Promise<Float32Array> => model.predict(Float32Array.from(model.sample), 1);

  it('is enabled only when a slot count or a minimum time is set', () => {
    expect(InferenceSlots.enabled({ concurrency: 0, minMs: 0 })).toBe(false);
    expect(InferenceSlots.enabled({ concurrency: 8, minMs: 0 })).toBe(true);
    expect(InferenceSlots.enabled({ concurrency: 0, minMs: 200 })).toBe(true);
  });

  it('runs at most `concurrency` inferences at once, each holding its slot minMs, later ones in arrival order', async () => {
    const slots = new InferenceSlots({ concurrency: 2, minMs: 100 });
    let running = 0;
    let peak = 0;
    const startedAt: number[] = [];
    const t0 = performance.now();
    const answers = await Promise.all(
      Array.from({ length: 6 }, (_, index) =>
        slots.run(async () => {
          startedAt[index] = performance.now() - t0;
          peak = Math.max(peak, ++running);
          try {
            return Array.from(await predict());
          } finally {
            running--;
          }
        }),
      ),
    );
    // Same answers as the bare model: the slots only change when they come.
    const plain = Array.from(await predict());
    for (const a of answers) a.forEach((v, i) => expect(v).toBeCloseTo(plain[i] as number, 6));
    expect(peak).toBe(2);
    // Three waves of two in arrival order: a wave starts only when the previous one held its slots 100 ms.
    for (let i = 0; i < 6; i++) expect(startedAt[i]).toBeGreaterThanOrEqual(100 * Math.floor(i / 2));
    expect(Math.max(startedAt[0] as number, startedAt[1] as number)).toBeLessThan(
      Math.min(startedAt[2] as number, startedAt[3] as number),
    );
    expect(Math.max(startedAt[2] as number, startedAt[3] as number)).toBeLessThan(
      Math.min(startedAt[4] as number, startedAt[5] as number),
    );
  });

  it('frees the slot when the inference throws, also to a caller already waiting', async () => {
    const slots = new InferenceSlots({ concurrency: 1, minMs: 50 });
    const failing = slots.run(() => Promise.reject(new Error('boom')));
    const waiting = slots.run(predict); // queued behind the failing call; would hang if its slot leaked
    await expect(failing).rejects.toThrow('boom');
    expect((await waiting).length).toBe(3);
    await expect(slots.run(() => Promise.reject(new Error('again')))).rejects.toThrow('again');
  });
});
