import { execFile } from 'node:child_process';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { NOT_A_MODEL, call, postJson, runApiToExit, startApi, type ApiProcess } from './helpers.js';

const started: ApiProcess[] = [];
afterEach(() => {
  for (const api of started.splice(0)) if (api.child.exitCode === null) api.child.kill('SIGKILL');
});

async function start(env: Record<string, string>, readyMessage?: string): Promise<ApiProcess> {
  const api = await startApi(env, readyMessage);
  started.push(api);
  return api;
}

describe('iris-api process', () => {
  it('serves like a heavier model with INFERENCE_CONCURRENCY and INFERENCE_MIN_MS: one at a time, 150 ms each', async () => {
    const api = await start({ WORKERS: '1', INFERENCE_CONCURRENCY: '1', INFERENCE_MIN_MS: '150', LOG_LEVEL: 'info' });
    expect(api.output()).toContain('inference shaped');
    const t0 = performance.now();
    const times = await Promise.all(
      Array.from({ length: 3 }, async () => {
        const res = await postJson(api.base, '/predict/label', { data: [[6.3, 3.3, 6.0, 2.5]] });
        expect(res).toMatchObject({ status: 200, json: { prediction: 'virginica' } });
        return performance.now() - t0;
      }),
    );
    times.sort((a, b) => a - b);
    times.forEach((ms, i) => expect(ms).toBeGreaterThanOrEqual(150 * (i + 1)));
  });

  it('finishes a request in flight on SIGTERM, refuses new connections, and exits 0', async () => {
    const api = await start({ WORKERS: '1' });
    const { port } = new URL(api.base);
    const body = '{"data":[[6.3,3.3,6.0,2.5]]}';
    const socket = connect(Number(port), '127.0.0.1');
    let answer = '';
    socket.on('data', (c: Buffer) => {
      answer += c.toString();
    });
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    // Headers and half of the body: the request is in flight when SIGTERM arrives.
    socket.write(
      `POST /predict/label HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body.slice(0, 10)}`,
    );
    await new Promise((r) => setTimeout(r, 300));
    api.child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 300));
    expect(api.child.exitCode).toBeNull();
    await expect(call(api.base, 'GET', '/health')).rejects.toThrow(/ECONNREFUSED/);
    socket.write(body.slice(10));
    await closed;
    expect(answer).toMatch(/^HTTP\/1\.1 200 OK/);
    expect(answer).toMatch(/connection: close/i);
    expect(answer).toContain('{"prediction":"virginica"}');
    expect(await api.exited).toBe(0);
    expect(api.output()).toContain('"clean":true');
  });

  it('serves from WORKERS=2 processes, aggregates their metrics and exits 0 on SIGTERM', async () => {
    const api = await start({ WORKERS: '2' }, 'iris-api cluster ready');
    // The primary's "cluster ready" can reach the shared stdout before a worker's own "ready" line: wait for both.
    const readyPids = (): Set<string | undefined> =>
      new Set([...api.output().matchAll(/"pid":(\d+)[^\n]*"msg":"iris-api ready"/g)].map((m) => m[1]));
    const deadline = Date.now() + 5_000;
    while (readyPids().size < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(readyPids().size).toBe(2);
    const answers = await Promise.all(
      Array.from({ length: 20 }, () => postJson(api.base, '/predict', { data: [[5.1, 3.5, 1.4, 0.2]] })),
    );
    expect(answers.map((a) => a.status)).toEqual(Array(20).fill(200));
    const metrics = await call(api.base, 'GET', '/metrics');
    // Each answer came from one of the two workers; the scrape sums both.
    expect(metrics.text).toMatch(/iris_api_requests_total\{route="\/predict",method="POST",status="200"\} 20\n/);
    expect(metrics.text).toMatch(/iris_api_model_info\{[^}]*\} 1\n/);
    api.child.kill('SIGTERM');
    expect(await api.exited).toBe(0);
  });

  it('replaces a WORKERS=2 worker that dies', async () => {
    const api = await start({ WORKERS: '2' }, 'iris-api cluster ready');
    const readyPids = (): string[] =>
      [...api.output().matchAll(/"pid":(\d+)[^\n]*"msg":"iris-api ready"/g)].map((m) => m[1]!);
    const [victim] = readyPids();
    process.kill(Number(victim), 'SIGKILL');
    const deadline = Date.now() + 15_000;
    while (readyPids().length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(readyPids()).toHaveLength(3);
    expect(api.output()).toContain('a worker died; starting another');
    const answers = await Promise.all(Array.from({ length: 6 }, () => call(api.base, 'GET', '/predict/test/label')));
    expect(answers.map((a) => a.json.prediction)).toEqual(Array(6).fill('setosa'));
    api.child.kill('SIGTERM');
    expect(await api.exited).toBe(0);
  });

  it('rejects an invalid environment with exit 2, listing every problem', async () => {
    const { code, stderr } = await runApiToExit({ PORT: 'http', WORKERS: 'many', LOG_FORMAT: 'yaml' });
    expect(code).toBe(2);
    expect(stderr).toContain('CONFIG_INVALID');
    for (const name of ['PORT=', 'WORKERS=', 'LOG_FORMAT=']) expect(stderr).toContain(name);
  });

  it('exits 1 with one clear line when the model is not an ONNX model', async () => {
    const { code, stderr } = await runApiToExit({ MODEL_FILEPATH: NOT_A_MODEL });
    expect(code).toBe(1);
    expect(stderr.trim().split('\n')).toHaveLength(1);
    expect(stderr).toMatch(/^iris-api: MODEL_INVALID: /);
  });

  it('stops the cluster with exit 1 when its workers cannot load the model', async () => {
    const { code, stderr } = await runApiToExit({ WORKERS: '2', MODEL_FILEPATH: NOT_A_MODEL });
    expect(code).toBe(1);
    expect(stderr).toContain('MODEL_INVALID');
  });

  it('serves the shipped model with a warning when MODEL_FILEPATH is missing, logging as text with LOG_FORMAT=text', async () => {
    const api = await start({
      MODEL_FILEPATH: '/workdir/absent.onnx',
      LABEL_FILEPATH: '/workdir/absent.json',
      LOG_FORMAT: 'text',
    });
    expect(api.output()).toMatch(/WARN.*MODEL_FILEPATH not found; serving the shipped model/);
    expect(api.output()).not.toMatch(/^\{/m);
    expect((await postJson(api.base, '/predict/label', { data: [[6.4, 3.2, 4.5, 1.5]] })).json).toEqual({
      prediction: 'versicolor',
    });
    api.child.kill('SIGINT');
    expect(await api.exited).toBe(0);
  });
});

describe('make demo (dist/demo.js)', () => {
  it('prints each seed sample request with its answer and exits 0', async () => {
    const demo = fileURLToPath(new URL('../dist/demo.js', import.meta.url));
    const stdout = await new Promise<string>((resolve, reject) => {
      execFile(process.execPath, [demo], { timeout: 30_000 }, (err, out) => (err ? reject(err) : resolve(out)));
    });
    for (const path of [
      '/health',
      '/metadata',
      '/label',
      '/predict/test',
      '/predict/test/label',
      '/predict',
      '/predict/label',
    ]) {
      expect(stdout).toContain(`${path}\n200 `);
    }
    expect(stdout).toContain('200 {"health":"ok"}');
    expect(stdout).toContain('200 {"prediction":"setosa"}');
    expect(stdout).toContain('iris-api stopped (exit 0)');
  });
});
