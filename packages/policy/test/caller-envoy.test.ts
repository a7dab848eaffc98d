// The caller's Envoy built by callerBootstrap(), run for real (Envoy 1.40, one worker) against
// controllable upstreams on 127.0.0.1: what it admits, what it retries, whom it ejects.
import { callerBootstrap, parseMeshPolicy, type Profile } from '../src/index.js';
import { startEnvoy, stat, type TestEnvoy as RunningEnvoy } from '@infer-cb/testkit';
import { byStatus, send, TestUpstream, until, type Reply } from './support/upstream.js';

const ANY_PORT = { address: '127.0.0.1', port: 0 };
let upstreams: TestUpstream[] = [];
let envoy: RunningEnvoy | undefined;

afterEach(async () => {
  await envoy?.stop();
  envoy = undefined;
  await Promise.all(upstreams.map((u) => u.stop()));
  upstreams = [];
});

async function caller(policyYaml: string, profile: Profile, n = 1): Promise<RunningEnvoy> {
  upstreams = await Promise.all(Array.from({ length: n }, (_, i) => new TestUpstream(`replica-${i}`).start()));
  const policy = parseMeshPolicy(policyYaml);
  envoy = await startEnvoy((accessLog) =>
    callerBootstrap(policy, {
      profile,
      service: 'iris-svc',
      endpoints: upstreams.map((u) => u.address),
      listen: ANY_PORT,
      admin: ANY_PORT,
      accessLog: { path: accessLog },
    }),
  );
  return envoy;
}

const totalRequests = (): number => upstreams.reduce((n, u) => n + u.requests.length, 0);

describe('caller Envoy: the DestinationRule connection pool', () => {
  it.each(['book', 'current'] as const)(
    '%s: maxConnections 4 + pending 4 admit 8 of 40 concurrent slow requests; the other 32 get its own 503 UO',
    async (profile) => {
      const e = await caller(
        'trafficPolicy: { connectionPool: { tcp: { maxConnections: 4 }, http: { http1MaxPendingRequests: 4 } } }',
        profile,
      );
      const [up] = upstreams as [TestUpstream];
      up.hold = true;
      // The first 4 open the 4 connections. (Sent together with the rest, they could still be pending
      // while their connections open: pending counts them too, and Envoy would then admit only 4-8.)
      const replies = Array.from({ length: 4 }, () => send(e.url));
      await up.waitForInflight(4);
      replies.push(...Array.from({ length: 36 }, () => send(e.url)));
      await until(
        async () => stat(await e.stats('pending_overflow'), '.upstream_rq_pending_overflow') === 32,
        '32 pending overflows',
      );
      const held = await e.stats('upstream_rq_pending_active');
      expect(stat(held, '.upstream_rq_pending_active')).toBe(4);
      expect(up.inflight).toBe(4);
      up.release();
      const all = await Promise.all(replies);
      expect(byStatus(all)).toEqual({ 200: 8, 503: 32 });
      expect(up.peakInflight).toBe(4);
      expect(up.requests).toHaveLength(8);
      for (const r of all.filter((x) => x.status === 503)) {
        expect(r.headers['x-envoy-overloaded']).toBe('true');
        expect(r.headers['retry-after']).toBeUndefined();
        expect(Buffer.byteLength(r.body)).toBe(81);
      }
      await until(() => e.accessLog().length === 40, '40 access-log lines');
      const flags = e.accessLog().map((l) => l['response_flags']);
      expect(flags.filter((f) => f === 'UO')).toHaveLength(32);
      expect(flags.filter((f) => f === '-')).toHaveLength(8);
      // The caller's own overflow answer is never retried, whatever the profile.
      expect(stat(await e.stats('upstream_rq_retry'), '.upstream_rq_retry')).toBe(0);
    },
  );
});

describe('caller Envoy: the mesh default retry policy', () => {
  const RR = 'trafficPolicy: { loadBalancer: { simple: ROUND_ROBIN } }';

  it('book (Istio 1.9): an upstream 503 is retried twice, each time on another host', async () => {
    const e = await caller(RR, 'book', 3);
    for (const u of upstreams) u.answer = { status: 503, body: 'busy' };
    const r = await send(e.url);
    expect(r.status).toBe(503);
    expect(upstreams.map((u) => u.requests.length)).toEqual([1, 1, 1]);
    const attempts = upstreams.map((u) => u.requests[0]?.['x-envoy-attempt-count']).sort();
    expect(attempts).toEqual(['1', '2', '3']);
    expect(stat(await e.stats('upstream_rq_retry'), '.upstream_rq_retry')).toBe(2);
  });

  it('current (Istio 1.24+): an upstream 503 is not retried', async () => {
    const e = await caller(RR, 'current', 3);
    for (const u of upstreams) u.answer = { status: 503, body: 'busy' };
    const r = await send(e.url);
    expect(r.status).toBe(503);
    expect(totalRequests()).toBe(1);
    expect(stat(await e.stats('upstream_rq_retry'), '.upstream_rq_retry')).toBe(0);
  });

  it('book: an upstream 503 carrying x-envoy-overloaded is still retried (Envoy >= 1.15 retries it)', async () => {
    const e = await caller(RR, 'book', 3);
    for (const u of upstreams) u.answer = { status: 503, headers: { 'x-envoy-overloaded': 'true' }, body: '' };
    const r = await send(e.url);
    expect(r.status).toBe(503);
    expect(r.headers['x-envoy-overloaded']).toBe('true');
    expect(totalRequests()).toBe(3);
  });

  it('book: an upstream 503 carrying x-envoy-ratelimited is not retried (what the model pod must send)', async () => {
    const e = await caller(RR, 'book', 3);
    for (const u of upstreams) u.answer = { status: 503, headers: { 'x-envoy-ratelimited': 'true' }, body: '' };
    expect((await send(e.url)).status).toBe(503);
    expect(totalRequests()).toBe(1);
  });

  it('a VirtualService that retries on envoy-ratelimited does retry x-envoy-ratelimited', async () => {
    const vs = `---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: iris-svc }
spec:
  hosts: [iris-svc]
  http: [{ route: [{ destination: { host: iris-svc } }], retries: { attempts: 2, retryOn: envoy-ratelimited } }]
`;
    const e = await caller(
      `kind: DestinationRule\napiVersion: networking.istio.io/v1\nspec: { host: iris-svc }\n${vs}`,
      'book',
      3,
    );
    for (const u of upstreams) u.answer = { status: 503, headers: { 'x-envoy-ratelimited': 'true' }, body: '' };
    expect((await send(e.url)).status).toBe(503);
    expect(totalRequests()).toBe(3);
  });

  it('book: a VirtualService with retries.attempts 0 turns the mesh retries off', async () => {
    const e = await caller(
      `apiVersion: networking.istio.io/v1
kind: DestinationRule
spec: { host: iris-svc }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
spec: { hosts: [iris-svc], http: [{ route: [{ destination: { host: iris-svc } }], retries: { attempts: 0 } }] }
`,
      'book',
      3,
    );
    for (const u of upstreams) u.answer = { status: 503, body: 'busy' };
    expect((await send(e.url)).status).toBe(503);
    expect(totalRequests()).toBe(1);
  });
});

describe('caller Envoy: outlier detection', () => {
  /** Sends `n` requests one after another. */
  async function sequential(url: string, n: number): Promise<Reply[]> {
    const out: Reply[] = [];
    for (let i = 0; i < n; i++) out.push(await send(url));
    return out;
  }

  it.each([
    ['consecutive5xxErrors: 5', 'consecutive5xxErrors: 5'],
    ["the book's consecutiveErrors: 100 (ignored: Envoy's default 5 applies)", 'consecutiveErrors: 100'],
  ])('ejects a host after 5 consecutive 5xx with %s', async (_name, rule) => {
    const e = await caller(
      `trafficPolicy: { loadBalancer: { simple: ROUND_ROBIN }, outlierDetection: { ${rule}, interval: 10s, baseEjectionTime: 30s, maxEjectionPercent: 100 } }`,
      'current',
      2,
    );
    const [bad, good] = upstreams as [TestUpstream, TestUpstream];
    bad.answer = { status: 500, body: 'broken' };
    // Round robin alternates: the bad host's 5th consecutive 500 arrives with the 9th or 10th request.
    const first = await sequential(e.url, 10);
    expect(byStatus(first)).toEqual({ 200: 5, 500: 5 });
    await until(
      async () => stat(await e.stats('outlier_detection'), '.outlier_detection.ejections_active') === 1,
      'one host ejected',
    );
    const stats = await e.stats('outlier_detection');
    expect(stat(stats, '.outlier_detection.ejections_enforced_consecutive_5xx')).toBe(1);
    const after = await sequential(e.url, 10);
    expect(byStatus(after)).toEqual({ 200: 10 });
    expect(bad.requests).toHaveLength(5);
    expect(good.requests).toHaveLength(15);
  });

  it("ejects no host of 3 at the book's maxEjectionPercent 10 (Envoy 1.40 rounds 10% of 3 down to 0)", async () => {
    const e = await caller(
      'trafficPolicy: { loadBalancer: { simple: ROUND_ROBIN }, outlierDetection: { consecutive5xxErrors: 5, interval: 1s, baseEjectionTime: 10m, maxEjectionPercent: 10 } }',
      'current',
      3,
    );
    const [bad] = upstreams as [TestUpstream];
    bad.answer = { status: 500, body: 'broken' };
    const replies = await sequential(e.url, 30);
    expect(byStatus(replies)).toEqual({ 200: 20, 500: 10 });
    const stats = await e.stats('outlier_detection');
    expect(stat(stats, '.outlier_detection.ejections_active')).toBe(0);
    expect(stat(stats, '.outlier_detection.ejections_overflow')).toBeGreaterThan(0);
  });
});

describe('caller Envoy: a replica that sheds load (the sidecar answering 503 for an overloaded model)', () => {
  async function sequential(url: string, n: number): Promise<Reply[]> {
    const out: Reply[] = [];
    for (let i = 0; i < n; i++) out.push(await send(url));
    return out;
  }
  const SHED = { status: 503, headers: { 'x-envoy-ratelimited': 'true' }, body: '{"error":{"code":"CB_OVERLOAD"}}' };

  it('outlier detection counts its 503s, x-envoy-ratelimited or not: 5 in a row eject it', async () => {
    const e = await caller(
      'trafficPolicy: { loadBalancer: { simple: ROUND_ROBIN }, outlierDetection: { consecutive5xxErrors: 5, interval: 10s, baseEjectionTime: 30s, maxEjectionPercent: 100 } }',
      'current',
      2,
    );
    (upstreams[0] as TestUpstream).answer = SHED;
    await sequential(e.url, 10);
    await until(
      async () => stat(await e.stats('outlier_detection'), '.outlier_detection.ejections_active') === 1,
      'the shedding replica ejected',
    );
  });

  it('with 5xx counting off and local-origin failures split out, only an unreachable replica is ejected', async () => {
    const e = await caller(
      `trafficPolicy:
  loadBalancer: { simple: ROUND_ROBIN }
  outlierDetection:
    consecutive5xxErrors: 0
    splitExternalLocalOriginErrors: true
    consecutiveLocalOriginFailures: 5
    interval: 10s
    baseEjectionTime: 30s
    maxEjectionPercent: 100`,
      'current',
      2,
    );
    const [shedding] = upstreams as [TestUpstream];
    shedding.answer = SHED;
    expect(byStatus(await sequential(e.url, 20))).toEqual({ 200: 10, 503: 10 });
    expect(stat(await e.stats('outlier_detection'), '.outlier_detection.ejections_active')).toBe(0);
    // Now the replica goes away: connection failures are local-origin errors (retried on the other host).
    await shedding.stop();
    upstreams = upstreams.slice(1);
    const ejected = async (): Promise<boolean> =>
      stat(await e.stats('outlier_detection'), '.outlier_detection.ejections_active') === 1;
    const replies: Reply[] = [];
    while (!(await ejected()) && replies.length < 40) replies.push(await send(e.url));
    expect(await ejected()).toBe(true);
    expect(replies.every((r) => r.status === 200)).toBe(true);
  });
});
