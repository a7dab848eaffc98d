// The lab's mesh arms end to end: real APIs, real Envoys (one per caller, one inbound per replica) built by
// @infer-cb/policy from a small DestinationRule, and real sidecars, briefly.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runLab } from './lab-cli.js';

interface Arm {
  arm: string;
  callers: number;
  key: string;
  requests: number;
  status_codes: Record<string, number>;
  errors: number;
  rejection_reasons: Record<string, number>;
  envoy: {
    callers: { upstream_rq_pending_overflow: number; upstream_rq_total: number };
    inbound: { upstream_rq_pending_overflow: number; upstream_rq_total: number };
  } | null;
}

// Limits a short attack overflows: per caller 12 connections and 12 pending for the whole Service. Two callers
// then let up to 12 requests at once reach each of the 2 replicas, above the sidecar's derived limit (9 for 8
// slots), so in istio-sidecar the sidecars shed before the callers' Envoys do.
const POLICY = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: iris-svc }
spec:
  host: iris-svc
  trafficPolicy:
    connectionPool: { tcp: { maxConnections: 12 }, http: { http1MaxPendingRequests: 12 } }
    outlierDetection: { consecutive5xxErrors: 5, interval: 10s, baseEjectionTime: 30s, maxEjectionPercent: 100 }
`;

describe('cb-lab mesh arms', () => {
  it('runs istio and istio-sidecar at 2 callers: Envoy overflows answered UO, the sidecar sheds with its reasons', async () => {
    const out = mkdtempSync(join(tmpdir(), 'cb-lab-mesh-'));
    const policy = join(out, 'dr.yaml');
    writeFileSync(policy, POLICY);
    const run = await runLab([
      '--arms',
      'istio,istio-sidecar',
      '--callers',
      '2',
      '--replicas',
      '2',
      '--duration',
      '2',
      '--rate',
      '300',
      '--probe-seconds',
      '0.5',
      '--policy',
      policy,
      '--out',
      out,
    ]);
    expect({ code: run.code, stderr: run.stderr.slice(-1500) }).toMatchObject({ code: 0 });
    const s = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as { schema: string; arms: Arm[] };
    expect(s.schema).toBe('cb-lab/summary/v3');
    expect(s.arms.map((a) => a.key)).toEqual(['istio-c2', 'istio-sidecar-c2']);
    for (const a of s.arms) {
      const answered = Object.values(a.status_codes).reduce((x, y) => x + y, 0);
      expect(a.requests).toBe(600);
      expect(answered + a.errors).toBe(a.requests);
      expect(a.envoy).not.toBeNull();
    }
    const [istio, meshSidecar] = s.arms as [Arm, Arm];
    // 300 req/s against 2 x 8 model slots of 200 ms (80 req/s): beyond 2 x (12 + 12) waiting, every rejection
    // is Envoy's own overflow answer, counted by the callers' Envoys and seen by the driver.
    const rejected = istio.status_codes['503'] ?? 0;
    expect(rejected).toBeGreaterThan(0);
    expect(istio.rejection_reasons['envoy-overloaded']).toBe(rejected);
    expect(istio.envoy?.callers.upstream_rq_pending_overflow).toBe(rejected);
    // Same Envoys, with a sidecar in each replica: the sidecars shed first, with their reasons.
    expect(meshSidecar.envoy?.inbound.upstream_rq_total).toBeGreaterThan(0);
    const shedBySidecars = Object.entries(meshSidecar.rejection_reasons)
      .filter(([reason]) => reason !== 'envoy-overloaded')
      .reduce((n, [, count]) => n + count, 0);
    expect(shedBySidecars).toBeGreaterThan(0);
  }, 120_000);
});
