import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/** How the test upstream answers one request. */
export type UpstreamHandler = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

/** A real HTTP server on 127.0.0.1:0 whose behaviour the test controls, counting what reaches it. */
export class TestUpstream {
  /** requests that reached the upstream */
  received = 0;
  /** requests being handled right now, and the most seen at once */
  inflight = 0;
  maxInflight = 0;
  /** paths in arrival order */
  readonly paths: string[] = [];
  handler: UpstreamHandler = (_req, res) => void res.end('ok');
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  port = 0;

  constructor() {
    this.server = createServer((req, res) => {
      this.received++;
      this.inflight++;
      this.maxInflight = Math.max(this.maxInflight, this.inflight);
      this.paths.push(req.url ?? '');
      res.once('close', () => this.inflight--);
      void this.handler(req, res);
    });
    this.server.on('connection', (s) => {
      this.sockets.add(s);
      s.once('close', () => this.sockets.delete(s));
    });
  }

  /** Starts listening (again, on the same port when it was listening before). */
  async start(port = this.port): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(port, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  /** `http://127.0.0.1:<port>` */
  get origin(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Stops listening and cuts every connection, as a crashed process would. */
  async crash(): Promise<void> {
    const closed = new Promise((resolve) => this.server.close(resolve));
    for (const s of this.sockets) s.destroy();
    await closed;
  }
}

/** Starts a test upstream with `handler`. */
export function startUpstream(handler?: UpstreamHandler): Promise<TestUpstream> {
  const upstream = new TestUpstream();
  if (handler) upstream.handler = handler;
  return upstream.start();
}

/** An upstream handler that answers 200 after `ms`. */
export function slow(ms: number, status = 200): UpstreamHandler {
  return (_req, res) => {
    const t = setTimeout(() => {
      res.statusCode = status;
      res.end('slow');
    }, ms);
    res.once('close', () => clearTimeout(t));
  };
}

/** Resolves after `ms`. */
export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `check` every 5 ms until it holds; throws after `timeoutMs` (tests on a loaded machine). */
export async function eventually(check: () => boolean, timeoutMs = 5000): Promise<void> {
  const until = performance.now() + timeoutMs;
  while (!check()) {
    if (performance.now() > until) throw new Error(`condition not met within ${timeoutMs} ms: ${check.toString()}`);
    await sleep(5);
  }
}
