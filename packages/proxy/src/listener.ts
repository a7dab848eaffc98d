import type { Http2Server, Http2ServerRequest, Http2ServerResponse, ServerHttp2Session } from 'node:http2';
import { createServer as createTcpServer, type AddressInfo, type Server as TcpServer, type Socket } from 'node:net';
import { Http1Server, type Http1Handlers } from './http1/server.js';

/** Limits of the client-facing listener (slowloris, header-bomb and HTTP/2 flood protection). */
export const LISTENER = {
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 60_000,
  maxHeaderSize: 16 * 1024, // bytes, HTTP/1.1 and HTTP/2 (the decoded header list)
  keepAliveTimeoutMs: 65_000, // longer than callers' idle timeouts, so they close first
  // The two timeouts above are checked this often (node:http's default of 30 s let slowloris hold 40 s).
  connectionsCheckingIntervalMs: 1000,
  /**
   * SETTINGS_MAX_CONCURRENT_STREAMS the HTTP/2 listener advertises: high enough that the admission layer,
   * not the client's own stream queue, decides what waits and what is shed (limit 64 + queue 256 by default).
   */
  maxConcurrentStreams: 1000,
  /** streams of one HTTP/2 connection nghttp2 may refuse or reset before the connection is closed (rapid reset) */
  maxSessionRejectedStreams: 100,
  /** entries in one SETTINGS frame */
  maxSettings: 32,
  /** HTTP/2 connections idle (no stream) this long are closed, as keepAliveTimeoutMs for HTTP/1.1 */
  h2IdleTimeoutMs: 65_000,
} as const;

/** The client connection preface of HTTP/2 (RFC 9113 §3.4): an h2c prior-knowledge client starts with it. */
const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/** What a connection that has not yet shown its protocol is answered with when it stays silent. */
export type SilentConnectionHandler = (socket: Socket) => void;

/**
 * The client-facing listener: one TCP port, two protocols. Each connection's first bytes decide, once per
 * connection: the HTTP/2 preface (h2c with prior knowledge) goes to a node:http2 server, everything else to
 * the node:http server, whose parser the HTTP/1.1 hostile-client suites were written against. Detection is
 * per connection, not per request, so an HTTP/1.1 request costs what it did without it.
 */
export class Listener {
  /** the HTTP/1.1 server: takes the connections that do not start with the HTTP/2 preface */
  readonly http1: Http1Server;
  /** the h2c server, made when the first connection starting with the HTTP/2 preface comes (node:http2 costs ~4 MB) */
  private h2: Promise<Http2Server> | undefined;
  private readonly tcp: TcpServer;
  private readonly sessions = new Set<ServerHttp2Session>();
  /** connections still being detected, so a stop can cut them too */
  private readonly detecting = new Set<Socket>();

  /**
   * @param onSilent answers a connection that sent no complete first bytes within the headers timeout
   * @param http1 takes the HTTP/1.1 requests, CONNECT and Upgrade sockets, and malformed requests
   */
  constructor(
    private readonly onSilent: SilentConnectionHandler,
    http1: Http1Handlers,
    private readonly onH2Request: (req: Http2ServerRequest, res: Http2ServerResponse) => void,
  ) {
    this.http1 = new Http1Server(
      {
        maxHeaderSize: LISTENER.maxHeaderSize,
        headersTimeoutMs: LISTENER.headersTimeoutMs,
        requestTimeoutMs: LISTENER.requestTimeoutMs,
        keepAliveTimeoutMs: LISTENER.keepAliveTimeoutMs,
        checkIntervalMs: LISTENER.connectionsCheckingIntervalMs,
      },
      http1,
    );
    this.tcp = createTcpServer({ noDelay: true }, (socket) => this.detect(socket));
  }

  /** Listens on `port` (0: any) of `host`; resolves once it does. */
  listen(port: number, host: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.tcp.once('error', reject);
      this.tcp.listen(port, host, () => {
        this.tcp.off('error', reject);
        resolve();
      });
    });
  }

  /** The port it listens on. */
  get port(): number {
    return (this.tcp.address() as AddressInfo).port;
  }

  /**
   * Stops accepting connections; resolves when every connection has closed. The HTTP/1.1 timeouts' sweep runs
   * until then: a drain still cuts slow heads and closes connections that become idle.
   */
  close(): Promise<void> {
    return new Promise<void>((resolve) =>
      this.tcp.close(() => {
        this.http1.close();
        resolve();
      }),
    );
  }

  /** Closes connections that carry no request: idle HTTP/1.1 keep-alive ones, HTTP/2 ones without streams. */
  closeIdleConnections(): void {
    this.http1.closeIdleConnections();
    for (const session of this.sessions) {
      // A graceful close (GOAWAY) lets streams in flight finish; a session without any closes at once.
      if (!session.closed) session.close();
    }
  }

  /** Cuts every connection at once. */
  closeAllConnections(): void {
    this.http1.closeAllConnections();
    for (const session of this.sessions) session.destroy();
    for (const socket of this.detecting) socket.destroy();
  }

  /** The h2c server, loaded and made once. */
  private h2Server(): Promise<Http2Server> {
    this.h2 ??= import('node:http2').then(({ createServer }) => {
      const h2 = createServer({
        maxSessionRejectedStreams: LISTENER.maxSessionRejectedStreams,
        maxSettings: LISTENER.maxSettings,
        maxHeaderListPairs: 128,
        settings: {
          maxConcurrentStreams: LISTENER.maxConcurrentStreams,
          maxHeaderListSize: LISTENER.maxHeaderSize,
          enablePush: false,
        },
      });
      h2.on('request', this.onH2Request);
      h2.on('session', (session: ServerHttp2Session) => {
        this.sessions.add(session);
        session.setTimeout(LISTENER.h2IdleTimeoutMs, () => session.close());
        session.once('close', () => this.sessions.delete(session));
        // A session's errors end that session (the client's protocol error); they must not reach the process.
        session.on('error', () => {});
      });
      return h2;
    });
    return this.h2;
  }

  /**
   * Reads a new connection's first bytes until they either differ from the HTTP/2 preface (HTTP/1.1: most
   * requests differ at the first or second byte) or match all 24 of it, then hands the connection, with the
   * bytes read put back, to the server of its protocol.
   */
  private detect(socket: Socket): void {
    this.detecting.add(socket);
    let seen: Buffer | undefined;
    const timer = setTimeout(() => {
      // Neither protocol yet: answered as a request that did not arrive in time (408), the rest of what it
      // sends read and dropped so its close is seen; a stop still cuts it while it lingers.
      socket.off('data', onData);
      socket.on('data', () => {});
      this.onSilent(socket);
    }, LISTENER.headersTimeoutMs);
    const hand = (): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('error', onError);
      socket.off('close', onClose);
      this.detecting.delete(socket);
      socket.pause();
      if (seen !== undefined) socket.unshift(seen);
    };
    const onData = (chunk: Buffer): void => {
      seen = seen === undefined ? chunk : Buffer.concat([seen, chunk]);
      const n = Math.min(seen.length, PREFACE.length);
      const h2c = seen.compare(PREFACE, 0, n, 0, n) === 0;
      if (h2c && n < PREFACE.length) return; // a prefix of the preface: wait for more
      hand();
      if (h2c) {
        // The session reads what was put back from the socket's buffer itself; resuming would lose it.
        // Until the server is there (the first h2c connection loads it) a stop still finds the socket.
        this.detecting.add(socket);
        void this.h2Server().then((h2) => {
          this.detecting.delete(socket);
          if (!socket.destroyed) h2.emit('connection', socket);
        });
      } else this.http1.handle(socket);
    };
    const onError = (): void => {
      socket.destroy();
    };
    const onClose = (): void => {
      clearTimeout(timer);
      this.detecting.delete(socket);
    };
    socket.on('data', onData);
    socket.on('error', onError);
    socket.on('close', onClose);
  }
}
