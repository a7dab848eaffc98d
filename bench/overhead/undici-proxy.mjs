#!/usr/bin/env node
// The node-floor arm of bench/overhead: what any Node proxy built like cb-sidecar costs before its layers.
// node:http server -> undici Pool.dispatch -> the answer written back; no admission, breaker, metrics,
// header filtering or timeouts. Not a usable proxy: it only measures the runtime's own cost per request.
//   node bench/overhead/undici-proxy.mjs <listen-port, 0 for any> <upstream-origin>   (prints {"port":N})
import { createServer } from 'node:http';
import { Pool } from 'undici';

const [port, target] = [Number(process.argv[2]), process.argv[3]];
if (!(port >= 0) || !target) {
  process.stderr.write('usage: undici-proxy.mjs <listen-port> <upstream-origin>\n');
  process.exit(2);
}
const pool = new Pool(target, { connections: 64, pipelining: 1 });

class Relay {
  constructor(res) {
    this.res = res;
  }
  onRequestStart() {}
  onResponseStart(_controller, statusCode, headers) {
    this.res.writeHead(statusCode, headers);
  }
  onResponseData(_controller, chunk) {
    this.res.write(chunk);
  }
  onResponseEnd() {
    this.res.end();
  }
  onResponseError() {
    if (!this.res.headersSent) this.res.statusCode = 502;
    this.res.end();
  }
}

const server = createServer((req, res) => {
  pool.dispatch({ path: req.url, method: req.method, headers: req.headers, body: req }, new Relay(res));
});
server.keepAliveTimeout = 65_000;
server.listen(port, '127.0.0.1', () => process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`));
for (const sig of ['SIGTERM', 'SIGINT']) process.once(sig, () => process.exit(0));
