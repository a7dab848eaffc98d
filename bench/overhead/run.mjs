#!/usr/bin/env node
/* global URL -- a Node 24 global; the shared eslint config lists only a few for .mjs */
// Proxy overhead: direct (client -> upstream) vs cb-sidecar (admission, breaker, metrics on, run with the
// image's NODE_OPTIONS) vs node-floor (node:http + undici dispatch, no layers: what the runtime itself costs)
// vs HAProxy (Debian package, config generated here) vs http-proxy (npm, keep-alive agent), one after the
// other, ROUNDS times interleaved (medians reported: this machine is shared and noisy).
// Upstream: the test kit's upstream as a process (200 at once). With PIN=1 proxies are pinned to CPU 0, upstream
// and load generators to CPU 1 (taskset). BASELINE=<git rev> adds the sidecar built from that revision as arm
// `cb-sidecar@<rev>`, interleaved with the current build (their order alternates between rounds), and a
// section comparing their CPU per request round by round. Per arm:
//   - open loop, vegeta RATE (1000) req/s for DURATION_S: p50/p99 latency (added = arm - direct) and the
//     proxy's CPU per request from /proc/<pid>/stat utime+stime;
//   - closed loop, wrk -t1 -c32 for MAX_S: requests/s and CPU per request at saturation;
//   - open loop at RSS_RATE (5000) req/s for RSS_S: the proxy's VmRSS / VmHWM.
// Then the sidecar alone again under `node --cpu-prof` at RATE for the hot spots.
// Writes bench/results/overhead.md. Every process started here is stopped here; every run is bounded.
//   node bench/overhead/run.mjs     (after `npx tsc -b packages/testkit`; `make bench-overhead` does both)
//   make bench-overhead BASELINE=main ARMS=direct,cb-sidecar,baseline
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SIDECAR_NODE_OPTIONS } from '@infer-cb/proxy/heap-flags';
import {
  buildSidecarAt,
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
const DURATION_S = Number(process.env.DURATION_S ?? 10);
const MAX_S = Number(process.env.MAX_S ?? 5);
const RSS_RATE = Number(process.env.RSS_RATE ?? 5000); // or the proxy's own maximum when lower
const RSS_S = Number(process.env.RSS_S ?? 5);
const ROUNDS = Number(process.env.ROUNDS ?? 3);
// The RSS run caps the client's connections the way a caller's Envoy does (the seed's maxConnections 100):
// uncapped, vegeta opens a connection per outstanding request and RSS measures the client's connection count.
const RSS_CONNECTIONS = Number(process.env.RSS_CONNECTIONS ?? 100);
const RESULTS = process.env.RESULTS ?? `${ROOT}bench/results/overhead.md`;
// Pinning (PIN=1): proxies on CPU 0, upstream and load generators on CPU 1. Off by default: on a shared,
// loaded machine a pinned process cannot escape a busy core and its latency measures the neighbours.
const PIN = process.env.PIN === '1';
const PROXY_CPU = PIN ? 0 : undefined;
const LOAD_CPU = PIN ? 1 : undefined;
const TICKS_PER_S = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
const BASELINE = process.env.BASELINE || undefined;
const BASELINE_ARM = BASELINE === undefined ? undefined : `cb-sidecar@${BASELINE}`;
let baseline; // { bin, commit } once built

/** utime + stime of a process in microseconds. */
function cpuMicros(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1e6) / TICKS_PER_S;
}

/** VmRSS, its anonymous and file-backed parts, and VmHWM of a process in MB. */
function memoryMb(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key) => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? NaN);
  return { rss: kb('VmRSS') / 1024, anon: kb('RssAnon') / 1024, file: kb('RssFile') / 1024, hwm: kb('VmHWM') / 1024 };
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

/** Starts one arm's proxy (pinned to PROXY_CPU with PIN=1); returns its process and listening origin. */
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
  if (arm === 'node-floor' || arm === 'http-proxy') {
    const script = arm === 'node-floor' ? 'undici-proxy.mjs' : 'http-proxy.mjs';
    const proc = await startProcess({
      name: arm,
      command: process.execPath,
      args: [`${ROOT}bench/overhead/${script}`, '0', upstreamOrigin],
      cpu: PROXY_CPU,
      readyLine: (l) => typeof l.port === 'number',
    });
    return { proc, origin: `http://127.0.0.1:${proc.ready.port}` };
  }
  throw new Error(`unknown arm ${arm}`);
}

function wrk(url, dir) {
  const lua = join(dir, 'post.lua');
  writeFileSync(
    lua,
    `wrk.method = "POST"\nwrk.body = ${JSON.stringify(readFileSync(`${ROOT}vegeta/data.json`, 'utf8'))}\nwrk.headers["Content-Type"] = "application/json"\n`,
  );
  const args = ['-t1', '-c32', `-d${MAX_S}s`, '-s', lua, url];
  const [cmd, argv] = LOAD_CPU === undefined ? ['wrk', args] : ['taskset', ['-c', String(LOAD_CPU), 'wrk', ...args]];
  const out = execFileSync(cmd, argv, { encoding: 'utf8', timeout: (MAX_S + 30) * 1000 });
  return {
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]),
    requests: Number(/(\d+) requests in/.exec(out)?.[1]),
    non2xx: Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0),
  };
}

async function attack(origin, rate, seconds, dir, maxConnections) {
  const records = await vegetaAttack({
    url: `${origin}/predict`,
    rate,
    duration: `${seconds}s`,
    timeout: '5s',
    dir,
    cpu: LOAD_CPU,
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

async function runArm(arm, upstreamOrigin) {
  const tmp = scratch(`cb-overhead-${arm.replace(/[^a-z0-9-]/gi, '_')}-`);
  const { proc, origin } = await startArm(arm, upstreamOrigin, tmp.dir);
  try {
    await attack(origin, RATE, 2, tmp.dir); // warm-up (JIT, connections)
    const pid = proc?.pid;
    const cpu0 = pid ? cpuMicros(pid) : 0;
    const fixed = await attack(origin, RATE, DURATION_S, tmp.dir);
    const cpuFixed = pid ? (cpuMicros(pid) - cpu0) / fixed.requests : NaN;
    const cpu1 = pid ? cpuMicros(pid) : 0;
    const max = wrk(`${origin}/predict`, tmp.dir);
    const cpuMax = pid ? (cpuMicros(pid) - cpu1) / max.requests : NaN;
    // RSS at RSS_RATE when the proxy sustains it, else at its own maximum (the wrk run just before).
    const heavy = max.rps >= RSS_RATE ? await attack(origin, RSS_RATE, RSS_S, tmp.dir, RSS_CONNECTIONS) : undefined;
    const mem = pid ? memoryMb(pid) : { rss: NaN, hwm: NaN };
    return { arm, fixed, cpuFixed, max, cpuMax, heavy, mem };
  } finally {
    await proc?.stop(5000, 'SIGINT');
    tmp.cleanup();
  }
}

/** Runs the sidecar under --cpu-prof at RATE and returns the top self-time functions (file:function). */
async function profileSidecar(upstreamOrigin) {
  const tmp = scratch('cb-overhead-prof-');
  const profDir = join(tmp.dir, 'prof');
  try {
    const { proc, origin } = await startArm('cb-sidecar', upstreamOrigin, tmp.dir, [
      '--cpu-prof',
      `--cpu-prof-dir=${profDir}`,
    ]);
    await attack(origin, RATE, 2, tmp.dir);
    await attack(origin, RATE, DURATION_S, tmp.dir);
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

/** One row per arm: medians over the rounds (added latency is taken against direct in the same round). */
function summarize(rounds) {
  const arms = rounds[0].map((r) => r.arm);
  return arms.map((arm) => {
    const runs = rounds.map((round) => round.find((r) => r.arm === arm));
    const direct = rounds.map((round) => round.find((r) => r.arm === 'direct'));
    const pick = (f) => runs.map(f);
    return {
      arm,
      cpuFixed: median(pick((r) => r.cpuFixed)),
      cpuFixedAll: pick((r) => r.cpuFixed),
      cpuMax: median(pick((r) => r.cpuMax)),
      rps: median(pick((r) => r.max.rps)),
      p50: median(pick((r) => r.fixed.p50)),
      p99: median(pick((r) => r.fixed.p99)),
      addedP50: median(runs.map((r, i) => r.fixed.p50 - direct[i].fixed.p50)),
      addedP99: median(runs.map((r, i) => r.fixed.p99 - direct[i].fixed.p99)),
      rss: median(pick((r) => r.mem.rss)),
      anon: median(pick((r) => r.mem.anon)),
      file: median(pick((r) => r.mem.file)),
      hwm: Math.max(...pick((r) => r.mem.hwm).filter(Number.isFinite), -Infinity),
      at: runs
        .map((r) =>
          r.heavy ? `${r.heavy.ok}/${r.heavy.requests} ok at ${RSS_RATE}/s` : `wrk max ${r.max.rps.toFixed(0)}/s`,
        )
        .join('; '),
      nonOk: runs.reduce((n, r) => n + (r.fixed.requests - r.fixed.ok), 0),
    };
  });
}

function report(rounds, prof, load) {
  const rows = summarize(rounds);
  const f = (x, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : '—');
  const byArm = Object.fromEntries(rows.map((r) => [r.arm, r]));
  const sc = byArm['cb-sidecar'];
  const floor = byArm['node-floor'];
  const check = (ok) => (ok ? 'met' : '**missed**');
  const lines = [
    '# Proxy overhead: cb-sidecar vs the Node floor vs HAProxy vs http-proxy vs direct',
    '',
    `Generated by \`make bench-overhead\` (bench/overhead/run.mjs) on ${new Date().toISOString()}.`,
    '',
    '## Method',
    '',
    "- Upstream: the test kit's upstream (`packages/testkit`) as its own process: 200 + 32-byte JSON at once, after",
    '  reading the body.',
    `- Proxies, one at a time (${rows.map((r) => r.arm).join(', ')}):`,
    ...[
      [
        'cb-sidecar',
        `  - cb-sidecar: \`packages/proxy/dist/main.js\` with the image's NODE_OPTIONS (\`${SIDECAR_NODE_OPTIONS}\`) and its default`,
        '    config: static limit 64 + queue, opossum breaker, prom-client metrics, undici pool;',
      ],
      [
        BASELINE_ARM,
        `  - ${BASELINE_ARM}: the same, built from git revision \`${BASELINE}\` (${baseline?.commit}) into a scratch directory`,
        '    (its own packages, the same node_modules); it and cb-sidecar swap places in the order every other round;',
      ],
      [
        'node-floor',
        '  - node-floor: `bench/overhead/undici-proxy.mjs`, node:http + undici `Pool.dispatch` and nothing else (no layers,',
        '    no header filtering, no timeouts): the cost of the runtime every Node proxy pays before doing anything;',
      ],
      [
        'haproxy',
        '  - HAProxy: `/usr/sbin/haproxy`, `nbthread 1`, `http-reuse always`, config generated by the script;',
      ],
      ['http-proxy', '  - http-proxy: npm `http-proxy` with a keep-alive agent.'],
    ].flatMap(([arm, ...text]) => (byArm[arm] === undefined ? [] : text)),
    `- Per arm and round: vegeta open loop at ${RATE} req/s for ${DURATION_S} s after a 2 s warm-up (POST /predict, seed body)`,
    '  → p50/p99 (added = arm − direct in the same round) and proxy CPU µs/request = Δ(utime+stime) of the proxy',
    `  process / requests; wrk -t1 -c32 for ${MAX_S} s → max requests/s and CPU µs/request at saturation; RSS (VmRSS, split`,
    `  into anonymous memory and file-backed pages, mostly the node binary's own code) after vegeta at ${RSS_RATE} req/s for`,
    `  ${RSS_S} s with at most ${RSS_CONNECTIONS} client connections (as the seed's maxConnections caps a caller's Envoy) when`,
    "  the proxy's max exceeds it, else right after the wrk run.",
    `- ${ROUNDS} rounds, arms interleaved within each round; every figure is the median over the rounds.`,
    `- Pinning: ${PIN ? `proxies on CPU ${PROXY_CPU}, upstream and load generators on CPU ${LOAD_CPU} (taskset)` : 'off (PIN=1 pins proxies to CPU 0, upstream and clients to CPU 1)'}.`,
    `- Machine: ${cpus().length} vCPUs (${cpus()[0]?.model ?? '?'}, a Firecracker VM shared with other engineers): load before`,
    `  \`${load.before}\`, after \`${load.after}\`.`,
    '',
    '## Results (medians)',
    '',
    `| arm | CPU µs/req @${RATE}/s (each round) | CPU µs/req @max | max req/s (wrk) | p50 ms @${RATE}/s | p99 ms | added p50 ms | added p99 ms | RSS MB (anon + file) | peak RSS MB | RSS measured at |`,
    '|---|---|---|---|---|---|---|---|---|---|---|',
    ...rows.map((r) => {
      const d = r.arm === 'direct';
      return `| ${r.arm} | ${d ? '—' : `${f(r.cpuFixed)} (${r.cpuFixedAll.map((x) => f(x)).join(', ')})`} | ${d ? '—' : f(r.cpuMax)} | ${f(r.rps)} | ${f(r.p50, 3)} | ${f(r.p99, 3)} | ${d ? '—' : f(r.addedP50, 3)} | ${d ? '—' : f(r.addedP99, 3)} | ${d ? '—' : `${f(r.rss, 1)} (${f(r.anon, 1)} + ${f(r.file, 1)})`} | ${d ? '—' : f(r.hwm, 1)} | ${r.at} |`;
    }),
    '',
    `Requests not answered 200 in the ${RATE} req/s runs: ${rows.map((r) => `${r.arm} ${r.nonOk}`).join(', ')}.`,
    '',
    ...baselineSection(rounds, f),
    ...(byArm.haproxy === undefined || byArm['http-proxy'] === undefined ? [] : targets(sc, byArm, floor, f, check)),
    `## cb-sidecar CPU profile (node --cpu-prof, ${RATE} req/s for ${DURATION_S} s after a 2 s warm-up; self time, top 15; share of non-idle time)`,
    '',
    '| self ms | share | file:function:line |',
    '|---|---|---|',
    ...prof.top.map(([k, us]) => `| ${f(us / 1000, 1)} | ${f((100 * us) / prof.total, 1)}% | \`${k}\` |`),
    '',
  ];
  mkdirSync(join(RESULTS, '..'), { recursive: true });
  writeFileSync(RESULTS, lines.join('\n'));
  process.stdout.write(lines.join('\n'));
}

/** The current build against the baseline, round by round: CPU per request at RATE and at saturation. */
function baselineSection(rounds, f) {
  if (BASELINE_ARM === undefined) return [];
  const pairs = rounds.map((round) => [
    round.find((r) => r.arm === 'cb-sidecar'),
    round.find((r) => r.arm === BASELINE_ARM),
  ]);
  if (pairs.some(([a, b]) => a === undefined || b === undefined)) return [];
  const ratios = pairs.map(([now, then]) => now.cpuFixed / then.cpuFixed);
  const maxRatios = pairs.map(([now, then]) => now.cpuMax / then.cpuMax);
  const within = (r) => Math.abs(r - 1) <= 0.05;
  return [
    `## cb-sidecar against ${BASELINE_ARM} (${baseline.commit})`,
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

/** The issue-3 targets against HAProxy and http-proxy (when both arms ran). */
function targets(sc, byArm, floor, f, check) {
  return [
    '## Targets (cb-sidecar, issue 3)',
    '',
    `- CPU/request ≤ 2× HAProxy's: ${f(sc.cpuFixed)} vs 2 × ${f(byArm.haproxy.cpuFixed)} µs @${RATE}/s → ${check(sc.cpuFixed <= 2 * byArm.haproxy.cpuFixed)} (ratio ${f(sc.cpuFixed / byArm.haproxy.cpuFixed, 2)}×; at saturation ${f(sc.cpuMax / byArm.haproxy.cpuMax, 2)}×).`,
    `- CPU/request ≤ 0.8× http-proxy's: ${f(sc.cpuFixed)} vs 0.8 × ${f(byArm['http-proxy'].cpuFixed)} µs @${RATE}/s → ${check(sc.cpuFixed <= 0.8 * byArm['http-proxy'].cpuFixed)} (ratio ${f(sc.cpuFixed / byArm['http-proxy'].cpuFixed, 2)}×; at saturation ${f(sc.cpuMax / byArm['http-proxy'].cpuMax, 2)}× → ${check(sc.cpuMax <= 0.8 * byArm['http-proxy'].cpuMax)}).`,
    `- Added p99 < 1 ms at ${RATE} req/s: ${f(sc.addedP99, 3)} ms → ${check(sc.addedP99 < 1)}.`,
    `- RSS < 80 MB at ${RSS_RATE} req/s (or the proxy's max): ${f(sc.rss, 1)} MB (peak ${f(sc.hwm, 1)}) → ${check(sc.hwm < 80)}.`,
    ...(floor
      ? [
          '',
          'The Node floor in the same run, for what the targets ask of any Node proxy on this machine:',
          `- node-floor CPU/request: ${f(floor.cpuFixed)} µs @${RATE}/s = ${f(floor.cpuFixed / byArm.haproxy.cpuFixed, 2)}× HAProxy, ${f(floor.cpuFixed / byArm['http-proxy'].cpuFixed, 2)}× http-proxy;`,
          `  at saturation ${f(floor.cpuMax)} µs = ${f(floor.cpuMax / byArm.haproxy.cpuMax, 2)}× HAProxy.`,
          `- cb-sidecar's layers (admission, breaker, metrics, header filtering, timeouts) cost ${f(sc.cpuFixed - floor.cpuFixed)} µs/request above the floor @${RATE}/s (${f(sc.cpuFixed / floor.cpuFixed, 2)}×), ${f(sc.cpuMax - floor.cpuMax)} µs at saturation (${f(sc.cpuMax / floor.cpuMax, 2)}×).`,
          `- node-floor added p99 @${RATE}/s: ${f(floor.addedP99, 3)} ms; RSS ${f(floor.rss, 1)} MB (${f(floor.anon, 1)} anon + ${f(floor.file, 1)} file) with V8's default heap sizing.`,
        ]
      : []),
    '',
  ];
}

/** The arms of round `round`: ARMS (`baseline` names the BASELINE build), the two sidecars swapped in even rounds. */
function armsOf(round) {
  const fallback = `direct,cb-sidecar${BASELINE_ARM === undefined ? '' : ',baseline'},node-floor,haproxy,http-proxy`;
  const arms = (process.env.ARMS ?? fallback).split(',').map((a) => (a === 'baseline' ? BASELINE_ARM : a));
  if (arms.includes(undefined)) throw new Error('ARMS names `baseline` but BASELINE (a git revision) is not set');
  const [i, j] = [arms.indexOf('cb-sidecar'), arms.indexOf(BASELINE_ARM)];
  if (round % 2 === 0 && i >= 0 && j >= 0) [arms[i], arms[j]] = [arms[j], arms[i]];
  return arms;
}

try {
  const load = { before: machineLoad() };
  if (BASELINE !== undefined) baseline = buildSidecarAt(BASELINE);
  const upstream = await startUpstreamProcess({ cpu: LOAD_CPU });
  const rounds = [];
  try {
    for (let round = 1; round <= ROUNDS; round++) {
      const rows = [];
      for (const arm of armsOf(round)) {
        process.stderr.write(`bench-overhead: round ${round}/${ROUNDS}: ${arm}\n`);
        rows.push(await runArm(arm, upstream.origin));
      }
      rounds.push(rows);
    }
    process.stderr.write('bench-overhead: profiling cb-sidecar\n');
    const prof = await profileSidecar(upstream.origin);
    load.after = machineLoad();
    report(rounds, prof, load);
  } finally {
    await upstream.proc.stop(5000);
  }
} catch (err) {
  killAll();
  process.stderr.write(`bench-overhead: ${err.stack ?? err}\n`);
  process.exit(1);
}
