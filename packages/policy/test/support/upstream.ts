import { createServer, request as httpRequest, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/** How the upstream answers: a status, headers and a body. */
export interface Answer {
  status: number;
  headers?: Record<string, string>;
  body?: string;
}

/**
 * A controllable upstream on 127.0.0.1: answers every request with `answer`, at once or (while `hold` is
 * set) only when the test calls `release()`, so a test decides exactly how many requests are in flight.
 * Records every request's headers and the peak number in flight.
 */
export class TestUpstream {
  answer: Answer = { status: 200, body: '{"prediction":[0.97,0.02,0.01]}' };
  /** Hold every request until release(). */
  hold = false;
  readonly requests: IncomingHttpHeaders[] = [];
  inflight = 0;
  peakInflight = 0;
  port = 0;
  private readonly held: (() => void)[] = [];
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private inflightWaiters: { n: number; resolve: () => void }[] = [];

  constructor(readonly name = 'upstream') {
    this.server = createServer({ keepAliveTimeout: 30_000 }, (req, res) => {
      this.requests.push(req.headers);
      this.inflight++;
      this.peakInflight = Math.max(this.peakInflight, this.inflight);
      this.inflightWaiters = this.inflightWaiters.filter((w) => (this.inflight >= w.n ? (w.resolve(), false) : true));
      req.resume();
      const send = (): void => {
        const a = this.answer;
        res.writeHead(a.status, { 'content-type': 'application/json', 'x-upstream': this.name, ...a.headers });
        res.end(a.body ?? '');
        this.inflight--;
      };
      req.once('end', () => (this.hold ? this.held.push(send) : send()));
    });
    this.server.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.once('close', () => this.sockets.delete(s));
    });
  }

  /** Listens on 127.0.0.1, a free port. */
  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  get address(): { address: string; port: number } {
    return { address: '127.0.0.1', port: this.port };
  }

  /** Resolves once `n` requests are in flight here. */
  waitForInflight(n: number, timeoutMs = 10_000): Promise<void> {
    if (this.inflight >= n) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${this.name}: ${this.inflight} in flight, not ${n}, after ${timeoutMs} ms`)),
        timeoutMs,
      );
      this.inflightWaiters.push({ n, resolve: () => (clearTimeout(timer), resolve()) });
    });
  }

  /** Answers every held request and stops holding. */
  release(): void {
    this.hold = false;
    for (const send of this.held.splice(0)) send();
  }

  async stop(): Promise<void> {
    this.release();
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** One answer as the client saw it. */
export interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** Sends one POST /predict on a connection of its own (as a separate client would). */
export function send(url: string, timeoutMs = 15_000): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      `${url}/predict`,
      { method: 'POST', agent: false, headers: { 'content-type': 'application/json' }, timeout: timeoutMs },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer from ${url} within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end('{"data":[[5.1,3.5,1.4,0.2]]}');
  });
}

/** Counts replies by status. */
export function byStatus(replies: readonly Reply[]): Record<number, number> {
  const out: Record<number, number> = {};
  for (const r of replies) out[r.status] = (out[r.status] ?? 0) + 1;
  return out;
}

/** Polls `check` every 20 ms until it is true (or fails after `timeoutMs`). */
export async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
