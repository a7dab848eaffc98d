import type { IncomingMessage, ServerResponse } from 'node:http';
import { connect, type Socket } from 'node:net';
import { eventually, sleep, startProcess, startUpstream, type TestUpstream } from '@infer-cb/testkit';
import { Http1Pool, type Http1PoolOptions } from '../src/http1/client.js';
import { call, header, RawServer, send, TestBody } from './support/http1.js';

const OPTIONS: Http1PoolOptions = {
  connections: 4,
  connectTimeoutMs: 1000,
  maxRequestsPerConnection: 0,
  idleTimeoutMs: 4000,
};

const pools: Http1Pool[] = [];
const servers: { stop(): Promise<void> }[] = [];

function pool(origin: string, options: Partial<Http1PoolOptions> = {}): Http1Pool {
  const p = new Http1Pool(origin, { ...OPTIONS, ...options });
  pools.push(p);
  return p;
}

/** A test upstream whose handler also records the connection of every request. */
async function upstream(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<TestUpstream & { conns: Set<Socket> }> {
  const conns = new Set<Socket>();
  const up = await startUpstream((req, res) => {
    conns.add(req.socket);
    handler(req, res);
  });
  servers.push(up);
  return Object.assign(up, { conns });
}

async function raw(onHead: ConstructorParameters<typeof RawServer>[0]): Promise<RawServer> {
  const server = await new RawServer(onHead).start();
  servers.push(server);
  return server;
}

/** Echoes method, path, the framing headers and the body it read. */
function echo(req: IncomingMessage, res: ServerResponse): void {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const body = JSON.stringify({
      method: req.method,
      url: req.url,
      host: req.headers.host,
      contentLength: req.headers['content-length'],
      transferEncoding: req.headers['transfer-encoding'],
      connection: req.headers.connection,
      body: Buffer.concat(chunks).toString(),
    });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
}

afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.destroy()));
  await Promise.all(servers.splice(0).map((s) => s.stop()));
});

describe('Http1Pool: requests and keep-alive', () => {
  it('sends the request line, the origin as host and the caller headers, and reuses one connection', async () => {
    const up = await upstream(echo);
    const p = pool(up.origin);
    for (let i = 0; i < 3; i++) {
      const answer = await call(p, { path: `/a/${i}?q=1`, headers: ['x-one', '1'] });
      expect(answer.status).toBe(200);
      expect(JSON.parse(answer.body)).toMatchObject({
        method: 'GET',
        url: `/a/${i}?q=1`,
        host: `127.0.0.1:${up.port}`,
      });
      expect(answer.body).not.toContain('contentLength');
    }
    expect(up.conns.size).toBe(1);
  });

  it("keeps the caller's host header instead of the origin's", async () => {
    const p = pool((await upstream(echo)).origin);
    const answer = await call(p, { headers: ['Host', 'model.example'] });
    expect(JSON.parse(answer.body).host).toBe('model.example');
  });

  it('announces an empty POST body with content-length: 0', async () => {
    const p = pool((await upstream(echo)).origin);
    const answer = await call(p, { method: 'POST', bodyLength: 0 });
    expect(JSON.parse(answer.body)).toMatchObject({ method: 'POST', contentLength: '0', body: '' });
  });

  it('opens at most `connections` and serves waiting requests first come, first served', async () => {
    const held: ServerResponse[] = [];
    const up = await upstream((_req, res) => held.push(res));
    const p = pool(up.origin, { connections: 2 });
    const answers = ['/1', '/2', '/3', '/4', '/5'].map((path) => call(p, { path }));
    await eventually(() => held.length === 2);
    await sleep(50);
    expect(up.paths).toEqual(['/1', '/2']);
    for (let served = 0; served < 5; served++) {
      await eventually(() => held.length > 0);
      (held.shift() as ServerResponse).end('ok');
    }
    await Promise.all(answers);
    expect(up.paths).toEqual(['/1', '/2', '/3', '/4', '/5']);
    expect(up.conns.size).toBe(2);
    expect(up.maxInflight).toBe(2);
  });

  it('closes a connection after maxRequestsPerConnection requests, announcing it on the last', async () => {
    const up = await upstream(echo);
    const p = pool(up.origin, { maxRequestsPerConnection: 2 });
    const seen = [];
    for (let i = 0; i < 4; i++) seen.push(JSON.parse((await call(p)).body).connection);
    expect(up.conns.size).toBe(2);
    expect(seen).toEqual([undefined, 'close', undefined, 'close']);
  });

  it('closes an idle connection after idleTimeoutMs', async () => {
    const up = await upstream(echo);
    const p = pool(up.origin, { idleTimeoutMs: 150 });
    await call(p);
    const [socket] = [...up.conns] as [Socket];
    await sleep(50);
    expect(socket.destroyed).toBe(false);
    await eventually(() => socket.destroyed, 3000);
    await call(p);
    expect(up.conns.size).toBe(2);
  });

  it("honours the upstream's shorter Keep-Alive: timeout (less a second): timeout=1 means no reuse", async () => {
    const server = await raw((socket) =>
      socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\nkeep-alive: timeout=1\r\n\r\nok'),
    );
    const p = pool(server.origin);
    await call(p);
    await call(p);
    expect(server.sockets.length).toBe(2);
  });

  it("closes an idle connection by the upstream's Keep-Alive: timeout when it is below idleTimeoutMs", async () => {
    const server = await raw((socket) =>
      socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\nkeep-alive: timeout=2, max=100\r\n\r\nok'),
    );
    const p = pool(server.origin, { idleTimeoutMs: 60_000 });
    await call(p);
    expect(server.openSockets).toBe(1);
    await eventually(() => server.openSockets === 0, 5000); // 2 s less the margin, not 60 s
  });

  it('closes a connection whose answer says connection: close, even if the upstream keeps it open', async () => {
    const server = await raw((socket) =>
      socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok'),
    );
    const p = pool(server.origin);
    await call(p);
    await eventually(() => server.openSockets === 0);
    await call(p);
    expect(server.sockets.length).toBe(2);
  });

  it('does not reuse the connection of an HTTP/1.0 answer without keep-alive', async () => {
    const server = await raw((socket) => socket.write('HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\nok'));
    const p = pool(server.origin);
    await call(p);
    await call(p);
    expect(server.sockets.length).toBe(2);
  });

  it('drops an idle connection the upstream sends unasked bytes on, and uses a fresh one', async () => {
    const server = await raw((socket) => {
      socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
      setTimeout(() => socket.write('HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nstale'), 20);
    });
    const p = pool(server.origin);
    await call(p);
    await eventually(() => server.openSockets === 0);
    expect((await call(p)).body).toBe('ok');
    expect(server.sockets.length).toBe(2);
  });
});

describe('Http1Pool: answer framing', () => {
  it('reads a content-length answer with its raw headers and status message', async () => {
    const p = pool((await upstream((_req, res) => res.writeHead(201, 'Made', { 'x-a': 'b' }).end('hello'))).origin);
    const answer = await call(p);
    expect(answer).toMatchObject({ status: 201, statusMessage: 'Made', body: 'hello', trailers: undefined });
    expect(header(answer.headers, 'x-a')).toBe('b');
  });

  it('de-chunks a chunked answer and hands over its trailers', async () => {
    const up = await upstream((_req, res) => {
      res.writeHead(200, { trailer: 'grpc-status' });
      res.write('ab');
      setTimeout(() => {
        res.addTrailers({ 'grpc-status': '0' });
        res.end('cd');
      }, 10);
    });
    const p = pool(up.origin);
    const answer = await call(p);
    expect(answer.body).toBe('abcd');
    expect(answer.trailers).toEqual(['grpc-status', '0']);
    await call(p);
    expect(up.conns.size).toBe(1);
  });

  it('reads a close-delimited answer to the end and does not reuse its connection', async () => {
    const server = await raw((socket) => socket.end('HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nuntil close'));
    const p = pool(server.origin);
    expect((await call(p)).body).toBe('until close');
    expect((await call(p)).body).toBe('until close');
    expect(server.sockets.length).toBe(2);
  });

  it('reads no body after a HEAD answer with a content-length, and reuses the connection', async () => {
    const up = await upstream((req, res) => {
      res.writeHead(200, { 'content-length': '10' });
      res.end(req.method === 'HEAD' ? undefined : '0123456789');
    });
    const p = pool(up.origin);
    expect(await call(p, { method: 'HEAD' })).toMatchObject({ status: 200, body: '' });
    expect((await call(p)).body).toBe('0123456789');
    expect(up.conns.size).toBe(1);
  });

  it.each([204, 304])('reads no body after a %i and reuses the connection', async (status) => {
    const up = await upstream((_req, res) => res.writeHead(status).end());
    const p = pool(up.origin);
    expect(await call(p)).toMatchObject({ status, body: '' });
    expect(await call(p)).toMatchObject({ status, body: '' });
    expect(up.conns.size).toBe(1);
  });

  it('swallows 1xx answers and reports only the final one', async () => {
    const server = await raw((socket) =>
      socket.write(
        'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n' +
          'HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok',
      ),
    );
    const p = pool(server.origin);
    expect(await call(p)).toMatchObject({ status: 200, starts: 1, body: 'ok' });
    expect(await call(p)).toMatchObject({ status: 200, starts: 1, body: 'ok' });
    expect(server.sockets.length).toBe(1);
  });

  it('joins a head of more than 32 header lines', async () => {
    const names = Array.from({ length: 70 }, (_, i) => `x-h${i}`);
    const up = await upstream((_req, res) => {
      for (const name of names) res.setHeader(name, name.toUpperCase());
      res.end('ok');
    });
    const answer = await call(pool(up.origin));
    for (const name of names) expect(header(answer.headers, name)).toBe(name.toUpperCase());
  });
});

describe('Http1Pool: request bodies', () => {
  it('streams a body of known length with content-length', async () => {
    const p = pool((await upstream(echo)).origin);
    const body = new TestBody(['hel', 'lo ', 'world']);
    const answer = await call(p, { method: 'POST', body, bodyLength: 11 });
    expect(JSON.parse(answer.body)).toMatchObject({ contentLength: '11', body: 'hello world' });
    expect(JSON.parse(answer.body).transferEncoding).toBeUndefined();
  });

  it('streams a body of unknown length chunked, big chunks included', async () => {
    const p = pool((await upstream(echo)).origin);
    const big = 'x'.repeat(100_000);
    const answer = await call(p, { method: 'PUT', body: new TestBody(['a', big, 'z']), bodyLength: -1 });
    expect(JSON.parse(answer.body)).toMatchObject({ transferEncoding: 'chunked', body: `a${big}z` });
  });

  it('fails the request when the body is longer than its content-length', async () => {
    const p = pool((await upstream(echo)).origin);
    await expect(call(p, { method: 'POST', body: new TestBody(['toolong']), bodyLength: 3 })).rejects.toMatchObject({
      code: 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH',
    });
  });

  it('fails the request with the error its body source reports', async () => {
    const p = pool((await upstream(echo)).origin);
    const boom = new Error('client went away');
    const body = {
      start: (sink: { error(e: Error): void }) => setTimeout(() => sink.error(boom), 5),
      pause() {},
      resume() {},
    };
    await expect(call(p, { method: 'POST', body, bodyLength: 10 })).rejects.toBe(boom);
  });

  it('pauses the body source while the socket is full and resumes it on drain', async () => {
    let bytes = 0;
    const up = await upstream((req, res) => {
      req.pause(); // read nothing for a while: the client's socket fills
      setTimeout(() => {
        req.on('data', (c: Buffer) => (bytes += c.length));
        req.on('end', () => res.end(String(bytes)));
        req.resume();
      }, 300);
    });
    const chunk = Buffer.alloc(1024 * 1024, 'b');
    const body = new TestBody(
      Array.from({ length: 16 }, () => chunk),
      1,
    );
    const answer = await call(pool(up.origin), { method: 'POST', body, bodyLength: 16 * chunk.length });
    expect(answer.body).toBe(String(16 * chunk.length));
    expect(body.pauses).toBeGreaterThan(0);
    expect(body.resumes).toBeGreaterThan(0);
  });

  it('resumes a body source it paused once the answer has come, so the source is not left held', async () => {
    const server = await raw((socket) => {
      socket.pause(); // reads nothing more: the client's writes back up
      socket.write('HTTP/1.1 413 Payload Too Large\r\ncontent-length: 4\r\n\r\nfull');
    });
    const chunk = Buffer.alloc(1024 * 1024, 'p');
    const body = new TestBody(
      Array.from({ length: 8 }, () => chunk),
      1,
      false,
    );
    const answer = await call(pool(server.origin), { method: 'POST', body, bodyLength: 8 * chunk.length });
    body.stop();
    expect(answer.status).toBe(413);
    expect(body.pauses).toBe(1);
    expect(body.resumes).toBe(1);
  });

  it('delivers an answer that comes before the body is sent, and then does not reuse the connection', async () => {
    const up = await upstream((_req, res) => res.writeHead(413, { 'content-length': '4' }).end('full'));
    const p = pool(up.origin);
    const body = new TestBody(['first'], 5, false);
    expect(await call(p, { method: 'POST', body, bodyLength: 1000 })).toMatchObject({ status: 413, body: 'full' });
    body.stop();
    await call(p);
    expect(up.conns.size).toBe(2);
  });
});

describe('Http1Pool: failures', () => {
  it('fails with the system code when the connection is refused', async () => {
    const p = pool('http://127.0.0.1:9'); // discard: nothing listens there on a test machine
    await expect(call(p)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });

  it('fails with UND_ERR_CONNECT_TIMEOUT when the connection is not accepted in time', async () => {
    // A listener with backlog 0 that never accepts: once its accept queue holds one connection, the kernel
    // drops further SYNs, so the next connect stays pending (Linux).
    const listener = await startProcess({
      name: 'full-backlog',
      command: 'python3',
      args: [
        '-c',
        'import json,socket,time\ns=socket.socket()\ns.bind(("127.0.0.1",0))\ns.listen(0)\n' +
          'print(json.dumps({"port":s.getsockname()[1]}),flush=True)\ntime.sleep(60)',
      ],
      readyLine: (line) => typeof line.port === 'number',
    });
    const fillers: Socket[] = [];
    try {
      const port = listener.ready?.port as number;
      for (let i = 0; i < 2; i++) fillers.push(connect(port, '127.0.0.1').on('error', () => undefined));
      await sleep(100);
      const p = pool(`http://127.0.0.1:${port}`, { connectTimeoutMs: 300 });
      await expect(call(p)).rejects.toMatchObject({ code: 'UND_ERR_CONNECT_TIMEOUT' });
    } finally {
      for (const s of fillers) s.destroy();
      await listener.stop(500);
    }
  });

  it('fails with the HPE code of a malformed answer', async () => {
    const server = await raw((socket) => socket.write('SSH-2.0-OpenSSH_9.6 this is not HTTP\r\n\r\n'));
    const err = await call(pool(server.origin)).catch((e: Error) => e);
    expect(err).toMatchObject({ code: 'HPE_INVALID_CONSTANT' });
    expect((err as Error).message).toContain('HPE_INVALID_CONSTANT');
  });

  it('fails with UND_ERR_SOCKET when the upstream closes mid-body, after the head was reported', async () => {
    const server = await raw((socket) => socket.end('HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npartial'));
    const recorder = send(pool(server.origin));
    await expect(recorder.done).rejects.toMatchObject({ code: 'UND_ERR_SOCKET' });
    expect(recorder.answer.status).toBe(200);
    await sleep(20);
    expect(recorder.settled).toBe(1);
  });

  it('fails with UND_ERR_SOCKET when the upstream closes before answering a first request', async () => {
    const server = await raw((socket) => socket.end());
    await expect(call(pool(server.origin))).rejects.toMatchObject({ code: 'UND_ERR_SOCKET' });
    expect(server.sockets.length).toBe(1); // a fresh connection's request is never sent twice
  });

  it('does not reuse a connection that sent bytes after its answer', async () => {
    const server = await raw((socket) =>
      socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n'),
    );
    const p = pool(server.origin);
    expect((await call(p)).body).toBe('ok');
    await eventually(() => server.openSockets === 0);
    expect((await call(p)).body).toBe('ok');
    expect(server.sockets.length).toBe(2);
  });

  it('fails the request with what a handler throws, and drops the connection', async () => {
    const up = await upstream(echo);
    const p = pool(up.origin);
    const bug = new Error('handler bug');
    await expect(
      call(
        p,
        {},
        {
          onResponseStart: () => {
            throw bug;
          },
        },
      ),
    ).rejects.toBe(bug);
    await call(p);
    expect(up.conns.size).toBe(2);
  });
});

describe('Http1Pool: stale keep-alive connections', () => {
  /**
   * Answers each connection's first request (after 20 ms: its body has ended by then, so the connection is
   * reusable); a connection's second request is met with a close, unanswered.
   */
  async function closesOnSecond(): Promise<RawServer> {
    return raw((socket, _head, index) => {
      if (index === 0) setTimeout(() => socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok'), 20);
      else socket.destroy();
    });
  }

  it.each(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE'])(
    'sends an idempotent %s without a body again on a fresh connection once',
    async (method) => {
      const server = await closesOnSecond();
      const p = pool(server.origin);
      await call(p, { method });
      expect(await call(p, { method })).toMatchObject({ status: 200 });
      expect(server.sockets.length).toBe(2);
    },
  );

  it('fails a POST instead of sending it twice', async () => {
    const server = await closesOnSecond();
    const p = pool(server.origin);
    await call(p, { method: 'POST', bodyLength: 0 });
    const err = await call(p, { method: 'POST', bodyLength: 0 }).catch((e: { code: string }) => e);
    expect(['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE']).toContain(err.code);
    expect(server.sockets.length).toBe(1);
  });

  it('fails a PUT whose body was already started instead of sending it twice', async () => {
    const server = await closesOnSecond();
    const p = pool(server.origin);
    await call(p, { method: 'PUT', body: new TestBody(['a']), bodyLength: 1 });
    await expect(call(p, { method: 'PUT', body: new TestBody(['b']), bodyLength: 1 })).rejects.toHaveProperty('code');
    expect(server.sockets.length).toBe(1);
  });
});

describe('Http1Pool: abort and backpressure', () => {
  it('fails with the reason and sends nothing when aborted inside onRequestStart', async () => {
    const up = await upstream(echo);
    const reason = new Error('cancelled');
    const recorder = send(pool(up.origin), {}, { onRequestStart: (c) => c.abort(reason) });
    await expect(recorder.done).rejects.toBe(reason);
    await sleep(50);
    expect(up.received).toBe(0);
  });

  it('destroys the connection and fails with the reason when aborted while waiting for the answer', async () => {
    const up = await upstream(() => undefined); // never answers
    const p = pool(up.origin);
    let controller: { abort(e: Error): void } | undefined;
    const recorder = send(p, {}, { onRequestStart: (c) => (controller = c) });
    await eventually(() => up.inflight === 1);
    const reason = new Error('deadline');
    controller?.abort(reason);
    await expect(recorder.done).rejects.toBe(reason);
    await eventually(() => up.inflight === 0);
    controller?.abort(new Error('again')); // a second abort changes nothing
    await sleep(20);
    expect(recorder.settled).toBe(1);
  });

  it('fails with the reason when aborted mid-body and never reuses that connection', async () => {
    const up = await upstream((req, res) => {
      if (req.url === '/next') return void res.end('next');
      res.writeHead(200, { 'content-length': '100' });
      res.write('part');
    });
    const p = pool(up.origin);
    const reason = new Error('client gone');
    await expect(call(p, { path: '/first' }, { onResponseData: (c) => c.abort(reason) })).rejects.toBe(reason);
    expect((await call(p, { path: '/next' })).body).toBe('next');
    expect(up.conns.size).toBe(2);
  });

  it('stops reading the answer while paused and reads on after resume', async () => {
    const chunk = Buffer.alloc(64 * 1024, 'r');
    const total = 64 * chunk.length;
    const up = await upstream((_req, res) => {
      res.writeHead(200, { 'content-length': String(total) });
      for (let i = 0; i < 64; i++) res.write(chunk);
      res.end();
    });
    let paused: { resume(): void } | undefined;
    const recorder = send(
      pool(up.origin),
      {},
      {
        onResponseData: (c) => {
          if (paused === undefined) {
            paused = c;
            c.pause();
          }
        },
      },
    );
    await eventually(() => paused !== undefined);
    await sleep(200);
    const whilePaused = recorder.received;
    expect(whilePaused).toBeLessThan(total);
    paused?.resume();
    expect((await recorder.done).body.length).toBe(total);
  });
});

describe('Http1Pool: close and destroy', () => {
  it('refuses requests after close() and lets in-flight and waiting ones finish', async () => {
    const up = await upstream((_req, res) => setTimeout(() => res.end('done'), 50));
    const p = pool(up.origin, { connections: 1 });
    const first = call(p, { path: '/1' });
    const second = call(p, { path: '/2' });
    const closed = p.close();
    expect(p.closed).toBe(true);
    await expect(call(p)).rejects.toMatchObject({ code: 'UND_ERR_CLOSED' });
    expect((await first).body).toBe('done');
    expect((await second).body).toBe('done');
    await closed;
    await eventually(() => [...up.conns].every((s) => s.destroyed));
  });

  it('closes idle connections at once on close()', async () => {
    const up = await upstream(echo);
    const p = pool(up.origin);
    await call(p);
    await p.close();
    await eventually(() => [...up.conns].every((s) => s.destroyed));
  });

  it('fails in-flight and waiting requests on destroy()', async () => {
    const up = await upstream(() => undefined);
    const p = pool(up.origin, { connections: 1 });
    const first = call(p, { path: '/1' });
    const second = call(p, { path: '/2' });
    await eventually(() => up.inflight === 1);
    const destroyed = p.destroy();
    await expect(first).rejects.toMatchObject({ code: 'UND_ERR_DESTROYED' });
    await expect(second).rejects.toMatchObject({ code: 'UND_ERR_DESTROYED' });
    await destroyed;
    expect(up.paths).toEqual(['/1']);
  });

  it('rejects invalid options naming each one', () => {
    expect(() => new Http1Pool('http://127.0.0.1:1', { ...OPTIONS, connections: 0, idleTimeoutMs: -1 })).toThrow(
      /connections must be an integer >= 1.*idleTimeoutMs must be an integer >= 1/,
    );
  });
});

describe('Http1Pool: under faults', () => {
  /** A small seeded generator (mulberry32): the same mix of faults on every run. */
  function seeded(seed: number): () => number {
    return () => {
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }

  it('settles every request exactly once and closes cleanly under mixed upstream faults and aborts', async () => {
    const random = seeded(42);
    const answers: ((socket: Socket) => void)[] = [
      (s) => s.write('HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello'),
      (s) => s.write('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nx-t: 1\r\n\r\n'),
      (s) => s.write('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n'),
      (s) => s.end('HTTP/1.1 200 OK\r\n\r\nclose-delimited'),
      (s) => s.end('HTTP/1.1 200 OK\r\ncontent-length: 50\r\n\r\ncut short'),
      (s) => s.write('not http\r\n\r\n'),
      (s) => s.destroy(),
      () => undefined, // never answers: the request's own timer aborts it
    ];
    const server = await raw((socket) => {
      const answer = answers[Math.floor(random() * answers.length)] as (s: Socket) => void;
      setTimeout(() => socket.destroyed || answer(socket), Math.floor(random() * 3));
    });
    const p = pool(server.origin, { connections: 8, maxRequestsPerConnection: 5, idleTimeoutMs: 20 });
    const total = 1500;
    const settled = new Array<number>(total).fill(0);
    let started = 0;
    let finished = 0;
    await new Promise<void>((resolve) => {
      const next = (): void => {
        if (started === total) return;
        const i = started++;
        const plan = random();
        let timer: NodeJS.Timeout | undefined;
        const done = (): void => {
          if (plan < 0.5) clearTimeout(timer); // the others' timers abort after the end: that must change nothing
          if (++settled[i] === 1 && ++finished === total) resolve();
          next();
        };
        const withBody = plan < 0.4;
        p.dispatch(
          {
            method: withBody ? 'POST' : plan < 0.7 ? 'GET' : 'DELETE',
            path: `/${i}`,
            headers: [],
            body: withBody ? new TestBody(['ab', 'cd'], 1) : null,
            bodyLength: withBody ? 4 : 0,
          },
          {
            onRequestStart: (c) => {
              if (plan > 0.98) c.abort(new Error('at once'));
              else timer = setTimeout(() => c.abort(new Error('timer')), plan > 0.9 ? 2 : 30);
            },
            onResponseStart: () => undefined,
            onResponseData: (c) => (plan > 0.85 && plan < 0.87 ? c.abort(new Error('mid-answer')) : undefined),
            onResponseEnd: done,
            onResponseError: done,
          },
        );
      };
      for (let k = 0; k < 16; k++) next();
    });
    await sleep(50); // a late second settlement would show here
    expect(settled.every((n) => n === 1)).toBe(true);
    await p.close();
    await eventually(() => server.openSockets === 0);
  });
});
