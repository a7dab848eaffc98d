// The dashboards' queries against the lab's real series: cb-lab runs the mesh arms `istio` (arm A) and
// `istio-sidecar` (arm B: cb-sidecar inside the mesh) with --prometheus --keep, and every panel query is evaluated
// over the run as Grafana would (a range query), with the lab's labels in place of a cluster's: the lab tells arms
// apart by `arm` where a cluster has a namespace per arm. The lab's Envoys are stock Envoys, so this checks the
// dashboards with Envoy's own label names (test/dashboards.test.ts checks Istio's) and without Istio's telemetry.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { istioTelemetryOnly, panelQueries, substitute } from './dashboard-queries.js';
import { startLab, stopLab, waitForStderr } from './lab-cli.js';

const ARM_A = 'istio';
const ARM_B = 'istio-sidecar';
/**
 * Grafana's variables as the lab's labels: arm names for the namespaces, every pod, and a rate window that spans
 * two of Envoy's histogram flushes (every 5 s) at the lab's 1 s scrapes.
 */
const VARIABLES: Record<string, string> = {
  $__rate_interval: '12s',
  $istio_ns: ARM_A,
  $sidecar_ns: ARM_B,
  $namespace: ARM_B,
  $pod: '.*',
};

/** A panel query in the lab: the label `namespace` (a cluster's arm) becomes `arm`, then the variables. */
function inLab(expr: string): string {
  return substitute(expr.replace(/(?<![\w$])namespace\b/g, 'arm'), VARIABLES);
}

interface Matrix {
  status: string;
  error?: string;
  data?: { result: { metric: Record<string, string>; values: [number, string][] }[] };
}

describe('dashboards against the lab (cb-lab --prometheus, stock Envoys, real sidecars)', () => {
  const out = mkdtempSync(join(tmpdir(), 'cb-lab-dash-'));
  let lab: ReturnType<typeof startLab>;
  let promUrl: string;
  let range: { start: number; end: number };

  beforeAll(async () => {
    const start = Math.floor(Date.now() / 1000);
    // 120 req/s is 3x one replica's 8 slots x 200 ms: the sidecars shed, the Envoys queue. 4 s covers a flush of
    // Envoy's histograms (every 5 s since it started, the probe's half second included).
    lab = startLab([
      '--arms',
      `${ARM_A},${ARM_B}`,
      '--replicas',
      '1',
      '--duration',
      '4',
      '--rate',
      '120',
      '--probe-seconds',
      '0.5',
      '--prometheus',
      '--keep',
      '--out',
      out,
    ]);
    await waitForStderr(lab, 'stays at', 100_000);
    const url = /Prometheus stays at (http:\/\/127\.0\.0\.1:\d+)/.exec(lab.stderr())?.[1];
    if (url === undefined) throw new Error(`cb-lab did not keep Prometheus: ${lab.stderr().slice(-1500)}`);
    promUrl = url;
    range = { start, end: Math.ceil(Date.now() / 1000) };
  }, 120_000);

  afterAll(async () => {
    await stopLab(lab);
    rmSync(out, { recursive: true, force: true });
  });

  async function queryRange(expr: string): Promise<Matrix> {
    const params = new URLSearchParams({
      query: expr,
      start: String(range.start),
      end: String(range.end),
      step: '1',
    });
    return (await (await fetch(`${promUrl}/api/v1/query_range?${params.toString()}`)).json()) as Matrix;
  }

  it("holds a stock Envoy's names only: envoy_cluster_name, never Istio's cluster_name", async () => {
    const stock = await queryRange('count({__name__=~"envoy_cluster_.+",envoy_cluster_name=~"outbound.*"})');
    expect(stock.data?.result.length).toBe(1);
    const istio = await queryRange('count({__name__=~"envoy_.+",cluster_name!=""})');
    expect(istio.data?.result).toEqual([]);
  });

  const queries = panelQueries();

  it.each(queries.filter((q) => !istioTelemetryOnly(q.expr)).map((q) => [q.file, q.title, q.expr]))(
    '%s: %s: returns data over the run: %s',
    async (_file, _title, expr) => {
      const r = await queryRange(inLab(expr));
      expect({ status: r.status, error: r.error }).toEqual({ status: 'success', error: undefined });
      const series = r.data?.result ?? [];
      expect(series.length).toBeGreaterThan(0);
      expect(series.some((s) => s.values.some(([, v]) => Number.isFinite(Number(v))))).toBe(true);
      // A query over both arms draws a series for each.
      if (expr.includes('$istio_ns|$sidecar_ns'))
        expect(series.map((s) => s.metric['arm']).sort()).toEqual([ARM_A, ARM_B].sort());
    },
  );

  it.each(queries.filter((q) => istioTelemetryOnly(q.expr)).map((q) => [q.file, q.title, q.expr]))(
    "%s: %s: Istio telemetry, nothing from the lab's stock Envoys: %s",
    async (_file, _title, expr) => {
      const r = await queryRange(inLab(expr));
      expect({ status: r.status, error: r.error, result: r.data?.result }).toEqual({
        status: 'success',
        error: undefined,
        result: [],
      });
    },
  );
});
