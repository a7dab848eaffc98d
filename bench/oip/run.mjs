#!/usr/bin/env node
// The Open Inference Protocol on this machine: iris-api (REST /predict, REST /v2 infer, gRPC ModelInfer) and
// MLServer 1.7.1 (REST /v2 infer, gRPC ModelInfer), each on its own, one after the other, same model work (one
// iris row). Closed loop (capacity): wrk, 1 thread, 32 connections, for REST; k6 with 32 VUs (one h2c connection
// each) for gRPC. Open loop (latency at a rate all of them serve): vegeta for REST, k6/grpc.ts for gRPC, both
// at BENCH_RATE (200) req/s. Writes bench/results/oip.md. Run it alone: `flock -x /work/locks/machine make bench-oip`.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT, machineLoad, startApi, startMlserver, stopAll, v2RestBody, vegetaAttack } from '@infer-cb/testkit';

const DURATION = process.env.BENCH_DURATION ?? '10s';
const RATE = Number(process.env.BENCH_RATE ?? 200);
const CONNECTIONS = 32;
const K6 = join(REPO_ROOT, '.tools/bin/k6');
const RESULTS = join(REPO_ROOT, 'bench/results/oip.md');
const dir = mkdtempSync(join(tmpdir(), 'bench-oip-'));
const ROW = [5.1, 3.5, 1.4, 0.2];

/** wrk's closed loop at POST `url` with `body`: req/s, p50, p99 (ms), non-2xx. */
function wrk(url, body, duration = DURATION) {
  const lua = join(dir, `wrk-${Math.random().toString(36).slice(2)}.lua`);
  writeFileSync(lua, `wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = '${body}'\n`);
  const out = execFileSync('wrk', ['-t1', `-c${CONNECTIONS}`, `-d${duration}`, '--latency', '-s', lua, url], {
    encoding: 'utf8',
  });
  const ms = (v) => {
    const m = /^([\d.]+)(us|ms|s)$/.exec(v ?? '');
    return m === null ? Number.NaN : Number(m[1]) * { us: 0.001, ms: 1, s: 1000 }[m[2]];
  };
  const pct = (p) => ms(new RegExp(`^\\s+${p}%\\s+(\\S+)`, 'm').exec(out)?.[1]);
  return {
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]),
    p50: pct(50),
    p99: pct(99),
    bad: Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0),
  };
}

/** k6/grpc.ts at `target`: closed loop with `vus` VUs, or open loop at `rate`; calls/s, p50, p99 (ms), not OK. */
function k6Grpc(target, { vus, rate }) {
  const summary = join(dir, `k6-${Math.random().toString(36).slice(2)}.json`);
  const env = {
    ...process.env,
    GRPC_TARGET: target,
    DURATION,
    SUMMARY_JSON: summary,
    K6_NO_USAGE_REPORT: 'true',
    ...(vus === undefined ? { RATE: String(rate), PRE_ALLOCATED_VUS: '20', MAX_VUS: '200' } : { VUS: String(vus) }),
  };
  try {
    execFileSync(K6, ['run', '--quiet', 'k6/grpc.ts'], { cwd: REPO_ROOT, env, stdio: 'ignore', timeout: 120_000 });
  } catch (err) {
    if (err.status !== 99) throw err; // 99: a threshold crossed; the figures are still the run's
  }
  const m = JSON.parse(readFileSync(summary, 'utf8')).metrics;
  const d = m['grpc_req_duration'].values;
  const notOk = Object.entries(m)
    .filter(([k]) => k.startsWith('grpc_rejected_by_reason{'))
    .reduce((s, [, v]) => s + (v.values.count ?? 0), 0);
  return { rps: m['iterations'].values.rate, p50: d.med, p99: d['p(99)'], bad: notOk };
}

/** vegeta at RATE req/s at POST `url` with `body`: p50, p99 (ms), non-2xx. */
async function vegeta(url, body) {
  const bodyFile = join(dir, `body-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(bodyFile, body);
  const runDir = mkdtempSync(join(dir, 'vegeta-'));
  const records = await vegetaAttack({ url, body: bodyFile, rate: RATE, duration: DURATION, dir: runDir });
  const lat = records.map((r) => r.latencyMs).sort((a, b) => a - b);
  const at = (q) => lat[Math.min(lat.length - 1, Math.floor(q * lat.length))];
  return { rps: RATE, p50: at(0.5), p99: at(0.99), bad: records.filter((r) => r.code < 200 || r.code >= 300).length };
}

const fmt = (v, d = 2) => (Number.isFinite(v) ? v.toFixed(d) : '-');

const before = machineLoad();
const rows = [];
try {
  const api = await startApi({ grpcPort: 0 });
  const mlserver = await startMlserver();
  const seed = JSON.stringify({ data: [ROW] });
  const v2 = v2RestBody([ROW]);
  const cases = [
    [
      'iris-api',
      'REST POST /predict',
      () => wrk(`${api.origin}/predict`, seed),
      () => vegeta(`${api.origin}/predict`, seed),
    ],
    [
      'iris-api',
      'REST POST /v2/models/iris/infer',
      () => wrk(`${api.origin}/v2/models/iris/infer`, v2),
      () => vegeta(`${api.origin}/v2/models/iris/infer`, v2),
    ],
    [
      'iris-api',
      'gRPC ModelInfer',
      () => k6Grpc(api.grpcTarget, { vus: CONNECTIONS }),
      () => k6Grpc(api.grpcTarget, { rate: RATE }),
    ],
    [
      'MLServer 1.7.1',
      'REST POST /v2/models/iris/infer',
      () => wrk(`${mlserver.origin}/v2/models/iris/infer`, v2),
      () => vegeta(`${mlserver.origin}/v2/models/iris/infer`, v2),
    ],
    [
      'MLServer 1.7.1',
      'gRPC ModelInfer',
      () => k6Grpc(mlserver.grpcTarget, { vus: CONNECTIONS }),
      () => k6Grpc(mlserver.grpcTarget, { rate: RATE }),
    ],
  ];
  // Warm each server's hot path first (V8's JIT in iris-api, MLServer's first calls), discarded: otherwise the
  // first case measured pays for it.
  for (const [url, body] of [
    [`${api.origin}/predict`, seed],
    [`${api.origin}/v2/models/iris/infer`, v2],
    [`${mlserver.origin}/v2/models/iris/infer`, v2],
  ]) {
    wrk(url, body, '2s');
  }
  for (const [server, call, closed, open] of cases) {
    const c = closed();
    const o = await open();
    rows.push({ server, call, c, o });
    process.stderr.write(
      `${server} ${call}: ${fmt(c.rps, 0)} req/s closed; p50 ${fmt(o.p50)} p99 ${fmt(o.p99)} ms at ${RATE}/s\n`,
    );
  }
} finally {
  await stopAll();
  rmSync(dir, { recursive: true, force: true });
}
const after = machineLoad();

const table = [
  `| server | call | capacity, closed loop (req/s) | p50 / p99 there (ms) | p50 / p99 at ${RATE} req/s (ms) | non-2xx / not OK |`,
  '|---|---|---|---|---|---|',
  ...rows.map(
    ({ server, call, c, o }) =>
      `| ${server} | ${call} | ${fmt(c.rps, 0)} | ${fmt(c.p50)} / ${fmt(c.p99)} | ${fmt(o.p50)} / ${fmt(o.p99)} | ${c.bad + o.bad} |`,
  ),
].join('\n');
const text = `# The Open Inference Protocol: iris-api and MLServer on this machine (\`make bench-oip\`)

${new Date().toISOString()} · ${cpus().length} CPU(s) (${cpus()[0]?.model ?? '?'}) · Node ${process.version}
Load before: ${before}
Load after: ${after}

One iris row per request; each server alone on the machine, one after the other (the same process serves all its
calls), after 2 s of discarded closed-loop traffic to each REST endpoint (the JIT, the first calls). Capacity: a closed loop of ${CONNECTIONS} connections for ${DURATION} (wrk, 1 thread, for REST; k6, ${CONNECTIONS} VUs with one h2c
connection each, for gRPC: k6 itself takes a share of the 2 CPUs that wrk does not, so the gRPC figures are lower
bounds). Latency: an open loop at ${RATE} req/s for ${DURATION} (vegeta for REST, k6/grpc.ts for gRPC). iris-api: 1 process,
no INFERENCE_* shaping. MLServer: mlserver/ (scikit-learn runtime, \`parallel_workers: 0\`), one process.

${table}
`;
writeFileSync(RESULTS, text);
process.stdout.write(text);
