// The lab end to end with each driver: real APIs, sidecars, the Service (HAProxy) and load tools, briefly.
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runLab, type CliRun } from './lab-cli.js';
import { EVERY_CHART, openReport } from './report-page.js';

interface Summary {
  config: { driver: string; offered_rate: number; model_server: string; protocol: string };
  arms: {
    arm: string;
    callers: number;
    requests: number;
    status_codes: Record<string, number>;
    errors: number;
    offered_rate: number;
    duration_s: number;
    throughput: number;
    success_ratio: number;
    max_upstream_concurrency: number | null;
    latency_ms: Record<'all' | 'success' | 'rejection', { p99: number; count: number }>;
  }[];
  files: { report_html: string; raw: Record<string, string> };
}

function readSummary(out: string): Summary {
  return JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as Summary;
}

function expectAccounted(s: Summary): void {
  for (const arm of s.arms) {
    const answered = Object.values(arm.status_codes).reduce((a, b) => a + b, 0);
    expect(arm.requests).toBe(answered + arm.errors);
    expect(arm.requests).toBeGreaterThan(0);
  }
}

function expectSuccess(run: CliRun): void {
  // On failure the diff shows the tail of cb-lab's stderr.
  expect({ code: run.code, stderr: run.stderr.slice(-1500) }).toMatchObject({
    code: 0,
    stderr: expect.not.stringMatching(/cb-lab: LAB_/),
  });
}

const BASE = ['--replicas', '1', '--duration', '2', '--probe-seconds', '0.5', '--rate', '100'];

describe('cb-lab end to end', () => {
  it('runs the Service arms with the builtin driver, one at 2 callers, and draws every chart of report.html in Chromium', async () => {
    const out = mkdtempSync(join(tmpdir(), 'cb-lab-builtin-'));
    const run = await runLab([...BASE, '--arms', 'direct,sidecar,sidecar-adaptive,sidecar@2', '--out', out]);
    expectSuccess(run);
    expect(run.stdout.match(/^Requests {6}\[total, rate, throughput\]/gm)).toHaveLength(4);
    expect(run.stdout).toContain('== comparison ==');
    expect(run.stdout).toMatch(/== by number of callers ==\narm +callers +goodput/);
    const s = readSummary(out);
    expect(s.arms.map((a) => `${a.arm}@${a.callers}`)).toEqual([
      'direct@1',
      'sidecar@1',
      'sidecar-adaptive@1',
      'sidecar@2',
    ]);
    expectAccounted(s);
    for (const arm of s.arms) {
      expect(arm.requests).toBe(200); // the builtin driver sends exactly rate x duration
      expect(arm.latency_ms.all.count).toBe(arm.requests);
      expect(arm.max_upstream_concurrency).not.toBeNull();
    }
    const raw = JSON.parse(readFileSync(s.files.raw['sidecar-c1'] as string, 'utf8')) as {
      scrapes: { sidecars: { limit: number | null }[] }[];
    };
    expect(raw.scrapes.some((p) => p.sidecars.some((sc) => sc.limit !== null))).toBe(true);

    const report = await openReport(s.files.report_html);
    try {
      // Every run on one axis per chart; the sidecar arms' breakers; the callers plot (sidecar at 1 and 2 callers).
      expect(report.charts.map((c) => c.id)).toEqual(EVERY_CHART);
      for (const c of report.charts) {
        // Lines that agree lie on one another, so not every colour need show; but some must, and only the runs'.
        expect({ id: c.id, draws: c.draws > 0, painted: c.painted.length > 0 }).toEqual({
          id: c.id,
          draws: true,
          painted: true,
        });
        expect(c.colors).toEqual(expect.arrayContaining(c.painted));
      }
      expect(report.charts.find((c) => c.id === 'latency')?.colors).toHaveLength(4);
      const png = join(out, 'report.png');
      await report.page.screenshot({ path: png, fullPage: true });
      expect(statSync(png).size).toBeGreaterThan(20_000);
      expect(report.problems).toEqual([]);
    } finally {
      await report.close();
    }
  }, 180_000);

  it('drives the lab with the real vegeta and parses its results into the same report', async () => {
    const out = mkdtempSync(join(tmpdir(), 'cb-lab-vegeta-'));
    const run = await runLab([...BASE, '--arms', 'direct,sidecar', '--driver', 'vegeta', '--out', out]);
    expectSuccess(run);
    const s = readSummary(out);
    expect(s.config.driver).toBe('vegeta');
    expectAccounted(s);
    for (const arm of s.arms) expect(arm.requests).toBeGreaterThanOrEqual(190);
    expect(run.stdout).toMatch(/^Status Codes {2}\[code:count\] {22}200:\d+/m);
  }, 120_000);

  it('drives the lab with the real k6 (k6/reference.ts) and parses its JSON output into the same report', async () => {
    const out = mkdtempSync(join(tmpdir(), 'cb-lab-k6-'));
    const run = await runLab([...BASE, '--arms', 'sidecar', '--driver', 'k6', '--out', out]);
    expectSuccess(run);
    const s = readSummary(out);
    expect(s.config.driver).toBe('k6');
    expectAccounted(s);
    expect(s.arms[0]?.requests).toBeGreaterThanOrEqual(150);
    expect(s.arms[0]?.latency_ms.all.count).toBe(s.arms[0]?.requests);
  }, 120_000);

  it('runs MLServer replicas over REST v2 with the builtin driver and over gRPC with k6 (k6/grpc.ts), through the sidecar', async () => {
    const rest = mkdtempSync(join(tmpdir(), 'cb-lab-mlserver-'));
    const restRun = await runLab([...BASE, '--arms', 'direct,sidecar', '--model-server', 'mlserver', '--out', rest]);
    expectSuccess(restRun);
    const r = readSummary(rest);
    expect(r.config).toMatchObject({ model_server: 'mlserver', protocol: 'rest', driver: 'builtin' });
    expectAccounted(r);
    for (const arm of r.arms) expect(arm.status_codes['200']).toBeGreaterThan(0);
    expect(restRun.stdout).toMatch(
      /== sidecar, 1 caller\(s\): 1 MLServer replica\(s\), .* over REST, driver builtin ==/,
    );

    const grpc = mkdtempSync(join(tmpdir(), 'cb-lab-mlserver-grpc-'));
    const grpcRun = await runLab([
      ...BASE,
      '--arms',
      'sidecar',
      '--model-server',
      'mlserver',
      '--protocol',
      'grpc',
      '--out',
      grpc,
    ]);
    expectSuccess(grpcRun);
    const g = readSummary(grpc);
    expect(g.config).toMatchObject({ model_server: 'mlserver', protocol: 'grpc', driver: 'k6' });
    expectAccounted(g);
    // 100 calls/s against one replica of 8 slots x 200 ms (40/s): answered, and shed by the sidecar as 503s
    expect(g.arms[0]?.status_codes['200']).toBeGreaterThan(0);
    expect(g.arms[0]?.status_codes['503']).toBeGreaterThan(0);
    expect(grpcRun.stdout).toMatch(/over gRPC, driver k6 ==/);
  }, 240_000);
});
