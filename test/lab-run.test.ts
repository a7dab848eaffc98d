// The lab end to end with each driver: real APIs, sidecars, the Service (HAProxy) and load tools, briefly.
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { runLab, type CliRun } from './lab-cli.js';

interface Summary {
  config: { driver: string; offered_rate: number };
  arms: {
    arm: string;
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
  it('runs every arm with the builtin driver and renders every chart of report.html in Chromium', async () => {
    const out = mkdtempSync(join(tmpdir(), 'cb-lab-builtin-'));
    const run = await runLab([...BASE, '--arms', 'direct,sidecar,sidecar-adaptive', '--out', out]);
    expectSuccess(run);
    expect(run.stdout.match(/^Requests {6}\[total, rate, throughput\]/gm)).toHaveLength(3);
    expect(run.stdout).toContain('== comparison ==');
    const s = readSummary(out);
    expect(s.arms.map((a) => a.arm)).toEqual(['direct', 'sidecar', 'sidecar-adaptive']);
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

    // A fresh profile each run (launchPersistentContext passes it as --user-data-dir).
    const browser = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), 'cb-lab-chromium-')), {
      executablePath: '/usr/bin/chromium',
      headless: true,
      viewport: { width: 1400, height: 900 },
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--no-first-run',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    try {
      const page = await browser.newPage();
      const problems: string[] = [];
      page.on('console', (m) => {
        if (m.type() === 'error') problems.push(m.text());
      });
      page.on('pageerror', (e) => problems.push(e.message));
      page.on('request', (r) => {
        if (!r.url().startsWith('file:')) problems.push(`network request ${r.url()}`);
      });
      await page.goto(`file://${s.files.report_html}`);
      const charts = await page.$$eval('svg.chart', (svgs) =>
        svgs.map((svg) => {
          const paths = [...svg.querySelectorAll('path.s')].map((p) => {
            const box = (p as SVGGraphicsElement).getBBox();
            return { d: p.getAttribute('d') ?? '', w: box.width, h: box.height };
          });
          return { id: svg.id, drawn: paths.filter((p) => p.d.length > 2 && (p.w > 0 || p.h > 0)).length };
        }),
      );
      // direct: throughput, latency, in-flight; sidecar arms: those plus breaker state
      expect(charts.map((c) => c.id)).toEqual([
        'direct-c1-throughput',
        'direct-c1-latency',
        'direct-c1-inflight',
        'sidecar-c1-throughput',
        'sidecar-c1-latency',
        'sidecar-c1-inflight',
        'sidecar-c1-breaker',
        'sidecar-adaptive-c1-throughput',
        'sidecar-adaptive-c1-latency',
        'sidecar-adaptive-c1-inflight',
        'sidecar-adaptive-c1-breaker',
      ]);
      for (const c of charts) expect({ id: c.id, drawn: c.drawn > 0 }).toEqual({ id: c.id, drawn: true });
      const png = join(out, 'report.png');
      await page.screenshot({ path: png, fullPage: true });
      expect(statSync(png).size).toBeGreaterThan(20_000);
      expect(problems).toEqual([]);
    } finally {
      await browser.close();
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
});
