/* global URL, fetch -- Node 24 globals */
// bench/overload: open-loop load at 3x the upstream's capacity for 30 s through cb-sidecar (the built CLI)
// in front of a controlled upstream (fixed workers and service time). Checks the issue-3 targets:
// the upstream never holds more than the limit, accepted p99 within 3x the unloaded p99, rejection p99
// <= 5 ms, every request answered (sent = responses, zero socket errors). Writes bench/results/overload.md.
//   node bench/overload/run.mjs [--duration 30] [--factor 3]
import { cpus, loadavg } from 'node:os';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { SIDECAR_NODE_OPTIONS } from '@infer-cb/proxy/heap-flags';
import {
  killAll,
  machineLoad,
  percentile,
  scratch,
  startSidecar,
  startUpstreamProcess,
  vegetaAttack,
} from '@infer-cb/testkit';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '30' },
    factor: { type: 'string', default: '3' },
    workers: { type: 'string', default: '4' },
    'service-ms': { type: 'string', default: '50' }, // 80 req/s capacity: the load generator itself stays light on 2 shared cores
  },
});
const DURATION_S = Number(values.duration);
const FACTOR = Number(values.factor);
const WORKERS = Number(values.workers);
const SERVICE_MS = Number(values['service-ms']);
const CAPACITY = (WORKERS * 1000) / SERVICE_MS; // requests/s the upstream can finish
const RATE = Math.round(CAPACITY * FACTOR);
const UNLOADED_RATE = Math.max(1, Math.round(CAPACITY / 10));
const QUEUE = 4 * WORKERS;

const loadBefore = machineLoad();
const work = scratch('cb-overload-');
// The sidecar's numbers match the upstream: limit = its workers; the rest is the documented defaults.
const config = `trafficPolicy:\n  connectionPool:\n    tcp: { maxConnections: ${WORKERS} }\n    http: { http1MaxPendingRequests: ${QUEUE} }\n`;

let upstream;
let sidecar;
try {
  // Fixed workers and service time; extra requests wait in its own unbounded FIFO.
  upstream = await startUpstreamProcess({ workers: WORKERS, serviceMs: SERVICE_MS });
  const upstreamOrigin = upstream.origin;
  sidecar = await startSidecar({ upstream: upstreamOrigin, yaml: config }); // the image's heap flags
  const adminPort = sidecar.adminPort;
  const url = `${sidecar.url}/predict`;

  console.error(`unloaded: ${UNLOADED_RATE} req/s for 10 s`);
  const unloaded = await vegetaAttack({ url, rate: UNLOADED_RATE, duration: '10s', dir: work.dir });
  await upstream.reset();
  console.error(`overload: ${RATE} req/s (${FACTOR}x capacity ${CAPACITY} req/s) for ${DURATION_S} s`);
  const overload = await vegetaAttack({ url, rate: RATE, duration: `${DURATION_S}s`, timeout: '10s', dir: work.dir });
  const upstreamStats = await upstream.stats();
  const metrics = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
  const loadAfter = machineLoad();

  const lat = (records) => records.map((r) => r.latencyMs);
  const unloadedOk = unloaded.filter((r) => r.code === 200);
  const accepted = overload.filter((r) => r.code === 200);
  const rejected = overload.filter((r) => r.code === 503);
  const errors = overload.filter((r) => r.code === 0);
  const other = overload.length - accepted.length - rejected.length - errors.length;
  const unloadedP99 = percentile(lat(unloadedOk), 99);
  const acceptedP99 = percentile(lat(accepted), 99);
  const rejectedP99 = percentile(lat(rejected), 99);
  const expectedSent = RATE * DURATION_S;
  const reasons = {};
  for (const m of metrics.matchAll(/^cb_requests_total\{outcome="([^"]+)",code="(\d+)"[^}]*\} (\d+)/gm))
    reasons[`${m[1]} ${m[2]}`] = (reasons[`${m[1]} ${m[2]}`] ?? 0) + Number(m[3]); // summed over the classes

  // Server-side view: the sidecar's own histogram, per outcome (bucket-interpolated like histogram_quantile).
  const serverQuantile = (outcome, q) => {
    const buckets = [
      ...metrics.matchAll(
        new RegExp(`^cb_request_duration_seconds_bucket\\{le="([^"]+)",outcome="${outcome}"\\} (\\d+)`, 'gm'),
      ),
    ].map((m) => [Number(m[1]), Number(m[2])]);
    const total = buckets.at(-1)?.[1] ?? 0;
    if (total === 0) return NaN;
    let [prevLe, prevCount] = [0, 0];
    for (const [le, count] of buckets) {
      if (count >= q * total)
        return le === Infinity
          ? prevLe * 1000
          : (prevLe + ((le - prevLe) * (q * total - prevCount)) / Math.max(1, count - prevCount)) * 1000;
      [prevLe, prevCount] = [le, count];
    }
    return NaN;
  };
  const serverSide = ['forwarded', 'overload', 'queue-timeout', 'deadline', 'circuit-open']
    .map((o) => [o, serverQuantile(o, 0.5), serverQuantile(o, 0.99)])
    .filter(([, p50]) => !Number.isNaN(p50));

  const checks = [
    [
      'upstream never holds more than the limit',
      `max held ${upstreamStats.maxInflight} <= limit ${WORKERS}`,
      upstreamStats.maxInflight <= WORKERS,
    ],
    [
      'accepted p99 within 3x the unloaded p99',
      `${acceptedP99.toFixed(2)} ms <= 3 x ${unloadedP99.toFixed(2)} = ${(3 * unloadedP99).toFixed(2)} ms`,
      acceptedP99 <= 3 * unloadedP99,
    ],
    ['rejection p99 <= 5 ms', `${rejectedP99.toFixed(2)} ms`, rejectedP99 <= 5],
    [
      'every request answered',
      `sent ${overload.length} (planned ${expectedSent}), answered ${overload.length - errors.length}, socket errors ${errors.length}, other statuses ${other}`,
      errors.length === 0 && other === 0 && overload.length === expectedSent,
    ],
  ];
  const pass = checks.every((c) => c[2]);
  const f = (n) => n.toFixed(2);
  const md = `# Overload benchmark (bench/overload)

Generated by \`make bench-overload\` (\`node bench/overload/run.mjs\`) on ${new Date().toISOString()}.

## Method
- **Upstream**: the test kit's upstream (\`packages/testkit\`) as its own process, with ${WORKERS} workers and a fixed ${SERVICE_MS} ms service
  time (capacity ${CAPACITY} req/s); extra requests wait in its own unbounded FIFO, so anything the sidecar
  lets through beyond ${WORKERS} shows up as "max held".
- **Sidecar**: the built CLI (\`packages/proxy/dist/main.js\`) with the image's NODE_OPTIONS (\`${SIDECAR_NODE_OPTIONS}\`), static limit ${WORKERS}
  (\`connectionPool.tcp.maxConnections\`), queue ${QUEUE} (\`http1MaxPendingRequests\`), every other setting at its
  default (queue timeout 1 s, CoDel target 5 ms / interval 100 ms, breaker on, metrics on).
- **Load**: vegeta (open loop, constant rate, keep-alive) POSTing \`vegeta/data.json\` to \`/predict\`:
  first ${UNLOADED_RATE} req/s for 10 s (unloaded reference), then ${RATE} req/s = ${FACTOR}x capacity for ${DURATION_S} s.
  Latency is vegeta's, per request, client side.
- **Machine**: ${cpus().length} x ${cpus()[0]?.model ?? 'unknown CPU'}, shared with other engineers' builds and tests
  while this ran (no pinning). Load before: \`${loadBefore}\`; after: \`${loadAfter}\`.

## Results
| | value |
|---|---|
| unloaded: requests, p50 / p99 | ${unloaded.length}, ${f(percentile(lat(unloadedOk), 50))} / ${f(unloadedP99)} ms |
| overload: sent / answered / socket errors | ${overload.length} / ${overload.length - errors.length} / ${errors.length} |
| accepted (200): count, goodput | ${accepted.length}, ${(accepted.length / DURATION_S).toFixed(1)} req/s (capacity ${CAPACITY}) |
| accepted p50 / p99 / max | ${f(percentile(lat(accepted), 50))} / ${f(acceptedP99)} / ${f(Math.max(...lat(accepted)))} ms |
| rejected (503): count | ${rejected.length} |
| rejected p50 / p99 / max | ${f(percentile(lat(rejected), 50))} / ${f(rejectedP99)} / ${f(Math.max(...lat(rejected)))} ms |
| rejections answered within 5 ms | ${((100 * rejected.filter((r) => r.latencyMs <= 5).length) / Math.max(1, rejected.length)).toFixed(1)} % |
| upstream max held at once | ${upstreamStats.maxInflight} (limit ${WORKERS}) |
| sidecar-side p50 / p99 by outcome (histogram buckets 0.5, 1, 2.5, 5, 10, 25, 50, 100 ms interpolated; whole run) | ${serverSide.map(([o, p50, p99]) => `${o} ${f(p50)} / ${f(p99)} ms`).join('; ')} |
| sidecar cb_requests_total (whole run) | ${Object.entries(reasons)
    .map(([k, v]) => `${k}: ${v}`)
    .join('; ')} |

## Targets
| target | measured | |
|---|---|---|
${checks.map(([name, measured, ok]) => `| ${name} | ${measured} | ${ok ? 'PASS' : 'FAIL'} |`).join('\n')}

Overall: **${pass ? 'PASS' : 'FAIL'}**. Load average during the run: ${loadavg()
    .map((l) => l.toFixed(2))
    .join(', ')}.

Reading the numbers: the client-side latencies include the time vegeta, the sidecar and the upstream spend
waiting for a CPU. On this shared 2-core machine (load average above) that wait, not the sidecar's logic, sets
the tail: the unloaded p99 is already ${f(unloadedP99 - SERVICE_MS)} ms above the ${SERVICE_MS} ms service time.
The sidecar-side histogram (arrival to answer inside the sidecar) shows what admission itself costs.
`;
  writeFileSync(join(ROOT, 'bench/results/overload.md'), md);
  process.stdout.write(md);
  process.exitCode = pass ? 0 : 1;
} catch (err) {
  killAll();
  throw err;
} finally {
  await sidecar?.proc.stop(5000, 'SIGINT');
  await upstream?.proc.stop(5000);
  work.cleanup();
}
