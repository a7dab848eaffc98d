// A local iris-api behind a cb-sidecar (the built dist/main.js of both packages) on 127.0.0.1, for the
// load-tool and dashboard tests; a small static limit lets a few hundred requests per second overload it.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ROOT } from './manifests-render.js';

/** The sidecar config the tests run: concurrency 2, 2 queued, 20 ms queue timeout; overload sheds 503s. */
export const OVERLOAD_CONFIG = `trafficPolicy:
  connectionPool:
    tcp: { maxConnections: 2 }
    http: { http1MaxPendingRequests: 2 }
sidecar:
  concurrency: { mode: static }
  queue: { timeout: 20ms }
`;

/** Running processes of the stack and where they listen. */
export interface LocalStack {
  apiUrl: string;
  sidecarUrl: string;
  adminUrl: string;
  stop(): Promise<void>;
}

/** The built entry point of a package, or an error that says to build it. */
export function builtMain(pkg: 'api' | 'proxy'): string {
  const path = join(ROOT, 'packages', pkg, 'dist', 'main.js');
  if (!existsSync(path)) throw new Error(`${path} is missing: build it first (make build or npx tsc -b packages/${pkg})`);
  return path;
}

/** A free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer().once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/** Polls `url` until it answers 2xx; throws with the process's stderr if it dies or time runs out. */
export async function untilReady(proc: ChildProcess, url: string, stderr: () => string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`${url}: process exited: ${stderr()}`);
    const ok = await fetch(url, { signal: AbortSignal.timeout(1000) }).then((r) => r.ok, () => false);
    if (ok) return;
    await sleep(100);
  }
  throw new Error(`${url} not ready after ${timeoutMs} ms: ${stderr()}`);
}

/** Starts a process whose stderr tail is kept for error messages. */
export function startProcess(command: string, args: string[], env: Record<string, string> = {}): { proc: ChildProcess; stderr: () => string } {
  const proc = spawn(command, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  let tail = '';
  proc.stderr?.setEncoding('utf8').on('data', (c: string) => { tail = (tail + c).slice(-2000); });
  return { proc, stderr: () => tail };
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. */
export async function stopProcess(proc: ChildProcess, graceMs = 3000): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const gone = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  proc.kill('SIGTERM');
  const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
  await gone;
  clearTimeout(timer);
}

/** Starts iris-api and a cb-sidecar in front of it with `config` (YAML text). */
export async function startStack(config = OVERLOAD_CONFIG): Promise<LocalStack> {
  const [apiMain, proxyMain] = [builtMain('api'), builtMain('proxy')];
  const dir = mkdtempSync(join(tmpdir(), 'cb-stack-'));
  const configPath = join(dir, 'cb-sidecar.yaml');
  writeFileSync(configPath, config);
  const [apiPort, listenPort, adminPort] = [await freePort(), await freePort(), await freePort()];
  const apiUrl = `http://127.0.0.1:${apiPort}`;
  const api = startProcess(process.execPath, [apiMain], { PORT: String(apiPort), HOST: '127.0.0.1', LOG_LEVEL: 'warn' });
  const started: ChildProcess[] = [api.proc];
  const stop = async (): Promise<void> => {
    await Promise.all(started.map((p) => stopProcess(p)));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await untilReady(api.proc, `${apiUrl}/ready`, api.stderr);
    const sidecar = startProcess(process.execPath, [
      proxyMain, '--listen', `127.0.0.1:${listenPort}`, '--upstream', apiUrl, '--admin-port', String(adminPort), '--config', configPath,
    ], { LOG_LEVEL: 'warn' });
    started.push(sidecar.proc);
    await untilReady(sidecar.proc, `http://127.0.0.1:${adminPort}/readyz`, sidecar.stderr);
  } catch (err) {
    await stop();
    throw err;
  }
  return { apiUrl, sidecarUrl: `http://127.0.0.1:${listenPort}`, adminUrl: `http://127.0.0.1:${adminPort}`, stop };
}
