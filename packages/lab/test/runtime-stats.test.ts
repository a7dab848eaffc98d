import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { machineStats, readCpuTimes } from '../src/runtime-stats.js';

function statFile(cpuLine: string): string {
  const path = join(mkdtempSync(join(tmpdir(), 'cb-lab-stat-')), 'stat');
  writeFileSync(path, `${cpuLine}\ncpu0 1 2 3 4 5 6 7 8 0 0\nctxt 42\n`);
  return path;
}

describe('machine CPU figures from /proc/stat', () => {
  it('reads the aggregate cpu line and turns two readings into busy share and steal', () => {
    const from = readCpuTimes(statFile('cpu  1000 10 300 5000 20 0 40 100 0 0'));
    // 2 s on 2 CPUs = 400 ticks: 150 user, 50 system, 10 softirq busy; 170 idle; 20 stolen.
    const to = readCpuTimes(statFile('cpu  1150 10 350 5170 20 0 50 120 0 0'));
    expect(from).toEqual([1000, 10, 300, 5000, 20, 0, 40, 100]);
    expect(machineStats(from, to)).toEqual({ busy_pct: 52.5, steal_ms: 200 });
  });

  it('gives null, never a number, for a missing or malformed file and for no time passed', () => {
    expect(readCpuTimes(join(tmpdir(), 'no-such-dir', 'stat'))).toBeNull();
    expect(readCpuTimes(statFile('intr 1 2 3'))).toBeNull();
    expect(readCpuTimes(statFile('cpu  1 2 x 4 5 6 7 8'))).toBeNull();
    const same = readCpuTimes(statFile('cpu  1 2 3 4 5 6 7 8'));
    expect(machineStats(same, same)).toBeNull();
    expect(machineStats(null, same)).toBeNull();
  });

  it('reads this machine: eight tick counters on Linux, null where there is no /proc/stat', () => {
    const t = readCpuTimes();
    if (process.platform !== 'linux') {
      expect(t).toBeNull();
      return;
    }
    expect(t).toHaveLength(8);
    expect(t?.every((v) => Number.isInteger(v) && v >= 0)).toBe(true);
  });
});
