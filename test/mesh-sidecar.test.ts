// cb-sidecar inside the mesh: what the callers' real Envoy (configured as Istio would be, @infer-cb/policy)
// does with the sidecar's own 503s. A book-era mesh retries every upstream 503 twice on other pods, unless
// the answer carries x-envoy-ratelimited; the sidecar's shed answers carry it, its circuit-open ones do not.
import { callerBootstrap, parseMeshPolicy, type Profile } from '@infer-cb/policy';
import {
  startEnvoy,
  startSidecar,
  startUpstream,
  stat,
  stopAll,
  type SidecarProcess,
  type TestEnvoy,
  type TestUpstream,
} from '@infer-cb/testkit';

const POLICY = parseMeshPolicy('trafficPolicy: { connectionPool: { tcp: { maxConnections: 100 } } }');

// One request at a time per pod, and a queue no request can wait in (its expected wait, one 400 ms answer,
// is far above the 5 ms allowed): a second concurrent request is shed at once.
const SIDECAR = `
trafficPolicy:
  connectionPool: { tcp: { maxConnections: 1 }, http: { http1MaxPendingRequests: 1 } }
sidecar:
  concurrency: { mode: static, min: 1, max: 1 }
  queue: { timeout: 5ms }
  breaker: { volumeThreshold: 1000, rollingWindow: 10s, resetTimeout: 30s }
`;

async function send(url: string): Promise<{ status: number; reason: string | null; limited: string | null }> {
  const res = await fetch(`${url}/predict`, { method: 'POST', body: '{"data":[[5.1,3.5,1.4,0.2]]}' });
  await res.arrayBuffer();
  return {
    status: res.status,
    reason: res.headers.get('x-cb-reason'),
    limited: res.headers.get('x-envoy-ratelimited'),
  };
}

describe('cb-sidecar behind a caller Envoy', () => {
  let upstream: TestUpstream;
  const sidecars: SidecarProcess[] = [];
  let envoy: TestEnvoy | undefined;

  beforeAll(async () => {
    upstream = await startUpstream({ serviceMs: 400 });
    for (let i = 0; i < 2; i++) sidecars.push(await startSidecar({ upstream: upstream.origin, yaml: SIDECAR }));
  });
  afterEach(async () => {
    await envoy?.stop();
    envoy = undefined;
  });
  afterAll(async () => {
    await stopAll();
    await upstream.stop();
  });

  const caller = (profile: Profile): Promise<TestEnvoy> =>
    startEnvoy(() =>
      callerBootstrap(POLICY, {
        profile,
        service: 'iris-svc',
        endpoints: sidecars.map((s) => ({ address: '127.0.0.1', port: s.port })),
        listen: { address: '127.0.0.1', port: 0 },
        admin: { address: '127.0.0.1', port: 0 },
      }),
    );

  it.each(['book', 'current'] as const)(
    '%s: the sidecars shed with 503, and the mesh retries none of it',
    async (profile) => {
      envoy = await caller(profile);
      const url = envoy.url;
      // Two pods of one slot each, six requests at once: two are served, four are shed by the sidecars.
      const answers = await Promise.all(Array.from({ length: 6 }, () => send(url)));
      const shed = answers.filter((a) => a.status === 503);
      expect(answers.filter((a) => a.status === 200)).toHaveLength(2);
      expect(shed).toHaveLength(4);
      for (const a of shed)
        expect(a).toMatchObject({ reason: expect.stringMatching(/^(overload|queue-timeout)$/), limited: 'true' });
      const stats = await envoy.stats('retry');
      expect(stat(stats, '.upstream_rq_retry')).toBe(0);
    },
  );

  it("book: a failing pod's 503 (no header) is retried on the other pod, so every request is answered", async () => {
    envoy = await caller('book');
    // A pod whose model is gone answers 503 upstream-unavailable (then circuit-open), neither of which carries
    // x-envoy-ratelimited: another pod may well answer, so the mesh should retry there.
    const gone = await startSidecar({ upstream: 'http://127.0.0.1:9', yaml: SIDECAR });
    await envoy.stop();
    envoy = await startEnvoy(() =>
      callerBootstrap(POLICY, {
        profile: 'book',
        service: 'iris-svc',
        endpoints: [gone, sidecars[0] as SidecarProcess].map((s) => ({ address: '127.0.0.1', port: s.port })),
        listen: { address: '127.0.0.1', port: 0 },
        admin: { address: '127.0.0.1', port: 0 },
      }),
    );
    const answers: Awaited<ReturnType<typeof send>>[] = [];
    for (let i = 0; i < 4; i++) answers.push(await send(envoy.url));
    // Round robin sends every other request to the pod that cannot reach its model; each is retried on the
    // healthy one, so every request is answered 200.
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200]);
    expect(stat(await envoy.stats('retry'), '.upstream_rq_retry')).toBeGreaterThanOrEqual(2);
  });
});
