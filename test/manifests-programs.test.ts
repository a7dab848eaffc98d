// What the manifests ask of our programs, checked against the built programs themselves: the rendered
// cb-sidecar ConfigMap passes `cb-sidecar --check-config`, and every probe answers 200 when run for real.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT, containers, pods, renderArm, type Container } from './manifests-render.js';
import { builtMain, startStack, type LocalStack } from './load-tools-stack.js';

const run = promisify(execFile);
const sidecarArm = renderArm('sidecar');
const istioArm = renderArm('istio');
const configMap = sidecarArm.find((o) => o.kind === 'ConfigMap' && o.metadata.name.startsWith('cb-sidecar-config'));
const sidecarConfig = configMap?.data?.['cb-sidecar.yaml'] ?? '';

let dir: string;
let stack: LocalStack;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'manifests-programs-'));
  // The sidecar runs the very config the cluster gets; only ports and upstream are local.
  stack = await startStack(sidecarConfig);
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

function apiContainers(): { arm: string; c: Container }[] {
  return [
    ['istio', istioArm],
    ['sidecar', sidecarArm],
  ].flatMap(([arm, objects]) =>
    pods(objects as typeof sidecarArm)
      .filter((p) => p.labels['app'] === 'iris-svc')
      .flatMap((p) => containers(p).map((c) => ({ arm: arm as string, c }))),
  );
}

it('accepts the cb-sidecar ConfigMap with cb-sidecar --check-config', async () => {
  expect(sidecarConfig).toContain('trafficPolicy:');
  const result = await checkConfig(sidecarConfig);
  expect(result).toEqual({ code: 0, out: expect.stringContaining('configuration OK') });
});

it('would reject a broken cb-sidecar ConfigMap (the check can fail)', async () => {
  const result = await checkConfig(sidecarConfig.replace('maxConnections: 100', 'maxConnections: -1'));
  expect(result.code).toBe(2);
  expect(result.out).toMatch(/maxConnections/);
});

it('answers 200 on every HTTP probe path of every arm', async () => {
  const probes = apiContainers().flatMap(({ c }) =>
    [c.startupProbe, c.readinessProbe, c.livenessProbe].flatMap((p) =>
      p?.httpGet ? [{ name: c.name, path: p.httpGet.path }] : [],
    ),
  );
  expect(probes.length).toBeGreaterThanOrEqual(6);
  for (const { name, path } of probes) {
    const base = name === 'cb-sidecar' ? stack.adminUrl : stack.apiUrl;
    const res = await fetch(`${base}${path}`);
    expect({ name, path, status: res.status }).toEqual({ name, path, status: 200 });
  }
});

it('passes every exec probe of the sidecar arm when run for real against the API', async () => {
  const apiPort = new URL(stack.apiUrl).port;
  const execs = apiContainers()
    .filter(({ arm }) => arm === 'sidecar')
    .flatMap(({ c }) =>
      [c.startupProbe, c.readinessProbe, c.livenessProbe].flatMap((p) => (p?.exec ? [p.exec.command] : [])),
    );
  expect(execs).toHaveLength(3);
  for (const [cmd, ...args] of execs) {
    expect(cmd).toBe('node');
    // The pod's API listens on 127.0.0.1:8000; here it listens on a free port.
    const local = args.map((a) => a.replace('127.0.0.1:8000', `127.0.0.1:${apiPort}`));
    await expect(run(process.execPath, local, { timeout: 10_000 })).resolves.toBeDefined();
  }
}, 30_000);
