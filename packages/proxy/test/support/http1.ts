import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import type {
  BodySink,
  BodySource,
  Http1Pool,
  UpstreamController,
  UpstreamHandler,
  UpstreamRequest,
} from '../../src/http1/client.js';

/** What a request through the HTTP/1.1 client got. */
export interface Answer {
  status: number;
  statusMessage: string;
  /** flat raw headers */
  headers: string[];
  body: string;
  trailers: string[] | undefined;
  /** onResponseStart calls (1 even when 1xx came first) */
  starts: number;
}

/** Extra behaviour of a test's handler, run after the recording. */
export interface Hooks {
  onRequestStart?(controller: UpstreamController): void;
  onResponseStart?(controller: UpstreamController, status: number): void;
  onResponseData?(controller: UpstreamController, chunk: Buffer): void;
}

/** A handler that records the answer, and counts its terminal calls (exactly one must come). */
export class Recorder implements UpstreamHandler {
  readonly answer: Answer = { status: 0, statusMessage: '', headers: [], body: '', trailers: undefined, starts: 0 };
  /** onResponseEnd + onResponseError calls */
  settled = 0;
  readonly done: Promise<Answer>;
  private resolve!: (answer: Answer) => void;
  private reject!: (err: Error) => void;
  private readonly chunks: Buffer[] = [];

  constructor(private readonly hooks: Hooks = {}) {
    this.done = new Promise<Answer>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }

  onRequestStart(controller: UpstreamController): void {
    this.hooks.onRequestStart?.(controller);
  }

  onResponseStart(controller: UpstreamController, status: number, headers: string[], message: string): void {
    Object.assign(this.answer, { status, headers, statusMessage: message, starts: this.answer.starts + 1 });
    this.hooks.onResponseStart?.(controller, status);
  }

  onResponseData(controller: UpstreamController, chunk: Buffer): void {
    this.chunks.push(chunk);
    this.hooks.onResponseData?.(controller, chunk);
  }

  onResponseEnd(_controller: UpstreamController, trailers: string[] | undefined): void {
    this.settled++;
    this.answer.body = Buffer.concat(this.chunks).toString('latin1');
    this.answer.trailers = trailers;
    this.resolve(this.answer);
  }

  onResponseError(_controller: UpstreamController | undefined, err: Error): void {
    this.settled++;
    this.reject(err);
  }

  /** Bytes of body received so far. */
  get received(): number {
    return this.chunks.reduce((sum, c) => sum + c.length, 0);
  }
}

/** Sends `request` on `pool`; the answer, or the error the handler got. */
export function call(pool: Http1Pool, request: Partial<UpstreamRequest> = {}, hooks?: Hooks): Promise<Answer> {
  return send(pool, request, hooks).done;
}

/** Like {@link call}, with the recorder (to check what it saw while the request runs). */
export function send(pool: Http1Pool, request: Partial<UpstreamRequest> = {}, hooks?: Hooks): Recorder {
  const recorder = new Recorder(hooks);
  pool.dispatch({ method: 'GET', path: '/', headers: [], body: null, bodyLength: -1, ...request }, recorder);
  return recorder;
}

/** The value of header `name` (case-insensitive) in flat raw headers. */
export function header(raw: readonly string[], name: string): string | undefined {
  for (let i = 0; i < raw.length; i += 2) if (raw[i]?.toLowerCase() === name) return raw[i + 1];
  return undefined;
}

/** A request body that delivers `parts` one per `gapMs` (the first synchronously), and records pause/resume. */
export class TestBody implements BodySource {
  pauses = 0;
  resumes = 0;
  private sink: BodySink | undefined;
  private next = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly parts: readonly (string | Buffer)[],
    private readonly gapMs = 5,
    /** end after the parts (false: the body stays open, as a slow client's) */
    private readonly ends = true,
  ) {}

  start(sink: BodySink): void {
    this.sink = sink;
    this.step();
  }

  pause(): void {
    this.pauses++;
  }

  resume(): void {
    this.resumes++;
  }

  /** Stops delivering (a test's cleanup for a body that stays open). */
  stop(): void {
    clearTimeout(this.timer);
  }

  private step(): void {
    const sink = this.sink as BodySink;
    if (this.next < this.parts.length) {
      const part = this.parts[this.next++] as string | Buffer;
      sink.data(typeof part === 'string' ? Buffer.from(part) : part);
      this.timer = setTimeout(() => this.step(), this.gapMs);
    } else if (this.ends) sink.end();
  }
}

/** A raw TCP server on 127.0.0.1 that answers with whatever bytes a test writes (malformed answers too). */
export class RawServer {
  port = 0;
  /** every connection accepted, in order */
  readonly sockets: Socket[] = [];
  private readonly server: Server;

  /** @param onHead called for each request head (up to the blank line) a connection sends, numbered per connection */
  constructor(onHead: (socket: Socket, head: string, index: number, connection: number) => void) {
    this.server = createServer((socket) => {
      const connection = this.sockets.push(socket) - 1;
      let text = '';
      let index = 0;
      socket.on('error', () => undefined);
      socket.on('data', (chunk: Buffer) => {
        text += chunk.toString('latin1');
        for (let end = text.indexOf('\r\n\r\n'); end >= 0; end = text.indexOf('\r\n\r\n')) {
          const head = text.slice(0, end);
          text = text.slice(end + 4);
          onHead(socket, head, index++, connection);
        }
      });
    });
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  get origin(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Connections the server has not seen closed. */
  get openSockets(): number {
    return this.sockets.filter((s) => !s.destroyed && !s.readableEnded).length;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
