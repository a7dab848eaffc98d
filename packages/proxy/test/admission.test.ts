import { request as httpRequest } from 'node:http';
import { parseSettings } from '../src/config.js';
import { useFixture } from './support/fixture.js';
import { metricsText, send } from './support/sidecar.js';
import { burst, eventually, sleep, slow } from '@infer-cb/testkit';

const fx = useFixture('each');

/** limit 4, queue 4; a queue timeout (and CoDel target) far above the service time: nothing times out. */
const LIMIT4_QUEUE4 = `
trafficPolicy:
  connectionPool:
    tcp: { maxConnections: 4 }
    http: { http1MaxPendingRequests: 4 }
sidecar:
  queue: { timeout: 20s, codelTarget: 20s, codelInterval: 100ms }
`;

describe('admission', () => {
  it('serves limit + queue of 40 concurrent requests and sheds the other 32 at once with 503 overload and Retry-After', async () => {
    const sidecar = await fx.start(LIMIT4_QUEUE4);
    const s = sidecar;
    // Each upstream call takes 200 ms, and on a loaded machine no less than until the sidecar has seen
    // all 40 arrivals, so the scheduling of the test itself cannot free slots early.
    const arrivals = (): number => {
      const a = s.state().admission as { admitted: number; overload: number };
      return a.admitted + a.overload + (s.state().queue as { depth: number }).depth;
    };
    const allArrived = async (): Promise<void> => {
      const until = performance.now() + 10_000;
      while (arrivals() < 40 && performance.now() < until) await sleep(5);
    };
    fx.upstream.handler = (_req, res) => void Promise.all([sleep(200), allArrived()]).then(() => res.end('slow'));
    const answers = await burst(sidecar.port, 40, '/work');
    const served = answers.filter((a) => a.status === 200);
    const shed = answers.filter((a) => a.status === 503);
    expect(served).toHaveLength(8);
    expect(shed).toHaveLength(32);
    for (const a of shed) {
      expect(a.headers['x-cb-reason']).toBe('overload');
      expect(Number(a.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      expect(JSON.parse(a.body)).toEqual({ error: { code: 'CB_OVERLOAD', message: expect.any(String) } });
    }
    // Immediate: every rejection arrives before the first upstream answer could.
    expect(Math.max(...shed.map((a) => a.ms))).toBeLessThan(Math.min(...served.map((a) => a.ms)));
    expect(fx.upstream.maxInflight).toBe(4);
    expect(fx.upstream.received).toBe(8);
    expect(await metricsText(sidecar)).toMatch(/cb_requests_total\{outcome="overload",code="503",class="default"\} 32/);
  });

  it('sheds a request that waited longer than the queue timeout without touching the upstream', async () => {
    fx.upstream.handler = slow(2000);
    const sidecar = await fx.start(`
trafficPolicy: { connectionPool: { tcp: { maxConnections: 1 }, http: { http1MaxPendingRequests: 10 } } }
sidecar: { queue: { timeout: 150ms, codelTarget: 150ms } }
`);
    const first = send(sidecar.port, '/a');
    await sleep(20);
    const queued = await send(sidecar.port, '/b');
    expect(queued.status).toBe(503);
    expect(queued.headers['x-cb-reason']).toBe('queue-timeout');
    expect(queued.ms).toBeGreaterThanOrEqual(140);
    expect(queued.ms).toBeLessThan(1500); // long before the slot frees (2 s)
    expect((await first).status).toBe(200);
    expect(fx.upstream.paths).toEqual(['/a']);
  });

  it('sheds at once a request that would wait for the calls above a lowered limit longer than allowed', async () => {
    fx.upstream.handler = slow(600);
    const queue = 'sidecar: { queue: { timeout: 400ms, codelTarget: 400ms } }';
    const sidecar = await fx.start(
      `trafficPolicy: { connectionPool: { tcp: { maxConnections: 4 }, http: { http1MaxPendingRequests: 4 } } }\n${queue}`,
    );
    await Promise.all([1, 2, 3, 4].map((i) => send(sidecar.port, `/learn${i}`))); // service time ~600 ms
    const running = [1, 2, 3, 4].map((i) => send(sidecar.port, `/run${i}`));
    await eventually(() => sidecar.state().inflight === 4);
    // The limit drops to 2 (an adaptive cut or a reload) with 4 in flight: a new request must wait for three of
    // them (~450 ms at 4 in flight per 600 ms), more than the 400 ms it is allowed. Counting only the queue ahead
    // (1 x 600 ms / 2 = 300 ms) it was queued and shed after waiting the whole 400 ms.
    sidecar.reload(
      parseSettings(
        `trafficPolicy: { connectionPool: { tcp: { maxConnections: 2 }, http: { http1MaxPendingRequests: 4 } } }\n${queue}`,
      ),
    );
    const late = await send(sidecar.port, '/late');
    expect(late.status).toBe(503);
    expect(late.headers['x-cb-reason']).toBe('queue-timeout');
    expect(late.ms).toBeLessThan(250);
    expect((await Promise.all(running)).map((a) => a.status)).toEqual([200, 200, 200, 200]);
    expect(fx.upstream.paths).not.toContain('/late');
  });

  it('sheds at once a request behind calls that all started together, and queues one whose slot is about to free', async () => {
    fx.upstream.handler = slow(1500);
    const queue = 'sidecar: { queue: { timeout: 500ms, codelTarget: 500ms } }';
    const sidecar = await fx.start(
      `trafficPolicy: { connectionPool: { tcp: { maxConnections: 8 }, http: { http1MaxPendingRequests: 4 } } }\n${queue}`,
    );
    expect((await send(sidecar.port, '/learn')).status).toBe(200); // service time ~1.5 s
    const running = Array.from({ length: 8 }, (_, i) => send(sidecar.port, `/run${i}`));
    await eventually(() => sidecar.state().inflight === 8);
    // 8 slots of ~1.5 s: at their rate a slot frees every ~190 ms, within the 500 ms allowed, but these 8 calls
    // started together, so none frees for ~1.5 s. Counting by rate alone it was queued and shed after 500 ms.
    const early = await send(sidecar.port, '/early');
    expect(early.status).toBe(503);
    expect(early.headers['x-cb-reason']).toBe('queue-timeout');
    expect(early.ms).toBeLessThan(300);
    // ~300 ms before the oldest call ends, a request is queued: it waits for that slot, then is served.
    await sleep(1200 - early.ms);
    const next = send(sidecar.port, '/next');
    expect((await Promise.all(running)).map((a) => a.status)).toEqual(Array(8).fill(200));
    const answer = await next;
    expect(answer.status).toBe(200);
    expect(answer.ms).toBeGreaterThan(1500 + 100); // it waited in the queue before its own 1.5 s call
    expect(fx.upstream.paths).not.toContain('/early');
  });

  it('cuts the allowed wait to the CoDel target once the queue has not been empty for an interval', async () => {
    fx.upstream.handler = slow(100);
    const sidecar = await fx.start(`
trafficPolicy: { connectionPool: { tcp: { maxConnections: 1 }, http: { http1MaxPendingRequests: 50 } } }
sidecar: { queue: { timeout: 5s, codelTarget: 20ms, codelInterval: 50ms } }
`);
    // A standing queue: 10 requests for one slot of 100 ms each. Without CoDel all would be served
    // within the 5 s queue timeout; with it, requests that waited > 20 ms in a standing queue are shed.
    const answers = await Promise.all(
      Array.from({ length: 10 }, (_, i) => sleep(i * 5).then(() => send(sidecar.port, `/c${i}`))),
    );
    const reasons = answers.map((a) => (a.status === 200 ? 'ok' : a.headers['x-cb-reason']));
    expect(reasons[0]).toBe('ok');
    expect(reasons.filter((r) => r === 'queue-timeout').length).toBeGreaterThanOrEqual(7);
    expect(Math.max(...answers.map((a) => a.ms))).toBeLessThan(3000); // the 5 s queue timeout never applied
    expect(fx.upstream.received).toBe(reasons.filter((r) => r === 'ok').length);
  });

  it('sheds with 503 deadline when the client deadline has already passed', async () => {
    const sidecar = await fx.start();
    const answer = await send(sidecar.port, '/d', { headers: { 'x-request-timeout-ms': '0' } });
    expect(answer.status).toBe(503);
    expect(answer.headers['x-cb-reason']).toBe('deadline');
    expect(fx.upstream.received).toBe(0);
  });

  it('sheds a queued request whose deadline runs out before a slot frees, without forwarding it', async () => {
    fx.upstream.handler = slow(2000);
    const sidecar = await fx.start(`trafficPolicy: { connectionPool: { tcp: { maxConnections: 1 } } }`);
    const first = send(sidecar.port, '/long');
    await sleep(20);
    const hurried = await send(sidecar.port, '/hurried', { headers: { 'x-request-timeout-ms': '100' } });
    expect(hurried.status).toBe(503);
    expect(hurried.headers['x-cb-reason']).toBe('deadline');
    expect(hurried.ms).toBeLessThan(1500); // shed at its deadline, not when the slot frees (2 s)
    await first;
    expect(fx.upstream.paths).toEqual(['/long']);
  });

  it('sheds at once a deadline shorter than the upstream usually takes', async () => {
    fx.upstream.handler = slow(1000);
    const sidecar = await fx.start();
    expect((await send(sidecar.port, '/warm')).status).toBe(200); // learns ~1 s service time
    const answer = await send(sidecar.port, '/short', { headers: { 'x-request-timeout-ms': '500' } });
    expect(answer.status).toBe(503);
    expect(answer.headers['x-cb-reason']).toBe('deadline');
    expect(answer.ms).toBeLessThan(450); // at once, not at its deadline or after trying
    expect(fx.upstream.received).toBe(1);
  });

  it('tells the upstream the budget left after queueing, not the original one', async () => {
    fx.upstream.handler = (req, res) => setTimeout(() => res.end(String(req.headers['x-request-timeout-ms'])), 200);
    const sidecar = await fx.start(
      'trafficPolicy: { connectionPool: { tcp: { maxConnections: 1 } } }\nsidecar: { queue: { codelTarget: 1s } }',
    );
    const first = send(sidecar.port, '/first');
    await eventually(() => sidecar.state().inflight === 1);
    const second = await send(sidecar.port, '/second', { headers: { 'x-request-timeout-ms': '5000' } });
    await first;
    expect(second.status).toBe(200);
    const seen = Number(second.body);
    expect(seen).toBeLessThanOrEqual(5000 - 100); // it waited for /first (~200 ms) in the queue
    expect(seen).toBeGreaterThan(0);
  });

  it('answers 400 to a deadline header that is not a plain number of milliseconds', async () => {
    const sidecar = await fx.start();
    for (const value of ['soon', '1e3', '0x10', '-5', '']) {
      const answer = await send(sidecar.port, '/d', { headers: { 'x-request-timeout-ms': value } });
      expect([value, answer.status]).toEqual([value, 400]);
      expect(JSON.parse(answer.body).error.code).toBe('CB_BAD_REQUEST');
    }
    const fine = await send(sidecar.port, '/d', { headers: { 'x-request-timeout-ms': '2500.5' } });
    expect(fine.status).toBe(200);
  });

  it('drops a queued request whose client disconnects; it never reaches the upstream', async () => {
    fx.upstream.handler = slow(2000);
    const sidecar = await fx.start(`trafficPolicy: { connectionPool: { tcp: { maxConnections: 1 } } }`);
    const first = send(sidecar.port, '/first');
    await sleep(30);
    const req = httpRequest({ host: '127.0.0.1', port: sidecar.port, path: '/gone', agent: false });
    req.on('error', () => {});
    req.end();
    await eventually(() => (sidecar.state().queue as { depth: number }).depth === 1);
    req.destroy();
    await eventually(() => (sidecar.state().queue as { depth: number }).depth === 0);
    expect((await first).status).toBe(200);
    await sleep(100);
    expect(fx.upstream.paths).toEqual(['/first']);
    expect(await metricsText(sidecar)).toMatch(
      /cb_requests_total\{outcome="client-closed",code="499",class="default"\} 1/,
    );
  });

  it('admits queued requests as soon as slots free, in arrival order', async () => {
    fx.upstream.handler = slow(100);
    const sidecar = await fx.start(`
trafficPolicy: { connectionPool: { tcp: { maxConnections: 2 }, http: { http1MaxPendingRequests: 10 } } }
sidecar: { queue: { timeout: 10s, codelTarget: 10s } }
`);
    const arrived = (): number =>
      (sidecar.state().admission as { admitted: number }).admitted + (sidecar.state().queue as { depth: number }).depth;
    const pending = [];
    for (let i = 0; i < 8; i++) {
      pending.push(send(sidecar.port, `/q${i}`));
      await eventually(() => arrived() === i + 1); // arrival order is the order sent
    }
    const answers = await Promise.all(pending);
    expect(answers.every((a) => a.status === 200)).toBe(true);
    expect(fx.upstream.paths).toEqual(Array.from({ length: 8 }, (_, i) => `/q${i}`));
    expect(fx.upstream.maxInflight).toBe(2);
  });
});
