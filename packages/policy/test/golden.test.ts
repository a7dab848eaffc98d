// Golden outputs: the bootstraps and sidecar configs for the book's policy and for edge cases, compared
// with the committed files in test/golden/ (UPDATE_GOLDEN=1 rewrites them), and every bootstrap checked
// by the real `envoy --mode validate`.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import {
  callerBootstrap,
  inboundBootstrap,
  parseMeshPolicy,
  readMeshPolicy,
  sidecarConfig,
  type EnvoyBootstrap,
  type MeshPolicy,
  type Profile,
  type SidecarConfigOptions,
} from '../src/index.js';
import { validateBootstrap as validate } from '@infer-cb/testkit';

const GOLDEN = fileURLToPath(new URL('./golden/', import.meta.url));
const BOOK = fileURLToPath(new URL('../fixtures/book-destinationrule.yaml', import.meta.url));

/** The policies of the golden cases. */
const POLICIES: Record<string, () => MeshPolicy> = {
  book: () => readMeshPolicy(BOOK),
  // Nothing set: every threshold 2^32-1, no outlier detection, the mesh's connect timeout and LB default.
  unset: () => parseMeshPolicy('trafficPolicy: {}'),
  outlier: () =>
    parseMeshPolicy(`trafficPolicy:
  loadBalancer: { simple: LEAST_CONN }
  connectionPool:
    tcp: { maxConnections: 10, connectTimeout: 250ms, maxConnectionDuration: 10m, tcpKeepalive: { probes: 3, time: 60s, interval: 10s } }
    http: { http2MaxRequests: 20, maxRetries: 3, idleTimeout: 30s }
  outlierDetection:
    consecutive5xxErrors: 7
    consecutiveGatewayErrors: 3
    interval: 5s
    baseEjectionTime: 15s
    maxEjectionPercent: 50
    minHealthPercent: 40
    splitExternalLocalOriginErrors: true
    consecutiveLocalOriginFailures: 4
`),
  'inbound-pool': () =>
    parseMeshPolicy(`apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: iris-svc }
spec:
  host: iris-svc
  trafficPolicy:
    connectionPool: { tcp: { maxConnections: 100 }, http: { http1MaxPendingRequests: 100, http2MaxRequests: 100 } }
  subsets:
    - name: v1
      trafficPolicy: { connectionPool: { tcp: { maxConnections: 5 } } }
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: iris-svc }
spec:
  inboundConnectionPool:
    tcp: { maxConnections: 8, connectTimeout: 1s }
    http: { http1MaxPendingRequests: 4, idleTimeout: 60s }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: iris-svc }
spec:
  hosts: [iris-svc]
  http: [{ route: [{ destination: { host: iris-svc, subset: v1 } }] }]
`),
  'vs-retries': () =>
    parseMeshPolicy(`apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: iris-svc }
spec: { host: iris-svc }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: iris-svc }
spec:
  hosts: [iris-svc.circuit-breaker.svc.cluster.local]
  http:
    - route: [{ destination: { host: iris-svc, port: { number: 8000 } } }]
      timeout: 5s
      retries:
        attempts: 3
        perTryTimeout: 2s
        retryOn: 5xx,reset,503,429
        retryRemoteLocalities: true
        retryIgnorePreviousHosts: false
        backoff: 50ms
`),
};

const ANY = { address: '127.0.0.1', port: 0 };
const ENDPOINTS = [
  { address: '127.0.0.1', port: 18001 },
  { address: '127.0.0.1', port: 18002 },
  { address: '127.0.0.1', port: 18003 },
];

const BOOTSTRAPS: [string, () => EnvoyBootstrap][] = [];
for (const [name, policy] of Object.entries(POLICIES)) {
  for (const profile of ['book', 'current'] as Profile[]) {
    BOOTSTRAPS.push([
      `${name}.caller.${profile}`,
      () => callerBootstrap(policy(), { profile, service: 'iris-svc', endpoints: ENDPOINTS, listen: ANY, admin: ANY }),
    ]);
    BOOTSTRAPS.push([
      `${name}.inbound.${profile}`,
      () => inboundBootstrap(policy(), { profile, listen: ANY, admin: ANY, app: { address: '127.0.0.1', port: 8000 } }),
    ]);
  }
}
// The access log option, once.
BOOTSTRAPS.push([
  'book.caller.book.access-log',
  () =>
    callerBootstrap(readMeshPolicy(BOOK), {
      profile: 'book',
      service: 'iris-svc',
      endpoints: ENDPOINTS,
      listen: ANY,
      admin: ANY,
      accessLog: { path: '/dev/stdout' },
    }),
]);

const BOOK_8X200 = { replicas: 3, callers: 1, model: { concurrency: 8, serviceTimeMs: 200 } };
const SIDECARS: [string, () => MeshPolicy, SidecarConfigOptions][] = [
  ['book.sidecar.static-8x200ms', POLICIES['book'] as () => MeshPolicy, { ...BOOK_8X200, mode: 'static' }],
  ['book.sidecar.adaptive-8x200ms', POLICIES['book'] as () => MeshPolicy, { ...BOOK_8X200, mode: 'adaptive' }],
  [
    'book.sidecar.static-no-model-4-callers',
    POLICIES['book'] as () => MeshPolicy,
    { replicas: 3, callers: 4, mode: 'static' },
  ],
  [
    'inbound-pool.sidecar.static-no-model-4-callers',
    POLICIES['inbound-pool'] as () => MeshPolicy,
    { replicas: 3, callers: 4, mode: 'static' },
  ],
];

/** Compares `value` (as YAML) with test/golden/<name>.yaml, or writes it when UPDATE_GOLDEN is set. */
function golden(name: string, value: unknown): void {
  const file = join(GOLDEN, `${name}.yaml`);
  const text = stringify(value);
  if (process.env['UPDATE_GOLDEN'] === '1' || !existsSync(file)) {
    if (process.env['CI'] !== undefined && process.env['UPDATE_GOLDEN'] !== '1')
      throw new Error(`golden file ${file} is missing (run UPDATE_GOLDEN=1 locally and commit it)`);
    mkdirSync(GOLDEN, { recursive: true });
    writeFileSync(file, text);
  }
  expect(text).toBe(readFileSync(file, 'utf8'));
}

describe('golden outputs', () => {
  it.each(BOOTSTRAPS)('%s', (name, make) => golden(name, make()));
  it.each(SIDECARS)('%s', (name, policy, opts) => golden(name, sidecarConfig(policy(), opts)));
});

describe('every generated bootstrap passes envoy --mode validate (Envoy 1.40)', () => {
  it('validates all of them', async () => {
    // Four at a time: each Envoy takes ~50 MB and a core while it validates.
    const queue = [...BOOTSTRAPS];
    const failed: string[] = [];
    const worker = async (): Promise<void> => {
      for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
        const [name, make] = next;
        const r = await validate(make());
        if (r.code !== 0) failed.push(`${name}: ${r.output}`);
      }
    };
    await Promise.all([worker(), worker(), worker(), worker()]);
    expect(failed).toEqual([]);
  }, 60_000);
});
