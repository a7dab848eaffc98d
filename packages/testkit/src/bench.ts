// What the benches share besides processes: scratch directories, the machine's load for the record, and
// vegeta attacks decoded to one record per request.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository this kit is built in (packages/testkit/dist/ → the root). */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** A scratch directory and the function that removes it. */
export function scratch(prefix: string): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** The machine's load for the record: `uptime` and the load averages. */
export function machineLoad(): string {
  let uptime = '';
  try {
    uptime = execFileSync('uptime', { encoding: 'utf8' }).trim();
  } catch {
    /* no uptime: the load averages alone */
  }
  const avg = loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');
  return uptime === '' ? `loadavg ${avg}` : `${uptime} (loadavg ${avg})`;
}

/**
 * Builds cb-sidecar as it was at git revision `rev` into a scratch directory, to measure it against this build:
 * its packages as of that revision, the repository's third-party node_modules, its own workspace links, the
 * repository's tsc. Returns its bin and the short commit.
 * @throws Error when the revision is unknown or its build has no bin
 */
export function buildSidecarAt(rev: string): { bin: string; commit: string } {
  const git = (...args: string[]): string => execFileSync('git', ['-C', REPO_ROOT, ...args], { encoding: 'utf8' });
  const commit = git('rev-parse', '--short', rev).trim();
  const dir = scratch('cb-sidecar-at-').dir;
  const paths = ['tsconfig.base.json', 'packages/proxy', 'packages/common'].filter(
    (p) => git('ls-tree', '--name-only', commit, p).trim() !== '',
  );
  const archive = execFileSync('git', ['-C', REPO_ROOT, 'archive', commit, ...paths], { maxBuffer: 1 << 28 });
  execFileSync('tar', ['-x', '-C', dir], { input: archive });
  mkdirSync(join(dir, 'node_modules', '@infer-cb'), { recursive: true });
  for (const entry of readdirSync(join(REPO_ROOT, 'node_modules'))) {
    if (entry !== '@infer-cb' && entry !== '.bin')
      symlinkSync(join(REPO_ROOT, 'node_modules', entry), join(dir, 'node_modules', entry));
  }
  for (const pkg of readdirSync(join(dir, 'packages')))
    symlinkSync(join(dir, 'packages', pkg), join(dir, 'node_modules', '@infer-cb', pkg));
  execFileSync(join(REPO_ROOT, 'node_modules/.bin/tsc'), ['-b', join(dir, 'packages/proxy')], { stdio: 'inherit' });
  const bin = join(dir, 'packages/proxy/dist/main.js');
  if (!existsSync(bin)) throw new Error(`cb-sidecar at ${rev} (${commit}): no ${bin} after the build`);
  return { bin, commit };
}

/** One request of a vegeta attack. */
export interface VegetaRecord {
  /** when it was sent, ms since the epoch (µs precision) */
  startMs: number;
  latencyMs: number;
  /** HTTP status, 0 when no answer came */
  code: number;
  /** the target's URL (which of several targets it was) */
  url: string;
}

/** One target of a mixed attack: a URL and its extra headers (`Name: value`). */
export interface VegetaTarget {
  url: string;
  headers?: readonly string[];
}

/** Options of {@link vegetaAttack}. */
export interface VegetaAttack {
  /** the vegeta binary; default the one `make tools` builds into .tools/bin */
  vegeta?: string;
  /** POSTed with `body` (a file; default the reference request, vegeta/data.json) */
  url: string;
  /**
   * Several targets instead of `url` alone (each POSTed with `body` and `headers` plus its own headers): vegeta
   * sends them round robin in this order, so a list of 10 gives an exact mix by tenths
   */
  targets?: readonly VegetaTarget[];
  body?: string;
  rate: number;
  /** vegeta duration, e.g. `10s` */
  duration: string;
  /** per-request timeout, e.g. `5s` */
  timeout?: string;
  /** working directory for the targets and results */
  dir: string;
  headers?: readonly string[];
  cpu?: number;
  maxConnections?: number;
}

/**
 * Runs `vegeta attack` (open loop, constant rate) at POST `url` and returns one record per request. Bounded by
 * the duration and the timeout.
 */
export function vegetaAttack(o: VegetaAttack): Promise<VegetaRecord[]> {
  const targets = join(o.dir, 'targets.txt');
  const results = join(o.dir, 'results.bin');
  const vegeta = o.vegeta ?? join(REPO_ROOT, '.tools/bin/vegeta');
  const body = o.body ?? join(REPO_ROOT, 'vegeta/data.json');
  const list = o.targets ?? [{ url: o.url }];
  writeFileSync(
    targets,
    list
      .map((t) =>
        [
          `POST ${t.url}`,
          'Content-Type: application/json',
          ...(o.headers ?? []),
          ...(t.headers ?? []),
          `@${body}`,
          '',
        ].join('\n'),
      )
      .join('\n'),
  );
  const args = [
    'attack',
    `-targets=${targets}`,
    `-rate=${o.rate}`,
    `-duration=${o.duration}`,
    `-timeout=${o.timeout ?? '5s'}`,
    `-output=${results}`,
    ...(o.maxConnections === undefined ? [] : [`-max-connections=${o.maxConnections}`]),
  ];
  const [cmd, argv] = o.cpu === undefined ? [vegeta, args] : ['taskset', ['-c', String(o.cpu), vegeta, ...args]];
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, argv, { stdio: ['ignore', 'ignore', 'inherit'] });
    child.once('error', reject);
    child.once('exit', (code) => {
      if (code !== 0) return reject(new Error(`vegeta attack exited ${code}`));
      const json = execFileSync(vegeta, ['encode', '--to', 'json', results], {
        encoding: 'utf8',
        maxBuffer: 1 << 30,
      });
      const records: VegetaRecord[] = [];
      for (const line of json.split('\n')) {
        if (line.length === 0) continue;
        const r = JSON.parse(line) as { timestamp: string; latency: number; code: number; url: string };
        const micros = /\.\d{3}(\d{0,6})/.exec(r.timestamp)?.[1] ?? '';
        records.push({
          startMs: Date.parse(r.timestamp) + Number(micros.padEnd(6, '0')) / 1e6,
          latencyMs: r.latency / 1e6,
          code: r.code,
          url: r.url,
        });
      }
      resolve(records);
    });
  });
}
