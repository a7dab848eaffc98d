import { useFixture } from './support/fixture.js';
import { metricsText, send } from './support/sidecar.js';
import { burst, sleep, slow } from '@infer-cb/testkit';

const fx = useFixture('each');

describe('upstream failures', () => {
  it('answers fast 503s while the upstream is down, opens the circuit, and recovers when it returns', async () => {
    const sidecar = await fx.start(`
trafficPolicy: { outlierDetection: { consecutive5xxErrors: 3 } }
sidecar: { breaker: { resetTimeout: 1s, maxResetTimeout: 2s } }
`);
    await fx.upstream.crash();
    const down = [];
    for (let i = 0; i < 3; i++) down.push(await send(sidecar.port, '/x'));
    for (const a of down) {
      expect(a.status).toBe(503);
      expect(a.headers['x-cb-reason']).toBe('upstream-unavailable');
      expect(a.headers['retry-after']).toBe('1');
      expect(a.ms).toBeLessThan(1500); // no waiting for timeouts (10 s); generous for a loaded machine
    }
    const open = await send(sidecar.port, '/x');
    expect(open.status).toBe(503);
    expect(open.headers['x-cb-reason']).toBe('circuit-open');
    expect(JSON.parse(open.body).error.code).toBe('CB_CIRCUIT_OPEN');
    expect(open.ms).toBeLessThan(500); // at once (the upstream is gone, the breaker does not even try)
    expect(sidecar.state().breaker).toMatchObject({ state: 'open' });

    await fx.upstream.start(); // back on the same port
    let recovered = false;
    for (let i = 0; i < 80 && !recovered; i++) {
      await sleep(100);
      recovered = (await send(sidecar.port, '/x')).status === 200;
    }
    expect(recovered).toBe(true);
    expect(sidecar.state().breaker).toMatchObject({ state: 'closed' });
  });

  it('answers 504 upstream-timeout when the upstream hangs, and aborts the upstream call', async () => {
    let upstreamSawClose = false;
    fx.upstream.handler = (_req, res) => void res.once('close', () => (upstreamSawClose = true));
    const sidecar = await fx.start('sidecar: { upstream: { timeout: 200ms } }');
    const answer = await send(sidecar.port, '/hang');
    expect(answer.status).toBe(504);
    expect(answer.headers['x-cb-reason']).toBe('upstream-timeout');
    expect(answer.headers['retry-after']).toBe('1');
    expect(JSON.parse(answer.body).error.code).toBe('CB_UPSTREAM_TIMEOUT');
    expect(answer.ms).toBeGreaterThanOrEqual(190);
    expect(answer.ms).toBeLessThan(3000);
    await sleep(50);
    expect(upstreamSawClose).toBe(true);
  });

  it('a timeout aborts only its own request, not the others in flight', async () => {
    let hangClosed!: () => void;
    const hangAborted = new Promise<void>((resolve) => (hangClosed = resolve));
    fx.upstream.handler = (req, res) => {
      if (req.url === '/hang') return void res.once('close', hangClosed);
      void hangAborted.then(() => setTimeout(() => res.end('ok'), 20)); // still in flight when /hang is cut
    };
    const sidecar = await fx.start();
    // /hang's own deadline (200 ms) bounds its upstream call; /fine has the default 10 s.
    const hang = send(sidecar.port, '/hang', { headers: { 'x-request-timeout-ms': '200' } });
    const fine = send(sidecar.port, '/fine');
    expect((await hang).status).toBe(504);
    expect((await fine).status).toBe(200);
  });

  it('answers 502 upstream-error when the upstream drops the connection before answering', async () => {
    fx.upstream.handler = (req) => void req.socket.destroy();
    const sidecar = await fx.start();
    const answer = await send(sidecar.port, '/crash', { method: 'POST', body: '{"data":[[1,2,3,4]]}' });
    expect(answer.status).toBe(502);
    expect(answer.headers['x-cb-reason']).toBe('upstream-error');
    expect(JSON.parse(answer.body).error.code).toBe('CB_UPSTREAM_ERROR');
  });

  it('answers a clean 502 (no upstream headers leak) when the upstream closes right after its headers', async () => {
    fx.upstream.handler = (req, res) => {
      res.writeHead(200, { 'content-length': '100', 'x-upstream-secret': 'leak', 'content-type': 'text/plain' });
      res.flushHeaders();
      setTimeout(() => req.socket.destroy(), 20);
    };
    const sidecar = await fx.start();
    const answer = await send(sidecar.port, '/headers-only');
    expect(answer.status).toBe(502);
    expect(answer.headers['x-upstream-secret']).toBeUndefined();
    expect(answer.headers['content-type']).toBe('application/json');
    expect(JSON.parse(answer.body).error.code).toBe('CB_UPSTREAM_ERROR');
  });

  it('cuts the client connection (never hangs) when the upstream dies in the middle of its answer', async () => {
    fx.upstream.handler = (req, res) => {
      res.writeHead(200, { 'content-length': '100' });
      res.write('partial');
      setTimeout(() => req.socket.destroy(), 20);
    };
    const sidecar = await fx.start();
    await expect(send(sidecar.port, '/mid')).rejects.toThrow();
  });

  it('never trips on 4xx answers', async () => {
    fx.upstream.handler = (_req, res) => {
      res.statusCode = 404;
      res.end();
    };
    const sidecar = await fx.start('sidecar: { breaker: { volumeThreshold: 5 } }');
    for (let i = 0; i < 30; i++) expect((await send(sidecar.port, '/nope')).status).toBe(404);
    expect(sidecar.state().breaker).toMatchObject({ state: 'closed', failures: 0 });
  });

  it('never trips on its own admission rejections', async () => {
    fx.upstream.handler = slow(150);
    const sidecar = await fx.start(`
trafficPolicy:
  connectionPool: { tcp: { maxConnections: 1 }, http: { http1MaxPendingRequests: 1 } }
  outlierDetection: { consecutive5xxErrors: 2 }
sidecar: { breaker: { volumeThreshold: 2 } }
`);
    const answers = await burst(sidecar.port, 30, '/busy');
    expect(answers.filter((a) => a.headers['x-cb-reason'] === 'overload').length).toBeGreaterThanOrEqual(20);
    expect(sidecar.state().breaker).toMatchObject({ state: 'closed', failures: 0 });
    expect((await send(sidecar.port, '/after')).status).toBe(200);
  });

  it('opens on upstream 5xx answers, passing them through until it does', async () => {
    fx.upstream.handler = (_req, res) => {
      res.statusCode = 500;
      res.end('boom');
    };
    const sidecar = await fx.start('trafficPolicy: { outlierDetection: { consecutive5xxErrors: 5 } }');
    const statuses = [];
    for (let i = 0; i < 6; i++) statuses.push((await send(sidecar.port, '/e')).status);
    expect(statuses).toEqual([500, 500, 500, 500, 500, 503]);
    expect(fx.upstream.received).toBe(5);
    const metrics = await metricsText(sidecar);
    expect(metrics).toContain('cb_breaker_transitions_total{from="closed",to="open"} 1');
    expect(metrics).toContain('cb_breaker_state{state="open"} 1');
    expect(metrics).toContain('cb_requests_total{outcome="forwarded",code="500",class="default"} 5');
    expect(metrics).toContain('cb_requests_total{outcome="circuit-open",code="503",class="default"} 1');
  });
});

describe('readiness', () => {
  it('is ready while the upstream accepts connections and not after it goes away', async () => {
    const sidecar = await fx.start();
    expect((await send(sidecar.adminPort, '/readyz')).status).toBe(200);
    await fx.upstream.crash();
    const r = await send(sidecar.adminPort, '/readyz');
    expect(r.status).toBe(503);
    expect(JSON.parse(r.body)).toEqual({ status: 'upstream-unreachable' });
  });

  it('fails readiness while the circuit is open only when readiness.failWhenOpen is set', async () => {
    fx.upstream.handler = (_req, res) => {
      res.statusCode = 503;
      res.end();
    };
    for (const failWhenOpen of [false, true]) {
      const sidecar = await fx.start(`
trafficPolicy: { outlierDetection: { consecutive5xxErrors: 1 } }
sidecar: { readiness: { failWhenOpen: ${failWhenOpen} }, breaker: { resetTimeout: 10s } }
`);
      await send(sidecar.port, '/e');
      expect(sidecar.state().breaker).toMatchObject({ state: 'open' });
      expect((await send(sidecar.adminPort, '/readyz')).status).toBe(failWhenOpen ? 503 : 200);
    }
  });
});
