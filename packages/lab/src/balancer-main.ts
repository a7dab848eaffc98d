#!/usr/bin/env node
// The balancer as its own process, so the load generator and the balancer do not share one event loop.
// Usage: node balancer-main.js --port 8000 --backend http://127.0.0.1:8001 --backend ... [--connections 128]
import { parseArgs } from 'node:util';
import { Balancer } from './balancer.js';

function fail(message: string): never {
  process.stderr.write(`cb-lab-balancer: ${message}\n`);
  process.exit(2);
}

let values: { port?: string; backend?: string[]; connections?: string; host?: string };
try {
  ({ values } = parseArgs({
    options: {
      port: { type: 'string' },
      host: { type: 'string' },
      backend: { type: 'string', multiple: true },
      connections: { type: 'string' },
    },
    strict: true,
  }));
} catch (err) {
  fail(err instanceof Error ? err.message : String(err));
}
const port = Number(values.port ?? '0');
if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`--port must be 0-65535, got ${values.port}`);
const connections = Number(values.connections ?? '128');
if (!Number.isInteger(connections) || connections < 1) fail(`--connections must be an integer >= 1`);
const backends = values.backend ?? [];
if (backends.length === 0) fail('at least one --backend URL is required');

const balancer = new Balancer({ backends, connectionsPerBackend: connections });
const bound = await balancer.listen(port, values.host ?? '127.0.0.1');
process.stderr.write(`cb-lab-balancer listening on ${values.host ?? '127.0.0.1'}:${bound} -> ${backends.join(', ')}\n`);
const shutdown = (): void => {
  void balancer.close().finally(() => process.exit(0));
};
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
