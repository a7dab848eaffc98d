import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/** What the controllable upstream does with the next requests. */
export type FaultMode = 'ok' | 'hang' | 'slow' | '5xx' | 'garbage' | 'headers-then-close' | 'mid-body-close';

const PREDICTION = JSON.stringify({ prediction: [0.97, 0.02, 0.01] });

/**
 * A small upstream whose behaviour a test switches at run time: answers like the API's /predict,
 * never answers, answers late, answers 500, writes bytes that are not HTTP, or cuts the body short.
 * Records every request path, so a test can prove a request never reached it (smuggling).
 */
export class FaultUpstream {
  mode: FaultMode = 'ok';
  /** delay of every answer in `ok` mode, and of `slow` mode (10x this) */
  baseDelayMs = 2;
  /** answers computed at once, like a model server's workers; more wait in its own FIFO (Infinity: no limit) */
  capacity = Infinity;
  /** request targets received, in order */
  readonly paths: string[] = [];
  port = 0;
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private busy = 0;
  private readonly waiting: (() => void)[] = [];

  constructor() {
    this.server = createServer({ keepAliveTimeout: 30_000 }, (req, res) => this.onRequest(req, res));
    this.server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
  }

  /** Listens on 127.0.0.1 and a free port. */
  async start(port = 0): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(port, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  /** The origin to give the sidecar as upstream. */
  get origin(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    this.paths.push(req.url ?? '');
    req.resume();
    req.once('end', () => this.answer(res));
  }

  private answer(res: ServerResponse): void {
    switch (this.mode) {
      case 'ok':
        return this.work(this.baseDelayMs, res);
      case 'slow':
        return this.work(this.baseDelayMs * 10, res);
      case 'hang':
        return; // the socket stays open until the client or stop() closes it
      case '5xx':
        return json(res, 500, JSON.stringify({ error: { code: 'INTERNAL', message: 'injected fault' } }));
      case 'garbage':
        res.socket?.end('SSH-2.0-OpenSSH_9.6 this is not HTTP\r\n\r\n');
        return;
      case 'headers-then-close':
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(PREDICTION.length) });
        res.flushHeaders();
        setImmediate(() => res.socket?.destroy());
        return;
      case 'mid-body-close':
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(PREDICTION.length + 100) });
        res.write(PREDICTION.slice(0, 10), () => res.socket?.destroy());
        return;
    }
  }

  /** Serves within `capacity` workers: a busy server queues, so overload shows as growing latency. */
  private work(ms: number, res: ServerResponse): void {
    const run = (): void => {
      this.busy++;
      this.later(ms, () => {
        this.busy--;
        json(res, 200, PREDICTION);
        this.waiting.shift()?.();
      });
    };
    if (this.busy < this.capacity) run();
    else this.waiting.push(run);
  }

  private later(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    this.timers.add(t);
  }

  /** Stops listening and cuts every connection (hanging ones too). */
  async stop(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

function json(res: ServerResponse, status: number, body: string): void {
  if (res.destroyed) return;
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}
