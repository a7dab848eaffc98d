// The callers: each caller's command, run for real by sh with the real vegeta and k6 (.tools/bin, make tools)
// in a copy of what the client image holds (vegeta/, k6/), against a real server on 127.0.0.1; then the merge
// of their results into one report. What cannot run here is the cluster around them (kubectl exec into N pods).
import { execFileSync, spawn } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { attackProblems, callerCommand, callersJob, durationMs, type AttackOptions } from '../src/callers.js';
import { formatK6Report, mergeK6Csv, percentile } from '../src/merge.js';
import { ROOT } from '../../../test/manifests-render.js';

const TOOLS = join(ROOT, '.tools', 'bin');
const base: AttackOptions = {
  kustomization: 'out/kustomize/sidecar',
  namespace: 'circuit-breaker-sidecar',
  callers: 2,
  rate: 200,
  duration: '2s',
  tool: 'vegeta',
  targets: 'vegeta/post-target',
  script: 'k6/reference.ts',
  reportDir: '',
  vegeta: join(TOOLS, 'vegeta'),
  readyTimeoutMs: 1000,
};

it('checks CALLERS, RATE and DURATION, every problem at once', () => {
  expect(attackProblems({ callers: 0, rate: -1, duration: '10' })).toEqual([
    'CALLERS=0: must be a whole number from 1 to 64',
    'RATE=-1: must be a positive number of requests per second',
    'DURATION=10: must be like 10s, 2m or 500ms',
  ]);
  expect(attackProblems({ callers: 4, rate: 1000, duration: '10s' })).toEqual([]);
  expect(durationMs('2m')).toBe(120_000);
});

it('gives each vegeta caller rate/N per second, exactly', () => {
  expect(callerCommand({ ...base, callers: 3, rate: 1000 }, 1, 1)).toMatch(
    /exec vegeta attack -rate=1000\/3s -duration=2s -targets=vegeta\/post-target$/,
  );
});

it('gives each k6 caller its execution segment of the one test', () => {
  const cmd = (i: number): string => callerCommand({ ...base, tool: 'k6', callers: 3 }, i, 1);
  expect(cmd(0)).toContain('--execution-segment 0:1/3 --execution-segment-sequence 0,1/3,2/3,1');
  expect(cmd(2)).toContain('--execution-segment 2/3:1 ');
});

it('takes the callers Job from the rendered overlay and sizes it', () => {
  const text = execFileSync('kubectl', ['kustomize', 'manifests/overlays/istio'], { cwd: ROOT, encoding: 'utf8' });
  expect(callersJob(text, 8)).toMatchObject({
    kind: 'Job',
    metadata: { name: 'callers', namespace: 'circuit-breaker-istio' },
    spec: { completions: 8, parallelism: 8, completionMode: 'Indexed' },
  });
  expect(() => callersJob('kind: ConfigMap\n', 2)).toThrow(/no Job callers/);
});

describe('two callers for real, merged', () => {
  let server: Server;
  let url: string;
  let home: string;
  let seen = 0;

  beforeAll(async () => {
    // Answers 200, except every fifth request 503 with the sidecar's reason header (a shed request).
    server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        seen += 1;
        if (seen % 5 === 0) res.writeHead(503, { 'x-cb-reason': 'overload' }).end('{}');
        else res.writeHead(200, { 'content-type': 'application/json' }).end('{"prediction":[1,0,0]}');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    // What the client image holds under /client, with the cluster's Service swapped for the local server.
    home = mkdtempSync(join(tmpdir(), 'callers-'));
    cpSync(join(ROOT, 'vegeta'), join(home, 'vegeta'), { recursive: true });
    mkdirSync(join(home, 'k6'));
    for (const f of ['reference.ts', 'lib.ts']) cpSync(join(ROOT, 'k6', f), join(home, 'k6', f));
    const target = readFileSync(join(home, 'vegeta/post-target'), 'utf8').replace('http://iris-svc:8000', url);
    writeFileSync(join(home, 'vegeta/post-target'), target);
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    rmSync(home, { recursive: true, force: true });
  });

  /** Runs a caller's command as the pod would: sh -c, in /client, vegeta and k6 on the PATH. */
  function caller(command: string): Promise<{ code: number | null; stdout: Buffer; stderr: string }> {
    const tmp = join(home, 'tmp');
    mkdirSync(tmp, { recursive: true });
    const child = spawn('sh', ['-c', command.replaceAll('/tmp/', `${tmp}/`)], {
      cwd: home,
      env: {
        PATH: `${TOOLS}:${process.env['PATH']}`,
        BASE_URL: url,
        K6_NO_USAGE_REPORT: 'true',
        SUMMARY_JSON: join(tmp, 's.json'),
      },
    });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => (err += b));
    return new Promise((r) => child.on('close', (code) => r({ code, stdout: Buffer.concat(out), stderr: err })));
  }

  it('vegeta: both callers start together at half the rate; vegeta report merges their results', async () => {
    const startAt = Math.ceil(Date.now() / 1000) + 1;
    const runs = await Promise.all([0, 1].map((i) => caller(callerCommand(base, i, startAt))));
    const files = runs.map((r, i) => {
      expect(r.code).toBe(0);
      const f = join(home, `caller-${i}.bin`);
      writeFileSync(f, r.stdout);
      return f;
    });
    const one = (f: string): { requests: number; rate: number } =>
      JSON.parse(execFileSync(base.vegeta, ['report', '-type=json', f], { encoding: 'utf8' })) as {
        requests: number;
        rate: number;
      };
    const merged = JSON.parse(execFileSync(base.vegeta, ['report', '-type=json', ...files], { encoding: 'utf8' })) as {
      requests: number;
      rate: number;
      status_codes: Record<string, number>;
    };
    // 200 req/s for 2 s in total: 200 per caller.
    for (const f of files) expect(one(f).requests).toBe(200);
    expect(merged.requests).toBe(400);
    expect(merged.rate).toBeGreaterThan(150);
    expect(merged.status_codes['200']! + merged.status_codes['503']!).toBe(400);
  }, 30_000);

  it('k6: each caller runs its segment; the merge adds them up and takes percentiles over every sample', async () => {
    const k6 = { ...base, tool: 'k6' as const, rate: 100 };
    const csvs: string[] = [];
    for (const i of [0, 1]) {
      // One after the other here: in the cluster each pod has its own /tmp.
      const r = await caller(callerCommand(k6, i, 0));
      expect(r.code).toBe(0);
      expect(readFileSync(join(home, 'tmp/k6-caller.txt'), 'utf8')).toMatch(/k6 exit (0|99)/);
      csvs.push(readFileSync(join(home, 'tmp/k6-caller.csv'), 'utf8'));
    }
    const report = mergeK6Csv(csvs);
    const own = csvs.map((c) => mergeK6Csv([c]).requests);
    expect(report.callers).toBe(2);
    // 100 req/s for 2 s: k6 may start one more iteration at the end of a segment, and on a busy machine drop one
    // or two whose start came before a VU was free (its dropped_iterations): the segments still split the rate.
    expect(own.map((n) => n >= 98 && n <= 101)).toEqual([true, true]);
    expect(report.requests).toBe(own[0]! + own[1]!);
    expect(report.statusCodes['200']! + report.statusCodes['503']!).toBe(report.requests);
    expect(report.rejectionsByReason).toEqual({ overload: report.statusCodes['503'] });
    expect(report.successLatencyMs.p99).toBeGreaterThan(0);
    expect(report.allLatencyMs.max).toBeGreaterThanOrEqual(report.successLatencyMs.max!);
    expect(formatK6Report(report)).toMatch(
      new RegExp(`Callers\\s+2\\nRequests\\s+\\[total, rate\\]\\s+${report.requests}, `),
    );
  }, 60_000);
});

it('computes percentiles the way k6 does (linear between closest ranks)', () => {
  expect(percentile([1, 2, 3, 4], 50)).toBe(2.5);
  expect(percentile([5], 99)).toBe(5);
  expect(percentile([], 50)).toBeUndefined();
});
