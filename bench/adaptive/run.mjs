#!/usr/bin/env node
/* global URL, fetch, setInterval, clearInterval, setTimeout, clearTimeout -- Node 24 globals; the shared eslint config lists only a few for .mjs */
// Adaptive vs static concurrency limits in the real cb-sidecar, through a change of upstream capacity.
// Upstream: the test kit's upstream as a process (PARALLELISM workers, BACKLOG queue, then 503),
// service time SERVICE_MS, doubled for the middle third of the run and restored for the last third.
// Load: vegeta, open loop, RATE req/s (above capacity in every phase), PHASE_S seconds per phase.
// Arms: adaptive (the seed DestinationRule's maxConnections 100; the limit starts at min) and static limits.
// Writes bench/results/adaptive.md. Every process started here is stopped here; every run is bounded.
//   node bench/adaptive/run.mjs     (after `npx tsc -b packages/testkit`; `make bench-adaptive` does both)
import { writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import {
  buildSidecarAt,
  killAll,
  machineLoad,
  percentile,
  scratch,
  sleep,
  startSidecar,
  startUpstreamProcess,
  vegetaAttack,
} from '@infer-cb/testkit';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

const PARALLELISM = Number(process.env.PARALLELISM ?? 8);
const SERVICE_MS = Number(process.env.SERVICE_MS ?? 20);
const BACKLOG = Number(process.env.BACKLOG ?? 16);
const RATE = Number(process.env.RATE ?? 600);
const PHASE_S = Number(process.env.PHASE_S ?? 8);
// Arms: `adaptive` (seed DestinationRule numbers, sidecar.concurrency.mode adaptive) or `static:<limit>`.
const ARMS = (process.env.ARMS ?? 'adaptive,static:4,static:8,static:12,static:16,static:24,static:64')
  .split(',')
  .map((a) => {
    const [mode, n] = a.split(':');
    return mode === 'adaptive'
      ? { mode, limit: 100, name: 'adaptive' }
      : { mode, limit: Number(n), name: `static ${n}` };
  });
const RESULTS = process.env.RESULTS ?? `${ROOT}bench/results/adaptive.md`;
// BASELINE=<git rev>: every arm runs that revision's sidecar instead of this build (to compare on the same machine).
const BASELINE = process.env.BASELINE || undefined;
const sidecarBuild = BASELINE === undefined ? undefined : buildSidecarAt(BASELINE);
const BUCKET_MS = 500;
const PHASES = [SERVICE_MS, 2 * SERVICE_MS, SERVICE_MS]; // service time per phase
const capacity = (serviceMs) => (PARALLELISM * 1000) / serviceMs; // req/s the upstream can serve

function configYaml(arm) {
  // The seed's DestinationRule numbers, with maxConnections = the arm's (starting) limit.
  return [
    'trafficPolicy:',
    '  connectionPool:',
    `    tcp: { maxConnections: ${arm.limit} }`,
    '    http: { http1MaxPendingRequests: 100, maxRequestsPerConnection: 0 }',
    'sidecar:',
    `  concurrency: { mode: ${arm.mode}, min: 1, max: 256 }`,
    '  queue: { timeout: 1s }',
    '',
  ].join('\n');
}

async function runArm(arm) {
  const tmp = scratch('cb-bench-adaptive-');
  const upstream = await startUpstreamProcess({ workers: PARALLELISM, serviceMs: SERVICE_MS, backlog: BACKLOG });
  let sidecar;
  try {
    // No heap flags: as the results recorded before them (the lab and the image run with them).
    sidecar = await startSidecar({
      upstream: upstream.origin,
      yaml: configYaml(arm),
      heapFlags: false,
      ...(sidecarBuild === undefined ? {} : { bin: sidecarBuild.bin }),
    });
    const admin = sidecar.admin;
    const limits = [];
    const t0 = Date.now();
    const poll = setInterval(() => {
      fetch(`${admin}/state`)
        .then((r) => r.json())
        .then(
          (s) => limits.push([Date.now() - t0, s.concurrency.limit]),
          () => {},
        );
    }, 250);
    const steps = PHASES.slice(1).map((ms, i) =>
      setTimeout(() => void upstream.control({ serviceMs: ms }), (i + 1) * PHASE_S * 1000),
    );
    const records = await vegetaAttack({
      url: `${sidecar.url}/predict`,
      rate: RATE,
      duration: `${PHASE_S * PHASES.length}s`,
      timeout: '5s',
      dir: tmp.dir,
    });
    clearInterval(poll);
    steps.forEach(clearTimeout);
    const metrics = await fetch(`${admin}/metrics`).then((r) => r.text());
    return summarize(arm, records, t0, limits, metrics);
  } finally {
    await sidecar?.proc.stop(5000, 'SIGINT');
    await upstream.proc.stop(5000);
    tmp.cleanup();
  }
}

function summarize(arm, records, t0, limits, metrics) {
  const start = Math.min(...records.map((r) => r.startMs));
  const buckets = Math.ceil((PHASE_S * PHASES.length * 1000) / BUCKET_MS);
  const good = new Array(buckets).fill(0);
  const phase = PHASES.map(() => ({ ok: 0, total: 0, shed: 0, latencies: [] }));
  for (const r of records) {
    const p = Math.min(PHASES.length - 1, Math.floor((r.startMs - start) / (PHASE_S * 1000)));
    phase[p].total++;
    if (r.code === 503) phase[p].shed++;
    if (r.code >= 200 && r.code < 300) {
      phase[p].ok++;
      phase[p].latencies.push(r.latencyMs);
      const b = Math.floor((r.startMs + r.latencyMs - start) / BUCKET_MS);
      if (b < buckets) good[b]++;
    }
  }
  const perSecond = good.map((g) => (g * 1000) / BUCKET_MS);
  // Settling: after each step, time until the 1 s rolling goodput reaches 85% of the new capacity and stays there.
  const settling = PHASES.slice(1).map((ms, i) => {
    const from = ((i + 1) * PHASE_S * 1000) / BUCKET_MS;
    const to = ((i + 2) * PHASE_S * 1000) / BUCKET_MS;
    const win = 1000 / BUCKET_MS;
    let settledAt = NaN;
    for (let b = from + win - 1; b < to; b++) {
      const rolling = perSecond.slice(b - win + 1, b + 1).reduce((a, x) => a + x, 0) / win;
      if (rolling >= 0.85 * capacity(ms)) {
        if (Number.isNaN(settledAt)) settledAt = (b + 1 - from) * BUCKET_MS;
      } else settledAt = NaN;
    }
    return settledAt;
  });
  const all = phase.reduce(
    (a, p) => ({
      ok: a.ok + p.ok,
      total: a.total + p.total,
      shed: a.shed + p.shed,
      latencies: a.latencies.concat(p.latencies),
    }),
    { ok: 0, total: 0, shed: 0, latencies: [] },
  );
  const outcomes = {};
  for (const m of metrics.matchAll(/^cb_requests_total\{([^}]*)\} (\d+)/gm)) {
    const outcome = /outcome="([^"]+)"/.exec(m[1])?.[1];
    const code = /code="([^"]+)"/.exec(m[1])?.[1];
    outcomes[`${outcome}/${code}`] = (outcomes[`${outcome}/${code}`] ?? 0) + Number(m[2]);
  }
  const other = records.filter((r) => r.code !== 503 && (r.code < 200 || r.code >= 300)).length;
  return {
    arm,
    goodput: all.ok / (PHASE_S * PHASES.length),
    phaseGoodput: phase.map((p) => p.ok / PHASE_S),
    p50: percentile(all.latencies, 50),
    p99: percentile(all.latencies, 99),
    phaseP99: phase.map((p) => percentile(p.latencies, 99)),
    shedRate: all.shed / all.total,
    other,
    total: all.total,
    settling,
    limitTrace: limits,
    perSecond,
    outcomes,
    t0,
  };
}

function limitPerSecond(trace) {
  const sums = [];
  for (const [ms, limit] of trace) {
    const s = (sums[Math.floor(ms / 1000)] ??= [0, 0]);
    s[0] += limit;
    s[1]++;
  }
  return Array.from(sums, (s) => (s ? Math.round(s[0] / s[1]) : '.')).join(' ');
}

function report(results, load) {
  const best = results
    .filter((r) => r.arm.mode === 'static')
    .reduce((a, r) => (r.goodput > a.goodput ? r : a), { arm: { name: 'none' }, goodput: -Infinity });
  const adaptives = results.filter((r) => r.arm.mode === 'adaptive');
  const f = (x, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : '—');
  const lines = [
    '# Adaptive concurrency vs static limits (cb-sidecar, real processes)',
    '',
    `Generated by \`make bench-adaptive\` (bench/adaptive/run.mjs) on ${new Date().toISOString()}.`,
    '',
    '## Method',
    '',
    `- Upstream: the test kit's upstream (\`packages/testkit\`) as its own process: ${PARALLELISM} workers,`,
    `  a FIFO backlog of ${BACKLOG} (then an immediate 503, as an overloaded model server answers), service time`,
    `  ${PHASES.join(' ms → ')} ms, switched every ${PHASE_S} s. Capacity ${PHASES.map((ms) => f(capacity(ms))).join(' → ')} req/s.`,
    `- cb-sidecar: ${sidecarBuild === undefined ? '`packages/proxy/dist/main.js`' : `built from git revision \`${BASELINE}\` (${sidecarBuild.commit})`} with the seed DestinationRule numbers (maxConnections 100,`,
    '  http1MaxPendingRequests 100), queue timeout 1 s, breaker defaults. Adaptive arm: `sidecar.concurrency:',
    '  { mode: adaptive, min: 1, max: 256 }` (slow start from 1); static arms: maxConnections = the limit.',
    `- Load: vegeta open loop, ${RATE} req/s for ${PHASE_S * PHASES.length} s (above capacity in every phase), timeout 5 s, seed body.`,
    `- Goodput = 2xx answers / s. Accepted p99 = p99 latency of 2xx answers. 503 rate = 503s / all requests.`,
    '  Settling = time after a step until the 1 s rolling goodput reaches 85% of the new capacity and stays there.',
    `- Machine: ${cpus().length} cores shared with other engineers; load before: \`${load.before}\`; after: \`${load.after}\`.`,
    '',
    '## Results',
    '',
    '| arm | goodput req/s | per phase (20/40/20 ms) | accepted p50 ms | accepted p99 ms | p99 per phase ms | 503 rate | other errors | settling after 2× slower / 2× faster |',
    '|---|---|---|---|---|---|---|---|---|',
    ...results.map(
      (r) =>
        `| ${r.arm.mode === 'adaptive' ? `**${r.arm.name}**` : r.arm.name} | ${f(r.goodput)} | ${r.phaseGoodput.map((x) => f(x)).join(' / ')} | ${f(r.p50, 1)} | ${f(r.p99, 1)} | ${r.phaseP99.map((x) => f(x)).join(' / ')} | ${f(100 * r.shedRate, 1)}% | ${r.other} | ${r.settling.map((s) => (Number.isNaN(s) ? 'never' : `${f(s / 1000, 1)} s`)).join(' / ')} |`,
    ),
    '',
    `Best static limit: **${best.arm.name}** (${f(best.goodput)} req/s); target: adaptive ≥ 80% of it.`,
    ...adaptives.map(
      (a) =>
        `- ${a.arm.name}: goodput **${f((100 * a.goodput) / best.goodput)}%** of the best static; settling after the 2× slower step ${f(a.settling[0] / 1000, 1)} s, after the 2× faster step ${f(a.settling[1] / 1000, 1)} s.`,
    ),
    '',
    '## Adaptive limit over time (/state every 250 ms, one value per second: the mean)',
    '',
    '```',
    ...adaptives.map((a) => `${a.arm.name.padEnd(13)} ${limitPerSecond(a.limitTrace)}`),
    '```',
    '',
    '## Goodput per second (2xx/s, by completion time)',
    '',
    '```',
    ...results.map(
      (r) =>
        `${r.arm.name.padEnd(13)} ${r.perSecond
          .filter((_, i) => i % 2 === 1)
          .map((x, i) => f((x + r.perSecond[2 * i]) / 2))
          .join(' ')}`,
    ),
    '```',
    '',
    '## Sidecar outcomes (cb_requests_total, outcome/code)',
    '',
    ...results.map(
      (r) =>
        `- ${r.arm.name}: ${Object.entries(r.outcomes)
          .map(([k, v]) => `${k} ${v}`)
          .join(', ')}`,
    ),
    '',
  ];
  mkdirSync(join(RESULTS, '..'), { recursive: true });
  writeFileSync(RESULTS, lines.join('\n'));
  process.stdout.write(lines.join('\n'));
}

try {
  const load = { before: machineLoad() };
  const results = [];
  for (const arm of ARMS) {
    process.stderr.write(`bench-adaptive: ${arm.name}\n`);
    results.push(await runArm(arm));
    await sleep(500);
  }
  load.after = machineLoad();
  report(results, load);
} catch (err) {
  killAll();
  process.stderr.write(`bench-adaptive: ${err.stack ?? err}\n`);
  process.exit(1);
}
