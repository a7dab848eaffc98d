// The lab's Service: the real HAProxy (Debian package) with the generated config, in front of real
// HTTP servers on 127.0.0.1; its statistics must give the exact per-replica peak of requests in flight.
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { request } from 'undici';
import { freePort, Supervisor } from '../src/processes.js';
import {
  fetchServiceStats,
  haproxyConfig,
  parseServiceStats,
  startService,
  type ServiceStats,
} from '../src/service.js';
import { findTool } from '../src/tools.js';

const repoRoot = resolve(import.meta.dirname, '..', '..', '..');

interface TestReplica {
  server: Server;
  url: string;
  peak: () => number;
  /** Requests whose client went away before the answer. */
  abandoned: () => number;
}

/** A replica that answers with its name after `holdMs`, counting its own peak of requests in flight. */
function replica(name: string, holdMs: number): Promise<TestReplica> {
  let inflight = 0;
  let peak = 0;
  let abandoned = 0;
  const server = createServer((req, res) => {
    inflight++;
    peak = Math.max(peak, inflight);
    req.resume();
    const timer = setTimeout(() => {
      inflight--;
      res
        .writeHead(name === 'b' ? 503 : 200, { 'content-type': 'application/json', 'x-replica': name })
        .end(JSON.stringify({ name, path: req.url }));
    }, holdMs);
    res.on('close', () => {
      if (res.writableFinished) return;
      clearTimeout(timer);
      inflight--;
      abandoned++;
    });
  });
  return new Promise((ok) =>
    server.listen(0, '127.0.0.1', () =>
      ok({
        server,
        url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        peak: () => peak,
        abandoned: () => abandoned,
      }),
    ),
  );
}

/** A readiness endpoint that answers `status` to everything (a sidecar's admin port, reduced). */
function readiness(status: number): Promise<{ server: Server; port: number }> {
  const server = createServer((_req, res) => res.writeHead(status).end());
  return new Promise((ok) =>
    server.listen(0, '127.0.0.1', () => ok({ server, port: (server.address() as AddressInfo).port })),
  );
}

async function service(sup: Supervisor, dir: string, backends: string[], readyPorts?: number[]): Promise<string> {
  const { url } = await startService(sup, {
    haproxy: findTool('haproxy', repoRoot, 'make system-deps'),
    name: 'service',
    configFile: join(dir, 'haproxy.cfg'),
    port: await freePort(),
    backends,
    serverTimeoutMs: 5000,
    ...(readyPorts === undefined ? {} : { readiness: { path: '/readyz', ports: readyPorts, intervalMs: 100 } }),
  });
  return url;
}

async function stats(base: string, backends: string[]): Promise<ServiceStats> {
  const parsed = await fetchServiceStats(base, backends);
  expect(parsed).not.toBeNull();
  return parsed!;
}

describe('the Service (HAProxy)', () => {
  const sup = new Supervisor();
  const servers: Server[] = [];
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'cb-lab-service-'));
  });
  afterEach(async () => {
    await sup.stopAll();
    await Promise.all(
      servers.splice(0).map(
        (s) =>
          new Promise((r) => {
            s.closeAllConnections();
            s.close(r);
          }),
      ),
    );
    rmSync(dir, { recursive: true, force: true });
  });

  it('balances per request round robin, passes answers through and counts the exact peak in flight per replica', async () => {
    const a = await replica('a', 150);
    const b = await replica('b', 150);
    servers.push(a.server, b.server);
    const base = await service(sup, dir, [a.url, b.url]);

    // Sequential requests alternate between the replicas (per request, over one keep-alive connection).
    const seen: string[] = [];
    for (let i = 0; i < 4; i++) {
      const res = await request(`${base}/predict?x=1`, { method: 'POST', body: '{"data":[[1,2,3,4]]}' });
      const json = (await res.body.json()) as { name: string; path: string };
      expect(json.path).toBe('/predict?x=1');
      expect(res.statusCode).toBe(json.name === 'a' ? 200 : 503);
      expect(res.headers['x-replica']).toBe(json.name);
      seen.push(json.name);
    }
    expect(seen.sort()).toEqual(['a', 'a', 'b', 'b']);

    // 10 at once: 5 per replica; the statistics' peak is the replicas' own.
    await Promise.all(
      Array.from({ length: 10 }, async () =>
        (await request(`${base}/predict`, { method: 'POST', body: '{}' })).body.dump(),
      ),
    );
    const after = await stats(base, [a.url, b.url]);
    expect(after.backends.map((s) => s.url)).toEqual([a.url, b.url]);
    expect(after.backends.map((s) => s.maxInflight)).toEqual([a.peak(), b.peak()]);
    expect(after.backends.map((s) => s.maxInflight)).toEqual([5, 5]);
    expect(after.backends.map((s) => s.inflight)).toEqual([0, 0]);
    expect(after.requests).toBe(14);
    expect(after.errors).toBe(0);
  });

  it("passes a client's close on to the replica at once, so abandoned requests do not pile up there", async () => {
    const slow = await replica('a', 3000);
    servers.push(slow.server);
    const base = await service(sup, dir, [slow.url]);
    const gaveUp = await Promise.allSettled(
      Array.from({ length: 4 }, () =>
        request(`${base}/predict`, { method: 'POST', body: '{}', signal: AbortSignal.timeout(200) }),
      ),
    );
    expect(gaveUp.every((r) => r.status === 'rejected')).toBe(true);
    // Well before the replica's 3 s answer: it saw every client leave, and the Service holds nothing.
    const deadline = Date.now() + 1500;
    while (slow.abandoned() < 4 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(slow.abandoned()).toBe(4);
    expect((await stats(base, [slow.url])).backends[0]!.inflight).toBe(0);
  });

  it('with readiness checks sends nothing to a replica whose /readyz fails, as a Service skips an unready pod', async () => {
    const a = await replica('a', 0);
    const b = await replica('b', 0);
    const readyA = await readiness(200);
    const notReadyB = await readiness(503);
    servers.push(a.server, b.server, readyA.server, notReadyB.server);
    const base = await service(sup, dir, [a.url, b.url], [readyA.port, notReadyB.port]);
    // Checks start at once; wait until the Service has seen b fail (fall 1, every 100 ms).
    const down = async (): Promise<boolean> => (await stats(base, [a.url, b.url])).backends[1]!.ready === false;
    const deadline = Date.now() + 3000;
    while (!(await down()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(await down()).toBe(true);
    expect((await stats(base, [a.url, b.url])).backends[0]!.ready).toBe(true);
    for (let i = 0; i < 10; i++) {
      const res = await request(`${base}/predict`, { method: 'POST', body: '{}' });
      expect(((await res.body.json()) as { name: string }).name).toBe('a');
    }
    const after = await stats(base, [a.url, b.url]);
    expect(after.backends[1]!.requests).toBe(0);
  });

  it('refuses a readiness port list that does not match the replicas', () => {
    expect(() =>
      haproxyConfig({
        port: 4000,
        backends: ['http://127.0.0.1:4001', 'http://127.0.0.1:4002'],
        readiness: { path: '/readyz', ports: [4101], intervalMs: 100 },
      }),
    ).toThrow(RangeError);
  });

  it('reads no statistics from text that is not HAProxy CSV', () => {
    expect(parseServiceStats('<html></html>', ['http://127.0.0.1:1'])).toBeNull();
    expect(parseServiceStats('', [])).toBeNull();
  });

  it('talks h2 to gRPC replicas (proto h2 per server) and keeps one bind that detects the h2 preface', () => {
    const cfg = haproxyConfig({ port: 4000, backends: ['http://127.0.0.1:4001'], h2: true });
    expect(cfg).toContain('server r0 127.0.0.1:4001 proto h2');
    expect(cfg).toContain('bind 127.0.0.1:4000\n');
  });

  it("takes each replica's host and port into the config and the timeout in ms", () => {
    const cfg = haproxyConfig({
      port: 4000,
      backends: ['http://127.0.0.1:4001', 'http://127.0.0.1:4002'],
      serverTimeoutMs: 11_000,
    });
    expect(cfg).toContain('bind 127.0.0.1:4000');
    expect(cfg).toContain('server r0 127.0.0.1:4001');
    expect(cfg).toContain('server r1 127.0.0.1:4002');
    expect(cfg).toContain('timeout server 11000ms');
    expect(cfg).toContain('balance roundrobin');
    expect(cfg).toContain('option abortonclose');
    expect(cfg).not.toContain('maxconn');
    expect(haproxyConfig({ port: 4000, backends: ['http://127.0.0.1:4001'] })).toContain('timeout server 60000ms');
    expect(cfg).not.toContain('check');
    const ready = haproxyConfig({
      port: 4000,
      backends: ['http://127.0.0.1:4001'],
      readiness: { path: '/readyz', ports: [4101], intervalMs: 100 },
    });
    expect(ready).toContain('option httpchk GET /readyz');
    expect(ready).toContain('timeout check 1s');
    expect(ready).toContain('server r0 127.0.0.1:4001 check port 4101 inter 100ms fall 1 rise 1');
  });
});
