/* global URL, fetch, AbortSignal, performance, setTimeout -- Node 24 globals */
// bench/priority: priority shedding under open-loop overload. cb-sidecar (the built CLI, the image's heap flags,
// the default shares) in front of the kit's upstream of fixed workers; vegeta at 3x capacity for 30 s with
// 20% critical / 50% default / 30% sheddable (x-request-priority, round robin over 10 targets). Reports success
// and accepted p50/p99 per class against the unloaded run, the upstream's peak in flight against the limit,
// and whether a critical request was ever shed while a sheddable one was admitted from the queue (/state
// sampled every 100 ms). Then the same load without the header, for contrast. Writes bench/results/priority.md.
//   node bench/priority/run.mjs [--duration 30] [--factor 3] [--workers 8] [--service-ms 50]
import { cpus } from 'node:os';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { SIDECAR_NODE_OPTIONS } from '@infer-cb/proxy/heap-flags';
import { PRIORITY_CLASSES } from '@infer-cb/proxy/outcomes';
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
    workers: { type: 'string', default: '8' },
    'service-ms': { type: 'string', default: '50' },
    'sample-ms': { type: 'string', default: '100' },
  },
});
const DURATION_S = Number(values.duration);
const FACTOR = Number(values.factor);
const WORKERS = Number(values.workers);
const SERVICE_MS = Number(values['service-ms']);
const SAMPLE_MS = Number(values['sample-ms']);
const CAPACITY = (WORKERS * 1000) / SERVICE_MS; // requests/s the upstream can finish
const RATE = Math.round(CAPACITY * FACTOR);
const UNLOADED_RATE = Math.max(10, Math.round(CAPACITY / 10));
const UNLOADED_S = 15;
const QUEUE = 4 * WORKERS;
/** The mix by tenths, spread out: vegeta sends its targets round robin in this order. */
const MIX = [
  'default',
  'critical',
  'default',
  'sheddable',
  'default',
  'sheddable',
  'critical',
  'default',
  'sheddable',
  'default',
];
const SHARE = Object.fromEntries(PRIORITY_CLASSES.map((c) => [c, MIX.filter((m) => m === c).length * 10]));

const loadBefore = machineLoad();
const work = scratch('cb-priority-');
// The limit matches the upstream's workers; every other setting, the shares included, is the default.
const config = `trafficPolicy:\n  connectionPool:\n    tcp: { maxConnections: ${WORKERS} }\n    http: { http1MaxPendingRequests: ${QUEUE} }\n`;

/** One target per tenth of the mix; the class also in the query, so each record says which class it was. */
const targets = (origin, withHeader) =>
  MIX.map((c) => ({
    url: `${origin}/predict?class=${c}`,
    headers: withHeader ? [`x-request-priority: ${c}`] : [],
  }));
const classOf = (record) => /class=([a-z]+)/.exec(record.url)?.[1];

/** Samples /state's per-class counters every SAMPLE_MS until stopped. */
function sampleState(adminPort) {
  const samples = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      try {
        const res = await fetch(`http://127.0.0.1:${adminPort}/state`, { signal: AbortSignal.timeout(1000) });
        samples.push({ at: performance.now(), classes: (await res.json()).classes });
      } catch {
        /* a missed sample only widens one interval */
      }
      await new Promise((resolve) => setTimeout(resolve, SAMPLE_MS));
    }
  })();
  return async () => {
    running = false;
    await loop;
    return samples;
  };
}

/**
 * The intervals between two samples in which a critical request was shed for load (overload or queue
 * timeout) while a sheddable one was admitted from the queue.
 */
function inversions(samples) {
  let intervals = 0;
  let criticalShed = 0;
  let sheddableFromQueue = 0;
  for (let i = 1; i < samples.length; i++) {
    const [a, b] = [samples[i - 1].classes, samples[i].classes];
    const shed = b.critical.overload + b.critical.queueTimeout - (a.critical.overload + a.critical.queueTimeout);
    const fromQueue = b.sheddable.admittedFromQueue - a.sheddable.admittedFromQueue;
    criticalShed += shed;
    sheddableFromQueue += fromQueue;
    if (shed > 0 && fromQueue > 0) intervals++;
  }
  return { intervals, criticalShed, sheddableFromQueue, samples: samples.length };
}

/** Success and accepted latency per class of one attack. */
function byClass(records) {
  const out = {};
  for (const c of PRIORITY_CLASSES) {
    const mine = records.filter((r) => classOf(r) === c);
    const ok = mine.filter((r) => r.code === 200).map((r) => r.latencyMs);
    out[c] = {
      sent: mine.length,
      ok: ok.length,
      success: (100 * ok.length) / Math.max(1, mine.length),
      p50: percentile(ok, 50),
      p99: percentile(ok, 99),
      shed: mine.filter((r) => r.code === 503).length,
      other: mine.filter((r) => r.code !== 200 && r.code !== 503).length,
    };
  }
  return out;
}

let upstream;
let sidecar;
try {
  upstream = await startUpstreamProcess({ workers: WORKERS, serviceMs: SERVICE_MS });
  sidecar = await startSidecar({ upstream: upstream.origin, yaml: config });
  const origin = sidecar.url;

  /** One vegeta attack of the mix at `rate` for `seconds`, with the priority header or without it. */
  const attack = (rate, seconds, withHeader) =>
    vegetaAttack({
      url: origin,
      targets: targets(origin, withHeader),
      rate,
      duration: `${seconds}s`,
      timeout: '10s',
      dir: work.dir,
    });

  console.error(`unloaded: ${UNLOADED_RATE} req/s for ${UNLOADED_S} s`);
  const unloaded = await attack(UNLOADED_RATE, UNLOADED_S, true);
  await upstream.reset();
  console.error(`overload with classes: ${RATE} req/s (${FACTOR}x capacity ${CAPACITY} req/s) for ${DURATION_S} s`);
  const stop = sampleState(sidecar.adminPort);
  const overload = await attack(RATE, DURATION_S, true);
  const samples = await stop();
  const upstreamStats = await upstream.stats();
  const state = await (await fetch(`http://127.0.0.1:${sidecar.adminPort}/state`)).json();
  await new Promise((resolve) => setTimeout(resolve, 2000)); // the queue empties, the CoDel state settles
  await upstream.reset();
  console.error(`overload without the header: ${RATE} req/s for ${DURATION_S} s`);
  const flat = await attack(RATE, DURATION_S, false);
  const flatStats = await upstream.stats();
  const loadAfter = machineLoad();

  const unloadedOk = unloaded.filter((r) => r.code === 200).map((r) => r.latencyMs);
  const unloadedP99 = percentile(unloadedOk, 99);
  const idle = byClass(unloaded);
  const loaded = byClass(overload);
  const none = byClass(flat);
  const inv = inversions(samples);
  const errors = overload.filter((r) => r.code === 0).length;
  const [crit, dflt, shed] = PRIORITY_CLASSES.map((c) => loaded[c]);

  const checks = [
    ['critical success >= 99%', `${crit.success.toFixed(2)}% (${crit.ok} of ${crit.sent})`, crit.success >= 99],
    [
      'critical accepted p99 within 2x the unloaded p99',
      `${crit.p99.toFixed(2)} ms <= 2 x ${unloadedP99.toFixed(2)} = ${(2 * unloadedP99).toFixed(2)} ms`,
      crit.p99 <= 2 * unloadedP99,
    ],
    [
      'success ordered critical >= default >= sheddable',
      `${crit.success.toFixed(1)}% >= ${dflt.success.toFixed(1)}% >= ${shed.success.toFixed(1)}%`,
      crit.success >= dflt.success && dflt.success >= shed.success,
    ],
    [
      'no critical shed while a sheddable is admitted from the queue',
      `${inv.intervals} of ${Math.max(0, inv.samples - 1)} intervals of ~${SAMPLE_MS} ms had both (critical shed ${inv.criticalShed}, sheddable admitted from the queue ${inv.sheddableFromQueue})`,
      inv.intervals === 0,
    ],
    [
      'the upstream never holds more than the limit',
      `peak ${upstreamStats.maxInflight} (without the header: ${flatStats.maxInflight}) <= limit ${WORKERS}`,
      upstreamStats.maxInflight <= WORKERS && flatStats.maxInflight <= WORKERS,
    ],
    [
      'every request answered',
      `socket errors ${errors}, sent ${overload.length} of ${RATE * DURATION_S}`,
      errors === 0,
    ],
  ];
  const pass = checks.every((c) => c[2]);
  const f = (n) => (Number.isFinite(n) ? n.toFixed(2) : '—');
  const row = (name, r) =>
    `| ${name} | ${r.sent} | ${r.ok} | ${r.success.toFixed(1)}% | ${f(r.p50)} / ${f(r.p99)} ms | ${r.shed} | ${r.other} |`;
  const md = `# Priority shedding benchmark (bench/priority)

Generated by \`make bench-priority\` (\`node bench/priority/run.mjs\`) on ${new Date().toISOString()}.

## Method
- **Upstream**: the test kit's upstream as its own process, ${WORKERS} workers with a fixed ${SERVICE_MS} ms service time
  (capacity ${CAPACITY} req/s); extra requests wait in its own unbounded FIFO, so anything let through beyond
  ${WORKERS} shows up as its peak in flight.
- **Sidecar**: the built CLI with the image's NODE_OPTIONS (\`${SIDECAR_NODE_OPTIONS}\`), static limit ${WORKERS}, queue ${QUEUE},
  every other setting at its default: shares default 0.5 / sheddable 0.3 (critical served first), queue timeout 1 s,
  CoDel 5 ms / 100 ms per class, breaker and metrics on.
- **Load**: vegeta, open loop at a constant rate, POSTing \`vegeta/data.json\` to \`/predict\` round robin over 10 targets:
  ${SHARE.critical}% \`x-request-priority: critical\`, ${SHARE.default}% \`default\`, ${SHARE.sheddable}% \`sheddable\`
  (the class also in the query string, so each result says its class). Unloaded: ${UNLOADED_RATE} req/s for ${UNLOADED_S} s. Overload:
  ${RATE} req/s = ${FACTOR}x capacity for ${DURATION_S} s. Then the same overload without the header (every request \`default\`).
  Latency is vegeta's, client side.
- **The inversion check**: \`/state\`'s per-class counters sampled every ${SAMPLE_MS} ms during the overload; an interval
  in which critical's \`overload\` + \`queueTimeout\` and sheddable's \`admittedFromQueue\` both grew counts as one.
- **Machine**: ${cpus().length} x ${cpus()[0]?.model ?? 'unknown CPU'}; the exclusive machine lock held (\`flock -x /work/locks/machine\`).
  Load before: \`${loadBefore}\`; after: \`${loadAfter}\`.

## Results
Unloaded p99 (all classes): ${f(unloadedP99)} ms.

| class, overload with the header | sent | 200 | success | accepted p50 / p99 | 503 | other |
|---|---|---|---|---|---|---|
${PRIORITY_CLASSES.map((c) => row(c, loaded[c])).join('\n')}

| class, unloaded | sent | 200 | success | accepted p50 / p99 | 503 | other |
|---|---|---|---|---|---|---|
${PRIORITY_CLASSES.map((c) => row(c, idle[c])).join('\n')}

| the same overload without the header | sent | 200 | success | accepted p50 / p99 | 503 | other |
|---|---|---|---|---|---|---|
${PRIORITY_CLASSES.map((c) => row(`(${c})`, none[c])).join('\n')}

Upstream peak in flight: ${upstreamStats.maxInflight} with the header, ${flatStats.maxInflight} without (limit ${WORKERS}).
Sidecar \`/state\` classes after the overload with the header: ${PRIORITY_CLASSES.map((c) => {
    const s = state.classes[c];
    return `${c}: reserved ${s.reserved}, admitted ${s.admitted} (${s.admittedFromQueue} from the queue), overload ${s.overload}, queue-timeout ${s.queueTimeout}`;
  }).join('; ')}.

## Targets
| target | measured | |
|---|---|---|
${checks.map(([name, measured, ok]) => `| ${name} | ${measured} | ${ok ? 'PASS' : 'FAIL'} |`).join('\n')}

Overall: **${pass ? 'PASS' : 'FAIL'}**.
`;
  writeFileSync(join(ROOT, 'bench/results/priority.md'), md);
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
