#!/usr/bin/env node
// Assembles bench/results/reliability.md from the figures the e2e tests (test/e2e/*.test.ts) and the soak
// wrote to .ci-results/reliability/*.json. Usage: node bench/soak/reliability.mjs [out.md]
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = '.ci-results/reliability';
const out = process.argv[2] ?? 'bench/results/reliability.md';
if (!existsSync(dir)) {
  process.stderr.write(`reliability: no ${dir}; run the e2e suite first (make test, or jest test/e2e)\n`);
  process.exit(2);
}
const rows = [];
const soaks = [];
for (const name of readdirSync(dir).sort()) {
  if (!name.endsWith('.json')) continue;
  const doc = JSON.parse(readFileSync(join(dir, name), 'utf8'));
  (name.startsWith('soak-') ? soaks : rows).push(doc);
}
const statuses = (by) =>
  Object.entries(by)
    .map(([k, v]) => `${k}: ${v}`)
    .join(', ');
const lines = [
  '## Reliability',
  '',
  'Every fault ran under bounded open-loop load through the built cb-sidecar (test/e2e/upstream-faults.test.ts,',
  'sidecar-lifecycle.test.ts) on a 2-core machine shared with other jobs. "Answered" counts complete HTTP answers;',
  'recovery is the time from the end of the fault (for the killed API: from its restart) to the first answer that',
  'opens 500 ms of nothing but 200s. Breaker: resetTimeout 1 s.',
  '',
  '| fault | sent | answered | answers by status | recovery | note |',
  '|---|---:|---:|---|---:|---|',
  ...rows.map(
    (r) =>
      `| ${r.fault} | ${r.sent} | ${r.answered} | ${statuses(r.byStatus)} | ${r.recoveryMs === null ? '-' : `${Math.round(r.recoveryMs)} ms`} | ${r.note} |`,
  ),
  '',
];
if (soaks.length > 0) {
  lines.push(
    '### Soak (80% of measured capacity, through the sidecar)',
    '',
    '| run | rate | sent / answered | by status | process | RSS start → end (MiB) | fds start → end |',
    '|---|---:|---|---|---|---|---|',
  );
  for (const s of soaks) {
    for (const p of ['sidecar', 'api']) {
      const f = s.figures[p];
      lines.push(
        `| ${s.durationS} s (warm-up ${s.warmupS} s) | ${s.rateRps}/s of ${Math.round(s.capacityRps)}/s | ${s.sent} / ${s.answered} | ${statuses(s.byStatus)} | ${p === 'sidecar' ? 'cb-sidecar' : 'iris-api'} | ${(f.rssStartKiB / 1024).toFixed(1)} → ${(f.rssEndKiB / 1024).toFixed(1)} | ${f.fdsStart} → ${f.fdsEnd} |`,
      );
    }
  }
  lines.push('');
}
writeFileSync(out, lines.join('\n'));
process.stdout.write(`reliability: ${rows.length} faults, ${soaks.length} soak runs -> ${out}\n`);
