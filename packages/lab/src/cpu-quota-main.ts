#!/usr/bin/env node
// The CPU limit of the lab's "pods" as its own process (steady 1 ms ticks, away from the load generator).
// Usage: node cpu-quota-main.js --cpu 0.1 --period-ms 50 --pid 123 --pid 456
import { parseArgs } from 'node:util';
import { CpuQuota } from './cpu-quota.js';

function fail(message: string): never {
  process.stderr.write(`cb-lab-cpu-quota: ${message}\n`);
  process.exit(2);
}

let quota: CpuQuota;
try {
  const { values } = parseArgs({
    options: { cpu: { type: 'string' }, 'period-ms': { type: 'string' }, pid: { type: 'string', multiple: true } },
    strict: true,
  });
  const pids = (values.pid ?? []).map(Number);
  if (pids.length === 0 || pids.some((p) => !Number.isInteger(p) || p <= 0))
    fail('--pid must name at least one process id');
  quota = new CpuQuota({ pids, cpu: Number(values.cpu ?? 'NaN'), periodMs: Number(values['period-ms'] ?? '50') });
} catch (err) {
  fail(err instanceof Error ? err.message : String(err));
}
quota.start();
process.stderr.write('cb-lab-cpu-quota: enforcing\n');
const shutdown = (): void => {
  quota.stop(); // never leave a process stopped behind
  process.exit(0);
};
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
process.on('exit', () => quota.stop());
