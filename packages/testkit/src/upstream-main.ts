#!/usr/bin/env node
// The controllable upstream as its own process, for benches and process-level tests: a bench's load must not
// share an event loop with the upstream it measures. Prints {"port":N} once it listens; driven over HTTP
// (/__stats, /__control, /__reset); stops on SIGTERM/SIGINT.
//   node packages/testkit/dist/upstream-main.js --workers 8 --service-ms 20 --backlog 16 [--port 0] [--mode ok]
//   [--grpc]: also the gRPC side (the OIP v2 service, testkit.Tokens) on its own port, printed as grpcPort
import { parseArgs } from 'node:util';
import { TestUpstream, type FaultMode } from './upstream.js';

const USAGE =
  'usage: upstream-main.js [--workers N] [--service-ms MS] [--backlog N] [--port P] [--mode ok|hang|slow|5xx|...] [--grpc]\n';

function fail(message: string): never {
  process.stderr.write(`test upstream: ${message}\n${USAGE}`);
  process.exit(2);
}

let values: Record<string, string | boolean | undefined>;
try {
  values = parseArgs({
    options: {
      workers: { type: 'string' },
      'service-ms': { type: 'string', default: '0' },
      backlog: { type: 'string' },
      port: { type: 'string', default: '0' },
      mode: { type: 'string', default: 'ok' },
      grpc: { type: 'boolean', default: false },
    },
    strict: true,
  }).values;
} catch (err) {
  fail((err as Error).message);
}
const number = (name: string, min: number, fallback: number): number => {
  const text = values[name] as string | undefined;
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!(value >= min)) fail(`--${name} must be a number >= ${min}, got ${JSON.stringify(text)}`);
  return value;
};
const upstream = new TestUpstream({
  workers: number('workers', 1, Infinity),
  serviceMs: number('service-ms', 0, 0),
  backlog: number('backlog', 0, Infinity),
  mode: values.mode as FaultMode,
  recordPaths: false,
  control: true,
  grpc: values.grpc === true,
});
try {
  await upstream.start(number('port', 0, 0));
} catch (err) {
  fail((err as Error).message);
}
process.stdout.write(`${JSON.stringify({ port: upstream.port, grpcPort: upstream.grpcPort })}\n`);
const stop = (): void => void upstream.crash().then(() => process.exit(0));
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
