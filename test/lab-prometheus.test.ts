// cb-lab --prometheus: a real Prometheus scrapes every API and sidecar of the arm, and dies with the lab.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { interrupt, startLab, stopLab, waitForStderr } from './lab-cli.js';

interface Vector {
  data: { result: { metric: Record<string, string>; value: [number, string] }[] };
}

describe('cb-lab --prometheus', () => {
  it('runs a real Prometheus that scraped the sidecar and the API, kept with --keep until SIGINT', async () => {
    const out = mkdtempSync(join(tmpdir(), 'cb-lab-prom-'));
    const lab = startLab([
      '--arms',
      'sidecar',
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
      const up = await query('max by (job, arm) (max_over_time(up[10m]))');
      const jobs = up.data.result
        .filter((r) => r.value[1] === '1')
        .map((r) => `${r.metric['job']}/${r.metric['arm']}`)
        .sort();
      expect(jobs).toEqual(['cb-sidecar/sidecar', 'iris-api/sidecar']);
      const forwarded = await query('sum(last_over_time(cb_requests_total{outcome="forwarded"}[10m]))');
      expect(Number(forwarded.data.result[0]?.value[1] ?? 0)).toBeGreaterThan(0);
      const { seen, code, leftovers } = await interrupt(lab);
      expect(seen.length).toBeGreaterThanOrEqual(1); // prometheus itself
      expect(code).toBe(130);
      expect(leftovers).toEqual([]);
    } finally {
      await stopLab(lab);
    }
  }, 120_000);
});
