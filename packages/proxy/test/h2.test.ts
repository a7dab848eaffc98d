import { get as httpGet } from 'node:http';
import { connect, type ClientHttp2Session, type IncomingHttpHeaders } from 'node:http2';
import {
  eventually,
  grpc,
  oipClient,
  PREDICTION,
  startUpstream,
  tokensClient,
  type OipClient,
  type TestUpstream,
} from '@infer-cb/testkit';
import type { Sidecar } from '../src/server.js';
import { metricsText, send, startSidecar } from './support/sidecar.js';

/** One HTTP/2 exchange as a plain (non-gRPC) client sees it. */
interface H2Answer {
  headers: IncomingHttpHeaders;
  trailers: IncomingHttpHeaders;
  body: Buffer;
}

function h2request(
  session: ClientHttp2Session,
  headers: Record<string, string>,
  body?: Buffer | string,
): Promise<H2Answer> {
  return new Promise((resolve, reject) => {
    const stream = session.request(headers, { endStream: body === undefined });
    const parts: Buffer[] = [];
    let head: IncomingHttpHeaders = {};
    let trailers: IncomingHttpHeaders = {};
    stream.on('response', (h) => (head = h));
    stream.on('trailers', (t) => (trailers = t));
    stream.on('data', (d: Buffer) => parts.push(d));
    stream.on('end', () => resolve({ headers: head, trailers, body: Buffer.concat(parts) }));
    stream.on('error', reject);
    if (body !== undefined) stream.end(body);
  });
}

/** A gRPC frame: uncompressed flag, 4-byte length, message. */
function grpcFrame(message: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(message.length, 1);
  return Buffer.concat([head, message]);
}

const upstreams: TestUpstream[] = [];
const sidecars: Sidecar[] = [];
const clients: { close(): void }[] = [];
const sessions: ClientHttp2Session[] = [];

async function setUp(yaml = '', grpcUpstream = true): Promise<{ upstream: TestUpstream; sidecar: Sidecar }> {
  const upstream = await startUpstream({ grpc: grpcUpstream });
  upstreams.push(upstream);
  const origin = grpcUpstream ? `http://127.0.0.1:${upstream.grpcPort}` : upstream.origin;
  const sidecar = await startSidecar(origin, yaml);
  sidecars.push(sidecar);
  return { upstream, sidecar };
}

function infer(port: number): OipClient {
  const client = oipClient(`127.0.0.1:${port}`);
  clients.push(client);
  return client;
}

/** One unary call's outcome: its value, or its error; the trailers either way. */
interface UnaryResult {
  value: Record<string, unknown> | undefined;
  error: grpc.ServiceError | undefined;
  trailers: Record<string, unknown>;
}

async function unary(client: OipClient, method: string, request: Record<string, unknown>): Promise<UnaryResult> {
  try {
    const answer = await client.call(method, request);
    return { value: answer.response, error: undefined, trailers: answer.trailers?.metadata.getMap() ?? {} };
  } catch (err) {
    const error = err as grpc.ServiceError;
    return { value: undefined, error, trailers: error.metadata.getMap() };
  }
}

function h2session(port: number): ClientHttp2Session {
  const session = connect(`http://127.0.0.1:${port}`);
  session.on('error', () => {});
  sessions.push(session);
  return session;
}

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  for (const s of sessions.splice(0)) s.destroy();
  for (const s of sidecars.splice(0)) await s.close();
  for (const u of upstreams.splice(0)) await u.crash();
});

describe('h2c beside HTTP/1.1 on one listener', () => {
  it('answers an HTTP/1.1 client and an h2c client on the same port', async () => {
    const { upstream, sidecar } = await setUp('sidecar: { upstream: { protocol: http1 } }', false);
    upstream.handler = (req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ version: req.httpVersion, host: req.headers.host, names: Object.keys(req.headers) }));
    };
    const h1 = await send(sidecar.port, '/predict');
    expect(h1.status).toBe(200);
    const h2 = await h2request(h2session(sidecar.port), { ':path': '/predict', ':method': 'GET' });
    expect(h2.headers[':status']).toBe(200);
    const seen = JSON.parse(h2.body.toString()) as { version: string; host: string; names: string[] };
    // protocol http1: the h2c request reached the upstream as HTTP/1.1, its :authority as Host, no pseudo-headers.
    expect(seen.version).toBe('1.1');
    expect(seen.host).toBe(`127.0.0.1:${sidecar.port}`);
    expect(seen.names.filter((n) => n.startsWith(':'))).toEqual([]);
    expect(JSON.parse(h1.body)).toMatchObject({ version: '1.1' });
  });

  it('sends a plain h2c request body through and streams the answer back', async () => {
    const { upstream, sidecar } = await setUp('sidecar: { upstream: { protocol: http1 } }', false);
    upstream.handler = async (req, res) => {
      let bytes = 0;
      for await (const chunk of req) bytes += (chunk as Buffer).length;
      res.end(JSON.stringify({ bytes }));
    };
    const body = Buffer.alloc(1024 * 1024, 'x');
    const answer = await h2request(h2session(sidecar.port), { ':path': '/big', ':method': 'POST' }, body);
    expect(JSON.parse(answer.body.toString())).toEqual({ bytes: body.length });
  });

  it('counts requests by protocol', async () => {
    const { sidecar } = await setUp('sidecar: { upstream: { protocol: http1 } }', false);
    await send(sidecar.port, '/predict');
    await h2request(h2session(sidecar.port), { ':path': '/predict' });
    const text = await metricsText(sidecar);
    expect(text).toContain('cb_requests_by_protocol_total{protocol="http1",outcome="forwarded",grpc_status=""} 1');
    expect(text).toContain('cb_requests_by_protocol_total{protocol="h2",outcome="forwarded",grpc_status=""} 1');
    expect(text).toContain('cb_requests_total{outcome="forwarded",code="200",class="default"} 2');
    expect(JSON.parse((await send(sidecar.port, '/predict')).body)).toEqual(JSON.parse(PREDICTION));
  });
});

describe('gRPC through the sidecar (grpc-js client, h2c upstream)', () => {
  it('passes a unary ModelInfer through, with its status in the trailers', async () => {
    const { upstream, sidecar } = await setUp();
    const result = await unary(infer(sidecar.port), 'ModelInfer', { model_name: 'iris' });
    expect(result.error).toBeUndefined();
    expect(result.value).toMatchObject({ model_name: 'iris', outputs: [{ name: 'predict', shape: [1, 3] }] });
    const outputs = (result.value as { outputs: { contents: { fp32_contents: number[] } }[] }).outputs;
    expect(outputs[0]?.contents.fp32_contents[0]).toBeCloseTo(0.97);
    expect(upstream.received).toBe(1);
    expect(await metricsText(sidecar)).toContain(
      'cb_requests_by_protocol_total{protocol="h2",outcome="forwarded",grpc_status="0"} 1',
    );
  });

  it('streams a server-streaming call token by token and keeps its trailers', async () => {
    const { sidecar } = await setUp();
    const client = tokensClient(sidecar.port);
    clients.push(client);
    const started = performance.now();
    const arrivals: number[] = [];
    const trailers = await new Promise<Record<string, unknown>>((resolve, reject) => {
      const call = (client.Stream as (req: unknown) => grpc.ClientReadableStream<unknown>)({ count: 4, gapMs: 150 });
      call.on('data', () => arrivals.push(performance.now() - started));
      call.on('status', (s: grpc.StatusObject) => (s.code === 0 ? resolve(s.metadata.getMap()) : reject(s)));
      call.on('error', reject);
    });
    expect(arrivals).toHaveLength(4);
    // No buffering: the first token came long before the last (3 gaps of 150 ms).
    expect((arrivals[3] as number) - (arrivals[0] as number)).toBeGreaterThan(300);
    expect(trailers['x-upstream-trailer']).toBe('tokens-done');
  });

  it('holds the stream in flight until it ends, and does not cut it at the upstream timeout', async () => {
    const { sidecar } = await setUp('sidecar: { upstream: { timeout: 200ms } }');
    const client = tokensClient(sidecar.port);
    clients.push(client);
    const inflight: number[] = [];
    const code = await new Promise<number>((resolve) => {
      const call = (client.Stream as (req: unknown) => grpc.ClientReadableStream<unknown>)({ count: 6, gapMs: 100 });
      call.on('data', () => inflight.push(sidecar.state().inflight));
      call.on('status', (s: grpc.StatusObject) => resolve(s.code));
      call.on('error', () => {});
    });
    expect(code).toBe(0); // 600 ms of tokens through a 200 ms upstream timeout
    expect(inflight).toEqual([1, 1, 1, 1, 1, 1]);
    await eventually(() => sidecar.state().inflight === 0);
  });

  it('cuts a stream that goes idle for streamIdleTimeout, ending it with DEADLINE_EXCEEDED in the trailers', async () => {
    const { sidecar } = await setUp('sidecar: { upstream: { timeout: 1s, streamIdleTimeout: 150ms } }');
    const client = tokensClient(sidecar.port);
    clients.push(client);
    let tokens = 0;
    const status = await new Promise<grpc.StatusObject>((resolve) => {
      const call = (client.Stream as (req: unknown) => grpc.ClientReadableStream<unknown>)({ count: 5, gapMs: 600 });
      call.on('data', () => tokens++);
      call.on('status', resolve);
      call.on('error', () => {});
    });
    expect(tokens).toBe(1);
    expect(status.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    expect(status.details).toMatch(/idle/);
  });

  it('cancels the upstream call when the client cancels', async () => {
    const { upstream, sidecar } = await setUp();
    const client = tokensClient(sidecar.port);
    clients.push(client);
    await new Promise<void>((resolve) => {
      const call = (client.Stream as (req: unknown) => grpc.ClientReadableStream<unknown>)({ count: 50, gapMs: 100 });
      call.once('data', () => {
        call.cancel();
        resolve();
      });
      call.on('error', () => {});
    });
    await eventually(() => upstream.cancelled === 1);
    await eventually(() => sidecar.state().inflight === 0);
    expect(upstream.inflight).toBe(0);
  });

  it('sheds with RESOURCE_EXHAUSTED and grpc-retry-pushback-ms when limit and queue are full', async () => {
    const { upstream, sidecar } = await setUp(`
trafficPolicy: { connectionPool: { tcp: { maxConnections: 1 }, http: { http1MaxPendingRequests: 1 } } }
`);
    upstream.serviceMs = 300;
    const client = infer(sidecar.port);
    const results = await Promise.all(Array.from({ length: 5 }, () => unary(client, 'ModelInfer', {})));
    const shed = results.filter((r) => r.error?.code === grpc.status.RESOURCE_EXHAUSTED);
    expect(results.filter((r) => r.error === undefined).length).toBeGreaterThanOrEqual(1);
    expect(shed.length).toBeGreaterThanOrEqual(2);
    for (const r of shed) {
      expect(r.trailers['grpc-retry-pushback-ms']).toBe('1000');
      expect(r.trailers['x-cb-reason']).toMatch(/^(overload|queue-timeout)$/);
      expect(r.error?.details).toMatch(/full|queue/);
    }
    expect(await metricsText(sidecar)).toMatch(
      /cb_requests_by_protocol_total\{protocol="h2",outcome="(overload|queue-timeout)",grpc_status="8"\}/,
    );
  });

  it('opens the breaker on upstream UNAVAILABLE statuses and answers UNAVAILABLE with pushback while open', async () => {
    const { upstream, sidecar } = await setUp(`
trafficPolicy: { outlierDetection: { consecutive5xxErrors: 3 } }
sidecar: { breaker: { resetTimeout: 5s } }
`);
    upstream.mode = '5xx'; // ModelInfer fails with grpc-status 14 over HTTP 200
    const client = infer(sidecar.port);
    for (let i = 0; i < 3; i++) {
      const r = await unary(client, 'ModelInfer', {});
      expect(r.error?.code).toBe(grpc.status.UNAVAILABLE);
      expect(r.error?.details).toBe('injected fault'); // the upstream's own answer, passed through
    }
    expect(sidecar.state().breaker.state).toBe('open');
    const refused = await unary(client, 'ModelInfer', {});
    expect(refused.error?.code).toBe(grpc.status.UNAVAILABLE);
    expect(refused.error?.details).toBe('the circuit is open');
    expect(refused.trailers['x-cb-reason']).toBe('circuit-open');
    expect(Number(refused.trailers['grpc-retry-pushback-ms'])).toBeGreaterThan(4000);
    expect(upstream.received).toBe(3);
  });

  it('does not count a caller error (INVALID_ARGUMENT) against the upstream', async () => {
    const { upstream, sidecar } = await setUp('trafficPolicy: { outlierDetection: { consecutive5xxErrors: 2 } }');
    upstream.mode = '5xx';
    upstream.grpcFailStatus = grpc.status.INVALID_ARGUMENT;
    const client = infer(sidecar.port);
    for (let i = 0; i < 4; i++) expect((await unary(client, 'ModelInfer', {})).error?.code).toBe(3);
    expect(sidecar.state().breaker).toMatchObject({ state: 'closed', failures: 0 });
  });
});

describe('draining with HTTP/2 clients', () => {
  it('lets a stream in flight finish on SIGTERM-style drain, and sends GOAWAY on its connection', async () => {
    const { sidecar } = await setUp('sidecar: { drain: { delay: 0s, grace: 5s } }');
    const session = h2session(sidecar.port);
    let goaway = false;
    session.on('goaway', () => (goaway = true));
    const stream = session.request({
      ':path': '/testkit.Tokens/Stream',
      ':method': 'POST',
      'content-type': 'application/grpc',
      te: 'trailers',
    });
    stream.end(grpcFrame(Buffer.from(JSON.stringify({ count: 5, gapMs: 100 }))));
    let drained: Promise<void> | undefined;
    const frames: Buffer[] = [];
    const trailers = await new Promise<IncomingHttpHeaders>((resolve, reject) => {
      stream.on('data', (d: Buffer) => {
        frames.push(d);
        drained ??= sidecar.drain(); // after the first token: the stream is in flight
      });
      stream.on('trailers', resolve);
      stream.on('error', reject);
    });
    expect(trailers['grpc-status']).toBe('0');
    expect(Buffer.concat(frames).toString()).toContain('"token":4');
    await drained;
    expect(goaway).toBe(true);
  });
});

describe('streaming answers over HTTP/1.1 (server-sent events)', () => {
  it('passes events through as they come, past the upstream timeout, and cancels the upstream when the client goes', async () => {
    const { upstream, sidecar } = await setUp(
      'sidecar: { upstream: { timeout: 200ms, streamIdleTimeout: 1s } }',
      false,
    );
    let upstreamClosed = false;
    upstream.handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      let i = 0;
      const timer = setInterval(() => res.write(`data: ${i++}\n\n`), 100);
      res.once('close', () => {
        upstreamClosed = true;
        clearInterval(timer);
      });
    };
    const events = await new Promise<string[]>((resolve, reject) => {
      const seen: string[] = [];
      const req = httpGet({ host: '127.0.0.1', port: sidecar.port, path: '/v1/completions' }, (res) => {
        res.on('data', (d: Buffer) => {
          seen.push(d.toString());
          // 6 events = 600 ms: three times the upstream timeout, so the stream was not cut at 200 ms.
          if (seen.join('').split('\n\n').length > 6) {
            req.destroy();
            resolve(seen);
          }
        });
      });
      req.on('error', (err) => (seen.length > 0 ? undefined : reject(err)));
    });
    expect(events.join('')).toContain('data: 5');
    await eventually(() => upstreamClosed);
    await eventually(() => sidecar.state().inflight === 0);
  });
});

describe('grpc-timeout', () => {
  const call = (session: ClientHttp2Session, timeout: string) =>
    h2request(
      session,
      {
        ':path': '/inference.GRPCInferenceService/ModelInfer',
        ':method': 'POST',
        'content-type': 'application/grpc',
        te: 'trailers',
        'grpc-timeout': timeout,
      },
      grpcFrame(Buffer.alloc(0)),
    );

  it('cuts the call at the grpc-timeout with DEADLINE_EXCEEDED, as a trailers-only answer', async () => {
    const { upstream, sidecar } = await setUp();
    upstream.mode = 'hang';
    const started = performance.now();
    const answer = await call(h2session(sidecar.port), '300m');
    const ms = performance.now() - started;
    expect(answer.headers[':status']).toBe(200);
    expect(answer.headers['grpc-status']).toBe('4');
    expect(answer.headers['x-cb-reason']).toBe('upstream-timeout');
    expect(answer.headers['grpc-retry-pushback-ms']).toBeUndefined();
    expect(answer.body.length).toBe(0);
    expect(ms).toBeGreaterThanOrEqual(290);
    // The upstream saw the time left, not the client's original budget.
    expect(upstream.lastDeadlineMs).toBeLessThanOrEqual(300);
    expect(upstream.lastDeadlineMs).toBeGreaterThan(200);
    expect(sidecar.state().breaker.failures).toBe(0); // the client's deadline, not the upstream's fault
  });

  it('sheds a call whose grpc-timeout has already run out without forwarding it', async () => {
    const { upstream, sidecar } = await setUp();
    const answer = await call(h2session(sidecar.port), '0m');
    expect(answer.headers['grpc-status']).toBe('4');
    expect(answer.headers['x-cb-reason']).toBe('deadline');
    expect(upstream.received).toBe(0);
  });

  it('refuses a malformed grpc-timeout with INTERNAL and a message naming it', async () => {
    const { upstream, sidecar } = await setUp();
    const answer = await call(h2session(sidecar.port), 'soon');
    expect(answer.headers[':status']).toBe(200);
    expect(answer.headers['grpc-status']).toBe('13');
    expect(decodeURIComponent(String(answer.headers['grpc-message']))).toMatch(/grpc-timeout must be/);
    expect(upstream.received).toBe(0);
  });
});
