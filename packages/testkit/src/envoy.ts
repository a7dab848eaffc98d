// Envoy for tests: the real binary (`make tools` links it into .tools/bin) on a bootstrap with port-0 listener
// and admin, started and read back, its stats and access log at hand.
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { stringify } from 'yaml';
import { envoyArgs, type EnvoyBootstrap } from '@infer-cb/policy';
import { REPO_ROOT } from './bench.js';

/** The Envoy binary: on PATH or in .tools/bin (`make tools` links it there). */
export function envoyBinary(): string {
  for (const dir of [...(process.env['PATH'] ?? '').split(delimiter), join(REPO_ROOT, '.tools', 'bin')]) {
    if (dir === '') continue;
    const file = join(dir, 'envoy');
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      /* next */
    }
  }
  throw new Error('envoy not found on PATH or in .tools/bin: run `make tools`');
}

/** Runs `envoy --mode validate` on a bootstrap; resolves with its exit code and output. */
export function validateBootstrap(bootstrap: EnvoyBootstrap): Promise<{ code: number | null; output: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'cb-policy-validate-'));
  const file = join(dir, 'bootstrap.yaml');
  writeFileSync(file, stringify(bootstrap));
  return new Promise((resolve) => {
    const p = spawn(envoyBinary(), ['--mode', 'validate', ...envoyArgs(file, { workers: 1, logLevel: 'error' })], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    p.stdout.on('data', (d) => (output += d));
    p.stderr.on('data', (d) => (output += d));
    p.on('exit', (code) => resolve({ code, output }));
  });
}

/** A running Envoy on 127.0.0.1 with the ports it bound. */
export interface TestEnvoy {
  readonly adminUrl: string;
  /** The listener's URL (the bootstrap's one listener). */
  readonly url: string;
  /** Counter and gauge values from /stats, by full name. */
  stats(filter?: string): Promise<Map<string, number>>;
  /** The access-log lines written so far (when the bootstrap logs to `accessLogPath`). */
  accessLog(): Record<string, unknown>[];
  stop(): Promise<void>;
}

/**
 * Starts Envoy on `bootstrap` (whose listener and admin should use port 0) with one worker, and resolves
 * once its admin says LIVE and the listener's port is known.
 */
export async function startEnvoy(
  make: (accessLogPath: string) => EnvoyBootstrap,
  { timeoutMs = 15_000 } = {},
): Promise<TestEnvoy> {
  const dir = mkdtempSync(join(tmpdir(), 'cb-policy-envoy-'));
  const file = join(dir, 'bootstrap.yaml');
  const addressFile = join(dir, 'admin-address');
  const accessLogPath = join(dir, 'access.log');
  writeFileSync(accessLogPath, '');
  writeFileSync(file, stringify(make(accessLogPath)));
  const child: ChildProcess = spawn(
    envoyBinary(),
    envoyArgs(file, { workers: 1, adminAddressPath: addressFile, logLevel: 'error', accessLogFlushMs: 50 }),
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr?.on('data', (d) => (stderr += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(timer);
  };
  const deadline = Date.now() + timeoutMs;
  try {
    let adminUrl = '';
    for (;;) {
      if (child.exitCode !== null) throw new Error(`envoy exited ${child.exitCode}: ${stderr}`);
      if (Date.now() > deadline) throw new Error(`envoy not ready within ${timeoutMs} ms: ${stderr}`);
      if (adminUrl === '') {
        try {
          const text = readFileSync(addressFile, 'utf8').trim();
          if (text !== '') adminUrl = `http://${text}`;
        } catch {
          /* not yet written */
        }
      }
      if (adminUrl !== '') {
        const ready = await fetch(`${adminUrl}/ready`).then(
          (r) => r.ok,
          () => false,
        );
        if (ready) break;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    const listeners = (await (await fetch(`${adminUrl}/listeners?format=json`)).json()) as {
      listener_statuses: { local_address: { socket_address: { address: string; port_value: number } } }[];
    };
    const sa = listeners.listener_statuses[0]?.local_address.socket_address;
    if (sa === undefined) throw new Error('envoy reports no listener');
    return {
      adminUrl,
      url: `http://${sa.address}:${sa.port_value}`,
      async stats(filter?: string) {
        const q = filter === undefined ? '' : `?filter=${encodeURIComponent(filter)}`;
        const text = await (await fetch(`${adminUrl}/stats${q}`)).text();
        const out = new Map<string, number>();
        for (const line of text.split('\n')) {
          const m = /^(\S+): (\d+)$/.exec(line);
          if (m !== null) out.set(m[1] as string, Number(m[2]));
        }
        return out;
      },
      accessLog() {
        return readFileSync(accessLogPath, 'utf8')
          .split('\n')
          .filter((l) => l !== '')
          .map((l) => JSON.parse(l) as Record<string, unknown>);
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** The value of the one stat whose name ends with `suffix` (0 when absent). */
export function stat(stats: Map<string, number>, suffix: string): number {
  for (const [name, value] of stats) if (name.endsWith(suffix)) return value;
  return 0;
}
