// The builtin driver's worker thread: the open loop with its own event loop and its own small young
// generation, so neither the lab's main thread (scrapes, progress, histograms, reports) nor its garbage
// collections stand between a request's scheduled time and its send or its answer.
import { parentPort, workerData } from 'node:worker_threads';
import { runOpenLoop, warmUpOpenLoop, type OpenLoopParams, type OpenLoopSink } from './open-loop.js';
import { RuntimeMonitor } from '../runtime-stats.js';
import type { WorkerMessage } from './worker-protocol.js';

const port = parentPort;
if (port === null) throw new Error('builtin-worker.js runs as a worker thread');
let aborted = false;
port.on('message', (m: { type: string }) => {
  if (m.type === 'abort') aborted = true;
});

let records: number[] = [];
let lags: number[] = [];
let strings: string[] = [];
let stringIndex = new Map<string, number>();
let scheduledCount = 0;

function intern(s: string | undefined): number {
  if (s === undefined) return -1;
  let i = stringIndex.get(s);
  if (i === undefined) {
    i = strings.length;
    strings.push(s);
    stringIndex.set(s, i);
  }
  return i;
}

function flush(): void {
  const r = new Float64Array(new ArrayBuffer(records.length * 8));
  r.set(records);
  const l = new Float64Array(new ArrayBuffer(lags.length * 8));
  l.set(lags);
  const msg: WorkerMessage = { type: 'batch', records: r, lags: l, strings, scheduled: scheduledCount };
  port?.postMessage(msg, [r.buffer, l.buffer]);
  records = [];
  lags = [];
  strings = [];
  stringIndex = new Map();
}

const sink: OpenLoopSink = {
  scheduled(count) {
    scheduledCount = count;
  },
  sendLag(ms) {
    lags.push(ms);
  },
  record(sendMs, latencyMs, status, bytesIn, bytesOut, error, reason, cls) {
    records.push(sendMs, latencyMs, status, bytesIn, bytesOut, intern(error), intern(reason), cls ?? -1);
  },
};
const params = workerData as OpenLoopParams;
const monitor = new RuntimeMonitor();
let timer: NodeJS.Timeout | undefined;
try {
  await warmUpOpenLoop(params);
  port.postMessage({ type: 'started' } satisfies WorkerMessage);
  monitor.start();
  timer = setInterval(flush, 100);
  await runOpenLoop(params, sink, () => aborted);
  clearInterval(timer);
  flush();
  const runtime = monitor.snapshot();
  monitor.stop();
  port.postMessage({ type: 'done', runtime } satisfies WorkerMessage);
} catch (err) {
  clearInterval(timer);
  flush();
  port.postMessage({
    type: 'error',
    message: err instanceof Error ? err.message : String(err),
  } satisfies WorkerMessage);
}
