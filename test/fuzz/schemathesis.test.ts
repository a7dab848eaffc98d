// Property-based fuzzing of the API's own /openapi.json with schemathesis (PyPI, pinned in the Makefile's
// .tools/venv target), directly and through the sidecar: no 5xx on any generated input, and every answer
// (status, content type, headers, body) matches the document.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { startApi, startSidecar, stopAll, type ApiProcess, type SidecarProcess } from '@infer-cb/testkit';
import { ROOT } from '../e2e/support/stack.js';

const SCHEMATHESIS = join(ROOT, '.tools/venv/bin/schemathesis');
const CONFIG = join(ROOT, 'test/fuzz/schemathesis.toml');
/** Examples per operation: bounded so one run stays well under a minute on a shared CPU. */
const MAX_EXAMPLES = process.env.FUZZ_EXAMPLES ?? '25';
/** A fixed seed keeps CI reproducible; FUZZ_SEED explores further. */
const SEED = process.env.FUZZ_SEED ?? '20260601';
const RUN_LIMIT_MS = 100_000;

let api: ApiProcess;
let sidecar: SidecarProcess;

beforeAll(async () => {
  api = await startApi();
  sidecar = await startSidecar({ upstream: api.origin, yaml: 'sidecar:\n  drain: { delay: 0ms, grace: 5s }\n' });
}, 40_000);
afterAll(() => stopAll(2000));

interface RunResult {
  code: number | null;
  output: string;
}

/** Runs `schemathesis run` against `base`; killed (and failed) if it outlives RUN_LIMIT_MS. */
function schemathesis(base: string, report: string): Promise<RunResult> {
  mkdirSync(join(ROOT, '.ci-results'), { recursive: true });
  const args = [
    '--config-file',
    CONFIG,
    'run',
    `${base}/openapi.json`,
    '--url',
    base,
    '--checks',
    'all',
    '--phases',
    'examples,coverage,fuzzing',
    '--max-examples',
    MAX_EXAMPLES,
    '--seed',
    SEED,
    '--workers',
    '1',
    '--request-timeout',
    '5',
    '--suppress-health-check',
    'all',
    '--report',
    'junit',
    '--report-junit-path',
    join(ROOT, '.ci-results', report),
  ];
  return new Promise((resolve) => {
    const child = spawn(SCHEMATHESIS, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NO_COLOR: '1' },
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), RUN_LIMIT_MS);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

/** The "N generated, N passed" line of the summary. */
function casesLine(output: string): { generated: number; passed: number } {
  const m = /(\d+) generated, (\d+) passed/.exec(output);
  return { generated: Number(m?.[1] ?? 0), passed: Number(m?.[2] ?? -1) };
}

describe('schemathesis against /openapi.json', () => {
  it('finds schemathesis installed (make .tools/venv)', () => {
    expect(existsSync(SCHEMATHESIS)).toBe(true);
  });

  it.each([
    ['the API directly', () => api.origin, 'fuzz-api.xml'],
    ['the API through the sidecar', () => sidecar.url, 'fuzz-sidecar.xml'],
  ])(
    'finds no 5xx and no answer off the spec, fuzzing %s',
    async (_name, base, report) => {
      const { code, output } = await schemathesis(base(), report);
      const cases = casesLine(output);
      if (code !== 0) throw new Error(`schemathesis exited ${code}:\n${output.slice(-6000)}`);
      expect(cases.generated).toBeGreaterThan(50);
      expect(cases.passed).toBe(cases.generated);
    },
    RUN_LIMIT_MS + 10_000,
  );
});
