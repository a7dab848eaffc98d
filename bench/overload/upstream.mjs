/* global setTimeout -- Node global; the shared eslint config lists only a few for .mjs */
// The controlled upstream of bench/overload: `--workers` requests served at once, each taking exactly
// `--service-ms`; more wait in an unbounded FIFO (a model server with a fixed worker pool). It counts the
// most requests it ever held at once (`GET /__stats`), the number the sidecar must keep at its limit.
// Prints {"port":N} on stdout; stops on SIGTERM/SIGINT.
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: { workers: { type: 'string', default: '4' }, 'service-ms': { type: 'string', default: '20' } },
});
const workers = Number(values.workers);
const serviceMs = Number(values['service-ms']);
if (!(workers >= 1) || !(serviceMs > 0)) {
  process.stderr.write('overload upstream: --workers must be >= 1 and --service-ms > 0\n');
  process.exit(2);
}

const BODY = '{"prediction":[0.97,0.02,0.01]}';
const waiting = [];
let busy = 0;
let held = 0;
let maxHeld = 0;
let served = 0;

function finish(res) {
  busy--;
  held--;
  served++;
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': BODY.length });
  res.end(BODY);
  next();
}
function next() {
  while (busy < workers && waiting.length > 0) {
    busy++;
    setTimeout(finish, serviceMs, waiting.shift());
  }
}

const server = createServer((req, res) => {
  if (req.url === '/__stats') {
    res.end(JSON.stringify({ maxHeld, served, held }));
    return;
  }
  if (req.url === '/__reset') {
    maxHeld = held;
    served = 0;
    res.end('{}');
    return;
  }
  req.resume();
  req.once('end', () => {
    held++;
    if (held > maxHeld) maxHeld = held;
    waiting.push(res);
    next();
  });
});
server.keepAliveTimeout = 65_000;
server.listen(0, '127.0.0.1', () => process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`));
for (const sig of ['SIGTERM', 'SIGINT']) process.once(sig, () => process.exit(0));
