// The HTTP/1.1 engine's own behaviours (http1/server.ts), end to end through a real sidecar in front of a real
// upstream, spoken to over raw sockets so every byte of the framing is seen: pipelining, Expect, HTTP/1.0,
// trailers, bodiless answers, answers before the body, clients that go away or send a bad chunk, Connection:
// close, the drain, request bodies; and the timeouts' sweep, on an engine started with short timeouts.
import { createHash, randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { eventually, PREDICTION, RawConnection, sleep, type UpstreamHandler } from '@infer-cb/testkit';
import { Http1Server, type Http1ServerOptions } from '../src/http1/server.js';
import type { Sidecar } from '../src/server.js';
import { useFixture } from './support/fixture.js';
import { metricsText, send } from './support/sidecar.js';

const fx = useFixture('each');

/** One answer cut out of what a server wrote, by HTTP/1.1 framing. */
interface Answer {
  status: number;
  /** the head's header lines, names lower-cased (a repeated name keeps its last value) */
  headers: Record<string, string>;
  body: string;
  /** a chunked answer's trailers */
  trailers: Record<string, string> | undefined;
  chunked: boolean;
}

function headerLines(lines: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    out[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
  }
  return out;
}

/**
 * The complete answers in `text`, in order: a body by content-length, by chunks (and trailers), or up to the
 * end of the text (close-delimited: only once the connection closed); 1xx, 204, 304 and the answers whose
 * index is in `toHead` have none. An answer not yet complete is left out.
 */
function answers(text: string, toHead: ReadonlySet<number> = new Set(), closed = false): Answer[] {
  const out: Answer[] = [];
  let at = 0;
  for (let requestIndex = 0; at < text.length;) {
    const end = text.indexOf('\r\n\r\n', at);
    if (end < 0) break;
    const [statusLine = '', ...lines] = text.slice(at, end).split('\r\n');
    const status = Number(statusLine.split(' ')[1]);
    const headers = headerLines(lines);
    let pos = end + 4;
    let body = '';
    let trailers: Record<string, string> | undefined;
    const chunked = headers['transfer-encoding'] === 'chunked';
    const bodiless = status < 200 || status === 204 || status === 304 || toHead.has(requestIndex);
    if (bodiless) {
      // no body
    } else if (headers['content-length'] !== undefined) {
      const length = Number(headers['content-length']);
      if (text.length < pos + length) break;
      body = text.slice(pos, pos + length);
      pos += length;
    } else if (chunked) {
      let complete = false;
      for (;;) {
        const lineEnd = text.indexOf('\r\n', pos);
        if (lineEnd < 0) break;
        const size = parseInt(text.slice(pos, lineEnd), 16);
        if (size === 0) {
          const tail = text.indexOf('\r\n\r\n', lineEnd);
          if (tail < 0 && text.slice(lineEnd, lineEnd + 4) !== '\r\n\r\n') break;
          const trailerText = text.slice(lineEnd + 2, tail < 0 ? lineEnd : tail);
          trailers = headerLines(trailerText === '' ? [] : trailerText.split('\r\n'));
          pos = (tail < 0 ? lineEnd : tail) + 4;
          complete = true;
          break;
        }
        if (text.length < lineEnd + 2 + size + 2) break;
        body += text.slice(lineEnd + 2, lineEnd + 2 + size);
        pos = lineEnd + 2 + size + 2;
      }
      if (!complete) break;
    } else {
      if (!closed) break;
      body = text.slice(pos);
      pos = text.length;
    }
    out.push({ status, headers, body, trailers, chunked });
    at = pos;
    if (status >= 200) requestIndex++;
  }
  return out;
}

/** Waits until `conn` has received `n` complete answers (1xx included) and returns them. */
/** Sends `text` on a new connection and reads its answers once the sidecar has closed the connection (which it must). */
async function closedAnswers(port: number, text: string): Promise<Answer[]> {
  const conn = await RawConnection.open(port);
  await conn.write(text);
  expect(await conn.whenClosed()).toBe(true);
  return answers(conn.text, undefined, true);
}

async function nAnswers(conn: RawConnection, n: number, toHead?: ReadonlySet<number>): Promise<Answer[]> {
  await conn.until((text) => answers(text, toHead).length >= n);
  return answers(conn.text, toHead);
}

function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Reads the whole body; answers its method, target, size and sha256 as JSON. */
const echo: UpstreamHandler = async (req, res) => {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of req) {
    hash.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  const body = JSON.stringify({ method: req.method, url: req.url, bytes, sha: hash.digest('hex') });
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
};

/** Reads the body to its end (or until the request is cut). */
async function drainBody(req: IncomingMessage): Promise<void> {
  try {
    for await (const _ of req);
  } catch {
    // the sidecar cut the request
  }
}

/** Every byte value: bodies that must arrive byte for byte. */
const ALL_BYTES = Buffer.from(Array.from({ length: 256 }, (_, i) => i));

/** A sidecar whose breaker two counted failures would open, before an upstream that reads every body. */
function touchySidecar(): Promise<Sidecar> {
  fx.upstream.handler = async (req, res) => {
    await drainBody(req);
    res.end('answered');
  };
  return fx.start(`
trafficPolicy: { outlierDetection: { consecutive5xxErrors: 2 } }
sidecar: { breaker: { volumeThreshold: 2 } }
`);
}

/**
 * A sidecar with one slot and a 100 ms queue, the slot taken by a GET /held that the upstream answers only
 * on `release()`: a request that comes meanwhile waits its 100 ms in the queue and is shed.
 */
async function busySidecar(sidecarYaml = ''): Promise<{ sidecar: Sidecar; holder: RawConnection; release(): void }> {
  let release: (() => void) | undefined;
  fx.upstream.handler = async (req, res) => {
    await drainBody(req);
    if (req.url === '/held') await new Promise<void>((resolve) => (release = resolve));
    res.end(`answer to ${req.url}`);
  };
  const sidecar = await fx.start(`
trafficPolicy: { connectionPool: { tcp: { maxConnections: 1 }, http: { http1MaxPendingRequests: 1 } } }
sidecar: { queue: { timeout: 100ms }${sidecarYaml} }
`);
  const holder = await RawConnection.open(sidecar.port);
  await holder.write('GET /held HTTP/1.1\r\nHost: x\r\n\r\n');
  await eventually(() => release !== undefined);
  return { sidecar, holder, release: () => release?.() };
}

/** True once `port` refuses connections (the listener has closed, and marked its connections draining). */
function refused(port: number): Promise<boolean> {
  return RawConnection.open(port).then(
    (probe) => (probe.destroy(), false),
    () => true,
  );
}

describe('pipelining (RFC 9112 §9.3.2)', () => {
  it('answers two pipelined requests in order, sending the second upstream only after the first is answered', async () => {
    const events: string[] = [];
    fx.upstream.handler = async (req, res) => {
      events.push(`arrived ${req.method} ${req.url}`);
      await drainBody(req);
      if (req.method === 'POST') await sleep(150); // time enough for a second request sent too early to show
      events.push(`answered ${req.method} ${req.url}`);
      res.end(`answer to ${req.url}`);
    };
    const sidecar = await fx.start();
    const conn = await RawConnection.open(sidecar.port);
    await conn.write(
      'POST /first HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello' + 'GET /second HTTP/1.1\r\nHost: x\r\n\r\n',
    );
    const got = await nAnswers(conn, 2);
    conn.destroy();
    expect(got.map((a) => [a.status, a.body])).toEqual([
      [200, 'answer to /first'],
      [200, 'answer to /second'],
    ]);
    expect(events).toEqual([
      'arrived POST /first',
      'answered POST /first',
      'arrived GET /second',
      'answered GET /second',
    ]);
  });

  it('answers three pipelined requests in order, one upstream call at a time, the slowest first', async () => {
    const events: string[] = [];
    const delays: Record<string, number> = { '/a': 200, '/b': 100, '/c': 0 };
    fx.upstream.handler = async (req, res) => {
      events.push(`arrived ${req.url}`);
      await drainBody(req);
      await sleep(delays[req.url ?? ''] ?? 0);
      events.push(`answered ${req.url}`);
      res.end(`answer to ${req.url}`);
    };
    const sidecar = await fx.start();
    const conn = await RawConnection.open(sidecar.port);
    await conn.write(
      'GET /a HTTP/1.1\r\nHost: x\r\n\r\n' +
        'POST /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n' +
        'GET /c HTTP/1.1\r\nHost: x\r\n\r\n',
    );
    const got = await nAnswers(conn, 3);
    conn.destroy();
    expect(got.map((a) => a.body)).toEqual(['answer to /a', 'answer to /b', 'answer to /c']);
    expect(events).toEqual(['arrived /a', 'answered /a', 'arrived /b', 'answered /b', 'arrived /c', 'answered /c']);
  });
});

describe('Expect', () => {
  it('answers 100 Continue before the body is sent, then the answer, and does not pass Expect upstream', async () => {
    let expectSeen: string | undefined = 'not called';
    fx.upstream.handler = (req, res) => {
      expectSeen = req.headers.expect;
      void echo(req, res);
    };
    const sidecar = await fx.start();
    const conn = await RawConnection.open(sidecar.port);
    await conn.write('POST /e HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 11\r\n\r\n');
    await conn.until((text) => text.includes('\r\n\r\n'));
    expect(conn.text).toBe('HTTP/1.1 100 Continue\r\n\r\n'); // and nothing else before the body
    await conn.write('hello world');
    const [cont, final] = await nAnswers(conn, 2);
    conn.destroy();
    expect(cont?.status).toBe(100);
    expect(final?.status).toBe(200);
    expect(JSON.parse(final?.body ?? '')).toMatchObject({ bytes: 11, sha: sha256('hello world') });
    expect(expectSeen).toBeUndefined();
  });

  it('answers 417 to any other expectation, sends nothing upstream, and serves the next request', async () => {
    const sidecar = await fx.start();
    const conn = await RawConnection.open(sidecar.port);
    await conn.write(
      'POST /e HTTP/1.1\r\nHost: x\r\nExpect: something-else\r\nContent-Length: 5\r\n\r\nhello' +
        'GET /after HTTP/1.1\r\nHost: x\r\n\r\n',
    );
    const got = await nAnswers(conn, 2);
    conn.destroy();
    expect(got.map((a) => a.status)).toEqual([417, 200]);
    expect(fx.upstream.paths).toEqual(['/after']);
  });
});

describe('HTTP/1.0', () => {
  it('closes the connection after the answer when the client did not ask for keep-alive', async () => {
    const sidecar = await fx.start();
    const got = await closedAnswers(sidecar.port, 'GET /ten HTTP/1.0\r\n\r\n');
    expect(got.map((a) => a.status)).toEqual([200]);
    expect(got[0]?.headers.connection).toBe('close');
  });

  it('keeps the connection open with Connection: keep-alive and says so in the answer', async () => {
    const sidecar = await fx.start();
    const conn = await RawConnection.open(sidecar.port);
    await conn.write('GET /one HTTP/1.0\r\nConnection: keep-alive\r\n\r\n');
    const [first] = await nAnswers(conn, 1);
    expect(first?.headers.connection).toBe('keep-alive');
    await conn.write('GET /two HTTP/1.0\r\nConnection: keep-alive\r\n\r\n');
    const got = await nAnswers(conn, 2);
    conn.destroy();
    expect(got.map((a) => a.status)).toEqual([200, 200]);
    expect(fx.upstream.paths).toEqual(['/one', '/two']);
  });

  /** An upstream answer without content-length: node:http sends it chunked. */
  const chunkedUpstream: UpstreamHandler = (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    res.write(ALL_BYTES.subarray(0, 100));
    res.write(ALL_BYTES.subarray(100, 200));
    res.end(ALL_BYTES.subarray(200));
  };

  it('passes a chunked upstream answer to an HTTP/1.0 client close-delimited, byte for byte', async () => {
    fx.upstream.handler = chunkedUpstream;
    const sidecar = await fx.start();
    const got = await closedAnswers(sidecar.port, 'GET /bytes HTTP/1.0\r\nConnection: keep-alive\r\n\r\n');
    expect(got).toHaveLength(1);
    expect(got[0]?.headers['transfer-encoding']).toBeUndefined();
    expect(got[0]?.headers['content-length']).toBeUndefined();
    expect(got[0]?.headers.connection).toBe('close');
    expect(got[0]?.body).toBe(ALL_BYTES.toString('latin1'));
  });

  it('passes the same answer to an HTTP/1.1 client chunked, byte for byte, on a connection that stays open', async () => {
    fx.upstream.handler = chunkedUpstream;
    const sidecar = await fx.start();
    const conn = await RawConnection.open(sidecar.port);
    await conn.write('GET /bytes HTTP/1.1\r\nHost: x\r\n\r\n');
    const [got] = await nAnswers(conn, 1);
    expect(got?.chunked).toBe(true);
    expect(got?.body).toBe(ALL_BYTES.toString('latin1'));
    await conn.write('GET /again HTTP/1.1\r\nHost: x\r\n\r\n');
    expect((await nAnswers(conn, 2))[1]?.body).toBe(ALL_BYTES.toString('latin1'));
    conn.destroy();
  });
});

describe('trailers', () => {
  it("passes a chunked answer's end-to-end trailers to an HTTP/1.1 client and drops hop-by-hop ones", async () => {
    fx.upstream.handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain', trailer: 'x-checksum, x-rows' });
      res.write('part one;');
      res.addTrailers({ 'x-checksum': 'abc123', 'x-rows': '7', 'keep-alive': 'timeout=9', te: 'deflate' });
      res.end('part two');
    };
    const sidecar = await fx.start();
    const conn = await RawConnection.open(sidecar.port);
    await conn.write('GET /trailers HTTP/1.1\r\nHost: x\r\nTE: trailers\r\n\r\n');
    const [got] = await nAnswers(conn, 1);
    conn.destroy();
    expect(got?.chunked).toBe(true);
    expect(got?.body).toBe('part one;part two');
    expect(got?.trailers).toEqual({ 'x-checksum': 'abc123', 'x-rows': '7' });
  });
});

describe('bodiless answers', () => {
  it("passes HEAD's content-length through with no body after it, and serves the next request", async () => {
    fx.upstream.handler = (req, res) => {
      if (req.method === 'HEAD') {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': '1234' });
        return void res.end();
      }
      res.end('after');
    };
    const sidecar = await fx.start();
    const conn = await RawConnection.open(sidecar.port);
    await conn.write('HEAD /model HTTP/1.1\r\nHost: x\r\n\r\n');
    const [head] = await nAnswers(conn, 1, new Set([0]));
    expect(head?.headers['content-length']).toBe('1234');
    await conn.write('GET /after HTTP/1.1\r\nHost: x\r\n\r\n');
    const got = await nAnswers(conn, 2, new Set([0]));
    conn.destroy();
    // Nothing between HEAD's blank line and the next status line: no body bytes.
    expect(conn.text.indexOf('\r\n\r\nHTTP/1.1 200')).toBe(conn.text.indexOf('\r\n\r\n'));
    expect(got[1]?.body).toBe('after');
  });

  it('passes 204 and 304 answers with no body, and the connection serves the next request', async () => {
    fx.upstream.handler = (req, res) => {
      if (req.url === '/204') res.writeHead(204, { 'x-kind': 'no-content' });
      else if (req.url === '/304') res.writeHead(304, { etag: '"v1"' });
      res.end(req.url === '/after' ? 'after' : undefined);
    };
    const sidecar = await fx.start();
    const conn = await RawConnection.open(sidecar.port);
    for (const [i, path] of ['/204', '/304', '/after'].entries()) {
      await conn.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`);
      await nAnswers(conn, i + 1);
    }
    conn.destroy();
    const got = answers(conn.text);
    expect(got.map((a) => a.status)).toEqual([204, 304, 200]);
    for (const bodiless of got.slice(0, 2)) {
      expect(bodiless.headers['transfer-encoding']).toBeUndefined();
      expect(bodiless.headers['content-length'] ?? '0').toBe('0');
    }
    expect(got[1]?.headers.etag).toBe('"v1"');
    expect(got[2]?.body).toBe('after'); // a stray body byte would have spoiled the status line after it
  });
});

describe('an answer before the body was read', () => {
  it('sheds an upload while its body is still coming, reads the rest and drops it, and serves the next request', async () => {
    const { sidecar, holder, release } = await busySidecar();
    // 1 MiB of body that reads as requests, were it ever taken for them.
    const smuggled = 'GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n';
    const body = Buffer.from(smuggled.repeat(Math.ceil((1 << 20) / smuggled.length)).slice(0, 1 << 20), 'latin1');
    const conn = await RawConnection.open(sidecar.port);
    const firstPart = conn.write(
      Buffer.concat([
        Buffer.from(`POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n`),
        body.subarray(0, 256 * 1024),
      ]),
    );
    const [shed] = await nAnswers(conn, 1);
    expect(shed?.status).toBe(503);
    expect(JSON.parse(shed?.body ?? '').error.code).toMatch(/^CB_(QUEUE_TIMEOUT|OVERLOAD)$/);
    expect(shed?.headers.connection).toBeUndefined(); // the connection stays
    release();
    await firstPart;
    await conn.write(body.subarray(256 * 1024));
    await conn.write('GET /after HTTP/1.1\r\nHost: x\r\n\r\n');
    const got = await nAnswers(conn, 2);
    conn.destroy();
    holder.destroy();
    expect(got.map((a) => a.status)).toEqual([503, 200]);
    expect(got[1]?.body).toBe('answer to /after');
    expect(fx.upstream.paths).toEqual(['/held', '/after']);
  });
});

describe('clients that go away or break the body', () => {
  it('counts a client that disconnects mid-upload as client-closed, never as an upstream failure', async () => {
    const sidecar = await touchySidecar();
    for (let i = 1; i <= 10; i++) {
      const conn = await RawConnection.open(sidecar.port);
      await conn.write(`POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: ${1 << 20}\r\n\r\n`);
      await conn.write(Buffer.alloc(64 * 1024, 'u'));
      await eventually(() => fx.upstream.received === i);
      conn.destroy();
      await eventually(() => fx.upstream.inflight === 0 && sidecar.state().inflight === 0);
    }
    expect(sidecar.state().breaker).toMatchObject({ state: 'closed', failures: 0 });
    expect(await metricsText(sidecar)).toMatch(
      /cb_requests_total\{outcome="client-closed",code="499",class="default"\} 10\b/,
    );
    expect((await send(sidecar.port, '/after')).status).toBe(200);
  });

  it('answers a malformed chunk after the head was accepted with one 400 and a JSON error, then closes', async () => {
    const sidecar = await touchySidecar();
    for (let i = 1; i <= 3; i++) {
      const conn = await RawConnection.open(sidecar.port);
      await conn.write('POST /chunky HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n');
      await eventually(() => fx.upstream.received === i); // the head was accepted and forwarded
      await conn.write('zz\r\nnot a chunk\r\n');
      expect(await conn.whenClosed()).toBe(true);
      const got = answers(conn.text, undefined, true);
      expect(got.map((a) => a.status)).toEqual([400]);
      const { error } = JSON.parse(got[0]?.body ?? '') as { error: { code: string; message: string } };
      expect(error.code).toBe('CB_BAD_REQUEST');
      expect(error.message).toContain('HPE_INVALID_CHUNK_SIZE');
      expect(got[0]?.headers.connection).toBe('close');
    }
    await eventually(() => fx.upstream.inflight === 0 && sidecar.state().inflight === 0);
    expect(sidecar.state().breaker).toMatchObject({ state: 'closed', failures: 0 });
  });
});

describe('Connection: close', () => {
  it('answers with connection: close and closes the connection after the answer', async () => {
    const sidecar = await fx.start();
    const got = await closedAnswers(sidecar.port, 'GET /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect(got.map((a) => [a.status, a.body])).toEqual([[200, PREDICTION]]);
    expect(got[0]?.headers.connection).toBe('close');
  });

  it('refuses bytes pipelined behind Connection: close with one 400, as node:http does, and never forwards them', async () => {
    // llhttp (strict, as node:http runs it) fails with HPE_CLOSED_CONNECTION on data after a `close` request:
    // the connection ends with a 400 in place of the first answer, and the second request goes nowhere.
    const sidecar = await fx.start();
    const conn = await RawConnection.open(sidecar.port);
    await conn.write(
      'GET /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' + 'GET /ignored HTTP/1.1\r\nHost: x\r\n\r\n',
    );
    expect(await conn.whenClosed()).toBe(true);
    const got = answers(conn.text, undefined, true);
    expect(got.map((a) => a.status)).toEqual([400]);
    expect(JSON.parse(got[0]?.body ?? '').error.message).toContain('HPE_CLOSED_CONNECTION');
    await sleep(50);
    expect(fx.upstream.paths).not.toContain('/ignored');
  });
});

describe('drain', () => {
  it('answers a request that arrives during the drain delay with connection: close, then closes', async () => {
    const sidecar = await fx.start('sidecar: { drain: { delay: 500ms, grace: 5s } }');
    const conn = await RawConnection.open(sidecar.port);
    await conn.write('GET /before HTTP/1.1\r\nHost: x\r\n\r\n');
    const [before] = await nAnswers(conn, 1);
    expect(before?.headers.connection).toBeUndefined();
    const drained = sidecar.drain();
    await conn.write('GET /during HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(await conn.whenClosed()).toBe(true);
    const got = answers(conn.text, undefined, true);
    expect(got.map((a) => a.status)).toEqual([200, 200]);
    expect(got[1]?.headers.connection).toBe('close');
    await drained;
  });

  it('ends a keep-alive connection whose request was in flight when the listener closed with connection: close', async () => {
    let release: (() => void) | undefined;
    fx.upstream.handler = (_req, res) => void (release = () => res.end('held'));
    const sidecar = await fx.start('sidecar: { drain: { delay: 0s, grace: 5s } }');
    const conn = await RawConnection.open(sidecar.port);
    await conn.write('GET /held HTTP/1.1\r\nHost: x\r\n\r\n');
    await eventually(() => release !== undefined);
    const drained = sidecar.drain();
    await eventually(() => refused(sidecar.port));
    release?.();
    expect(await conn.whenClosed()).toBe(true);
    const got = answers(conn.text, undefined, true);
    expect(got.map((a) => [a.status, a.body])).toEqual([[200, 'held']]);
    expect(got[0]?.headers.connection).toBe('close');
    await drained;
  });

  it('finishes when the body of an upload shed before the drain ends during it', async () => {
    const { sidecar, holder, release } = await busySidecar(', drain: { delay: 0s, grace: 20s }');
    const conn = await RawConnection.open(sidecar.port);
    const length = 1 << 20;
    const firstPart = conn.write(
      `POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: ${length}\r\n\r\n${'a'.repeat(1000)}`,
    );
    expect((await nAnswers(conn, 1))[0]?.status).toBe(503);
    await firstPart;
    release();
    await nAnswers(holder, 1); // the holder's connection is idle now: the drain closes it
    const drained = sidecar.drain();
    await eventually(() => refused(sidecar.port));
    await conn.write(Buffer.alloc(length - 1000, 'b')); // the rest of the shed body: the connection is idle now
    const outcome = await Promise.race([drained.then(() => 'drained'), sleep(8000).then(() => 'still draining')]);
    expect(outcome).toBe('drained');
    expect(await conn.whenClosed(1000)).toBe(true);
  });
});

describe('request bodies', () => {
  it('passes a 5 MiB content-length upload to the upstream byte for byte', async () => {
    fx.upstream.handler = echo;
    const sidecar = await fx.start();
    const body = randomBytes(5 << 20);
    const conn = await RawConnection.open(sidecar.port);
    await conn.write(`PUT /big HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n`);
    await conn.write(body);
    const [got] = await nAnswers(conn, 1);
    conn.destroy();
    expect(JSON.parse(got?.body ?? '')).toEqual({ method: 'PUT', url: '/big', bytes: body.length, sha: sha256(body) });
  });

  it('passes a chunked upload of 100 chunks to the upstream byte for byte', async () => {
    fx.upstream.handler = echo;
    const sidecar = await fx.start();
    const conn = await RawConnection.open(sidecar.port);
    await conn.write('POST /chunks HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n');
    const parts: Buffer[] = [];
    for (let i = 0; i < 100; i++) {
      const part = randomBytes(((i * 977) % 8192) + 1);
      parts.push(part);
      await conn.write(Buffer.concat([Buffer.from(`${part.length.toString(16)}\r\n`), part, Buffer.from('\r\n')]));
    }
    await conn.write('0\r\n\r\n');
    const [got] = await nAnswers(conn, 1);
    conn.destroy();
    const body = Buffer.concat(parts);
    expect(JSON.parse(got?.body ?? '')).toEqual({
      method: 'POST',
      url: '/chunks',
      bytes: body.length,
      sha: sha256(body),
    });
  });

  it('holds an upload back while the upstream does not read, and completes it when it reads slowly', async () => {
    let startReading: () => void = () => {};
    const reading = new Promise<void>((resolve) => (startReading = resolve));
    fx.upstream.handler = async (req, res) => {
      await reading;
      const hash = createHash('sha256');
      let bytes = 0;
      for await (const chunk of req) {
        hash.update(chunk as Buffer);
        bytes += (chunk as Buffer).length;
        await new Promise((resolve) => setImmediate(resolve)); // a slow reader
      }
      res.end(JSON.stringify({ bytes, sha: hash.digest('hex') }));
    };
    const sidecar = await fx.start();
    const piece = 1 << 20;
    const body = randomBytes(64 * piece);
    const conn = await RawConnection.open(sidecar.port);
    await conn.write(`POST /stalled HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n`);
    // Write 1 MiB at a time while the upstream reads nothing: the writes stop being taken once the socket
    // buffers on the way are full, long before the whole body (were the sidecar to buffer it, they would not).
    let taken = 0;
    let pending: Promise<void> | undefined;
    for (let i = 0; i < 64; i++) {
      pending = conn.write(body.subarray(i * piece, (i + 1) * piece));
      const stalled = await Promise.race([pending.then(() => false), sleep(1000).then(() => true)]);
      if (stalled) break;
      taken += piece;
      pending = undefined;
    }
    expect(taken).toBeLessThan(body.length);
    startReading();
    await pending;
    for (let at = taken + piece; at < body.length; at += piece) await conn.write(body.subarray(at, at + piece));
    const [got] = await nAnswers(conn, 1);
    conn.destroy();
    expect(JSON.parse(got?.body ?? '')).toEqual({ bytes: body.length, sha: sha256(body) });
  });
});

/** An engine on its own net server with short timeouts: the sweep's work shows in well under a second. */
async function startEngine(
  options: Partial<Http1ServerOptions>,
): Promise<{ port: number; errors: string[]; openSockets(): number; stop(): Promise<void> }> {
  const errors: string[] = [];
  const sockets = new Set<Socket>();
  const engine = new Http1Server(
    {
      maxHeaderSize: 16 * 1024,
      headersTimeoutMs: 10_000,
      requestTimeoutMs: 60_000,
      keepAliveTimeoutMs: 65_000,
      checkIntervalMs: 25,
      ...options,
    },
    {
      request(req, res) {
        const answer = (): void => {
          res.writeHead(200, { 'content-length': String(req.url.length) });
          res.end(req.url);
        };
        // `/early` is answered at once, before its body is read; everything else once its body is complete.
        req.start({ data() {}, end: req.url === '/early' ? () => {} : answer, error() {} });
        if (req.url === '/early') answer();
      },
      connect: (socket) => socket.destroy(),
      upgrade: (socket) => socket.destroy(),
      clientError(err, socket) {
        errors.push(err.code ?? err.message);
        socket.end('HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n');
      },
    },
  );
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    engine.handle(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    errors,
    openSockets: () => sockets.size,
    async stop() {
      engine.close();
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe("the engine's timeouts (its sweep, with short limits)", () => {
  let engine: Awaited<ReturnType<typeof startEngine>> | undefined;
  afterEach(async () => {
    await engine?.stop();
    engine = undefined;
  });

  it.each([
    [
      'a head that does not complete within the headers timeout',
      { headersTimeoutMs: 300 },
      'GET /slow HTTP/1.1\r\nHost: x\r\n',
    ],
    [
      'a body that does not complete within the request timeout',
      { requestTimeoutMs: 400 },
      'POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhalf.',
    ],
  ])('refuses %s with 408 and closes', async (_what, limits, text) => {
    engine = await startEngine(limits);
    const conn = await RawConnection.open(engine.port);
    await conn.write(text);
    expect(await conn.whenClosed()).toBe(true);
    expect(conn.statuses).toEqual([408]);
    expect(engine.errors).toEqual(['ERR_HTTP_REQUEST_TIMEOUT']);
  });

  it('cuts a connection answered with close whose body stops coming, at the request timeout', async () => {
    engine = await startEngine({ requestTimeoutMs: 400 });
    // A client that keeps its side open after the server's FIN, and sends no more of its body.
    const client = connect({ host: '127.0.0.1', port: engine.port, allowHalfOpen: true });
    client.on('error', () => undefined);
    let text = '';
    const ended = new Promise<void>((resolve) => client.once('end', resolve));
    client.on('data', (d: Buffer) => (text += d.toString('latin1')));
    client.write('POST /early HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 100\r\n\r\nten bytes.');
    await ended; // the answer, then the server's FIN
    expect(answers(text).map((a) => [a.status, a.headers.connection])).toEqual([[200, 'close']]);
    await eventually(() => engine?.openSockets() === 0, 5000);
    client.destroy();
  });

  it('closes a keep-alive connection once it has been idle for the keep-alive timeout', async () => {
    engine = await startEngine({ keepAliveTimeoutMs: 300 });
    const conn = await RawConnection.open(engine.port);
    await conn.write('GET /one HTTP/1.1\r\nHost: x\r\n\r\n');
    await nAnswers(conn, 1);
    expect(await conn.whenClosed()).toBe(true);
    expect(conn.statuses).toEqual([200]);
    expect(engine.errors).toEqual([]);
  });

  it('counts the keep-alive idle time from the end of a body read after its early answer', async () => {
    engine = await startEngine({ keepAliveTimeoutMs: 1000 });
    const conn = await RawConnection.open(engine.port);
    await conn.write('POST /early HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhalf.');
    await nAnswers(conn, 1); // answered before the body is complete
    await sleep(1200); // longer than the keep-alive timeout, the body still coming
    await conn.write('rest.');
    await sleep(200); // idle now, far less than the keep-alive timeout
    await conn.write('GET /next HTTP/1.1\r\nHost: x\r\n\r\n');
    const got = await nAnswers(conn, 2);
    conn.destroy();
    expect(got.map((a) => [a.status, a.body])).toEqual([
      [200, '/early'],
      [200, '/next'],
    ]);
  });
});
