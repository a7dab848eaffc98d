// Hostile clients on raw sockets against the built API and the built sidecar in front of it: every attack
// gets a clear answer (or a closed connection where HTTP has no answer), nothing is smuggled, nothing
// leaves for another host, and the service keeps answering everyone else.
import {
  Attacker,
  idleConnections,
  raw,
  startApi,
  startSidecar,
  stopAll,
  TestUpstream,
  type ApiProcess,
  type SidecarProcess,
} from '@infer-cb/testkit';

const CONFIG = 'sidecar:\n  drain: { delay: 0ms, grace: 5s }\n';
let api: ApiProcess;
let sidecar: SidecarProcess;
let spy: SidecarProcess;
let spied: TestUpstream;
let attacker: Attacker;

beforeAll(async () => {
  [api, spied, attacker] = await Promise.all([
    startApi(),
    new TestUpstream({ serviceMs: 2 }).start(),
    new Attacker().start(),
  ]);
  [sidecar, spy] = await Promise.all([
    startSidecar({ upstream: api.origin, yaml: CONFIG }),
    startSidecar({ upstream: spied.origin, yaml: CONFIG }),
  ]);
}, 40_000);
afterAll(async () => {
  await stopAll(2000);
  await Promise.all([spied.stop(), attacker.stop()]);
});

/** A complete request with `Connection: close`. */
function request(method: string, path: string, headers: Record<string, string> = {}, body = ''): string {
  const lines = Object.entries({ host: 'iris-svc', connection: 'close', ...headers }).map(([k, v]) => `${k}: ${v}\r\n`);
  return `${method} ${path} HTTP/1.1\r\n${lines.join('')}\r\n${body}`;
}

async function stillServes(port: number): Promise<void> {
  const res = await fetch(`http://127.0.0.1:${port}/predict/test`, { signal: AbortSignal.timeout(3000) });
  expect(res.status).toBe(200);
  expect(await res.json()).toHaveProperty('prediction');
}

describe.each([
  ['the API', () => api.port],
  ['the sidecar', () => sidecar.port],
])('hostile clients against %s', (_name, port) => {
  it('rejects Content-Length together with Transfer-Encoding (smuggling) with one 400 and a closed connection', async () => {
    const smuggled = request('GET', '/smuggled-cl-te');
    const body = `0\r\n\r\n${smuggled}`;
    const a = await raw(port(), [
      request(
        'POST',
        '/predict',
        { 'content-type': 'application/json', 'content-length': String(body.length), 'transfer-encoding': 'chunked' },
        body,
      ),
    ]);
    expect(a.statuses).toEqual([400]);
    expect(a.closed).toBe(true);
    await stillServes(port());
  });

  it('rejects duplicate, conflicting Content-Length headers with 400', async () => {
    const a = await raw(port(), [
      `POST /predict HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 4\r\ncontent-length: 40\r\n\r\n{"a"`,
    ]);
    expect(a.statuses).toEqual([400]);
    expect(a.closed).toBe(true);
  });

  it('answers 431 to oversized headers', async () => {
    const a = await raw(port(), [request('GET', '/health', { 'x-bloat': 'a'.repeat(32 * 1024) })]);
    expect(a.statuses).toEqual([431]);
    expect(a.closed).toBe(true);
  });

  it('answers 413 to a body over the limit, and to more rows than a batch may hold', async () => {
    const big = JSON.stringify({ data: [[5.1, 3.5, 1.4, 0.2]], pad: 'x'.repeat(2 * 1024 * 1024) });
    const a = await raw(
      port(),
      [request('POST', '/predict', { 'content-type': 'application/json', 'content-length': String(big.length) }, big)],
      5000,
    );
    expect(a.statuses).toEqual([413]);
    const rows = JSON.stringify({ data: Array.from({ length: 5000 }, () => [5.1, 3.5, 1.4, 0.2]) });
    const b = await raw(
      port(),
      [
        request(
          'POST',
          '/predict',
          { 'content-type': 'application/json', 'content-length': String(rows.length) },
          rows,
        ),
      ],
      5000,
    );
    expect(b.statuses).toEqual([413]);
    expect(b.text).toMatch(/"error":\{"code":/);
    await stillServes(port());
  });

  it('answers 4xx with an error body to deeply nested JSON and stays up', async () => {
    const depth = 200_000;
    const nested = `{"data":${'['.repeat(depth)}${']'.repeat(depth)}}`;
    const a = await raw(
      port(),
      [
        request(
          'POST',
          '/predict',
          { 'content-type': 'application/json', 'content-length': String(nested.length) },
          nested,
        ),
      ],
      5000,
    );
    expect(a.statuses).toHaveLength(1);
    expect(a.statuses[0]).toBeGreaterThanOrEqual(400);
    expect(a.statuses[0]).toBeLessThan(500);
    expect(a.text).toMatch(/"error":\{"code":/);
    await stillServes(port());
  });

  it('answers 400 to invalid UTF-8 in a JSON body', async () => {
    const body = Buffer.concat([
      Buffer.from('{"data":[[5.1,3.5,1.4,"'),
      Buffer.from([0xff, 0xfe, 0xc3]),
      Buffer.from('"]]}'),
    ]);
    const a = await raw(port(), [
      request('POST', '/predict', { 'content-type': 'application/json', 'content-length': String(body.length) }),
      body,
    ]);
    expect(a.statuses).toHaveLength(1);
    expect(a.statuses[0]).toBeGreaterThanOrEqual(400);
    expect(a.statuses[0]).toBeLessThan(500);
  });

  it('answers 400 to an invalid method', async () => {
    const a = await raw(port(), ['F@O /health HTTP/1.1\r\nhost: x\r\n\r\n']);
    expect(a.statuses).toEqual([400]);
    expect(a.closed).toBe(true);
  });

  it('never forwards an absolute-form target or a forged Host anywhere else', async () => {
    const target = `127.0.0.1:${attacker.port}`;
    const a = await raw(port(), [request('GET', `http://${target}/predict/test`, { host: target })]);
    const b = await raw(port(), [request('GET', '/predict/test', { host: target, 'x-forwarded-host': target })]);
    for (const answer of [a, b]) {
      expect(answer.statuses).toHaveLength(1);
      expect(answer.text).not.toContain('pwned');
    }
    expect(b.statuses).toEqual([200]);
    expect(attacker.connections).toBe(0);
  });

  it('refuses CONNECT with a 4xx answer and opens no tunnel', async () => {
    const target = `127.0.0.1:${attacker.port}`;
    const a = await raw(port(), [`CONNECT ${target} HTTP/1.1\r\nhost: ${target}\r\n\r\n`]);
    expect(a.statuses).toHaveLength(1);
    expect(a.statuses[0]).toBeGreaterThanOrEqual(400);
    expect(a.statuses[0]).toBeLessThan(500);
    expect(a.closed).toBe(true);
    expect(attacker.connections).toBe(0);
  });

  it('does not switch protocols on an Upgrade request', async () => {
    const a = await raw(port(), [
      request('GET', '/health', {
        connection: 'Upgrade',
        upgrade: 'websocket',
        'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
        'sec-websocket-version': '13',
      }),
    ]);
    expect(a.statuses).toHaveLength(1);
    // The sidecar refuses (501); the API, which has no upgrade handler, answers the GET as plain HTTP.
    expect(a.statuses[0]).not.toBe(101);
    expect(a.text).not.toMatch(/upgrade: websocket/i);
  });

  it('keeps answering others while a thousand clients connect and never send', async () => {
    const idle = await idleConnections(port(), 1000);
    try {
      const started = performance.now();
      await stillServes(port());
      expect(performance.now() - started).toBeLessThan(2000);
    } finally {
      for (const s of idle) s.destroy();
    }
  }, 30_000);
});

describe('the sidecar in front of a recording upstream', () => {
  it('lets no smuggled request reach the upstream (CL+TE, TE+CL, duplicate CL)', async () => {
    const smuggled = request('GET', '/smuggled');
    const attacks = [
      `POST /predict HTTP/1.1\r\nhost: x\r\ncontent-length: ${5 + smuggled.length}\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n${smuggled}`,
      `POST /predict HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\ncontent-length: 4\r\n\r\n5c\r\n${smuggled}\r\n0\r\n\r\n`,
      `POST /predict HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\ncontent-length: ${smuggled.length}\r\n\r\n${smuggled}`,
      `POST /predict HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked, identity\r\n\r\n0\r\n\r\n${smuggled}`,
    ];
    for (const attack of attacks) {
      const a = await raw(spy.port, [attack]);
      expect(a.statuses[0]).toBe(400);
    }
    expect(spied.paths.filter((p) => p.includes('smuggled'))).toEqual([]);
  });

  it('sends an absolute-form request to its one upstream, reduced to the path', async () => {
    const before = spied.paths.length;
    const a = await raw(spy.port, [
      request(
        'POST',
        `http://127.0.0.1:${attacker.port}/predict?x=1`,
        { host: `127.0.0.1:${attacker.port}`, 'content-length': '2' },
        '{}',
      ),
    ]);
    expect(a.statuses).toEqual([200]);
    expect(spied.paths.slice(before)).toEqual(['/predict?x=1']);
    expect(attacker.connections).toBe(0);
  });

  it('closes a slowloris connection that never finishes its headers', async () => {
    const drip = ['GET /health HTTP/1.1\r\nhost: x\r\n', ...Array.from({ length: 20 }, (_, i) => `x-drip-${i}: 1\r\n`)];
    const started = performance.now();
    const a = await raw(spy.port, drip, 15_000, 1000);
    expect(a.closed).toBe(true);
    // Answered before the close: 408 with its own code (the request did not arrive in time).
    expect(a.statuses).toEqual([408]);
    expect(a.text).toContain('"code":"CB_REQUEST_TIMEOUT"');
    // LISTENER.headersTimeoutMs is 10 s; the close must come from that timer, not from the end of the drip.
    expect(performance.now() - started).toBeLessThan(10_000 + 3000);
    await stillServes(spy.port);
  }, 30_000);
});
