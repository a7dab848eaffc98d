// cb-lab --prometheus: a real Prometheus scrapes every API, sidecar and Envoy of the run, and dies with the lab.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { interrupt, startLab, stopLab, waitForStderr } from './lab-cli.js';

interface Vector {
  data: { result: { metric: Record<string, string>; value: [number, string] }[] };
}

describe('cb-lab --prometheus', () => {
  it("runs a real Prometheus that scraped every API, sidecar and Envoy (callers' and inbound), kept with --keep until SIGINT", async () => {
    const out = mkdtempSync(join(tmpdir(), 'cb-lab-prom-'));
    const lab = startLab([
      '--arms',
      'sidecar,istio@2',
      '--replicas',
      '1',
      '--duration',
      '3',
      '--rate',
      '50',
      '--probe-seconds',
      '0.5',
      '--prometheus',
      '--keep',
      '--out',
      out,
    ]);
    try {
      await waitForStderr(lab, 'stays at', 90_000);
      const url = /Prometheus stays at (http:\/\/127\.0\.0\.1:\d+)/.exec(lab.stderr())?.[1];
      expect(url).toBeDefined();
      const query = async (q: string): Promise<Vector> =>
        (await (await fetch(`${url}/api/v1/query?query=${encodeURIComponent(q)}`)).json()) as Vector;
      const labels = (v: Vector, names: string[]): string[] =>
        v.data.result.map((r) => names.map((n) => r.metric[n] ?? '-').join('/')).sort();
      const up = await query('max by (job, arm, callers, pod, role) (max_over_time(up[10m])) == 1');
      expect(labels(up, ['job', 'arm', 'callers', 'pod', 'role'])).toEqual([
        'cb-sidecar/sidecar/1/iris-0/-',
        'envoy/istio/2/caller-0/caller',
        'envoy/istio/2/caller-1/caller',
        'envoy/istio/2/iris-0/inbound',
        'iris-api/istio/2/iris-0/-',
        'iris-api/sidecar/1/iris-0/-',
      ]);
      const forwarded = await query('sum(last_over_time(cb_requests_total{outcome="forwarded"}[10m]))');
      expect(Number(forwarded.data.result[0]?.value[1] ?? 0)).toBeGreaterThan(0);
      // Every Envoy's own series, as a stock Envoy names them: each caller's and the inbound one carried requests.
      const sent = await query(
        'sum by (pod, role) (last_over_time(envoy_cluster_upstream_rq_total{job="envoy",envoy_cluster_name=~"outbound.*|inbound.*"}[10m])) > 0',
      );
      expect(labels(sent, ['pod', 'role'])).toEqual(['caller-0/caller', 'caller-1/caller', 'iris-0/inbound']);
      const { seen, code, leftovers } = await interrupt(lab);
      expect(seen.length).toBeGreaterThanOrEqual(1); // prometheus itself
      expect(code).toBe(130);
      expect(leftovers).toEqual([]);
    } finally {
      await stopLab(lab);
    }
  }, 120_000);
});
