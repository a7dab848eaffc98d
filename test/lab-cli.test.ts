// cb-lab as a process: bad flags, and Ctrl-C leaving nothing behind.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { interrupt, runLab, startLab, stopLab } from './lab-cli.js';

describe('cb-lab CLI', () => {
  it('exits 2 with one clear line on bad flags', async () => {
    const run = await runLab(['--replicas', 'many', '--driver', 'wrk']);
    expect(run.code).toBe(2);
    const lines = run.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^cb-lab: LAB_BAD_FLAGS: --replicas .*--driver /);
    expect(run.stdout).toBe('');
  });

  it('prints its usage with --help and exits 0', async () => {
    const run = await runLab(['--help']);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('--replicas N');
  });

  it('leaves no process behind when it gets SIGINT in the middle of an arm', async () => {
    const out = mkdtempSync(join(tmpdir(), 'cb-lab-sigint-'));
    const lab = startLab(['--arms', 'sidecar,direct', '--replicas', '2', '--duration', '30', '--rate', '50', '--probe-seconds', '0.5', '--out', out]);
    try {
      const deadline = Date.now() + 60_000;
      while (!lab.stderr().includes('[sidecar]') && Date.now() < deadline) await sleep(100);
      expect(lab.stderr()).toContain('[sidecar]');
      const { seen, code, leftovers } = await interrupt(lab);
      // two APIs, two sidecars and the balancer at least
      expect(seen.length).toBeGreaterThanOrEqual(5);
      expect(code).toBe(130);
      expect(leftovers).toEqual([]);
    } finally {
      await stopLab(lab);
    }
  }, 90_000);
});
