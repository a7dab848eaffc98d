import { scrapeTargets } from '../src/prometheus.js';
import type { Topology } from '../src/topology.js';

const topology = (metrics: boolean): Topology => ({
  arm: 'sidecar',
  callers: 1,
  callerUrls: ['http://127.0.0.1:4000'],
  callerEnvoys: [],
  children: [],
  replicas: [
    { index: 0, apiUrl: 'http://127.0.0.1:4001', metrics, adminUrl: 'http://127.0.0.1:4002' },
    { index: 1, apiUrl: 'http://127.0.0.1:4011', metrics, adminUrl: 'http://127.0.0.1:4012' },
  ],
});

describe("the lab's Prometheus targets", () => {
  it("scrapes every API's /metrics and every sidecar's admin", () => {
    const targets = scrapeTargets(topology(true));
    expect(targets['iris-api'].map((t) => t.targets)).toEqual([['127.0.0.1:4001'], ['127.0.0.1:4011']]);
    expect(targets['cb-sidecar']).toHaveLength(2);
  });

  it('leaves out MLServer replicas, whose metrics port is off, and keeps their sidecars', () => {
    const targets = scrapeTargets(topology(false));
    expect(targets['iris-api']).toEqual([]);
    expect(targets['cb-sidecar']).toHaveLength(2);
  });
});
