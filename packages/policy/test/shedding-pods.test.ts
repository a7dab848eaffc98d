// The mesh policy for pods that shed load themselves: outlier detection that does not eject a pod for its 503s.
import { callerBootstrap, parseMeshPolicy, withSheddingPods } from '../src/index.js';

const RULE = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: iris-svc }
spec:
  host: iris-svc
  trafficPolicy:
    connectionPool: { tcp: { maxConnections: 100 }, http: { http1MaxPendingRequests: 100 } }
    outlierDetection: { consecutive5xxErrors: 7, consecutiveGatewayErrors: 3, interval: 10s, baseEjectionTime: 30s, maxEjectionPercent: 100 }
`;

function outlier(profile: 'book' | 'current'): Record<string, unknown> {
  const policy = withSheddingPods(parseMeshPolicy(RULE), profile);
  const any = { address: '127.0.0.1', port: 0 };
  const boot = callerBootstrap(policy, {
    profile,
    service: 'iris-svc',
    endpoints: [{ address: '127.0.0.1', port: 1 }],
    listen: any,
    admin: any,
  }) as { static_resources: { clusters: { outlier_detection?: Record<string, unknown> }[] } };
  return boot.static_resources.clusters[0]?.outlier_detection ?? {};
}

describe('withSheddingPods', () => {
  it('current: 503s no longer eject; connect failures, resets and timeouts eject after the rule count', () => {
    expect(outlier('current')).toMatchObject({
      consecutive_5xx: 0,
      enforcing_consecutive_5xx: 0,
      consecutive_gateway_failure: 0,
      enforcing_consecutive_gateway_failure: 0,
      split_external_local_origin_errors: true,
      consecutive_local_origin_failure: 7,
      base_ejection_time: '30s',
      max_ejection_percent: 100,
    });
  });

  it('book: Istio 1.9 has no local-origin split, so nothing ejects', () => {
    const od = outlier('book');
    expect(od).toMatchObject({ consecutive_5xx: 0, enforcing_consecutive_5xx: 0 });
    expect(od['split_external_local_origin_errors']).toBeUndefined();
  });

  it('leaves everything else, and a rule without outlier detection, as it was', () => {
    const plain = parseMeshPolicy('trafficPolicy: { connectionPool: { tcp: { maxConnections: 4 } } }');
    expect(withSheddingPods(plain, 'current')).toBe(plain);
    const shed = withSheddingPods(parseMeshPolicy(RULE), 'current');
    expect(shed.trafficPolicy.connectionPool).toEqual(parseMeshPolicy(RULE).trafficPolicy.connectionPool);
    expect(Object.isFrozen(shed.trafficPolicy.outlierDetection)).toBe(true);
  });
});
