// The bins' first import: on a Node older than 22 one clear line and exit 1 instead of undici's TypeError.
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';

const check = resolve(import.meta.dirname, '..', 'dist', 'node-check.js');

/** Loads node-check.js in a child that reports `version` as its Node version. */
function load(version: string, bin: string): { status: number | null; stderr: string; stdout: string } {
  const script = `Object.defineProperty(process, 'versions', { value: { ...process.versions, node: '${version}' } });
process.argv[1] = '${bin}';
await import(${JSON.stringify(check)});
console.log('loaded');`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  return { status: r.status, stderr: r.stderr, stdout: r.stdout };
}

describe('node-check', () => {
  it.each([
    ['20.20.2', '/repo/node_modules/.bin/cb-sidecar', 'cb-sidecar'],
    ['21.7.3', '/repo/packages/lab/dist/main.js', 'cb-lab'],
  ])('on Node %s stops %s with one line naming the Node it needs', (version, bin, name) => {
    const r = load(version, bin);
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim().split('\n')).toEqual([expect.stringContaining(`${name}: needs Node >= 22`)]);
    expect(r.stderr).toContain(`this is ${version}`);
    expect(r.stderr).toContain('.tools/node/bin');
  });

  it.each(['22.0.0', '24.21.0'])('lets Node %s load the rest', (version) => {
    const r = load(version, '/x/cb-sidecar');
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toBe('loaded');
  });
});
