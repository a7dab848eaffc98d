// What the manifests ask of our programs, checked against the built programs themselves: each rendered
// cb-sidecar ConfigMap passes `cb-sidecar --check-config`; every probe answers 200 when run for real; the
// model-loader init container's script, run by sh with the built loader, falls back to the model baked into the
// API exactly as the manifest says; and the API then starts with the manifest's environment on that model.
import { execFile, spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Supervisor, freePorts } from '@infer-cb/lab';
import { ROOT, containers, env, pods, renderArm, type Arm, type Container } from './manifests-render.js';
import { builtMain, startStack, type LocalStack } from './load-tools-stack.js';

const run = promisify(execFile);
const SIDECAR_ARMS: Arm[] = ['sidecar', 'sidecar-adaptive'];
const rendered = Object.fromEntries((['istio', ...SIDECAR_ARMS] as Arm[]).map((a) => [a, renderArm(a)]));
const sidecarConfig = (arm: Arm): string =>
  rendered[arm]!.find((o) => o.kind === 'ConfigMap' && o.metadata.name.startsWith('cb-sidecar-config'))?.data?.[
    'cb-sidecar.yaml'
  ] ?? '';
const modelPod = (arm: Arm) => pods(rendered[arm]!).find((p) => p.labels['app'] === 'iris-svc')!;
const container = (arm: Arm, name: string): Container => containers(modelPod(arm)).find((c) => c.name === name)!;
const SHIPPED_MODEL = join(ROOT, 'packages/api/models/iris_svc.onnx');
const SHIPPED_SHA = '53856dda7040348575b82319fef5506ad8479d800c87b5ba102b756d842f94e2';

let dir: string;
let stack: LocalStack;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'manifests-programs-'));
  // The sidecar runs the very config the cluster gets; only ports and upstream are local.
  stack = await startStack(sidecarConfig('sidecar'));
}, 40_000);

afterAll(async () => {
  await stack?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function checkConfig(text: string): Promise<{ code: number; out: string }> {
  const path = join(dir, `cb-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(path, text);
  return run(process.execPath, [builtMain('proxy'), '--check-config', '--config', path], {
    cwd: ROOT,
    timeout: 15_000,
  }).then(
    (r) => ({ code: 0, out: r.stdout + r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, out: e.stdout + e.stderr }),
  );
}

it.each(SIDECAR_ARMS)('accepts the %s arm cb-sidecar ConfigMap with cb-sidecar --check-config', async (arm) => {
  expect(sidecarConfig(arm)).toContain('trafficPolicy:');
  expect(await checkConfig(sidecarConfig(arm))).toEqual({ code: 0, out: expect.stringContaining('configuration OK') });
});

it('would reject a broken cb-sidecar ConfigMap (the check can fail)', async () => {
  const broken = sidecarConfig('sidecar').replace(/maxConnections: \d+/, 'maxConnections: -1');
  expect(broken).toContain('maxConnections: -1');
  const result = await checkConfig(broken);
  expect(result.code).toBe(2);
  expect(result.out).toMatch(/maxConnections/);
});

it('answers 200 on every probe of every arm', async () => {
  const probes = Object.keys(rendered).flatMap((arm) =>
    containers(modelPod(arm as Arm)).flatMap((c) =>
      [c.startupProbe, c.readinessProbe, c.livenessProbe].flatMap((p) =>
        p?.httpGet ? [{ name: c.name, path: p.httpGet.path }] : [],
      ),
    ),
  );
  expect(probes.length).toBeGreaterThanOrEqual(9);
  for (const { name, path } of probes) {
    const base = name === 'cb-sidecar' ? stack.adminUrl : stack.apiUrl;
    const res = await fetch(`${base}${path}`);
    expect({ name, path, status: res.status }).toEqual({ name, path, status: 200 });
  }
});

describe('the model-loader init container', () => {
  const loader = container('sidecar', 'model-loader');
  const script = loader.args?.join('\n') ?? '';
  const target = '/workdir/iris_svc.onnx';
  let server: Server;
  let base: string;

  beforeAll(async () => {
    expect(loader.command).toEqual(['sh', '-c']);
    expect(script).toContain(target);
    // 404 for /missing; never answers /hang; the model for /model.
    server = createServer((req, res) => {
      if (req.url === '/hang') return;
      if (req.url === '/model') return res.end(readFileSync(SHIPPED_MODEL));
      res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  /** Runs the manifest's script with sh and the built loader (dist/main.js relative to packages/loader, as in the image). */
  function initContainer(
    vars: Record<string, string>,
    signalAfterMs?: number,
  ): Promise<{ code: number | null; out: string; workdir: string }> {
    const workdir = mkdtempSync(join(dir, 'workdir-'));
    const child = spawn('sh', ['-c', script.replaceAll(target, join(workdir, 'iris_svc.onnx'))], {
      cwd: join(ROOT, 'packages/loader'),
      env: { PATH: process.env['PATH'] ?? '', NODE_OPTIONS: env(loader, 'NODE_OPTIONS') ?? '', ...vars },
    });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b));
    child.stderr.on('data', (b: Buffer) => (out += b));
    if (signalAfterMs !== undefined) setTimeout(() => child.kill('SIGTERM'), signalAfterMs);
    return new Promise((resolve) => child.on('close', (code) => resolve({ code, out, workdir })));
  }
  const installed = (workdir: string): boolean => existsSync(join(workdir, 'iris_svc.onnx'));
  const quick = { MODEL_SHA256: SHIPPED_SHA, MODEL_REQUIRED: 'false' };

  it('installs the model from its source, checked against its sha256', async () => {
    const r = await initContainer({ ...quick, MODEL_SOURCE: `${base}/model` });
    expect(r).toMatchObject({ code: 0, out: expect.stringContaining(`sha256 ${SHIPPED_SHA}`) });
    expect(installed(r.workdir)).toBe(true);
  }, 30_000);

  it('exits 0 with no source, leaving the API its baked-in model', async () => {
    const r = await initContainer({ ...quick, MODEL_SOURCE: '' });
    expect(r).toMatchObject({ code: 0, out: expect.stringContaining('no MODEL_SOURCE') });
    expect(installed(r.workdir)).toBe(false);
  });

  it('exits 0 when the fetch fails, and says the API serves its baked-in model', async () => {
    const r = await initContainer({ ...quick, MODEL_SOURCE: `${base}/missing` });
    expect(r).toMatchObject({
      code: 0,
      out: expect.stringMatching(/LOADER_SOURCE_NOT_FOUND[\s\S]*exit 3; the API serves/),
    });
    expect(installed(r.workdir)).toBe(false);
  }, 30_000);

  it('exits 0 on a checksum mismatch too, and installs nothing', async () => {
    const r = await initContainer({ ...quick, MODEL_SHA256: '0'.repeat(64), MODEL_SOURCE: `${base}/model` });
    expect(r).toMatchObject({ code: 0, out: expect.stringContaining('LOADER_CHECKSUM_MISMATCH') });
    expect(installed(r.workdir)).toBe(false);
  }, 30_000);

  it('fails the pod instead when MODEL_REQUIRED=true (the loader exit code)', async () => {
    const r = await initContainer({ ...quick, MODEL_REQUIRED: 'true', MODEL_SOURCE: `${base}/missing` });
    expect(r.code).toBe(3);
  }, 30_000);

  it('passes SIGTERM on to the loader, which aborts (exit 143)', async () => {
    const r = await initContainer({ ...quick, MODEL_SOURCE: `${base}/hang` }, 1500);
    expect(r).toMatchObject({ code: 143, out: expect.stringContaining('LOADER_ABORTED') });
  }, 30_000);

  it("then starts the API with the manifest's environment on the model baked into it", async () => {
    const api = container('sidecar', 'iris-api');
    const supervisor = new Supervisor();
    try {
      const [port] = await freePorts(1);
      const vars = Object.fromEntries((api.env ?? []).map((e) => [e.name, e.value ?? '']));
      const child = await supervisor.spawn({
        name: 'iris-api',
        command: process.execPath,
        args: [builtMain('api')],
        cwd: ROOT,
        env: { ...vars, PORT: String(port), MODEL_FILEPATH: join(dir, 'no-model-here', 'iris_svc.onnx') },
        readyUrl: `http://127.0.0.1:${port}/ready`,
        readyTimeoutMs: 20_000,
        stdout: 'buffer',
      });
      expect(vars['NODE_OPTIONS']).toMatch(/--max-old-space-size=\d+/);
      const res = await fetch(`http://127.0.0.1:${port}/predict`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: readFileSync(join(ROOT, 'vegeta/data.json')),
      });
      expect(res.status).toBe(200);
      expect(child.stdout()).toContain('serving the shipped model');
    } finally {
      await supervisor.stopAll();
    }
  }, 40_000);
});
