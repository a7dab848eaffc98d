import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { CpuQuota, cpuTimeMs } from '../src/cpu-quota.js';

describe('CpuQuota', () => {
  it('holds a busy process to its CPU limit and lets it run again when stopped', async () => {
    const busy = spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' });
    try {
      const pid = busy.pid as number;
      await sleep(200);
      // 0.05 core: far below what a busy loop gets even on a loaded 2-core machine, so the limit must bite.
      const quota = new CpuQuota({ pids: [pid], cpu: 0.05, periodMs: 50 });
      const before = cpuTimeMs(pid) as number;
      quota.start();
      await sleep(2000);
      quota.stop();
      const used = (cpuTimeMs(pid) as number) - before;
      // 0.05 of a core for 2 s is 100 ms, plus the 2.5 ms burst and one late check.
      expect(used).toBeLessThan(250);
      expect(used).toBeGreaterThan(20);
      expect(quota.stops).toBeGreaterThan(3);
      // After stop() the process runs freely again (not left stopped).
      const after = cpuTimeMs(pid) as number;
      await sleep(1000);
      expect((cpuTimeMs(pid) as number) - after).toBeGreaterThan(60);
    } finally {
      busy.kill('SIGKILL');
    }
  });

  it('rejects a limit outside (0, 64] cores', () => {
    expect(() => new CpuQuota({ pids: [1], cpu: 0, periodMs: 50 })).toThrow(/cpu must be/);
  });
});
