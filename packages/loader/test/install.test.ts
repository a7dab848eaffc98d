import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { install, LoaderError, type LoaderConfig, type RetryNotice } from '../src/index.js';
import { listing, MODEL, MODEL_PATH, MODEL_SHA256, sha256, tempDir } from './helpers/files.js';
import { startServer, type ScriptedServer, type Step } from './helpers/server.js';

const OLD = 'the previous model, which must survive every failure';

let server: ScriptedServer | undefined;
let dir: string;
let cleanup: () => Promise<void>;

beforeEach(async () => {
  ({ dir, cleanup } = await tempDir());
});
afterEach(async () => {
  await server?.close();
  server = undefined;
  await cleanup();
});

/** Fast settings: the behaviour is the same as with the defaults, only the clock is shorter. */
function config(source: string, overrides: Partial<LoaderConfig> = {}): LoaderConfig {
  return {
    source: new URL(source),
    modelFilepath: join(dir, 'model.onnx'),
    sha256: undefined,
    timeoutMs: 2000,
    retries: 2,
    backoffMs: 5,
    maxBackoffMs: 50,
    ...overrides,
  };
}

async function serve(scripts: Record<string, readonly Step[]>): Promise<ScriptedServer> {
  server = await startServer(scripts);
  return server;
}

async function failure(promise: Promise<unknown>): Promise<LoaderError> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof LoaderError) return err;
    throw err;
  }
  throw new Error('expected the installation to fail');
}

describe('install', () => {
  it('downloads over http, verifies and installs the model without leaving a temporary file', async () => {
    const { origin } = await serve({ '/m.onnx': [{ status: 200, body: MODEL }] });
    const result = await install(config(`${origin}/m.onnx`));
    expect(result).toMatchObject({ status: 'installed', bytes: MODEL.byteLength, sha256: MODEL_SHA256, attempts: 1 });
    expect(sha256(await readFile(join(dir, 'model.onnx')))).toBe(MODEL_SHA256);
    expect(await listing(dir)).toEqual(['model.onnx']);
  });

  it('copies from a file:// source', async () => {
    const result = await install(config(pathToFileURL(MODEL_PATH).href, { sha256: MODEL_SHA256 }));
    expect(result.status).toBe('installed');
    expect(sha256(await readFile(join(dir, 'model.onnx')))).toBe(MODEL_SHA256);
  });

  it('creates the target directory when it is missing', async () => {
    const target = join(dir, 'nested', 'workdir', 'model.onnx');
    await install(config(pathToFileURL(MODEL_PATH).href, { modelFilepath: target }));
    expect(sha256(await readFile(target))).toBe(MODEL_SHA256);
  });

  it('reads gs://bucket/object through the JSON API media download at STORAGE_EMULATOR_HOST', async () => {
    const path = '/storage/v1/b/models-bucket/o/iris%2Fv1%2Firis_svc.onnx?alt=media';
    const { origin, count } = await serve({ [path]: [{ status: 200, body: MODEL }] });
    const host = origin.replace('http://', ''); // the Google clients accept host:port without a scheme
    const result = await install(config('gs://models-bucket/iris/v1/iris_svc.onnx'), {
      env: { STORAGE_EMULATOR_HOST: host },
    });
    expect(result.status).toBe('installed');
    expect(count(path)).toBe(1);
  });

  it('follows redirects to the real location', async () => {
    const { origin } = await serve({
      '/latest': [{ status: 302, headers: { location: '/v3.onnx' } }],
      '/v3.onnx': [{ status: 200, body: MODEL }],
    });
    const result = await install(config(`${origin}/latest`));
    expect(result.sha256).toBe(MODEL_SHA256);
  });

  it('does not retry a 404 and leaves the existing target untouched', async () => {
    const { origin, count } = await serve({ '/m.onnx': [{ status: 404 }] });
    await writeFile(join(dir, 'model.onnx'), OLD);
    const error = await failure(install(config(`${origin}/m.onnx`)));
    expect(error.code).toBe('LOADER_SOURCE_NOT_FOUND');
    expect(error.message).toContain('HTTP 404');
    expect(count('/m.onnx')).toBe(1);
    expect(await readFile(join(dir, 'model.onnx'), 'utf8')).toBe(OLD);
    expect(await listing(dir)).toEqual(['model.onnx']);
  });

  it('does not retry a 403', async () => {
    const { origin, count } = await serve({ '/m.onnx': [{ status: 403 }] });
    const error = await failure(install(config(`${origin}/m.onnx`)));
    expect(error.code).toBe('LOADER_SOURCE_REJECTED');
    expect(count('/m.onnx')).toBe(1);
  });

  it('retries a 500 and installs the model when the next attempt succeeds', async () => {
    const { origin, count } = await serve({
      '/m.onnx': [{ status: 500 }, { status: 503 }, { status: 200, body: MODEL }],
    });
    const notices: RetryNotice[] = [];
    const result = await install(config(`${origin}/m.onnx`), { onRetry: (n) => notices.push(n) });
    expect(result.attempts).toBe(3);
    expect(count('/m.onnx')).toBe(3);
    expect(notices.map((n) => n.error.message)).toEqual([
      `GET ${origin}/m.onnx answered HTTP 500`,
      `GET ${origin}/m.onnx answered HTTP 503`,
    ]);
  });

  it('gives up after the configured retries when the server keeps failing', async () => {
    const { origin, count } = await serve({ '/m.onnx': [{ status: 502 }] });
    const error = await failure(install(config(`${origin}/m.onnx`, { retries: 3 })));
    expect(error.code).toBe('LOADER_SOURCE_UNAVAILABLE');
    expect(error.message).toContain('gave up after 4 attempts');
    expect(count('/m.onnx')).toBe(4);
  });

  it('waits as long as a 429 Retry-After asks before retrying', async () => {
    const { origin, seen } = await serve({
      '/m.onnx': [
        { status: 429, headers: { 'retry-after': '1' } },
        { status: 200, body: MODEL },
      ],
    });
    const notices: RetryNotice[] = [];
    await install(config(`${origin}/m.onnx`, { maxBackoffMs: 5000 }), { onRetry: (n) => notices.push(n) });
    expect(notices.map((n) => n.delayMs)).toEqual([1000]);
    expect(seen[1]!.atMs - seen[0]!.atMs).toBeGreaterThanOrEqual(950);
  });

  it('caps a long Retry-After at --max-backoff', async () => {
    const { origin } = await serve({
      '/m.onnx': [
        { status: 503, headers: { 'retry-after': '3600' } },
        { status: 200, body: MODEL },
      ],
    });
    const notices: RetryNotice[] = [];
    await install(config(`${origin}/m.onnx`, { maxBackoffMs: 40 }), { onRetry: (n) => notices.push(n) });
    expect(notices.map((n) => n.delayMs)).toEqual([40]);
  });

  it('times out an attempt on a server that never answers, retries a bounded number of times and fails', async () => {
    const { origin, count } = await serve({ '/m.onnx': [{ hang: true }] });
    await writeFile(join(dir, 'model.onnx'), OLD);
    const started = performance.now();
    const error = await failure(install(config(`${origin}/m.onnx`, { timeoutMs: 150, retries: 1 })));
    expect(error.code).toBe('LOADER_TIMEOUT');
    expect(error.message).toContain('within 150ms');
    expect(count('/m.onnx')).toBe(2);
    expect(performance.now() - started).toBeLessThan(5000);
    expect(await readFile(join(dir, 'model.onnx'), 'utf8')).toBe(OLD);
  });

  it('retries a body cut short and installs the complete model', async () => {
    const { origin, count } = await serve({
      '/m.onnx': [
        { truncate: MODEL, after: 100 },
        { status: 200, body: MODEL },
      ],
    });
    const result = await install(config(`${origin}/m.onnx`));
    expect(result).toMatchObject({ sha256: MODEL_SHA256, attempts: 2 });
    expect(count('/m.onnx')).toBe(2);
  });

  it('retries when the connection is refused, then fails with the network cause', async () => {
    const { origin } = await serve({});
    await server!.close();
    server = undefined;
    const error = await failure(install(config(`${origin}/m.onnx`, { retries: 1 })));
    expect(error.code).toBe('LOADER_SOURCE_UNAVAILABLE');
    expect(error.message).toContain('ECONNREFUSED');
  });

  it('rejects a checksum mismatch and leaves the existing target untouched', async () => {
    const { origin, count } = await serve({ '/m.onnx': [{ status: 200, body: MODEL }] });
    await writeFile(join(dir, 'model.onnx'), OLD);
    const expected = sha256('another model');
    const error = await failure(install(config(`${origin}/m.onnx`, { sha256: expected })));
    expect(error.code).toBe('LOADER_CHECKSUM_MISMATCH');
    expect(error.message).toContain(`expected ${expected}`);
    expect(count('/m.onnx')).toBe(1);
    expect(await readFile(join(dir, 'model.onnx'), 'utf8')).toBe(OLD);
    expect(await listing(dir)).toEqual(['model.onnx']);
  });

  it('rejects a file that onnxruntime cannot load as a model', async () => {
    const { origin } = await serve({ '/m.onnx': [{ status: 200, body: '{"not":"a model"}' }] });
    await writeFile(join(dir, 'model.onnx'), OLD);
    const error = await failure(install(config(`${origin}/m.onnx`)));
    expect(error.code).toBe('LOADER_INVALID_MODEL');
    expect(error.message).toContain('not a model onnxruntime can load');
    expect(await readFile(join(dir, 'model.onnx'), 'utf8')).toBe(OLD);
    expect(await listing(dir)).toEqual(['model.onnx']);
  });

  it('makes no request when the target already has the expected checksum', async () => {
    const { origin, seen } = await serve({ '/m.onnx': [{ status: 200, body: MODEL }] });
    await writeFile(join(dir, 'model.onnx'), MODEL);
    const result = await install(config(`${origin}/m.onnx`, { sha256: MODEL_SHA256 }));
    expect(result).toMatchObject({ status: 'present', attempts: 0, sha256: MODEL_SHA256 });
    expect(seen).toHaveLength(0);
  });

  it('replaces a target whose checksum differs from the expected one', async () => {
    const { origin } = await serve({ '/m.onnx': [{ status: 200, body: MODEL }] });
    await writeFile(join(dir, 'model.onnx'), OLD);
    const result = await install(config(`${origin}/m.onnx`, { sha256: MODEL_SHA256 }));
    expect(result.status).toBe('installed');
    expect(sha256(await readFile(join(dir, 'model.onnx')))).toBe(MODEL_SHA256);
  });

  it('reports a missing file:// source as not found without retrying', async () => {
    const error = await failure(install(config(pathToFileURL(join(dir, 'absent.onnx')).href)));
    expect(error.code).toBe('LOADER_SOURCE_NOT_FOUND');
    expect(error.message).not.toContain('gave up');
  });

  it('refuses to replace a directory standing at the target path', async () => {
    const error = await failure(install(config(pathToFileURL(MODEL_PATH).href, { modelFilepath: dir })));
    expect(error.code).toBe('LOADER_IO');
    expect(error.message).toContain('not a regular file');
  });

  it('stops waiting and installs nothing when aborted', async () => {
    const { origin } = await serve({ '/m.onnx': [{ hang: true }] });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    const error = await failure(
      install(config(`${origin}/m.onnx`, { timeoutMs: 10_000 }), { signal: controller.signal }),
    );
    expect(error.code).toBe('LOADER_ABORTED');
    expect(await listing(dir)).toEqual([]);
  });
});
