import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, type Child, type Supervisor } from '../../../packages/lab/src/processes.js';
import { SIDECAR_NODE_OPTIONS } from '@infer-cb/proxy/heap-flags';

/** The repository root. */
export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const API_MAIN = join(ROOT, 'packages/api/dist/main.js');
const SIDECAR_MAIN = join(ROOT, 'packages/proxy/dist/main.js');

/** A started iris-api process. */
export interface ApiProcess {
  child: Child;
  port: number;
  origin: string;
}

/** Starts the built iris-api on 127.0.0.1 (a free port unless given) and waits for /ready. With `keepLog` its stdout (pino) is kept. */
export async function startApi(
  sup: Supervisor,
  port?: number,
  env: Record<string, string> = {},
  keepLog = false,
): Promise<ApiProcess> {
  const p = port ?? (await freePort());
  const child = await sup.spawn({
    name: `api-${p}`,
    command: process.execPath,
    args: [API_MAIN],
    env: { PORT: String(p), HOST: '127.0.0.1', LOG_LEVEL: 'warn', WORKERS: '1', ...env },
    readyUrl: `http://127.0.0.1:${p}/ready`,
    readyTimeoutMs: 20_000,
    ...(keepLog ? { stdout: 'buffer' as const } : {}),
  });
  return { child, port: p, origin: `http://127.0.0.1:${p}` };
}

/** A started cb-sidecar process. */
export interface SidecarProcess {
  child: Child;
  port: number;
  adminPort: number;
  /** http://127.0.0.1:<port> */
  url: string;
  /** http://127.0.0.1:<adminPort> */
  admin: string;
  configPath: string;
}

/** Writes a sidecar config file into a fresh temporary directory; returns its path. */
export function writeConfig(yaml: string, dir = mkdtempSync(join(tmpdir(), 'cb-e2e-'))): string {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, 'sidecar.yaml');
  writeFileSync(path, yaml);
  return path;
}

/** Starts the built cb-sidecar in front of `upstream` with the given YAML config; waits for /healthz. With `keepLog` its stdout (pino) is kept. */
export async function startSidecar(
  sup: Supervisor,
  upstream: string,
  yaml: string,
  port?: number,
  keepLog = false,
  adminPort?: number,
): Promise<SidecarProcess> {
  const [p, admin] = [port ?? (await freePort()), adminPort ?? (await freePort())];
  const configPath = writeConfig(yaml);
  const child = await sup.spawn({
    name: `sidecar-${p}`,
    command: process.execPath,
    args: [
      SIDECAR_MAIN,
      '--listen',
      `127.0.0.1:${p}`,
      '--upstream',
      upstream,
      '--admin-port',
      String(admin),
      '--config',
      configPath,
    ],
    env: { CB_LOG_LEVEL: 'warn', NODE_OPTIONS: SIDECAR_NODE_OPTIONS },
    readyUrl: `http://127.0.0.1:${admin}/healthz`,
    readyTimeoutMs: 15_000,
    ...(keepLog ? { stdout: 'buffer' as const } : {}),
  });
  return {
    child,
    port: p,
    adminPort: admin,
    url: `http://127.0.0.1:${p}`,
    admin: `http://127.0.0.1:${admin}`,
    configPath,
  };
}

/** GET a JSON document (admin /state, /readyz); resolves status and body. */
export async function getJson(url: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(3000) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** The breaker state the sidecar reports on /state. */
export async function breakerState(admin: string): Promise<string> {
  const { body } = await getJson(`${admin}/state`);
  return (body.breaker as { state: string }).state;
}

/** Polls `check` every 20 ms until it is true or `timeoutMs` passes; resolves whether it became true. */
export async function eventually(check: () => Promise<boolean> | boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      if (await check()) return true;
    } catch {
      /* not yet */
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
}

/** One row of the Reliability table (written by the e2e tests, assembled by bench/soak/report.mjs). */
export interface ReliabilityRow {
  fault: string;
  sent: number;
  answered: number;
  byStatus: Record<string, number>;
  /** ms from the end of the fault to steady 200s; null where the case has no recovery */
  recoveryMs: number | null;
  note: string;
}

/** Saves a row to .ci-results/reliability/<slug>.json. */
export function recordReliability(slug: string, row: ReliabilityRow): void {
  const dir = join(ROOT, '.ci-results', 'reliability');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `${slug}.json`), JSON.stringify({ ...row, at: new Date().toISOString() }, null, 2));
}
