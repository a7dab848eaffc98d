// What serves the model in a replica, and what the callers send it: iris-api (the book's POST /predict), or
// MLServer 1.7.1 (`make mlserver`, the Open Inference Protocol v2) as a real peer; over REST or gRPC.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** The model servers a replica can run (`--model-server`). */
export const MODEL_SERVERS = ['api', 'mlserver'] as const;
/** One of {@link MODEL_SERVERS}. */
export type ModelServer = (typeof MODEL_SERVERS)[number];
/** The protocols the callers can speak (`--protocol`). */
export const PROTOCOLS = ['rest', 'grpc'] as const;
/** One of {@link PROTOCOLS}. */
export type Protocol = (typeof PROTOCOLS)[number];

/** The model's name in the Open Inference Protocol (iris-api's MODEL_NAME default, mlserver/iris). */
export const OIP_MODEL = 'iris';

/** A REST request the callers, the probe and the warm-up send: its path and JSON body. */
export interface LabRequest {
  readonly path: string;
  readonly body: string;
}

/** The seed's rows (vegeta/data.json, `{"data": [[...]]}`). */
function seedRows(repoRoot: string): number[][] {
  return (JSON.parse(readFileSync(join(repoRoot, 'vegeta', 'data.json'), 'utf8')) as { data: number[][] }).data;
}

/**
 * What the callers send over REST: the seed's body to POST /predict (iris-api), or the same rows as a v2
 * inference request to POST /v2/models/iris/infer (MLServer).
 */
export function labRequest(server: ModelServer, repoRoot: string): LabRequest {
  const raw = readFileSync(join(repoRoot, 'vegeta', 'data.json'), 'utf8');
  if (server === 'api') return { path: '/predict', body: raw };
  const rows = seedRows(repoRoot);
  const body = JSON.stringify({
    inputs: [{ name: 'input', datatype: 'FP32', shape: [rows.length, rows[0]?.length ?? 0], data: rows.flat() }],
  });
  return { path: `/v2/models/${OIP_MODEL}/infer`, body };
}

/** Where MLServer's parts live in the repository. */
export function mlserverPaths(repoRoot: string): { dir: string; python: string; serve: string; model: string } {
  const dir = join(repoRoot, 'mlserver');
  return {
    dir,
    python: join(repoRoot, '.tools', 'venv', 'bin', 'python'),
    serve: join(dir, 'serve.py'),
    model: join(dir, 'iris', 'model.joblib'),
  };
}

/**
 * Writes an MLServer model repository into `dir`: mlserver/settings.json (`parallel_workers: 0`, no metrics port)
 * and an `iris` model on the trained mlserver/iris/model.joblib, served by scikit-learn's runtime, or, when
 * `inference` shapes anything, by mlserver/shaped.py (at most `concurrency` predictions at once, each held
 * `minMs`: iris-api's INFERENCE_* for MLServer). Start MLServer with mlserver/ on PYTHONPATH. Returns `dir`.
 */
export function writeMlserverRepository(
  dir: string,
  repoRoot: string,
  inference?: { concurrency: number; minMs: number },
): string {
  const paths = mlserverPaths(repoRoot);
  mkdirSync(join(dir, OIP_MODEL), { recursive: true });
  writeFileSync(join(dir, 'settings.json'), readFileSync(join(paths.dir, 'settings.json')));
  const shaped = inference !== undefined && (inference.concurrency > 0 || inference.minMs > 0);
  const settings = {
    name: OIP_MODEL,
    implementation: shaped ? 'shaped.ShapedSKLearnModel' : 'mlserver_sklearn.SKLearnModel',
    parameters: {
      uri: paths.model,
      version: '1',
      ...(shaped ? { extra: { concurrency: inference.concurrency, min_ms: inference.minMs } } : {}),
    },
  };
  writeFileSync(join(dir, OIP_MODEL, 'model-settings.json'), `${JSON.stringify(settings, null, 2)}\n`);
  return dir;
}
