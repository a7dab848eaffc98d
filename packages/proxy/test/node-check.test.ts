// The bins' first import: on a Node older than 22 one clear line and exit 1 instead of undici's TypeError.
// Each built bin runs with a preload that makes the process report an older Node, so a bin that stopped
// importing the check first would fail in undici or start, and this test would see it.
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';

const repo = resolve(import.meta.dirname, '..', '..', '..');
const SIDECAR = resolve(repo, 'packages', 'proxy', 'dist', 'main.js');
const LAB = resolve(repo, 'packages', 'lab', 'dist', 'main.js');
const POLICY = resolve(repo, 'packages', 'policy', 'dist', 'main.js');
const CHECK = resolve(repo, 'packages', 'proxy', 'dist', 'node-check.js');

/** Runs `node <script> --help` while the process says it is Node `version`. */
function run(version: string, script: string): { status: number | null; stderr: string; stdout: string } {
  const fake = `Object.defineProperty(process, 'versions', { value: { ...process.versions, node: '${version}' } });`;
  const r = spawnSync(
    process.execPath,
    ['--import', `data:text/javascript,${encodeURIComponent(fake)}`, script, '--help'],
    { encoding: 'utf8', timeout: 20_000 },
  );
  return { status: r.status, stderr: r.stderr, stdout: r.stdout };
}

describe('node-check', () => {
  it.each([
    ['20.20.2', SIDECAR, 'cb-sidecar'],
    ['21.7.3', LAB, 'cb-lab'],
    ['18.19.0', POLICY, 'cb-policy'],
  ])('on Node %s stops %s with one line naming the Node it needs', (version, script, name) => {
    const r = run(version, script);
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim().split('\n')).toEqual([expect.stringContaining(`${name}: needs Node >= 22`)]);
    expect(r.stderr).toContain(`this is ${version}`);
    expect(r.stderr).toContain('.tools/node/bin');
  });

  it('names the sidecar as cb-sidecar even when its path contains "lab"', () => {
    const script = `process.argv[1] = '/home/me/gitlab/collab/cb-sidecar';
Object.defineProperty(process, 'versions', { value: { ...process.versions, node: '20.0.0' } });
await import(${JSON.stringify(CHECK)});`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^cb-sidecar: needs Node >= 22/);
  });

  it.each([
    [SIDECAR, 'usage: cb-sidecar'],
    [LAB, 'Usage: cb-lab'],
  ])('lets a current Node run %s', (script, usage) => {
    const r = run('24.21.0', script);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain(usage);
  });
});
