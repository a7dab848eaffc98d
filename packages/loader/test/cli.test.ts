import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CLI, listing, MODEL, MODEL_SHA256, sha256, tempDir } from './helpers/files.js';
import { startServer, type ScriptedServer, type Step } from './helpers/server.js';

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs the built CLI as a child process (killed after 15 s, so a hang fails the test instead of
 * blocking it); SIGTERM is sent, as kubelet does when the pod is deleted, once `sigtermWhen` holds.
 */
function runCli(args: string[], env: Record<string, string> = {}, sigtermWhen?: () => boolean): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const terminator =
      sigtermWhen === undefined
        ? undefined
        : setInterval(() => {
            if (sigtermWhen()) {
              clearInterval(terminator);
              child.kill('SIGTERM');
            }
          }, 20);
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const killer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(killer);
      clearInterval(terminator);
      resolve({ code, stdout, stderr });
    });
  });
}

// Generous per-attempt timeout (the machine is shared); the hanging-server test shortens it.
const FAST = ['--timeout', '5s', '--retries', '1', '--backoff', '10ms', '--max-backoff', '50ms'];
const OLD = 'previous model';

let server: ScriptedServer | undefined;
let dir: string;
let cleanup: () => Promise<void>;
let target: string;

beforeAll(() => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: build first (npx tsc -b packages/loader)`);
});
beforeEach(async () => {
  ({ dir, cleanup } = await tempDir());
  target = join(dir, 'iris_svc.onnx');
});
afterEach(async () => {
  await server?.close();
  server = undefined;
  await cleanup();
});

async function serve(scripts: Record<string, readonly Step[]>): Promise<ScriptedServer> {
  server = await startServer(scripts);
  return server;
}

/** Exactly one line on stderr, starting with the tool's name and the error code. */
function expectOneErrorLine(run: Run, code: string): void {
  expect(run.stderr.endsWith('\n')).toBe(true);
  expect(run.stderr.trimEnd().split('\n')).toHaveLength(1);
  expect(run.stderr).toMatch(new RegExp(`^model-loader: ${code}: `));
}

describe('model-loader CLI', () => {
  it('installs the model from http and exits 0 with one summary line', async () => {
    const { origin } = await serve({ '/m.onnx': [{ status: 200, body: MODEL }] });
    const run = await runCli([
      '--source',
      `${origin}/m.onnx`,
      '--model-filepath',
      target,
      '--sha256',
      MODEL_SHA256,
      ...FAST,
    ]);
    expect(run).toMatchObject({ code: 0, stderr: '' });
    expect(run.stdout).toMatch(
      /^model-loader: installed .*iris_svc\.onnx \(2131 bytes, sha256 [0-9a-f]{64}\) from GET http:.* 1 attempt\n$/,
    );
    expect(sha256(await readFile(target))).toBe(MODEL_SHA256);
  });

  it('installs from gs:// through STORAGE_EMULATOR_HOST', async () => {
    const path = '/storage/v1/b/ml_system_model_repository/o/iris_svc.onnx?alt=media';
    const { origin, count } = await serve({ [path]: [{ status: 200, body: MODEL }] });
    const run = await runCli(
      ['--source', 'gs://ml_system_model_repository/iris_svc.onnx', '--model-filepath', target, ...FAST],
      { STORAGE_EMULATOR_HOST: origin },
    );
    expect(run.code).toBe(0);
    expect(count(path)).toBe(1);
  });

  it('exits 3 on 404 after one request, with one line naming the status, target untouched', async () => {
    const { origin, count } = await serve({ '/m.onnx': [{ status: 404 }] });
    await writeFile(target, OLD);
    const run = await runCli(['--source', `${origin}/m.onnx`, '--model-filepath', target, ...FAST]);
    expect(run.code).toBe(3);
    expectOneErrorLine(run, 'LOADER_SOURCE_NOT_FOUND');
    expect(run.stderr).toContain('HTTP 404');
    expect(count('/m.onnx')).toBe(1);
    expect(await readFile(target, 'utf8')).toBe(OLD);
    expect(await listing(dir)).toEqual(['iris_svc.onnx']);
  });

  it('retries a 500, reports the retry on stdout and installs the model', async () => {
    const { origin, count } = await serve({ '/m.onnx': [{ status: 500 }, { status: 200, body: MODEL }] });
    const run = await runCli(['--source', `${origin}/m.onnx`, '--model-filepath', target, ...FAST]);
    expect(run).toMatchObject({ code: 0, stderr: '' });
    expect(run.stdout).toContain('attempt 1/2 failed: LOADER_SOURCE_UNAVAILABLE');
    expect(run.stdout).toContain('2 attempts');
    expect(count('/m.onnx')).toBe(2);
  });

  it('exits 6 when the server never answers, after the bounded attempts, target untouched', async () => {
    const { origin, count } = await serve({ '/m.onnx': [{ hang: true }] });
    await writeFile(target, OLD);
    const run = await runCli([
      '--source',
      `${origin}/m.onnx`,
      '--model-filepath',
      target,
      ...FAST,
      '--timeout',
      '300ms',
    ]);
    expect(run.code).toBe(6);
    expectOneErrorLine(run, 'LOADER_TIMEOUT');
    expect(run.stderr).toContain('gave up after 2 attempts');
    expect(count('/m.onnx')).toBe(2);
    expect(await readFile(target, 'utf8')).toBe(OLD);
    expect(await listing(dir)).toEqual(['iris_svc.onnx']);
  });

  it('exits 7 on a checksum mismatch, target untouched', async () => {
    const { origin } = await serve({ '/m.onnx': [{ status: 200, body: MODEL }] });
    await writeFile(target, OLD);
    const run = await runCli([
      '--source',
      `${origin}/m.onnx`,
      '--model-filepath',
      target,
      '--sha256',
      sha256('another model'),
      ...FAST,
    ]);
    expect(run.code).toBe(7);
    expectOneErrorLine(run, 'LOADER_CHECKSUM_MISMATCH');
    expect(await readFile(target, 'utf8')).toBe(OLD);
    expect(await listing(dir)).toEqual(['iris_svc.onnx']);
  });

  it('exits 8 for a file that is not an ONNX model, target untouched', async () => {
    const { origin } = await serve({ '/m.onnx': [{ status: 200, body: '<html>login page</html>' }] });
    await writeFile(target, OLD);
    const run = await runCli(['--source', `${origin}/m.onnx`, '--model-filepath', target, ...FAST]);
    expect(run.code).toBe(8);
    expectOneErrorLine(run, 'LOADER_INVALID_MODEL');
    expect(await readFile(target, 'utf8')).toBe(OLD);
    expect(await listing(dir)).toEqual(['iris_svc.onnx']);
  });

  it('exits 0 without a request when the target already has the checksum', async () => {
    const { origin, seen } = await serve({ '/m.onnx': [{ status: 200, body: MODEL }] });
    await writeFile(target, MODEL);
    const run = await runCli([
      '--source',
      `${origin}/m.onnx`,
      '--model-filepath',
      target,
      '--sha256',
      MODEL_SHA256,
      ...FAST,
    ]);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('nothing downloaded');
    expect(seen).toHaveLength(0);
  });

  it('exits 143 on SIGTERM mid-download, leaving neither a target nor a temporary file', async () => {
    const { origin, count } = await serve({ '/m.onnx': [{ hang: true }] });
    const run = await runCli(
      ['--source', `${origin}/m.onnx`, '--model-filepath', target, '--timeout', '30s'],
      {},
      () => count('/m.onnx') === 1,
    );
    expect(run.code).toBe(143);
    expectOneErrorLine(run, 'LOADER_ABORTED');
    expect(count('/m.onnx')).toBe(1);
    expect(await listing(dir)).toEqual([]);
  });

  it('exits 2 with one line listing every problem for bad arguments', async () => {
    const run = await runCli(['--source', 'ftp://x/m.onnx', '--timeout', 'soon', '--retries', '-3']);
    expect(run.code).toBe(2);
    expectOneErrorLine(run, 'LOADER_USAGE');
    expect(run.stderr).toContain('scheme "ftp:" is not supported');
    expect(run.stderr).toContain('--model-filepath is required');
    expect(run.stderr).toContain('--timeout "soon" is not a duration');
    expect(run.stdout).toBe('');
  });

  it('prints usage on --help and exits 0', async () => {
    const run = await runCli(['--help']);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('Usage: model-loader --source URI --model-filepath PATH');
  });
});
