#!/usr/bin/env node
// Runs cb-lab several times with the same flags and writes the medians per run (arm at a number of callers)
// to bench/results/lab-<name>.md: the tables BENCHMARKS.md quotes. Void runs (machine too busy, CPU stolen)
// are listed and left out of the medians.
//
//   node bench/lab/series.mjs --name callers --runs 3 -- --arms istio,sidecar --callers 1,2,4,8
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const USAGE = 'usage: series.mjs --name NAME --runs N (1-20) [--title T] -- <cb-lab flags>\n';
const sep = process.argv.indexOf('--');
let values;
try {
  ({ values } = parseArgs({
    args: process.argv.slice(2, sep < 0 ? undefined : sep),
    options: {
      name: { type: 'string' },
      runs: { type: 'string' },
      title: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  }));
} catch (err) {
  process.stderr.write(`series.mjs: ${err.message}\n${USAGE}`);
  process.exit(2);
}
if (values.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}
const labArgs = sep < 0 ? [] : process.argv.slice(sep + 1);
const name = values.name;
const runs = Number(values.runs ?? 3);
if (name === undefined || !/^[a-z0-9-]+$/.test(name) || !Number.isInteger(runs) || runs < 1 || runs > 20) {
  process.stderr.write(USAGE);
  process.exit(2);
}

const stamp = new Date().toISOString().replace(/[:.]/g, '-');
const base = join(root, 'reports', `series-${name}-${stamp}`);
const summaries = [];
const load = [];
for (let i = 0; i < runs; i++) {
  const out = join(base, `run-${i + 1}`);
  mkdirSync(out, { recursive: true });
  const before = loadavg()[0];
  process.stderr.write(`series ${name}: run ${i + 1}/${runs} (load ${before.toFixed(2)})\n`);
  const r = spawnSync(process.execPath, [join(root, 'packages/lab/dist/main.js'), ...labArgs, '--out', out], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  load.push([before, loadavg()[0]]);
  if (r.status !== 0) {
    process.stderr.write(`series ${name}: cb-lab exited ${r.status}\n`);
    process.exit(1);
  }
  summaries.push(JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')));
}

const median = (xs) => {
  const v = xs.filter((x) => x !== null && x !== undefined && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const m = Math.floor(v.length / 2);
  return v.length % 2 === 1 ? v[m] : (v[m - 1] + v[m]) / 2;
};
const fmt = (v, digits = 1) => (v === null ? '-' : Number(v.toFixed(digits)).toString());
const range = (xs, digits = 1) => {
  const v = xs.filter((x) => x !== null && x !== undefined);
  return v.length === 0 ? '-' : `${fmt(Math.min(...v), digits)}-${fmt(Math.max(...v), digits)}`;
};
const cell = (xs, digits = 1) => `${fmt(median(xs), digits)} (${range(xs, digits)})`;

/** Every run key in the order of the first summary. */
const keys = summaries[0].arms.map((a) => a.key);
const rows = [
  ['goodput 2xx/s', (a) => a.goodput_rps, 1],
  ['goodput / capacity %', (a) => (a.goodput_ratio === null ? null : a.goodput_ratio * 100), 0],
  ['success %', (a) => a.success_ratio * 100, 1],
  ['2xx p50 ms', (a) => a.latency_ms.success.p50, 1],
  ['2xx p99 ms', (a) => a.latency_ms.success.p99, 1],
  ['all p90 ms', (a) => a.latency_ms.all.p90, 1],
  ['all p99 ms', (a) => a.latency_ms.all.p99, 1],
  ['all max ms', (a) => a.latency_ms.all.max, 0],
  ['rejections', (a) => a.latency_ms.rejection.count, 0],
  ['rejection p99 ms', (a) => (a.latency_ms.rejection.count === 0 ? null : a.latency_ms.rejection.p99), 1],
  ['errors (no answer)', (a) => a.errors, 0],
  ['Envoy UO at callers', (a) => (a.envoy === null ? null : a.envoy.callers.upstream_rq_pending_overflow), 0],
  ['Envoy UO at inbound', (a) => (a.envoy === null ? null : a.envoy.inbound.upstream_rq_pending_overflow), 0],
  ['mesh retries', (a) => (a.envoy === null ? null : a.envoy.callers.upstream_rq_retry), 0],
  ['peak in flight at one model', (a) => a.max_upstream_concurrency, 0],
  ['machine CPU busy %', (a) => a.runtime.machine?.busy_pct ?? null, 0],
  ['fault: s to recover', (a) => a.fault?.recovered_after_s ?? null, 2],
  ['fault: unanswered', (a) => a.fault?.unanswered ?? null, 0],
];
const counted = (key) => summaries.map((s) => s.arms.find((a) => a.key === key)).filter((a) => a && !a.void.void);
const voids = (key) => summaries.filter((s) => s.arms.find((a) => a.key === key)?.void.void).length;
const table = [
  `| figure (median (min-max) of counted runs) | ${keys.join(' | ')} |`,
  `|---|${keys.map(() => '---').join('|')}|`,
  ...rows
    .filter(([, pick]) => keys.some((k) => counted(k).some((a) => pick(a) !== null && pick(a) !== undefined)))
    .map(([label, pick, d]) => `| ${label} | ${keys.map((k) => cell(counted(k).map(pick), d)).join(' | ')} |`),
  `| runs counted / void | ${keys.map((k) => `${counted(k).length} / ${voids(k)}`).join(' | ')} |`,
];
const verdicts = summaries.map(
  (s, i) =>
    `- run ${i + 1}: ${s.acceptance.passed ? 'every line PASS' : 'not every line passed'}\n${s.acceptance.lines.map((l) => `  - ${l}`).join('\n')}`,
);
const s0 = summaries[0];
const md = [
  `# cb-lab series: ${values.title ?? name}`,
  '',
  `Written by \`node bench/lab/series.mjs --name ${name} --runs ${runs} -- ${labArgs.join(' ')}\` on ${new Date().toISOString()}.`,
  '',
  `- machine: ${cpus().length} CPUs (${cpus()[0]?.model ?? 'unknown'}), Node ${process.version}; 1-min load before/after each run: ${load.map(([a, b]) => `${a.toFixed(2)}/${b.toFixed(2)}`).join(', ')}`,
  `- lab: ${s0.config.replicas} replicas of ${s0.config.inference_concurrency} slots x ${s0.config.inference_ms} ms, ${s0.config.offered_rate} req/s offered for ${s0.config.duration_s} s (${s0.config.rate_source}), driver ${s0.config.driver}, policy ${s0.config.policy.replace(`${root}/`, '')}, Istio profile ${s0.config.istio_profile}`,
  `- raw: ${base.replace(`${root}/`, '')}/run-N/summary.json (not committed)`,
  '',
  ...table,
  '',
  '## Acceptance lines of each run',
  '',
  ...verdicts,
  '',
].join('\n');
const file = join(root, 'bench', 'results', `lab-${name}.md`);
writeFileSync(file, md);
process.stdout.write(`${md}\nwritten: ${file}\n`);
