// cb-lab as a process: bad flags, and Ctrl-C leaving nothing behind.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { alive, descendants, interrupt, runLab, startLab, stopLab, waitForStderr } from './lab-cli.js';

describe('cb-lab CLI', () => {
  it('exits 2 with one clear line on bad flags', async () => {
    const run = await runLab(['--replicas', 'many', '--driver', 'wrk']);
    expect(run.code).toBe(2);
    const lines = run.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^cb-lab: LAB_BAD_FLAGS: --replicas .*--driver /);
    expect(run.stdout).toBe('');
  });

  it('exits 2 with one clear line on a malformed --policy, before it starts anything', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cb-lab-policy-'));
    const file = join(dir, 'dr.yaml');
    writeFileSync(
      file,
      'kind: DestinationRule\nspec: { host: iris, trafficPolicy: { connectionPool: { tcp: { maxConections: 4 } } } }\n',
    );
    const run = await runLab(['--policy', file, '--arms', 'istio']);
    expect(run.code).toBe(2);
    const lines = run.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      /^cb-lab: LAB_BAD_FLAGS: --policy .*dr\.yaml: .*maxConections: unknown key; did you mean "maxConnections"/,
    );
  });

  it('prints its usage with --help and exits 0', async () => {
    const run = await runLab(['--help']);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('--replicas N');
  });

  it('leaves no process behind when it gets SIGINT in the middle of an arm', async () => {
    const out = mkdtempSync(join(tmpdir(), 'cb-lab-sigint-'));
    const lab = startLab([
      '--arms',
      'sidecar,direct',
      '--replicas',
      '2',
      '--duration',
      '30',
      '--rate',
      '50',
      '--probe-seconds',
      '0.5',
      '--out',
      out,
    ]);
    try {
      await waitForStderr(lab, '[sidecar]');
      expect(lab.stderr()).toContain('[sidecar]');
      const { seen, code, leftovers } = await interrupt(lab);
      // two APIs, two sidecars and the Service (haproxy) at least
      expect(seen.length).toBeGreaterThanOrEqual(5);
      expect(code).toBe(130);
      expect(leftovers).toEqual([]);
    } finally {
      await stopLab(lab);
    }
  }, 90_000);
});

describe('cb-lab killed outright', () => {
  it('leaves no process behind even after SIGKILL: the reaper kills the groups it left', async () => {
    const out = mkdtempSync(join(tmpdir(), 'cb-lab-sigkill-'));
    // With a CPU limit: its process SIGSTOPs the API, and a lab killed outright must not leave one stopped.
    const lab = startLab([
      '--arms',
      'sidecar',
      '--replicas',
      '1',
      '--duration',
      '30',
      '--rate',
      '20',
      '--probe-seconds',
      '0.5',
      '--api-cpu',
      '0.015',
      '--out',
      out,
    ]);
    try {
      await waitForStderr(lab, '[sidecar]');
      const seen = descendants(lab.proc.pid as number);
      // the API, the sidecar, the CPU limit, the Service (haproxy) and the reaper
      expect(seen.length).toBeGreaterThanOrEqual(5);
      lab.proc.kill('SIGKILL');
      await lab.done;
      const until = Date.now() + 5000;
      while (seen.some(alive) && Date.now() < until) await sleep(100);
      expect(seen.filter(alive)).toEqual([]);
    } finally {
      await stopLab(lab);
    }
  }, 90_000);
});
