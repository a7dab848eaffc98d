#!/usr/bin/env node
// The http-proxy arm of bench/overhead: npm http-proxy with a keep-alive agent, nothing else.
//   node bench/overhead/http-proxy.mjs <listen-port, 0 for any> <upstream-origin>   (prints {"port":N})
import { Agent, createServer } from 'node:http';
import httpProxy from 'http-proxy';

const [port, target] = [Number(process.argv[2]), process.argv[3]];
if (!(port >= 0) || !target) {
  process.stderr.write('usage: http-proxy.mjs <listen-port> <upstream-origin>\n');
  process.exit(2);
}
const agent = new Agent({ keepAlive: true, maxSockets: 256 });
const proxy = httpProxy.createProxyServer({ target, agent });
proxy.on('error', (_err, _req, res) => {
  if (!res.headersSent) res.writeHead?.(502, { 'content-type': 'application/json' });
  res.end?.('{"error":{"code":"BAD_GATEWAY","message":"upstream failed"}}');
});
const server = createServer((req, res) => proxy.web(req, res));
server.keepAliveTimeout = 65_000;
server.listen(port, '127.0.0.1', () => process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`));
for (const sig of ['SIGTERM', 'SIGINT']) process.once(sig, () => process.exit(0));
