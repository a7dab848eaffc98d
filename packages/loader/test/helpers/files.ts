import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

/** The iris SVC model exported by skl2onnx (a real ONNX file). */
export const MODEL_PATH = join(here, '..', 'fixtures', 'iris_svc.onnx');
/** The model's bytes. */
export const MODEL = await readFile(MODEL_PATH);
/** The model's sha256. */
export const MODEL_SHA256 = sha256(MODEL);
/** The built CLI. */
export const CLI = join(here, '..', '..', 'dist', 'main.js');

/** sha256 of bytes, lower-case hex. */
export function sha256(bytes: Uint8Array | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** A fresh temporary directory and its cleanup. */
export async function tempDir(): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'model-loader-test-'));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** Names in a directory, sorted: shows leftovers such as temporary files. */
export async function listing(dir: string): Promise<string[]> {
  return (await readdir(dir)).sort();
}
