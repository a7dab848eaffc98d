#!/usr/bin/env node
// The minimal upstream of bench/overhead: answers every request 200 with a small JSON body once the request
// body is read. Prints {"port":N}; stops on SIGTERM/SIGINT.   node bench/overhead/upstream.mjs [port]
import { createServer } from 'node:http';

const BODY = '{"prediction":[0.97,0.02,0.01]}';
const server = createServer((req, res) => {
  req.resume();
  req.once('end', () => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': BODY.length });
    res.end(BODY);
  });
});
server.keepAliveTimeout = 65_000;
server.listen(Number(process.argv[2] ?? 0), '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`);
});
for (const sig of ['SIGTERM', 'SIGINT']) process.once(sig, () => process.exit(0));
