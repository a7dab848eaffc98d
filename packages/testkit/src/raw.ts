import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';

/** What came back on a raw connection. */
export interface RawAnswer {
  /** everything the server wrote, as latin1 text */
  text: string;
  /** status codes of every response in `text`, in order */
  statuses: number[];
  /** true when the server closed (or reset) the connection before `waitMs` ran out */
  closed: boolean;
  /** ms from the last write to the close (or to the end of the wait) */
  ms: number;
}

/** Matches each status line of a raw answer; group 1 is the status code. */
const STATUS_LINE = /HTTP\/1\.[01] (\d{3}) /g;

function statusesOf(text: string): number[] {
  return [...text.matchAll(STATUS_LINE)].map((m) => Number(m[1]));
}

/**
 * Writes `chunks` to a fresh TCP connection to 127.0.0.1:`port` (with `gapMs` between them) and collects
 * the answer until the server closes the connection or `waitMs` passes without a close.
 */
export function raw(port: number, chunks: (string | Buffer)[], waitMs = 2000, gapMs = 0): Promise<RawAnswer> {
  const gap = (): Promise<void> => new Promise((r) => setTimeout(r, gapMs));
  return converse(port, chunks, waitMs, gapMs > 0 ? { between: gap, afterLast: true } : undefined);
}

/**
 * As {@link raw}, but writes each of `turns` only once the server has answered the one before (one more
 * status line, a `100 Continue` counts) or `waitMs` passed without that answer: a pipelined request that
 * follows an answered one, a body that follows `100 Continue`, without racing the server.
 */
export function rawInTurns(port: number, turns: (string | Buffer)[], waitMs = 2000): Promise<RawAnswer> {
  const between: Between = (answered, text) => {
    const seen = statusesOf(text()).length;
    return answered((n) => n > seen, waitMs);
  };
  return converse(port, turns, waitMs, { between, afterLast: false });
}

/** Resolves once the number of status lines received so far satisfies `enough`, or after `ms`. */
type Answered = (enough: (statuses: number) => boolean, ms: number) => Promise<void>;
/** What happens after a chunk is written, before the next one (or the final wait). */
type Between = (answered: Answered, text: () => string) => Promise<void>;

function converse(
  port: number,
  chunks: (string | Buffer)[],
  waitMs: number,
  pause?: { between: Between; afterLast: boolean },
): Promise<RawAnswer> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    let text = '';
    let lastWrite = performance.now();
    let timer: NodeJS.Timeout | undefined;
    let settled = false;
    let waiter: (() => void) | undefined;
    const done = (closed: boolean): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      waiter?.();
      resolve({ text, statuses: statusesOf(text), closed, ms: performance.now() - lastWrite });
    };
    const answered: Answered = (enough, ms) =>
      new Promise<void>((wake) => {
        const check = (): void => {
          if (!settled && !enough(statusesOf(text).length)) return;
          clearTimeout(limit);
          waiter = undefined;
          wake();
        };
        const limit = setTimeout(() => ((waiter = undefined), wake()), ms);
        waiter = check;
        check();
      });
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      text += d;
      waiter?.();
    });
    socket.once('close', () => done(true));
    socket.once('error', () => done(true));
    socket.once('connect', async () => {
      for (const [i, chunk] of chunks.entries()) {
        if (socket.destroyed) break;
        socket.write(chunk);
        lastWrite = performance.now();
        if (pause !== undefined && (pause.afterLast || i < chunks.length - 1)) {
          await pause.between(answered, () => text);
        }
      }
      // The server may have closed the connection while we were writing: then there is nothing to wait for.
      if (!settled) timer = setTimeout(() => done(false), waitMs);
    });
  });
}

/**
 * A raw client connection kept open across writes, for exchanges a list of chunks cannot script: write, wait
 * for what the server wrote so far (or its close) to satisfy a check, write again. Everything it receives is
 * kept as latin1 text, so bodies compare byte for byte.
 */
export class RawConnection {
  /** everything the server wrote so far */
  text = '';
  /** true once the server closed (or reset) the connection */
  closed = false;
  private wake: (() => void) | undefined;

  private constructor(readonly socket: Socket) {
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      this.text += d;
      this.wake?.();
    });
    socket.on('error', () => undefined);
    socket.once('close', () => {
      this.closed = true;
      this.wake?.();
    });
  }

  /** Connects to 127.0.0.1:`port`. */
  static open(port: number): Promise<RawConnection> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port });
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve(new RawConnection(socket));
      });
    });
  }

  /** Status codes of every answer received so far, in order (`100 Continue` included). */
  get statuses(): number[] {
    return statusesOf(this.text);
  }

  /** Writes `chunk`; resolves once the kernel has taken it (or the connection failed). */
  write(chunk: string | Buffer): Promise<void> {
    return new Promise((resolve) => {
      if (this.socket.destroyed) return resolve();
      this.socket.write(chunk, () => resolve());
    });
  }

  /**
   * Resolves with the text once `check(text)` holds; throws after `ms` without it, or when the server closed
   * the connection first (the text is in the error).
   */
  until(check: (text: string) => boolean, ms = 5000): Promise<string> {
    return new Promise((resolve, reject) => {
      const finish = (err?: Error): void => {
        clearTimeout(timer);
        this.wake = undefined;
        if (err === undefined) resolve(this.text);
        else reject(err);
      };
      const look = (): void => {
        if (check(this.text)) finish();
        else if (this.closed)
          finish(new Error(`the server closed the connection; it wrote: ${JSON.stringify(this.text)}`));
      };
      const timer = setTimeout(
        () => finish(new Error(`no such answer within ${ms} ms; the server wrote: ${JSON.stringify(this.text)}`)),
        ms,
      );
      this.wake = look;
      look();
    });
  }

  /** Resolves true once the server has closed the connection, false when it is still open after `ms`. */
  whenClosed(ms = 5000): Promise<boolean> {
    return new Promise((resolve) => {
      if (this.closed) return resolve(true);
      const timer = setTimeout(() => resolve(false), ms);
      this.socket.once('close', () => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  /** Closes the connection at once (a client that goes away). */
  destroy(): void {
    this.socket.destroy();
  }
}

/** Opens `count` connections that never send a byte; resolves once all are connected. */
export async function idleConnections(port: number, count: number): Promise<Socket[]> {
  const sockets: Socket[] = [];
  for (let i = 0; i < count; i += 50) {
    await Promise.all(
      Array.from(
        { length: Math.min(50, count - i) },
        () =>
          new Promise<void>((resolve) => {
            const s = connect({ host: '127.0.0.1', port }, () => resolve());
            s.on('error', () => resolve());
            sockets.push(s);
          }),
      ),
    );
  }
  return sockets;
}

/** A TCP server that only counts connections and bytes: proof that nothing was ever sent its way. */
export class Attacker {
  connections = 0;
  bytes = 0;
  port = 0;
  private readonly server: Server = createServer((s) => {
    this.connections++;
    s.on('data', (d: Buffer) => (this.bytes += d.length));
    s.on('error', () => undefined);
    s.end('HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\npwned');
  });

  /** Listens on 127.0.0.1 and a free port. */
  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  /** Stops listening. */
  stop(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** One answer of a burst: status, lower-cased headers, body, and ms from the burst's send to the last byte. */
export interface BurstAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
  ms: number;
}

/**
 * Opens `n` connections first, then writes one request on each in the same tick, so all `n` requests
 * really arrive together (a client opening connections lazily spreads them over hundreds of ms).
 */
export async function burst(port: number, n: number, path = '/'): Promise<BurstAnswer[]> {
  const sockets = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<Socket>((resolve, reject) => {
          const s = connect(port, '127.0.0.1', () => resolve(s));
          s.once('error', reject);
        }),
    ),
  );
  const started = performance.now();
  const answers = sockets.map(
    (s) =>
      new Promise<BurstAnswer>((resolve, reject) => {
        let text = '';
        s.setEncoding('latin1');
        s.on('data', (d: string) => (text += d));
        s.once('error', reject);
        s.once('end', () => resolve(parse(text, performance.now() - started)));
      }),
  );
  for (const s of sockets) s.write(`GET ${path} HTTP/1.1\r\nHost: burst\r\nConnection: close\r\n\r\n`);
  return Promise.all(answers);
}

function parse(text: string, ms: number): BurstAnswer {
  const split = text.indexOf('\r\n\r\n');
  const [statusLine = '', ...lines] = text.slice(0, split).split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { status: Number(statusLine.split(' ')[1]), headers, body: text.slice(split + 4), ms };
}
