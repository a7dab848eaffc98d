// A replica's own (inbound) Envoy built by inboundBootstrap(), behind the callers' Envoys, run for real:
// the DestinationRule's pool applies per replica, shared by every caller, and its overflow answers meet
// the callers' retry policies.
import { callerBootstrap, inboundBootstrap, parseMeshPolicy, type MeshPolicy, type Profile } from '../src/index.js';
import { startEnvoy, stat, type TestEnvoy as RunningEnvoy } from '@infer-cb/testkit';
import { byStatus, send, TestUpstream, until, type Reply } from './support/upstream.js';

const ANY_PORT = { address: '127.0.0.1', port: 0 };
let app: TestUpstream;
let envoys: RunningEnvoy[] = [];

beforeEach(async () => {
  app = await new TestUpstream('model').start();
});
afterEach(async () => {
  await Promise.all(envoys.map((e) => e.stop()));
  envoys = [];
  await app.stop();
});

/** One replica (inbound Envoy in front of `app`) and `n` callers' Envoys, all from `policy`. */
async function mesh(
  policy: MeshPolicy,
  profile: Profile,
  n: number,
): Promise<{ inbound: RunningEnvoy; callers: RunningEnvoy[] }> {
  const inbound = await startEnvoy((log) =>
    inboundBootstrap(policy, {
      profile,
      listen: ANY_PORT,
      admin: ANY_PORT,
      app: app.address,
      accessLog: { path: log },
    }),
  );
  envoys.push(inbound);
  const port = Number(new URL(inbound.url).port);
  const callers = await Promise.all(
    Array.from({ length: n }, () =>
      startEnvoy((log) =>
        callerBootstrap(policy, {
          profile,
          service: 'iris-svc',
          endpoints: [{ address: '127.0.0.1', port }],
          listen: ANY_PORT,
          admin: ANY_PORT,
          accessLog: { path: log },
        }),
      ),
    ),
  );
  envoys.push(...callers);
  return { inbound, callers };
}

const POOL_2_2 = parseMeshPolicy(
  'trafficPolicy: { connectionPool: { tcp: { maxConnections: 2 }, http: { http1MaxPendingRequests: 2 } } }',
);

async function sum(es: RunningEnvoy[], suffix: string): Promise<number> {
  const values = await Promise.all(es.map(async (e) => stat(await e.stats(suffix.slice(1)), suffix)));
  return values.reduce((a, b) => a + b, 0);
}

/**
 * Three callers send 2 requests each to one replica (2 + 2) while its model holds every request: the first
 * two fill the replica's 2 connections to the model (opened before the others arrive), the next 2 wait, and
 * the replica's Envoy must answer the rest itself. Resolves once `overflows` were counted there.
 */
async function overflowReplica(
  inbound: RunningEnvoy,
  callers: RunningEnvoy[],
  overflows: number,
): Promise<Promise<Reply>[]> {
  const [c1, c2, c3] = callers as [RunningEnvoy, RunningEnvoy, RunningEnvoy];
  app.hold = true;
  const replies = [send(c1.url), send(c1.url)];
  await app.waitForInflight(2);
  replies.push(send(c2.url), send(c2.url), send(c3.url), send(c3.url));
  await until(
    async () => stat(await inbound.stats('pending_overflow'), '.upstream_rq_pending_overflow') === overflows,
    `${overflows} overflows at the replica`,
  );
  return replies;
}

describe('inbound Envoy: the DestinationRule pool per replica, shared by all callers', () => {
  it('current: 3 callers each within their own limits (2 + 2) overflow the replica (2 + 2): its Envoy answers UO itself, not retried', async () => {
    const { inbound, callers } = await mesh(POOL_2_2, 'current', 3);
    const replies = await overflowReplica(inbound, callers, 2);
    expect(stat(await inbound.stats('pending_active'), '.upstream_rq_pending_active')).toBe(2);
    app.release();
    const all = await Promise.all(replies);
    expect(byStatus(all)).toEqual({ 200: 4, 503: 2 });
    for (const r of all.filter((x) => x.status === 503)) {
      expect(r.headers['x-envoy-overloaded']).toBe('true');
      expect(Buffer.byteLength(r.body)).toBe(81);
    }
    expect(app.peakInflight).toBe(2);
    // No caller overflowed (each sent 2, within its own 2 connections), and none retried (current profile).
    expect(await sum(callers, '.upstream_rq_pending_overflow')).toBe(0);
    expect(await sum(callers, '.upstream_rq_retry')).toBe(0);
    await until(() => inbound.accessLog().length === 6, 'six inbound access-log lines');
    expect(inbound.accessLog().filter((l) => l['response_flags'] === 'UO')).toHaveLength(2);
  });

  it("book: the callers retry the replica's UO answer twice each (503 is retriable; x-envoy-overloaded does not stop it)", async () => {
    const { inbound, callers } = await mesh(POOL_2_2, 'book', 3);
    // 2 overflow at first; each is tried twice more while the replica is still full: 6 overflows in all.
    const replies = await overflowReplica(inbound, callers, 6);
    await until(async () => (await sum(callers, '.upstream_rq_retry')) === 4, 'four retries by the callers');
    app.release();
    expect(byStatus(await Promise.all(replies))).toEqual({ 200: 4, 503: 2 });
  });

  it('Sidecar.inboundConnectionPool replaces the DestinationRule pool on the inbound cluster', async () => {
    const policy = parseMeshPolicy(`apiVersion: networking.istio.io/v1
kind: DestinationRule
spec: { host: iris-svc, trafficPolicy: { connectionPool: { tcp: { maxConnections: 100 }, http: { http1MaxPendingRequests: 100 } } } }
---
apiVersion: networking.istio.io/v1
kind: Sidecar
spec: { inboundConnectionPool: { tcp: { maxConnections: 1 }, http: { http1MaxPendingRequests: 1 } } }
`);
    const { inbound, callers } = await mesh(policy, 'current', 1);
    const [c1] = callers as [RunningEnvoy];
    app.hold = true;
    const replies = [send(c1.url)];
    await app.waitForInflight(1);
    replies.push(send(c1.url), send(c1.url));
    await until(
      async () => stat(await inbound.stats('pending_overflow'), '.upstream_rq_pending_overflow') === 1,
      'one overflow at the replica',
    );
    app.release();
    expect(byStatus(await Promise.all(replies))).toEqual({ 200: 2, 503: 1 });
    expect(app.peakInflight).toBe(1);
  });
});

describe("a model pod's own 503 through the mesh (what the sidecar's answers must carry)", () => {
  it.each([
    ['book', 'retried twice', {}, 3],
    ['book', 'not retried with x-envoy-ratelimited', { 'x-envoy-ratelimited': 'true' }, 1],
    ['current', 'not retried', {}, 1],
  ] as const)('%s: a 503 from behind the inbound Envoy is %s', async (profile, _what, headers, attempts) => {
    const { callers } = await mesh(parseMeshPolicy('trafficPolicy: {}'), profile, 1);
    app.answer = { status: 503, headers: { ...headers }, body: '{"error":{"code":"CB_OVERLOAD"}}' };
    const r = await send((callers[0] as RunningEnvoy).url);
    expect(r.status).toBe(503);
    // The inbound Envoy passes the header through unchanged.
    for (const name of Object.keys(headers)) expect(r.headers[name]).toBe('true');
    expect(app.requests).toHaveLength(attempts);
  });
});
