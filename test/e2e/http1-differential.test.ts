// Differential test of the sidecar's HTTP/1.1 listener against Node's own: every request of the corpus
// (support/http1-corpus.ts) goes byte for byte, on raw sockets, to a plain node:http server configured as the
// sidecar's listener is (LISTENER) and to the built sidecar in front of a recording upstream. Both must
// agree on accept or refuse and, where they accept, on the requests that reach the handler or the upstream:
// as many, with the same method, target and body bytes, so neither lets a smuggled request through. On
// node:http the sidecar shares the parser and the check is of everything around it; once the listener parses
// with llhttp on `net` itself, this is the check that it refuses and accepts exactly what node:http does.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { LISTENER } from '@infer-cb/proxy';
import type { StateDocument } from '@infer-cb/proxy/outcomes';
import {
  eventually,
  rawInTurns,
  startSidecar,
  stopAll,
  TestUpstream,
  type RawAnswer,
  type SidecarProcess,
} from '@infer-cb/testkit';
import { CORPUS, SMUGGLED_TARGET, type Case, type Summary } from './support/http1-corpus.js';
import { getJson } from './support/stack.js';

/** How long a case waits for an answer or a close that does not come ('pending' cases wait this long). */
const WAIT_MS = 1500;

/** A request that reached a handler complete: what the two sides must agree on. */
interface Arrival {
  method: string;
  target: string;
  /** the body bytes, latin1 */
  body: string;
}

/** Keeps every request a handler gets, with its body as the parser delivers it; answers 200 once it is read. */
class Recorder {
  private readonly requests: { req: IncomingMessage; body: Buffer[] }[] = [];

  readonly handle = (req: IncomingMessage, res: ServerResponse): void => {
    const entry = { req, body: [] as Buffer[] };
    this.requests.push(entry);
    req.on('data', (chunk: Buffer) => entry.body.push(chunk));
    req.on('error', () => undefined); // a client gone mid-body: the request is not complete, nothing to answer
    req.once('end', () => {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 2 });
      res.end('ok');
    });
  };

  /** Where the next request will be kept: {@link since} counts from here. */
  get mark(): number {
    return this.requests.length;
  }

  /**
   * The requests since `mark` whose end the parser saw (a body cut short is no arrival), in a fixed order:
   * the sidecar forwards a connection's pipelined requests at once, so they may reach the upstream in
   * another order than they were sent (answers still go back in order).
   */
  since(mark: number): Arrival[] {
    return this.requests
      .slice(mark)
      .filter(({ req }) => req.complete)
      .map(({ req, body }) => ({
        method: req.method ?? '',
        target: req.url ?? '',
        body: Buffer.concat(body).toString('latin1'),
      }))
      .sort((a, b) => (a.target < b.target ? -1 : a.target > b.target ? 1 : 0));
  }
}

const BAD_REQUEST = 'HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n';
const TOO_LARGE = 'HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-length: 0\r\n\r\n';

/** The reference: node:http with the sidecar listener's options; a parse error is answered 400 (431) and closed. */
function startReference(recorder: Recorder): Promise<Server> {
  const server = createServer(
    {
      maxHeaderSize: LISTENER.maxHeaderSize,
      requireHostHeader: false,
      headersTimeout: LISTENER.headersTimeoutMs,
      requestTimeout: LISTENER.requestTimeoutMs,
      keepAliveTimeout: LISTENER.keepAliveTimeoutMs,
    },
    recorder.handle,
  );
  server.on('clientError', (err: Error & { code?: string }, socket: Socket) => {
    if (!socket.writable) return void socket.destroy();
    socket.end(err.code === 'HPE_HEADER_OVERFLOW' ? TOO_LARGE : BAD_REQUEST);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

/** One side's behaviour on a case, as the corpus writes it (see {@link Summary}). */
function summary(answer: RawAnswer, arrivals: Arrival[]): Summary {
  const answered = answer.statuses.filter((s) => s >= 200 && s < 300).length;
  const refusals = answer.statuses.filter((s) => s >= 400);
  const parts: string[] = [];
  if (arrivals.length > 0) {
    parts.push(`accept ${arrivals.length}${answered === arrivals.length ? '' : ` (${answered} answered)`}`);
  } else if (answered > 0) {
    parts.push(`answer ${answered} without an arrival`);
  }
  if (refusals.length > 0) parts.push(`refuse ${refusals.join(', ')}`);
  else if (arrivals.length === 0 && answered === 0) parts.push(answer.closed ? 'refuse (close)' : 'pending');
  else if (!answer.closed) parts.push('open');
  return parts.join(' + ');
}

/**
 * A summary with its statuses reduced to their class: a refusal is a refusal whatever its 4xx, except 431,
 * which both sides must answer for a head over the limit (the one refusal whose code the client acts on).
 */
function byClass(s: Summary): Summary {
  return s.replace(/\b([1-5])\d\d\b/g, (status, cls: string) => (status === '431' ? status : `${cls}xx`));
}

const CONFIG = 'sidecar:\n  drain: { delay: 0ms, grace: 5s }\n';
const onReference = new Recorder();
const onUpstream = new Recorder();
let reference: Server;
let upstream: TestUpstream;
let sidecar: SidecarProcess;

beforeAll(async () => {
  [reference, upstream] = await Promise.all([
    startReference(onReference),
    new TestUpstream({ handler: onUpstream.handle }).start(),
  ]);
  sidecar = await startSidecar({ upstream: upstream.origin, yaml: CONFIG });
}, 40_000);
afterAll(async () => {
  await stopAll(2000);
  reference.closeAllConnections();
  await Promise.all([new Promise((resolve) => reference.close(resolve)), upstream.stop()]);
});

/** One side's run of a case. */
interface Side {
  port: number;
  recorder: Recorder;
  /** resolves once everything the side will deliver of the case has reached its recorder */
  settled: () => Promise<unknown>;
}

/** Sends a case's turns to a side; what came back and what reached its handler. */
async function run(side: Side, c: Case): Promise<{ summary: Summary; arrivals: Arrival[] }> {
  const mark = side.recorder.mark;
  const answer = await rawInTurns(side.port, c.turns, WAIT_MS);
  await side.settled();
  const arrivals = side.recorder.since(mark);
  return { summary: summary(answer, arrivals), arrivals };
}

/**
 * The sidecar has no request left in flight: every request of the case has been answered by the upstream
 * (which records it first) or cancelled. A request can outlive its client's connection (a refusal that closes
 * the connection under a pipelined request already forwarded), and must be counted in its own case.
 */
async function sidecarIdle(): Promise<true> {
  return eventually(async () => (await getJson<StateDocument>(`${sidecar.admin}/state`)).body.activeRequests === 0);
}

describe('the sidecar and node:http on the same bytes', () => {
  it('has a corpus of distinct cases', () => {
    expect(CORPUS.length).toBeGreaterThanOrEqual(60);
    expect(new Set(CORPUS.map((c) => c.name)).size).toBe(CORPUS.length);
  });

  it.each(CORPUS.map((c) => [c.name, c] as [string, Case]))('%s', async (_name, c) => {
    const [node, ours] = await Promise.all([
      // node:http runs its handler in the parser's own call: it has everything once the client is answered.
      run({ port: (reference.address() as AddressInfo).port, recorder: onReference, settled: async () => true }, c),
      run({ port: sidecar.port, recorder: onUpstream, settled: sidecarIdle }, c),
    ]);
    for (const side of [node, ours]) expect(side.arrivals.map((a) => a.target)).not.toContain(SMUGGLED_TARGET);
    expect(node.summary).toBe(c.node);
    if (c.sidecar === undefined) {
      expect(byClass(ours.summary)).toBe(byClass(node.summary));
      expect(ours.arrivals).toEqual(node.arrivals);
    } else {
      // A deliberate difference (the corpus says why): the sidecar's own answer, and what it sends upstream.
      expect(ours.summary).toBe(c.sidecar.summary);
      const targets = c.sidecar.targets;
      const expected = ours.summary.startsWith('accept')
        ? node.arrivals.map((a, i) => ({ ...a, target: targets?.[i] ?? a.target }))
        : [];
      expect(ours.arrivals).toEqual(expected);
    }
  });
});
