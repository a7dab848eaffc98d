#!/usr/bin/env node
/* global URL -- a Node 24 global; the shared eslint config lists only a few for .mjs */
// The overhead bench's h2c/gRPC round (issue 16): unary ModelInfer through cb-sidecar (h2c in, h2c out:
// upstream.protocol auto) and through Envoy 1.40 (one worker, codec AUTO, an HTTP/2 upstream cluster), against
// the upstream directly for the added latency; one arm after the other, ROUNDS times interleaved, medians.
// Upstream: the test kit's upstream as a process with its gRPC side (the OIP v2 service, answering at once).
// Load: bench/overhead/grpc-load.mjs, open loop at RATE calls/s for DURATION_S over one grpc-js channel.
// Pinned: the proxy (all its threads) on CPU 0, upstream and load on CPU 1. Per arm and round: the proxy's CPU
// per call from /proc/<pid>/stat (utime + stime over the run), p50/p99 (added = arm - direct).
// Writes bench/results/overhead-h2.md. Every process started here is stopped here; every run is bounded.
//   node bench/overhead/h2.mjs      (`make bench-overhead` runs it after run.mjs)
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { cpuMicros } from './proc.mjs';
import { httpListener, loadAssignment } from '@infer-cb/policy';
import {
  envoyBinary,
  killAll,
  machineLoad,
  median,
  oipClient,
  onFreePort,
  scratch,
  startProcess,
  startSidecar,
  startUpstreamProcess,
} from '@infer-cb/testkit';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const RATE = Number(process.env.H2_RATE ?? process.env.RATE ?? 1000);
const DURATION_S = Number(process.env.H2_DURATION_S ?? 8);
const ROUNDS = Number(process.env.H2_ROUNDS ?? process.env.ROUNDS ?? 3);
const RESULTS = process.env.H2_RESULTS ?? `${ROOT}bench/results/overhead-h2.md`;
const ARMS = ['direct', 'cb-sidecar', 'envoy'];
const PROXY_CPU = 0;
const LOAD_CPU = 1;

/**
 * Envoy as a gRPC proxy: the overhead bench's plain router (the policy package's listener: codec AUTO, so h2c or
 * HTTP/1.1 in), HTTP/2 to the upstream, no route timeout (a gRPC stream is not cut), no access log.
 */
function envoyConfig(port, upstreamPort) {
  return {
    static_resources: {
      listeners: [
        httpListener({
          name: 'ingress',
          listen: { address: '127.0.0.1', port },
          statPrefix: 'ingress',
          virtualHost: 'all',
          routes: [{ match: { prefix: '/' }, route: { cluster: 'upstream', timeout: '0s' } }],
          accessLog: undefined,
        }),
      ],
      clusters: [
        {
          name: 'upstream',
          type: 'STATIC',
          connect_timeout: '1s',
          typed_extension_protocol_options: {
            'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
              '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
              explicit_http_config: { http2_protocol_options: {} },
            },
          },
          load_assignment: loadAssignment('upstream', [{ address: '127.0.0.1', port: upstreamPort }]),
        },
      ],
    },
  };
}

/** Ready when a ServerReady call through `target` succeeds. */
function grpcReady(target) {
  return async () => {
    const client = oipClient(target);
    try {
      await client.call('ServerReady', {}, { deadlineMs: 1000 });
      return true;
    } finally {
      client.close();
    }
  };
}

/** Starts one arm's proxy on PROXY_CPU; returns its process (none for direct) and its `host:port`. */
async function startArm(arm, grpcPort, dir) {
  const upstream = `127.0.0.1:${grpcPort}`;
  if (arm === 'direct') return { target: upstream };
  if (arm === 'cb-sidecar') {
    const sidecar = await startSidecar({ upstream: `http://${upstream}`, cpu: PROXY_CPU, name: arm });
    return { proc: sidecar.proc, target: `127.0.0.1:${sidecar.port}` };
  }
  return onFreePort(async (port) => {
    const cfg = join(dir, 'envoy-h2.yaml');
    writeFileSync(cfg, stringify(envoyConfig(port, grpcPort)));
    const target = `127.0.0.1:${port}`;
    const proc = await startProcess({
      name: arm,
      command: envoyBinary(),
      args: ['-c', cfg, '--concurrency', '1', '--disable-hot-restart', '--log-level', 'error'],
      cpu: PROXY_CPU,
      readyCheck: grpcReady(target),
    });
    return { proc, target };
  });
}

/** One open-loop run at `target`; the proxy's CPU per call when `pid` is given. */
async function run(target, pid) {
  const before = pid === undefined ? 0 : cpuMicros(pid);
  const load = await startProcess({
    name: 'grpc-load',
    command: process.execPath,
    args: [`${ROOT}bench/overhead/grpc-load.mjs`, target, String(RATE), String(DURATION_S)],
    cpu: LOAD_CPU,
    readyLine: (l) => typeof l.sent === 'number',
    readyTimeoutMs: (DURATION_S + 30) * 1000,
  });
  const result = load.ready;
  await load.stop();
  const cpu = pid === undefined ? undefined : (cpuMicros(pid) - before) / result.ok;
  return { ...result, cpu };
}

const { dir, cleanup } = scratch('overhead-h2-');
const loadBefore = machineLoad();
const upstream = await startUpstreamProcess({ cpu: LOAD_CPU, grpc: true });
const runs = Object.fromEntries(ARMS.map((a) => [a, []]));
try {
  for (let round = 0; round < ROUNDS; round++) {
    for (const arm of round % 2 === 0 ? ARMS : [...ARMS].reverse()) {
      const { proc, target } = await startArm(arm, upstream.grpcPort, dir);
      try {
        await run(target, proc?.pid); // warm-up (JIT, connections), not counted
        const r = await run(target, proc?.pid);
        runs[arm].push(r);
        process.stdout.write(`${arm} round ${round + 1}: ${JSON.stringify(r)}\n`);
      } finally {
        await proc?.stop();
      }
    }
  }
} finally {
  await upstream.proc.stop();
  await killAll();
  cleanup();
}
const loadAfter = machineLoad();

const by = Object.fromEntries(
  ARMS.map((arm) => [
    arm,
    {
      p50: median(runs[arm].map((r) => r.p50)),
      p99: median(runs[arm].map((r) => r.p99)),
      cpu: arm === 'direct' ? undefined : median(runs[arm].map((r) => r.cpu)),
      failed: runs[arm].reduce((n, r) => n + r.failed, 0),
    },
  ]),
);
const f = (v, digits = 1) => (v === undefined || Number.isNaN(v) ? '—' : v.toFixed(digits));
const lines = [
  '# Proxy overhead, h2c/gRPC: cb-sidecar against Envoy',
  '',
  `Unary \`ModelInfer\` (OIP v2, one iris row) over one grpc-js channel, open loop ${RATE} calls/s for ${DURATION_S} s,`,
  `${ROUNDS} rounds interleaved (order reversed every other round), medians; each run after a warm-up run of the same length.`,
  "Proxy on CPU 0; the kit's upstream (its gRPC side, answering at once) and the load on CPU 1.",
  'cb-sidecar: default config (upstream.protocol auto: h2c to the upstream). Envoy 1.40: `--concurrency 1`,',
  "the overhead bench's router listener (codec AUTO), an HTTP/2 upstream cluster, route timeout 0, no access log.",
  `Machine: ${loadBefore} before, ${loadAfter} after (\`bench/overhead/h2.mjs\`, ${new Date().toISOString()}).`,
  '',
  '| arm | CPU µs/call | p50 ms | p99 ms | added p99 ms | failed calls |',
  '|---|---|---|---|---|---|',
  ...ARMS.map(
    (arm) =>
      `| ${arm} | ${f(by[arm].cpu)} | ${f(by[arm].p50, 3)} | ${f(by[arm].p99, 3)} | ${arm === 'direct' ? '—' : f(by[arm].p99 - by.direct.p99, 3)} | ${by[arm].failed} |`,
  ),
  '',
  `cb-sidecar / Envoy CPU per call: ${f(by['cb-sidecar'].cpu / by.envoy.cpu, 2)}×.`,
  '',
  '## Runs',
  '',
  ...ARMS.flatMap((arm) => runs[arm].map((r, i) => `- ${arm} ${i + 1}: ${JSON.stringify(r)}`)),
  '',
];
writeFileSync(RESULTS, lines.join('\n'));
process.stdout.write(`${lines.slice(9, 14).join('\n')}\nwrote ${RESULTS}\n`);
