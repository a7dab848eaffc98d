import { connect } from 'node:http2';
import {
  FLAG,
  FRAME,
  H2_ERROR,
  h2Frame,
  h2Raw,
  headerBlock,
  raw,
  settingsFrame,
  startUpstream,
  type TestUpstream,
} from '@infer-cb/testkit';
import { LISTENER } from '../src/listener.js';
import type { Sidecar } from '../src/server.js';
import { send, startSidecar } from './support/sidecar.js';

// Hostile HTTP/2 clients, with hand-built frames. What node:http2 (nghttp2) does with each was measured
// here first; docs/hardening.md records it. Each attack is refused, reaches the upstream with nothing, and
// the sidecar keeps serving both protocols.

let upstream: TestUpstream;
let sidecar: Sidecar;

beforeAll(async () => {
  upstream = await startUpstream();
  sidecar = await startSidecar(upstream.origin, 'sidecar: { upstream: { protocol: http1 } }');
});

afterAll(async () => {
  await sidecar.close();
  await upstream.crash();
});

/** An HTTP/1.1 request and an h2c request are both answered 200. */
async function stillServes(): Promise<void> {
  expect((await send(sidecar.port, '/health')).status).toBe(200);
  const session = connect(`http://127.0.0.1:${sidecar.port}`);
  try {
    const status = await new Promise<number>((resolve, reject) => {
      const stream = session.request({ ':path': '/health' });
      stream.on('response', (h) => resolve(Number(h[':status'])));
      stream.on('error', reject);
      stream.resume();
    });
    expect(status).toBe(200);
  } finally {
    session.destroy();
  }
}

const get = (id: number, path: string, extra: readonly (readonly [string, string])[] = []): Buffer =>
  h2Frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, id, headerBlock(path, extra));

describe('hostile HTTP/2 clients', () => {
  it('closes a rapid-reset connection (CVE-2023-44487) and forwards almost none of its streams', async () => {
    const before = upstream.received;
    const frames: Buffer[] = [];
    for (let i = 0; i < 5000; i++) {
      const id = 1 + 2 * i;
      frames.push(get(id, '/rapid-reset'), h2Frame(FRAME.RST_STREAM, 0, id, Buffer.from([0, 0, 0, H2_ERROR.CANCEL])));
    }
    const answer = await h2Raw(sidecar.port, frames, 5000);
    expect(answer.closed).toBe(true);
    expect(answer.goaway).toBeDefined();
    // Measured: none reach the upstream (nghttp2 closes the session long before 5,000 streams).
    expect(upstream.received - before).toBeLessThan(LISTENER.maxSessionRejectedStreams);
    await stillServes();
  });

  it('closes a connection that floods CONTINUATION frames without ever ending the header block', async () => {
    const frames = [h2Frame(FRAME.HEADERS, 0, 1, headerBlock('/continuation'))];
    for (let i = 0; i < 100_000; i++) frames.push(h2Frame(FRAME.CONTINUATION, 0, 1));
    const answer = await h2Raw(sidecar.port, frames, 5000);
    expect(answer.closed).toBe(true);
    expect(answer.goaway).toBeDefined();
    expect(answer.answers).toBe(0);
    expect(upstream.paths).not.toContain('/continuation');
    await stillServes();
  });

  it('closes a connection whose CONTINUATION frames grow the header list without end', async () => {
    const field = Buffer.concat([
      Buffer.from([0x00, 0x03]),
      Buffer.from('x-a'),
      Buffer.from([100]),
      Buffer.alloc(100, 98),
    ]);
    const frames = [h2Frame(FRAME.HEADERS, 0, 1, headerBlock('/continuation-grow'))];
    for (let i = 0; i < 10_000; i++) frames.push(h2Frame(FRAME.CONTINUATION, 0, 1, field));
    const answer = await h2Raw(sidecar.port, frames, 5000);
    expect(answer.closed).toBe(true);
    expect(answer.goaway).toBeDefined();
    expect(upstream.paths).not.toContain('/continuation-grow');
    await stillServes();
  });

  it('closes a connection that floods SETTINGS frames', async () => {
    const frames: Buffer[] = [];
    for (let i = 0; i < 100_000; i++) frames.push(settingsFrame([[4, 65_535]]));
    const answer = await h2Raw(sidecar.port, frames, 5000);
    expect(answer.closed).toBe(true);
    expect(answer.goaway).toBeDefined();
    await stillServes();
  });

  it('closes a connection whose SETTINGS frame holds more entries than maxSettings, with ENHANCE_YOUR_CALM', async () => {
    const entries = Array.from({ length: LISTENER.maxSettings + 1 }, () => [4, 65_535] as const);
    const answer = await h2Raw(sidecar.port, [settingsFrame(entries)], 2000);
    expect(answer.closed).toBe(true);
    expect(answer.goaway).toBe(H2_ERROR.ENHANCE_YOUR_CALM);
    await stillServes();
  });

  it('refuses a header list larger than maxHeaderListSize without forwarding it, the connection kept', async () => {
    const block = headerBlock('/oversized', [['x-big', 'a'.repeat(LISTENER.maxHeaderSize + 4096)]]);
    // Within the 16 KiB frame size: a HEADERS and a CONTINUATION frame.
    const frames = [
      h2Frame(FRAME.HEADERS, FLAG.END_STREAM, 1, block.subarray(0, 10_000)),
      h2Frame(FRAME.CONTINUATION, FLAG.END_HEADERS, 1, block.subarray(10_000)),
      get(3, '/after-oversized'),
    ];
    const answer = await h2Raw(sidecar.port, frames, 1500);
    expect(answer.closed).toBe(false);
    expect(upstream.paths).not.toContain('/oversized');
    // The stream after it on the same connection is served.
    await eventuallyReceived('/after-oversized');
    await stillServes();
  });

  it('resets a stream with more header fields than allowed, ENHANCE_YOUR_CALM, the connection kept', async () => {
    const many = Array.from({ length: 500 }, (_, i) => [`x-h${i}`, '1'] as const);
    const answer = await h2Raw(sidecar.port, [get(1, '/many-fields', many)], 1000);
    expect(answer.closed).toBe(false);
    expect(answer.frames.find((f) => f.type === FRAME.RST_STREAM)?.errorCode).toBe(H2_ERROR.ENHANCE_YOUR_CALM);
    expect(upstream.paths).not.toContain('/many-fields');
    await stillServes();
  });

  it('answers 408 and closes a connection that sends only the start of the HTTP/2 preface', async () => {
    // Neither protocol yet: the listener holds it no longer than the headers timeout.
    const started = performance.now();
    const answer = await raw(sidecar.port, ['PRI * HTTP/2.0\r\n'], LISTENER.headersTimeoutMs + 5000);
    expect(answer.closed).toBe(true);
    expect(answer.statuses).toEqual([408]);
    expect(performance.now() - started).toBeLessThan(LISTENER.headersTimeoutMs + 3000);
    await stillServes();
  }, 30_000);
});

async function eventuallyReceived(path: string): Promise<void> {
  const until = performance.now() + 2000;
  while (!upstream.paths.includes(path)) {
    if (performance.now() > until) throw new Error(`${path} never reached the upstream`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
