#!/usr/bin/env node
/* global URL, fetch, setTimeout, clearTimeout -- Node 24 globals; the shared eslint config lists only a few for .mjs */
// Benchmark of iris-api POST /predict (single row, the seed's body) with WORKERS=1 and WORKERS=2.
// Closed loop: wrk (1 thread, BENCH_CONNECTIONS connections, BENCH_DURATION) for throughput and p50/p99.
// Open loop: vegeta at the seed's 1000 req/s for 10 s (WORKERS=1), to compare with the reference run.
// Writes bench/results/api.md. Every process started here is stopped here; every run is time-bounded.
//   node bench/api/run.mjs            (after `npx tsc -b packages/api`; `make bench-api` does both)
import { execFileSync, spawn } from 'node:child_process';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const MAIN = `${ROOT}packages/api/dist/main.js`;
const LUA = `${ROOT}bench/api/post.lua`;
const VEGETA = `${ROOT}.tools/bin/vegeta`;
const DURATION = process.env.BENCH_DURATION ?? '10s';
const CONNECTIONS = process.env.BENCH_CONNECTIONS ?? '32';
const RESULTS = `${ROOT}bench/results/api.md`;
const BODY_FILE = join(tmpdir(), `iris-api-bench-${process.pid}.json`);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const uptime = () => execFileSync('uptime', { encoding: 'utf8' }).trim();

async function freePort() {
  const s = createServer();
  await new Promise((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

async function startApi(workers) {
  const port = await freePort();
  const child = spawn(process.execPath, [MAIN], {
    env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', WORKERS: String(workers), LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 200; i++) {
    // With WORKERS=2 wait until both workers answer (each has its own /ready).
    const ok = await fetch(`${base}/ready`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok && (workers === 1 || i > 20)) return { child, base };
    if (child.exitCode !== null) break;
    await sleep(100);
  }
  child.kill('SIGKILL');
  throw new Error(`iris-api WORKERS=${workers} did not start`);
}

async function stopApi({ child }) {
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  await exited;
  clearTimeout(timer);
}

// CPU seconds the API workers have used (from their own /metrics; summed over workers by the cluster).
async function cpuSeconds(base) {
  const text = await (await fetch(`${base}/metrics`)).text();
  return Number(/^process_cpu_seconds_total (\S+)$/m.exec(text)?.[1]);
}

function toMs(value) {
  const m = /^([\d.]+)(us|µs|ms|s)$/.exec(value);
  if (!m) return NaN;
  return Number(m[1]) * { us: 0.001, µs: 0.001, ms: 1, s: 1000 }[m[2]];
}

function wrk(url, duration) {
  const out = execFileSync('wrk', ['-t1', `-c${CONNECTIONS}`, `-d${duration}`, '--latency', '-s', LUA, url], {
    encoding: 'utf8',
  });
  const pct = (p) => toMs(new RegExp(`^\\s+${p}%\\s+(\\S+)`, 'm').exec(out)?.[1] ?? '');
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  return {
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]),
    requests: Number(/(\d+) requests in/.exec(out)?.[1]),
    p50: pct(50),
    p90: pct(90),
    p99: pct(99),
    non2xx,
    errors: /Socket errors: (.*)/.exec(out)?.[1] ?? 'none',
  };
}

function vegeta(base) {
  const targets = `POST ${base}/predict\nContent-Type: application/json\n@${BODY_FILE}\n`;
  writeFileSync(BODY_FILE, '{"data":[[1.0,2.0,3.0,4.0]]}');
  try {
    const attack = execFileSync(VEGETA, ['attack', '-rate=1000', '-duration=10s', '-timeout=5s'], {
      input: targets,
      maxBuffer: 1 << 28,
    });
    const report = JSON.parse(execFileSync(VEGETA, ['report', '-type=json'], { input: attack, encoding: 'utf8' }));
    const ms = (ns) => ns / 1e6;
    return {
      requests: report.requests,
      success: report.success,
      p50: ms(report.latencies['50th']),
      p90: ms(report.latencies['90th']),
      p99: ms(report.latencies['99th']),
      max: ms(report.latencies.max),
      codes: report.status_codes,
    };
  } finally {
    execFileSync('rm', ['-f', BODY_FILE]);
  }
}

const rows = [];
const loads = [];
loads.push(`before: ${uptime()}`);
for (const workers of [1, 2]) {
  const api = await startApi(workers);
  try {
    wrk(`${api.base}/predict`, '2s'); // warm-up: JIT, connection setup
    const cpuBefore = await cpuSeconds(api.base);
    const r = wrk(`${api.base}/predict`, DURATION);
    const cpuUs = (((await cpuSeconds(api.base)) - cpuBefore) / r.requests) * 1e6;
    rows.push({ workers, ...r, cpuUs });
    loads.push(`after WORKERS=${workers}: ${uptime()}`);
    console.log(
      `WORKERS=${workers}: ${r.rps} req/s, p50 ${r.p50} ms, p99 ${r.p99} ms, non-2xx ${r.non2xx}, ${cpuUs.toFixed(0)} µs CPU/request`,
    );
  } finally {
    await stopApi(api);
  }
}
let open;
{
  const api = await startApi(1);
  try {
    open = vegeta(api.base);
    console.log(`vegeta 1000 req/s WORKERS=1: success ${open.success}, p50 ${open.p50} ms, p99 ${open.p99} ms`);
  } finally {
    await stopApi(api);
  }
}

const cpu = cpus();
const fmt = (n) => (Number.isFinite(n) ? n.toFixed(2) : 'n/a');
const md = `# iris-api benchmark: POST /predict, single row

Generated by \`make bench-api\` (\`bench/api/run.mjs\`) on ${new Date().toISOString()}.

## Machine
- ${cpu.length} × ${cpu[0]?.model ?? 'unknown CPU'}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB RAM, Node ${process.version}
- **Shared machine**: other engineers were building and testing on the same 2 cores during the run; load average ${loadavg()
  .map((l) => l.toFixed(2))
  .join(' ')} at the end.
${loads.map((l) => `- ${l}`).join('\n')}

## Method
- iris-api from \`packages/api/dist/main.js\`, shipped model (\`iris_svc.onnx\`, ZipMap cut off), \`LOG_LEVEL=warn\`, onnxruntime 1 intra-op thread per worker, on 127.0.0.1.
- Closed loop: \`wrk -t1 -c${CONNECTIONS} -d${DURATION} --latency -s bench/api/post.lua\` (body \`{"data":[[5.1,3.5,1.4,0.2]]}\`) after a 2 s warm-up; wrk runs on the same 2 cores as the API.
- Open loop: \`vegeta attack -rate=1000 -duration=10s\` with the seed's body \`{"data":[[1.0,2.0,3.0,4.0]]}\`, WORKERS=1 (the seed's reference run: 1000 req/s → p50 90 ms, p99 1.419 s, 78.28 % success through Istio with 3 replicas).

## Results (closed loop, wrk)
| WORKERS | req/s | req/s per worker | p50 ms | p90 ms | p99 ms | requests | non-2xx | socket errors | worker CPU µs/request | req/s per busy core (1e6 / CPU µs) |
|---|---|---|---|---|---|---|---|---|---|---|
${rows.map((r) => `| ${r.workers} | ${r.rps.toFixed(0)} | ${(r.rps / r.workers).toFixed(0)} | ${fmt(r.p50)} | ${fmt(r.p90)} | ${fmt(r.p99)} | ${r.requests} | ${r.non2xx} | ${r.errors} | ${r.cpuUs.toFixed(0)} | ${(1e6 / r.cpuUs).toFixed(0)} |`).join('\n')}

The CPU column comes from the workers' own \`process_cpu_seconds_total\` (before and after the run, divided by the
requests): it is what one request costs the API whatever else the machine is doing, so \`1e6 / µs\` is the
throughput one worker reaches on a core it has to itself (the cluster primary's connection hand-off is not included).

## Results (open loop, vegeta 1000 req/s, WORKERS=1)
| requests | success | p50 ms | p90 ms | p99 ms | max ms | status codes |
|---|---|---|---|---|---|---|
| ${open.requests} | ${(open.success * 100).toFixed(2)} % | ${fmt(open.p50)} | ${fmt(open.p90)} | ${fmt(open.p99)} | ${fmt(open.max)} | ${JSON.stringify(open.codes)} |

Target: ≥ 3,000 single-row req/s per worker on this 2-core machine.
With WORKERS=2 the two workers, the cluster primary (which hands connections to workers) and wrk share 2 cores,
so per-worker throughput is lower than with one worker; a Kubernetes pod would rather run one worker per CPU it is given.
`;
// Every run on a shared machine is one sample; keep one line per run so the spread stays visible.
const ALL_RUNS = '## All runs (one line each, newest last)';
const previous = existsSync(RESULTS)
  ? (readFileSync(RESULTS, 'utf8')
      .split(ALL_RUNS)[1]
      ?.trim()
      .split('\n')
      .filter((l) => l.startsWith('- ')) ?? [])
  : [];
const line =
  `- ${new Date().toISOString()} load ${loadavg()
    .map((l) => l.toFixed(1))
    .join('/')}: ` +
  rows
    .map(
      (r) =>
        `WORKERS=${r.workers} ${r.rps.toFixed(0)} req/s p50 ${fmt(r.p50)} p99 ${fmt(r.p99)} ms ${r.cpuUs.toFixed(0)} µs CPU/req`,
    )
    .join('; ') +
  `; vegeta 1000/s ${(open.success * 100).toFixed(1)} % p50 ${fmt(open.p50)} p99 ${fmt(open.p99)} ms`;
mkdirSync(`${ROOT}bench/results`, { recursive: true });
writeFileSync(RESULTS, `${md}\n${ALL_RUNS}\n${[...previous, line].join('\n')}\n`);
console.log(`wrote ${RESULTS}`);
