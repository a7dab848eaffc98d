import { LoaderError } from './errors.js';

/**
 * Checks that onnxruntime-node can load the file as a model (parse, graph checks, kernel
 * assignment), then releases the session. Graph optimisation is off: it is not what we check, and
 * skipping it saves a third of the peak memory on large models (constant folding copies weights).
 * onnxruntime is imported lazily so `--help` and usage errors stay fast.
 * @throws LoaderError LOADER_INVALID_MODEL naming onnxruntime's reason
 */
export async function verifyModel(path: string, label: string): Promise<void> {
  const { InferenceSession } = (await import('onnxruntime-node')).default;
  let session;
  try {
    session = await InferenceSession.create(path, { graphOptimizationLevel: 'disabled' });
  } catch (err) {
    // onnxruntime names the temporary file, which is gone by the time anyone reads the message.
    const reason = (err instanceof Error ? err.message : String(err))
      .split('\n')[0]
      ?.trim()
      .replaceAll(path, 'the download');
    throw new LoaderError('LOADER_INVALID_MODEL', `${label}: not a model onnxruntime can load (${reason})`, {
      cause: err,
    });
  }
  await session.release();
}
