// cb-lab --prometheus: a real Prometheus scrapes every API, sidecar and Envoy of the run, and dies with the lab.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { readSeedBody } from '../packages/lab/src/drivers/builtin.js';
import type { Endpoint } from '../packages/lab/src/topology.js';
import { Supervisor } from '../packages/lab/src/processes.js';
import { startPrometheus } from '../packages/lab/src/prometheus.js';
import { startTopology, stopTopology, type Topology } from '../packages/lab/src/topology.js';
import { interrupt, labMain, repoRoot, startLab, stopLab, waitForStderr } from './lab-cli.js';

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
      const up = await query('max by (job, arm, callers, pod) (max_over_time(up[10m]))');
      const jobs = up.data.result
        .filter((r) => r.value[1] === '1')
        .map((r) => `${r.metric['job']}/${r.metric['arm']}/${r.metric['callers']}/${r.metric['pod']}`)
        .sort();
      expect(jobs).toEqual(['cb-sidecar/sidecar/1/iris-0', 'iris-api/sidecar/1/iris-0']);
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

/** A plain Envoy in front of `endpoints` (listener and admin on port 0), standing in for the mesh arms' bootstraps. */
function plainEnvoy(endpoints: readonly Endpoint[]): object {
  const socket = (address: string, port: number) => ({ socket_address: { address, port_value: port } });
  return {
    admin: { address: socket('127.0.0.1', 0) },
    static_resources: {
      listeners: [
        {
          name: 'in',
          address: socket('127.0.0.1', 0),
          filter_chains: [
            {
              filters: [
                {
                  name: 'envoy.filters.network.http_connection_manager',
                  typed_config: {
                    '@type':
                      'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
                    stat_prefix: 'in',
                    route_config: {
                      virtual_hosts: [
                        {
                          name: 'all',
                          domains: ['*'],
                          routes: [{ match: { prefix: '/' }, route: { cluster: 'iris' } }],
                        },
                      ],
                    },
                    http_filters: [
                      {
                        name: 'envoy.filters.http.router',
                        typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' },
                      },
                    ],
                  },
                },
              ],
            },
          ],
        },
      ],
      clusters: [
        {
          name: 'iris',
          connect_timeout: '1s',
          type: 'STATIC',
          load_assignment: {
            cluster_name: 'iris',
            endpoints: [{ lb_endpoints: endpoints.map((e) => ({ endpoint: { address: socket(e.address, e.port) } })) }],
          },
        },
      ],
    },
  };
}

describe('the lab Prometheus in a mesh run', () => {
  it("scrapes every caller's and inbound Envoy at /stats/prometheus, labelled by arm, callers, pod and role", async () => {
    const sup = new Supervisor();
    const dir = mkdtempSync(join(tmpdir(), 'cb-lab-prom-mesh-'));
    let topo: Topology | undefined;
    try {
      const prom = await startPrometheus(sup, join(dir, 'prometheus'), repoRoot);
      topo = await startTopology(sup, {
        arm: 'istio',
        callers: 2,
        replicas: 1,
        workers: 1,
        workDir: dir,
        inference: { concurrency: 8, ms: 5 },
        mesh: { caller: (endpoints) => plainEnvoy(endpoints), inbound: (app) => plainEnvoy([app]), workers: 1 },
        paths: {
          repoRoot,
          apiMain: join(repoRoot, 'packages', 'api', 'dist', 'main.js'),
          proxyMain: join(repoRoot, 'packages', 'proxy', 'dist', 'main.js'),
          cpuQuotaMain: join(labMain, '..', 'cpu-quota-main.js'),
        },
      });
      await prom.watch(topo);
      const body = readSeedBody(repoRoot);
      for (const url of topo.callerUrls) {
        for (let i = 0; i < 10; i++) {
          const res = await request(`${url}/predict`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body,
          });
          await res.body.dump();
          expect(res.statusCode).toBe(200);
        }
      }
      // Each Envoy counts its own upstream requests: 10 from each caller, all 20 at the replica's inbound Envoy.
      const q = 'sum by (job, arm, callers, pod, role) (envoy_cluster_upstream_rq_total{envoy_cluster_name="iris"})';
      const want = [
        'envoy/istio/2/caller-0/caller=10',
        'envoy/istio/2/caller-1/caller=10',
        'envoy/istio/2/iris-0/inbound=20',
      ];
      let got: string[] = [];
      for (let i = 0; i < 40 && got.join() !== want.join(); i++) {
        await sleep(250);
        const res = (await (await fetch(`${prom.url}/api/v1/query?query=${encodeURIComponent(q)}`)).json()) as Vector;
        got = res.data.result
          .map(
            (r) =>
              `${r.metric['job']}/${r.metric['arm']}/${r.metric['callers']}/${r.metric['pod']}/${r.metric['role']}=${r.value[1]}`,
          )
          .sort();
      }
      expect(got).toEqual(want);
    } finally {
      if (topo !== undefined) await stopTopology(sup, topo);
      await sup.stopAll(3000);
    }
  }, 60_000);
});
