// A controlled upstream for the adaptive-limit tests and bench/adaptive: `parallelism` workers, a FIFO
// backlog of `backlog` requests (more get 503 at once, as an overloaded model server answers), and a
// service time that can be changed while it runs (`POST /__control?serviceMs=40`); `GET /__stats` counts.
// Plain erasable TypeScript with node: imports only, so Node 24 also runs it directly as a process:
//   node packages/proxy/test/limit/queueing-upstream.ts --parallelism 8 --service-ms 20 --backlog 16
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { parseArgs } from 'node:util';

/** Shape of the queueing upstream. */
export interface QueueingUpstreamOptions {
  parallelism: number;
  serviceMs: number;
  /** requests waiting for a worker before the upstream answers 503; default 16 */
  backlog?: number;
  /** default 0 (any free port) */
  port?: number;
}

/** A running queueing upstream on 127.0.0.1. */
export interface QueueingUpstream {
  readonly port: number;
  readonly origin: string;
  /** changes the service time of calls that start from now on */
  setServiceMs(ms: number): void;
  /** counters: served (200), rejected (503), max busy workers and max backlog seen */
  stats(): { served: number; rejected: number; maxBusy: number; maxQueued: number };
  close(): Promise<void>;
}

const OK_BODY = '{"prediction":[0.97,0.02,0.01]}';
const FULL_BODY = '{"error":{"code":"UPSTREAM_BUSY","message":"all workers busy and the backlog is full"}}';

/** Starts the queueing upstream on 127.0.0.1. */
export async function startQueueingUpstream(options: QueueingUpstreamOptions): Promise<QueueingUpstream> {
  const { parallelism } = options;
  const backlog = options.backlog ?? 16;
  if (!Number.isInteger(parallelism) || parallelism < 1)
    throw new RangeError(`parallelism must be an integer >= 1, got ${parallelism}`);
  if (!Number.isInteger(backlog) || backlog < 0)
    throw new RangeError(`backlog must be an integer >= 0, got ${backlog}`);
  let serviceMs = options.serviceMs;
  let busy = 0;
  let served = 0;
  let rejected = 0;
  let maxBusy = 0;
  let maxQueued = 0;
  const queue: ServerResponse[] = [];
  const sockets = new Set<Socket>();

  const finish = (res: ServerResponse): void => {
    busy--;
    if (!res.destroyed) {
      served++;
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': OK_BODY.length });
      res.end(OK_BODY);
    }
    startNext();
  };
  const serve = (res: ServerResponse): void => {
    busy++;
    if (busy > maxBusy) maxBusy = busy;
    setTimeout(finish, serviceMs, res);
  };
  const startNext = (): void => {
    while (busy < parallelism && queue.length > 0) {
      const next = queue.shift()!;
      if (!next.destroyed) serve(next);
    }
  };
  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    if (req.url === '/__stats') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ served, rejected, maxBusy, maxQueued }));
      return;
    }
    if (req.url?.startsWith('/__control')) {
      const ms = Number(new URL(req.url, 'http://x').searchParams.get('serviceMs'));
      if (!(ms > 0)) {
        res.writeHead(400, { 'content-type': 'application/json' });
        res.end('{"error":{"code":"BAD_CONTROL","message":"serviceMs must be a number > 0"}}');
        return;
      }
      serviceMs = ms;
      res.end(`{"serviceMs":${ms}}`);
      return;
    }
    if (busy < parallelism) serve(res);
    else if (queue.length < backlog) {
      queue.push(res);
      if (queue.length > maxQueued) maxQueued = queue.length;
    } else {
      rejected++;
      res.writeHead(503, { 'content-type': 'application/json', 'content-length': FULL_BODY.length });
      res.end(FULL_BODY);
    }
  };

  const server: Server = createServer((req, res) => {
    // Answer once the body is read, as a real model server parses its input first.
    req.resume();
    req.once('end', () => handle(req, res));
  });
  server.keepAliveTimeout = 65_000;
  server.on('connection', (s) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    origin: `http://127.0.0.1:${port}`,
    setServiceMs: (ms) => void (serviceMs = ms),
    stats: () => ({ served, rejected, maxBusy, maxQueued }),
    close: async () => {
      const closed = new Promise((resolve) => server.close(resolve));
      for (const s of sockets) s.destroy();
      await closed;
    },
  };
}

// CLI: print {"port":N} on stdout, stop on SIGTERM/SIGINT.
if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: {
      parallelism: { type: 'string', default: '8' },
      'service-ms': { type: 'string', default: '20' },
      backlog: { type: 'string', default: '16' },
      port: { type: 'string', default: '0' },
    },
  });
  try {
    const upstream = await startQueueingUpstream({
      parallelism: Number(values.parallelism),
      serviceMs: Number(values['service-ms']),
      backlog: Number(values.backlog),
      port: Number(values.port),
    });
    process.stdout.write(`${JSON.stringify({ port: upstream.port })}\n`);
    const stop = (): void => void upstream.close().then(() => process.exit(0));
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  } catch (err) {
    process.stderr.write(`queueing-upstream: ${(err as Error).message}\n`);
    process.exit(2);
  }
}
