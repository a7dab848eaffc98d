// report.html from made-up runs of every arm (mesh arms with Envoy statistics, several caller counts, a void
// run, the seed preset), opened in the real Chromium: every chart drawn, the tables and the split in place.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { armResult } from '../packages/lab/src/arm-run.js';
import { emptyEnvoyStats, type EnvoyStats } from '../packages/lab/src/envoy.js';
import type { LabSummary } from '../packages/lab/src/lab.js';
import type { ArmName } from '../packages/lab/src/plan.js';
import { ResultRecorder } from '../packages/lab/src/results.js';
import { acceptance } from '../packages/lab/src/report/acceptance.js';
import type { ArmResult } from '../packages/lab/src/report/arm-result.js';
import { renderHtml } from '../packages/lab/src/report/html.js';
import type { ScrapePoint } from '../packages/lab/src/scraper.js';
import { EVERY_CHART, openReport } from './report-page.js';

/** A run of 3 s at 100 req/s: 2xx taking `okMs` (growing over the run), the rest 503s after 2 ms. */
function run(arm: ArmName, callers: number, opts: { okMs: number; okShare: number; peak: number; void?: boolean }) {
  const rec = new ResultRecorder();
  for (let i = 0; i < 300; i++) {
    const ok = i % 100 < opts.okShare * 100;
    rec.record(i * 10, ok ? opts.okMs * (1 + i / 300) : 2, ok ? 200 : 503, 74, 35);
    // In the mesh arms two of three 503s carry x-envoy-overloaded (the builtin driver's reason for them).
    if (!ok && arm.startsWith('istio') && i % 3 !== 0) rec.reason('envoy-overloaded');
  }
  const sidecar = arm.startsWith('sidecar') || arm === 'istio-sidecar';
  const scrapes: ScrapePoint[] = Array.from({ length: 6 }, (_, k) => ({
    t: 0.5 * k + 0.01 * callers,
    serviceInflight: arm === 'direct' ? [opts.peak - (k % 2), opts.peak - 2] : [],
    apiInflight: [opts.peak - (k % 3), opts.peak - 3],
    sidecars: sidecar
      ? [0, 1].map((j) => ({
          inflight: opts.peak - j,
          limit: 8 + k,
          queue: 0,
          breaker: k >= opts.peak % 5 && j === 0 ? 'open' : 'closed',
        }))
      : [],
  }));
  let envoy: { callers: EnvoyStats; inbound: EnvoyStats } | null = null;
  if (arm === 'istio' || arm === 'istio-sidecar') {
    const callersStats = {
      ...emptyEnvoyStats(),
      upstream_rq_total: 250,
      upstream_rq_pending_overflow: 40 * callers,
      upstream_cx_overflow: 900,
    };
    const inbound = {
      ...emptyEnvoyStats(),
      upstream_rq_total: 210,
      upstream_rq_pending_overflow: 7,
      upstream_rq_503: 11,
    };
    envoy = { callers: { ...callersStats, upstream_rq_retry: 5, upstream_rq_retry_success: 3 }, inbound };
  }
  return armResult(rec, {
    run: { arm, callers },
    driver: 'builtin',
    replicas: 2,
    offeredRate: 100,
    scrapes,
    servicePeak: arm === 'direct' ? opts.peak : null,
    capacity: 80,
    configPath: null,
    machine: { busy_pct: opts.void === true ? 97 : 40, steal_ms: 0 },
    envoy,
  });
}

function summaryOf(results: ArmResult[], preset: 'seed' | null): LabSummary {
  return {
    schema: 'cb-lab/summary/v3',
    started_at: '2026-01-01T00:00:00.000Z',
    finished_at: '2026-01-01T00:01:00.000Z',
    host: { cpus: 2, node: 'v24', platform: 'linux-x64' },
    config: {
      arms: results.map((r) => r.arm),
      runs: results.map((r) => ({ arm: r.arm, callers: r.callers })),
      replicas: 2,
      workers: 1,
      driver: 'builtin',
      duration_s: 3,
      offered_rate: 100,
      rate_source: 'flag',
      overload: 3,
      timeout_ms: 10_000,
      tuning: { limit: 8, pending: 4, queueTimeout: '20ms', adaptiveMax: 32 },
      policy: 'destinationrule.yaml',
      istio_profile: 'book',
      preset,
      api_nice: 10,
      api_cpu: 0,
      inference_concurrency: 8,
      inference_ms: 200,
      model_server: 'api',
      protocol: 'rest',
    },
    probe: null,
    arms: results.map(({ series: _s, scrapes: _p, ...rest }) => rest),
    acceptance: acceptance(results, preset ?? undefined),
    files: { report_html: 'report.html', raw: {} },
  };
}

describe('report.html in Chromium', () => {
  it('overlays every run on one axis, plots the callers, splits Envoy rejections, and marks void runs', async () => {
    const results = [
      run('direct', 1, { okMs: 3000, okShare: 0.9, peak: 40 }),
      run('istio', 1, { okMs: 600, okShare: 0.75, peak: 20 }),
      run('sidecar', 1, { okMs: 200, okShare: 0.5, peak: 8 }),
      run('sidecar-adaptive', 1, { okMs: 320, okShare: 0.35, peak: 11 }),
      run('istio-sidecar', 1, { okMs: 120, okShare: 0.2, peak: 5 }),
      run('istio', 4, { okMs: 1000, okShare: 0.62, peak: 30 }),
      run('sidecar', 4, { okMs: 450, okShare: 0.42, peak: 14 }),
      run('istio', 8, { okMs: 1800, okShare: 0.82, peak: 36, void: true }),
    ];
    // The fault run: replica 0's model down from 1.0 s to 1.8 s of the sidecar's attack.
    results[2]!.fault = {
      replica: 0,
      killed_at_s: 1,
      returned_at_s: 1.8,
      goodput_before_rps: 50,
      answers_during: { '200': 30, '503': 52 },
      unanswered: 0,
      recovered_after_s: 0.4,
    };
    const file = join(mkdtempSync(join(tmpdir(), 'cb-lab-report-')), 'report.html');
    writeFileSync(file, renderHtml(summaryOf(results, 'seed'), results));
    const report = await openReport(file);
    try {
      expect(report.charts.map((c) => c.id)).toEqual(EVERY_CHART);
      for (const c of report.charts) {
        // Every run has a colour of its own, and every line with data is painted in it.
        expect({ id: c.id, draws: c.draws > 0, painted: c.painted }).toEqual({
          id: c.id,
          draws: true,
          painted: c.colors,
        });
      }
      const latency = report.charts.find((c) => c.id === 'latency');
      expect(latency?.colors).toHaveLength(results.length + 1); // and the book's reference lines
      // The callers plot: one line per arm that ran, and the void istio@8 on a line of its own.
      expect(report.charts.find((c) => c.id === 'callers-goodput')?.colors).toHaveLength(5);
      const legend = await report.page.$$eval('#callers-goodput .u-legend .u-label', (l) =>
        l.map((e) => e.textContent),
      );
      expect(legend).toEqual([
        'callers',
        'direct',
        'istio',
        'istio (void)',
        'sidecar',
        'sidecar-adaptive',
        'istio-sidecar',
      ]);

      const page = report.page;
      const heads = await page.$$eval('table.comparison tr:first-child th', (ths) => ths.map((t) => t.textContent));
      expect(heads.slice(0, 3)).toEqual(['', 'book (Istio)', 'direct']);
      const voidCells = await page.$$eval('table.comparison td.void', (tds) => tds.length);
      expect(voidCells).toBeGreaterThan(10); // the istio@8 column
      expect(await page.textContent('li.void')).toMatch(
        /acceptance istio \(8 callers\): VOID, not counted: machine CPU 97% busy/,
      );
      expect(await page.textContent('#run-istio-c8 p.void')).toMatch(/VOID, not counted/);
      const callerRows = await page.$$eval('table.callers tr', (trs) => trs.length);
      expect(callerRows).toBe(results.length + 1);
      // Mesh runs: rejections split into Envoy overflow and upstream 503s, and Envoy's own statistics.
      const istio4 = results.find((r) => r.key === 'istio-c4')!;
      const uo = istio4.rejection_reasons['envoy-overloaded']!;
      expect(uo).toBeGreaterThan(0);
      expect(await page.textContent('#run-istio-c4 p.envoy')).toBe(
        `503 answers the callers got: ${istio4.status_codes['503']}: ${uo} Envoy overflow answers (503 UO, x-envoy-overloaded) ` +
          `and ${istio4.status_codes['503']! - uo} upstream 503s passed on. Envoy's counters, which count attempts (a retried ` +
          `request once per attempt): overflow answers 160 at the callers' Envoys and 7 at the replicas' inbound Envoys; ` +
          `the app's own 503s at the inbound Envoys 4; retries 5 (3 answered 2xx, 0 refused by max_retries).`,
      );
      const envoyRow = await page.$$eval('#run-istio-c4 table.envoy tr', (trs) =>
        trs
          .map((tr) => [...tr.children].map((c) => c.textContent))
          .find((r) => r[0]?.startsWith('upstream_rq_pending_overflow')),
      );
      expect(envoyRow?.slice(1)).toEqual(['160', '7']);
      expect(await page.$$('#run-sidecar-c1 table.envoy')).toHaveLength(0);

      // The fault: its figures in the table and the run's section, its outage shaded on the charts over time.
      expect(await page.textContent('#run-sidecar-c1 p.fault')).toMatch(
        /killed at 1 s, was back at 1.8 s\. Answers while it was down: 200:30 503:52; requests never answered: 0; goodput was back to 90% of its level before \(50 2xx\/s\) 0.4 s after/,
      );
      const faultRow = await page.$$eval('table.comparison tr', (trs) =>
        trs.map((tr) => [...tr.children].map((c) => c.textContent)).find((r) => r[0] === 'fault: requests unanswered'),
      );
      expect(faultRow?.slice(1, 5)).toEqual(['-', '-', '-', '0']); // book, direct, istio, sidecar
      const shaded = await page.evaluate(() => {
        const el = document.getElementById('goodput') as HTMLElement;
        const [left, top, width, height] = (el.dataset['plot'] ?? '').split(',').map(Number) as number[];
        const px = el.querySelector('canvas')!.getContext('2d')!.getImageData(left!, top!, width!, height!).data;
        let n = 0;
        // The canvas is transparent: the band is its colour at 10% opacity.
        for (let i = 0; i < px.length; i += 4)
          if (Math.abs(px[i]! - 214) + Math.abs(px[i + 1]! - 39) < 20 && px[i + 3]! > 15 && px[i + 3]! < 40) n++;
        return n;
      });
      expect(shaded).toBeGreaterThan(1000);

      // The legend shows the values under the cursor, and dragging zooms in (the chart is painted again).
      const plot = await page.$('#latency .u-over');
      await plot?.scrollIntoViewIfNeeded();
      const box = await plot?.boundingBox();
      expect(box).toBeDefined();
      if (box === null || box === undefined) return;
      await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
      await page.waitForFunction(() =>
        [...document.querySelectorAll('#latency .u-legend .u-value')].some((e) => /\d/.test(e.textContent ?? '')),
      );
      const before = Number(await page.getAttribute('#latency', 'data-draws'));
      await page.mouse.down();
      await page.mouse.move(box.x + box.width * 0.8, box.y + box.height / 2, { steps: 5 });
      await page.mouse.up();
      await page.waitForFunction((n) => Number(document.getElementById('latency')?.dataset['draws']) > n, before);
      expect(report.problems).toEqual([]);
    } finally {
      await report.close();
    }
  }, 60_000);
});
