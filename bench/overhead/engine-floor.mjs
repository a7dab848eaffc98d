#!/usr/bin/env node
// The engine-floor arm of bench/overhead: the bare floor of the HTTP layer cb-sidecar uses, its HTTP/1.1 engine
// (packages/proxy/src/http1: Http1Server on `net` + Node's llhttp, Http1Pool to the upstream) with nothing on
// top: no admission, breaker, metrics, header filtering or timeouts. Not a usable proxy: it only measures what
// the engine itself costs per request, the floor the layers are measured over.
//   node bench/overhead/engine-floor.mjs <listen-port, 0 for any> <upstream-origin>   (prints {"port":N})
import { createServer } from 'node:net';
import { Http1Pool } from '@infer-cb/proxy/http1/client';
import { Http1Server } from '@infer-cb/proxy/http1/server';

const [port, target] = [Number(process.argv[2]), process.argv[3]];
if (!(port >= 0) || !target) {
  process.stderr.write('usage: engine-floor.mjs <listen-port> <upstream-origin>\n');
  process.exit(2);
}
const pool = new Http1Pool(target, {
  connections: 64,
  connectTimeoutMs: 1000,
  maxRequestsPerConnection: 0,
  idleTimeoutMs: 4000,
});

class Relay {
  constructor(res) {
    this.res = res;
  }
  onRequestStart() {}
  onResponseStart(_controller, status, rawHeaders, message) {
    // The upstream's framing headers are this hop's: the relay passes the rest as they came.
    const headers = [];
    let length = -1;
    for (let i = 0; i < rawHeaders.length; i += 2) {
      const name = rawHeaders[i].toLowerCase();
      if (name === 'content-length') length = Number(rawHeaders[i + 1]);
      else if (name !== 'transfer-encoding' && name !== 'connection' && name !== 'keep-alive')
        headers.push(rawHeaders[i], rawHeaders[i + 1]);
    }
    this.res.writeRawHead(status, message, headers, length);
  }
  onResponseData(_controller, chunk) {
    this.res.write(chunk);
  }
  onResponseEnd() {
    this.res.end();
  }
  onResponseError() {
    if (!this.res.headersSent) this.res.writeHead(502, { 'content-length': '0' });
    this.res.end();
  }
}

const http1 = new Http1Server(
  {
    maxHeaderSize: 16384,
    headersTimeoutMs: 10_000,
    requestTimeoutMs: 60_000,
    keepAliveTimeoutMs: 65_000,
    checkIntervalMs: 1000,
  },
  {
    request(req, res) {
      const headers = [];
      const raw = req.rawHeaders;
      for (let i = 0; i < raw.length; i += 2) {
        const name = raw[i].toLowerCase();
        if (name !== 'content-length' && name !== 'transfer-encoding' && name !== 'connection')
          headers.push(raw[i], raw[i + 1]);
      }
      pool.dispatch(
        {
          method: req.method,
          path: req.url,
          headers,
          body: req.bodyLength !== 0 ? req : null,
          bodyLength: req.bodyLength,
        },
        new Relay(res),
      );
    },
    connect: (socket) => socket.destroy(),
    upgrade: (socket) => socket.destroy(),
    clientError: (_err, socket) => socket.destroy(),
  },
);
const server = createServer({ noDelay: true }, (socket) => http1.handle(socket));
server.listen(port, '127.0.0.1', () => process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`));
for (const sig of ['SIGTERM', 'SIGINT']) process.once(sig, () => process.exit(0));
