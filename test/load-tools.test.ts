// Real vegeta and real k6 (from .tools/bin, `make tools`) run the committed vegeta targets and k6 script
// against a local iris-api behind cb-sidecar, overloaded on purpose: their reports show 200s and 503s.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from './manifests-render.js';
import { startApi, startSidecar } from '@infer-cb/testkit';
import { OVERLOAD_CONFIG, startStack, type LocalStack } from './load-tools-stack.js';

const run = promisify(execFile);
const TOOLS = join(ROOT, '.tools', 'bin');
const RATE = '600';

let stack: LocalStack;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'load-tools-'));
  stack = await startStack();
}, 40_000);

afterAll(async () => {
  await stack?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** The committed targets file with the cluster host swapped for the local sidecar (as the lab does). */
function localTargets(file: string): string {
  const text = readFileSync(join(ROOT, 'vegeta', file), 'utf8');
  expect(text).toContain('http://iris-svc:8000/');
  const path = join(dir, file);
  writeFileSync(path, text.replaceAll('http://iris-svc:8000', stack.sidecarUrl));
  return path;
}

interface VegetaReport {
  requests: number;
  status_codes: Record<string, number>;
}

async function vegeta(targets: string, rate: string, duration: string): Promise<VegetaReport> {
  const results = join(dir, 'results.bin');
  // cwd = repository root, so the target's `@vegeta/data.json` body resolves as in the seed.
  await run(
    join(TOOLS, 'vegeta'),
    ['attack', `-duration=${duration}`, `-rate=${rate}`, `-targets=${targets}`, `-output=${results}`, '-timeout=5s'],
    { cwd: ROOT, timeout: 20_000 },
  );
  const { stdout } = await run(join(TOOLS, 'vegeta'), ['report', '-type=json', results], {
    cwd: ROOT,
    timeout: 10_000,
  });
  return JSON.parse(stdout) as VegetaReport;
}

it('type-checks the k6 scripts against @types/k6', async () => {
  await expect(
    run(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'k6', '--noEmit'], {
      cwd: ROOT,
      timeout: 60_000,
    }),
  ).resolves.toBeDefined();
}, 70_000);

it('vegeta post-target overloads the sidecar: 200s and 503s', async () => {
  const report = await vegeta(localTargets('post-target'), RATE, '3s');
  expect(report.requests).toBeGreaterThan(1000);
  expect(report.status_codes['200']).toBeGreaterThan(0);
  expect(report.status_codes['503']).toBeGreaterThan(0);
  expect(Object.keys(report.status_codes).sort()).toEqual(['200', '503']);
}, 40_000);

it('vegeta get-target answers the test prediction', async () => {
  const report = await vegeta(localTargets('get-target'), '20', '1s');
  expect(report.status_codes['200']).toBe(report.requests);
}, 30_000);

/**
 * Runs a committed k6 script for 3 s at RATE with `env` (its target) beside the common settings; resolves with
 * k6's exit code (0, or 99 when overloading on purpose crossed a threshold), its stdout and the summary's counts.
 */
async function k6(
  script: string,
  env: Record<string, string>,
): Promise<{ code: number; stdout: string; count: (metric: string) => number }> {
  const summaryPath = join(dir, `${script.replace(/\W/g, '-')}-summary.json`);
  const result = await run(join(TOOLS, 'k6'), ['run', '--quiet', script], {
    cwd: ROOT,
    env: {
      ...process.env,
      ...env,
      RATE,
      DURATION: '3s',
      PRE_ALLOCATED_VUS: '40',
      MAX_VUS: '200',
      SUMMARY_JSON: summaryPath,
      K6_NO_USAGE_REPORT: 'true',
    },
    timeout: 40_000,
  }).then(
    (r) => ({ code: 0, stdout: r.stdout }),
    (e: { code: number; stdout: string }) => ({ code: e.code, stdout: e.stdout }),
  );
  const summary = JSON.parse(readFileSync(summaryPath, 'utf8')) as {
    metrics: Record<string, { values: Record<string, number> }>;
  };
  return { ...result, count: (metric) => summary.metrics[metric]?.values['count'] ?? 0 };
}

it('k6 reference.ts reports 200s and 503s by x-cb-reason', async () => {
  const { code, stdout, count } = await k6('k6/reference.ts', { BASE_URL: stack.sidecarUrl });
  expect([0, 99]).toContain(code);
  expect(stdout).toMatch(/Status Codes\s+\[code:count\]\s+200:[1-9]\d*\s+502:0\s+503:[1-9]\d*/);
  expect(count('responses_by_status{status:200}')).toBeGreaterThan(0);
  expect(count('responses_by_status{status:503}')).toBeGreaterThan(0);
  const byReason = ['overload', 'queue-timeout'].map((r) => count(`rejected_by_reason{reason:${r}}`));
  expect(byReason[0]! + byReason[1]!).toBeGreaterThan(0);
  expect(count('rejected_by_reason{reason:other}')).toBe(0);
}, 60_000);

it('k6 grpc.ts drives ModelInfer through cb-sidecar (h2c) and counts the sheds by x-cb-reason', async () => {
  // The API's gRPC port behind its own sidecar: 2 slots of 10 ms (200 calls/s) against 600 calls/s.
  const api = await startApi({ grpcPort: 0, env: { INFERENCE_CONCURRENCY: '2', INFERENCE_MIN_MS: '10' } });
  const sidecar = await startSidecar({ upstream: `http://${api.grpcTarget!}`, yaml: OVERLOAD_CONFIG });
  try {
    const { code, stdout, count } = await k6('k6/grpc.ts', { GRPC_TARGET: `127.0.0.1:${sidecar.port}` });
    expect([0, 99]).toContain(code);
    expect(count('iterations')).toBeGreaterThan(0);
    const shed = ['overload', 'queue-timeout'].map((r) => count(`grpc_rejected_by_reason{reason:${r}}`));
    expect(shed[0]! + shed[1]!).toBeGreaterThan(0);
    expect(count('grpc_rejected_by_reason{reason:other}')).toBe(0);
    expect(stdout).toMatch(/Not OK\s+\[reason:count\]\s+\S*(overload|queue-timeout):[1-9]/);
  } finally {
    await sidecar.proc.stop();
    await api.proc.stop();
  }
}, 60_000);
