import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { parseSettings } from '@infer-cb/proxy';
import {
  deriveSidecarLimits,
  parseMeshPolicy,
  PolicyError,
  readMeshPolicy,
  sidecarConfig,
  type SidecarConfigOptions,
} from '../src/index.js';

const BOOK = readMeshPolicy(fileURLToPath(new URL('../fixtures/book-destinationrule.yaml', import.meta.url)));
const MANIFESTS_DR = parseMeshPolicy(`trafficPolicy:
  connectionPool:
    tcp: { maxConnections: 100, connectTimeout: 1s }
    http: { http1MaxPendingRequests: 100, http2MaxRequests: 100, maxRequestsPerConnection: 100, idleTimeout: 60s }
  outlierDetection: { consecutive5xxErrors: 5, consecutiveGatewayErrors: 0, interval: 10s, baseEjectionTime: 30s, maxEjectionPercent: 100 }
`);
const lab = (serviceTimeMs: number, mode: 'static' | 'adaptive' = 'static'): SidecarConfigOptions => ({
  replicas: 3,
  callers: 1,
  mode,
  model: { concurrency: 8, serviceTimeMs },
});

/** What cb-sidecar itself makes of the config (its own parser and validation). */
function settingsOf(policy = MANIFESTS_DR, opts: SidecarConfigOptions = lab(200)): ReturnType<typeof parseSettings> {
  return parseSettings(stringify(sidecarConfig(policy, opts)), 'derived');
}

describe('deriveSidecarLimits: the model known', () => {
  it.each([
    // service time, limit (8 slots + handoff), pending, queue timeout
    [5, 12, 4, 1],
    [30, 9, 2, 3],
    [200, 9, 2, 20],
    [1000, 9, 2, 100],
  ])('8 slots x %i ms: limit %i, pending %i, queue timeout %i ms', (t, limit, pending, queueMs) => {
    const d = deriveSidecarLimits(MANIFESTS_DR, lab(t));
    expect([d.limit, d.pending, d.queueTimeoutMs]).toEqual([limit, pending, queueMs]);
    expect(d.model?.capacityRps).toBeCloseTo((8 * 1000) / t);
  });

  it('keeps a slot of headroom above the model slots, and says why', () => {
    const d = deriveSidecarLimits(MANIFESTS_DR, lab(200));
    expect(d.explanation.join('\n')).toMatch(
      /limit = slots \+ handoff slots = 8 \+ max\(1, ceil\(8 x 2ms \/ 200ms\)\) = 9/,
    );
    expect(d.explanation.join('\n')).toMatch(/against the mesh: 34 in flight per replica is more than the model's 9/);
  });

  it('adaptive: from the static limit up to twice it', () => {
    expect(deriveSidecarLimits(MANIFESTS_DR, lab(200, 'adaptive')).adaptive).toEqual({ min: 9, max: 18 });
    expect(deriveSidecarLimits(MANIFESTS_DR, lab(5, 'adaptive')).adaptive).toEqual({ min: 12, max: 24 });
  });

  it('shows the mesh figure per replica: per-caller limit x callers / replicas, capped by the inbound pool', () => {
    const d = deriveSidecarLimits(MANIFESTS_DR, { replicas: 3, callers: 4, mode: 'static' });
    // min(100, 100) x 4 / 3 = 134, but each replica's inbound pool (the same DR) lets only 100 through
    expect(d.mesh).toEqual({
      perCallerInflight: 100,
      perCallerPending: 100,
      perReplicaInflight: 100,
      perReplicaPending: 100,
      inboundInflight: 100,
    });
    expect(d.limit).toBe(100);
  });

  it('without the model and a DR that limits nothing, leaves the sidecar its defaults', () => {
    const d = deriveSidecarLimits(parseMeshPolicy('trafficPolicy: {}'), { replicas: 3, callers: 1, mode: 'static' });
    expect([d.limit, d.pending, d.queueTimeoutMs]).toEqual([undefined, undefined, undefined]);
    const s = settingsOf(parseMeshPolicy('trafficPolicy: {}'), { replicas: 3, callers: 1, mode: 'static' });
    expect(s.concurrency.limit).toBe(64);
  });

  it('lists every bad option at once', () => {
    let err: unknown;
    try {
      deriveSidecarLimits(BOOK, {
        replicas: 0,
        callers: 1.5,
        mode: 'fast' as never,
        model: { concurrency: 0, serviceTimeMs: -1 },
      });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(PolicyError);
    expect((err as PolicyError).code).toBe('POLICY_BAD_OPTIONS');
    expect((err as PolicyError).problems).toHaveLength(5);
  });
});

describe('sidecarConfig: a config cb-sidecar accepts, with the derived numbers', () => {
  it('static, 8 slots x 200 ms: limit 9, queue 2 waiting up to 20 ms, CoDel target 5 ms', () => {
    const s = settingsOf();
    expect(s.concurrency).toEqual({ mode: 'static', limit: 9, min: 1, max: 9 });
    expect(s.queue).toEqual({ size: 2, timeoutMs: 20, codelTargetMs: 5, codelIntervalMs: 100 });
    // The pool settings and the breaker's consecutive count come from the DestinationRule.
    expect(s.upstream.connectTimeoutMs).toBe(1000);
    expect(s.upstream.maxRequestsPerConnection).toBe(100);
    expect(s.breaker.consecutive5xxErrors).toBe(5);
    // The open interval starts at 2 s rather than the rule's baseEjectionTime (see docs/istio-arm.md).
    expect(s.breaker.resetTimeoutMs).toBe(2000);
  });

  it('adaptive: cb-sidecar starts at the floor and may grow to the ceiling', () => {
    const s = settingsOf(MANIFESTS_DR, lab(200, 'adaptive'));
    expect(s.concurrency).toEqual({ mode: 'adaptive', limit: 18, min: 9, max: 18 });
  });

  it("the book's DR: its deprecated and Envoy-only fields do not reach the sidecar", () => {
    const doc = sidecarConfig(BOOK, lab(200));
    expect(doc.trafficPolicy).toEqual({
      connectionPool: {
        tcp: { maxConnections: 9 },
        http: { maxRequestsPerConnection: 100, http2MaxRequests: 9, http1MaxPendingRequests: 2 },
      },
      outlierDetection: { interval: '1s', baseEjectionTime: '10m', maxEjectionPercent: 10 },
    });
    expect(() => settingsOf(BOOK)).not.toThrow();
  });

  it("keeps a bare document's sidecar section and applies overrides last", () => {
    const policy = parseMeshPolicy(
      'trafficPolicy: {}\nsidecar: { deadline: { header: x-deadline }, queue: { timeout: 5s } }\n',
    );
    const doc = sidecarConfig(policy, { ...lab(200), overrides: { drain: { delay: '0s', grace: '2s' } } });
    const s = parseSettings(stringify(doc), 'derived');
    expect(s.deadline.header).toBe('x-deadline');
    expect(s.queue.timeoutMs).toBe(20); // derived wins over the document's own
    expect(s.drain).toEqual({ delayMs: 0, graceMs: 2000 });
  });
});

describe('explicit numbers (the lab flags) win over the rule', () => {
  it('replaces the derived numbers and says so', () => {
    const d = deriveSidecarLimits(MANIFESTS_DR, {
      ...lab(200),
      explicit: { limit: 8, pending: 4, queueTimeoutMs: 20 },
    });
    expect([d.limit, d.pending, d.queueTimeoutMs]).toEqual([8, 4, 20]);
    expect(d.explanation.join('\n')).toMatch(/limit 8 given explicitly \(the rule says 9\)/);
    expect(settingsOf(MANIFESTS_DR, { ...lab(200), explicit: { limit: 8 } }).concurrency.limit).toBe(8);
  });

  it('keeps the adaptive bounds consistent', () => {
    const d = deriveSidecarLimits(MANIFESTS_DR, { ...lab(200, 'adaptive'), explicit: { adaptiveMax: 4 } });
    expect(d.adaptive).toEqual({ min: 4, max: 4 });
    expect(() => deriveSidecarLimits(MANIFESTS_DR, { ...lab(200), explicit: { limit: 0 } })).toThrow(
      /explicit\.limit: must be an integer >= 1/,
    );
  });
});
