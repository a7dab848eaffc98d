import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import { Balancer, BALANCER_STATS_PATH, BALANCER_TIMINGS_PATH, type BalancerTimings } from '../src/balancer.js';
import { freePort } from '../src/processes.js';

function backend(name: string, status = 200): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => res.writeHead(status, { 'content-type': 'application/json', 'x-backend': name }).end(JSON.stringify({ name, body, path: req.url })));
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` })));
}

describe('Balancer', () => {
  const servers: Server[] = [];
  let balancer: Balancer | undefined;
  afterEach(async () => {
    await balancer?.close();
    balancer = undefined;
    await Promise.all(servers.splice(0).map((s) => new Promise((r) => { s.closeAllConnections(); s.close(r); })));
  });

  it('sends requests round-robin and passes status, headers and body through', async () => {
    const a = await backend('a');
    const b = await backend('b', 503);
    servers.push(a.server, b.server);
    balancer = new Balancer({ backends: [a.url, b.url] });
    const port = await balancer.listen(0);
    const seen: string[] = [];
    for (let i = 0; i < 4; i++) {
      const res = await request(`http://127.0.0.1:${port}/predict`, { method: 'POST', body: '{"data":[[1,2,3,4]]}', headers: { 'content-type': 'application/json' } });
      const json = (await res.body.json()) as { name: string; body: string; path: string };
      expect(json.body).toBe('{"data":[[1,2,3,4]]}');
      expect(json.path).toBe('/predict');
      expect(res.statusCode).toBe(json.name === 'a' ? 200 : 503);
      expect(res.headers['x-backend']).toBe(json.name);
      seen.push(json.name);
    }
    expect(seen).toEqual(['a', 'b', 'a', 'b']);
    expect(balancer.stats().backends.map((s) => s.requests)).toEqual([2, 2]);
  });

  it('answers 503 with an error body and counts it when a backend refuses connections', async () => {
    const dead = `http://127.0.0.1:${await freePort()}`;
    balancer = new Balancer({ backends: [dead] });
    const port = await balancer.listen(0);
    const res = await request(`http://127.0.0.1:${port}/predict`, { method: 'POST', body: '{}' });
    expect(res.statusCode).toBe(503);
    const body = (await res.body.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('BACKEND_UNAVAILABLE');
    expect(body.error.message).toContain(dead);
    const stats = (await (await request(`http://127.0.0.1:${port}${BALANCER_STATS_PATH}`)).body.json()) as { errors: number };
    expect(stats.errors).toBe(1);
  });

  it('does not hang on a backend that never answers: 503 after the response timeout', async () => {
    const silent = createServer(() => {});
    servers.push(silent);
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    balancer = new Balancer({ backends: [`http://127.0.0.1:${(silent.address() as AddressInfo).port}`], responseTimeoutMs: 300 });
    const port = await balancer.listen(0);
    const t = Date.now();
    const res = await request(`http://127.0.0.1:${port}/predict/test`);
    await res.body.dump();
    expect(res.statusCode).toBe(503);
    expect(Date.now() - t).toBeLessThan(5000);
  });

  it('tracks the peak number of requests in flight per backend', async () => {
    const slow = createServer((_req, res) => setTimeout(() => res.end('ok'), 200));
    servers.push(slow);
    await new Promise<void>((r) => slow.listen(0, '127.0.0.1', r));
    balancer = new Balancer({ backends: [`http://127.0.0.1:${(slow.address() as AddressInfo).port}`] });
    const port = await balancer.listen(0);
    await Promise.all(Array.from({ length: 5 }, async () => (await request(`http://127.0.0.1:${port}/`)).body.dump()));
    expect(balancer.stats().backends[0]?.maxInflight).toBe(5);
    expect(balancer.stats().backends[0]?.inflight).toBe(0);
  });

  it('times answers and rejections inside itself; POST to the timings path starts them afresh', async () => {
    const ok = await backend('ok');
    const shed = await backend('shed', 503);
    servers.push(ok.server, shed.server);
    balancer = new Balancer({ backends: [ok.url, shed.url] });
    const port = await balancer.listen(0);
    for (let i = 0; i < 6; i++) await (await request(`http://127.0.0.1:${port}/predict`, { method: 'POST', body: '{}' })).body.text();
    const timings = async (method: 'GET' | 'POST'): Promise<BalancerTimings> =>
      (await (await request(`http://127.0.0.1:${port}${BALANCER_TIMINGS_PATH}`, { method })).body.json()) as BalancerTimings;
    const before = await timings('POST');
    expect(before.latency_ms.success.count).toBe(3);
    expect(before.latency_ms.rejection.count).toBe(3);
    expect(before.latency_ms.rejection.max).toBeGreaterThan(0);
    expect(before.runtime.gc_pause_ms.count).toBeGreaterThanOrEqual(0);
    const after = await timings('GET');
    expect(after.latency_ms.success.count).toBe(0);
    expect(after.latency_ms.rejection.count).toBe(0);
    // The counters are not the timings' and are not reset.
    expect(balancer.stats().requests).toBe(6);
  });
});
