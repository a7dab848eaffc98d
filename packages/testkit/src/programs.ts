// The repository's programs as processes, each on port 0 and read back from what it reports: cb-sidecar (its
// "cb-sidecar started" log line), iris-api ("iris-api ready") and the test upstream ({"port":N}).
import { accessSync, constants, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SIDECAR_NODE_OPTIONS } from '@infer-cb/proxy/heap-flags';
import { runToExit, startProcess, type TestProcess } from './processes.js';
import type { UpstreamStats } from './upstream.js';

const require = createRequire(import.meta.url);

/** The file a package's bin runs: `dist/<file>` of the package, found through its public entry. */
function binOf(pkg: string, file: string): string {
  return join(dirname(require.resolve(pkg)), file);
}

/** The built cb-sidecar (`@infer-cb/proxy`'s bin). */
export const SIDECAR_BIN = binOf('@infer-cb/proxy', 'main.js');
/** The built iris-api (`@infer-cb/api`'s bin). */
export const API_BIN = binOf('@infer-cb/api', 'main.js');
/** The test upstream as a process (this kit's upstream-main.js). */
export const UPSTREAM_BIN = join(dirname(fileURLToPath(import.meta.url)), 'upstream-main.js');

/** Writes a sidecar config file into a fresh temporary directory; returns its path. */
export function writeConfig(yaml: string, dir = mkdtempSync(join(tmpdir(), 'cb-test-'))): string {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, 'sidecar.yaml');
  writeFileSync(path, yaml);
  return path;
}

/** How to start a cb-sidecar process. */
export interface SidecarSpec {
  /** origin of its upstream */
  upstream: string;
  /** its config file's text (written to a temporary file), or */
  yaml?: string;
  /** a config file of the caller's */
  configPath?: string;
  /** ports to listen on: 0 (default) lets it choose; a restart on the same ports passes the old ones */
  port?: number;
  adminPort?: number;
  /** CB_LOG_LEVEL; `info` or finer (the port is read from its start line) */
  logLevel?: 'info' | 'debug' | 'trace';
  /** the V8 heap flags of the image (default true) */
  heapFlags?: boolean;
  /** more node flags (`--cpu-prof`) */
  nodeArgs?: readonly string[];
  /** more cb-sidecar flags */
  args?: readonly string[];
  env?: Readonly<Record<string, string>>;
  cpu?: number;
  /** a sidecar at another path (a different build, for the overhead bench) */
  bin?: string;
  name?: string;
}

/** A running cb-sidecar process. */
export interface SidecarProcess {
  proc: TestProcess;
  port: number;
  adminPort: number;
  /** `http://127.0.0.1:<port>` */
  url: string;
  /** `http://127.0.0.1:<adminPort>` */
  admin: string;
  configPath: string | undefined;
}

/** Starts cb-sidecar on 127.0.0.1 and resolves once it listens (both ports read from its start line). */
export async function startSidecar(spec: SidecarSpec): Promise<SidecarProcess> {
  const configPath = spec.configPath ?? (spec.yaml === undefined ? undefined : writeConfig(spec.yaml));
  const proc = await startProcess({
    name: spec.name ?? 'cb-sidecar',
    command: process.execPath,
    args: [
      ...(spec.heapFlags === false ? [] : SIDECAR_NODE_OPTIONS.split(' ')),
      ...(spec.nodeArgs ?? []),
      spec.bin ?? SIDECAR_BIN,
      '--listen',
      `127.0.0.1:${spec.port ?? 0}`,
      '--admin-port',
      String(spec.adminPort ?? 0),
      '--upstream',
      spec.upstream,
      ...(configPath === undefined ? [] : ['--config', configPath]),
      ...(spec.args ?? []),
    ],
    env: { CB_LOG_LEVEL: spec.logLevel ?? 'info', ...spec.env },
    cpu: spec.cpu,
    readyLine: (l) => l.msg === 'cb-sidecar started',
  });
  const port = proc.ready?.listen as number;
  const adminPort = proc.ready?.admin as number;
  return {
    proc,
    port,
    adminPort,
    url: `http://127.0.0.1:${port}`,
    admin: `http://127.0.0.1:${adminPort}`,
    configPath,
  };
}

/** Runs the cb-sidecar CLI to its end (`--check-config`, a config it refuses). */
export function runSidecarCli(
  args: readonly string[],
  env: Readonly<Record<string, string>> = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runToExit(process.execPath, [SIDECAR_BIN, ...args], env);
}

/** A running iris-api process. */
export interface ApiProcess {
  proc: TestProcess;
  port: number;
  /** `http://127.0.0.1:<port>` */
  origin: string;
  /** Port of its v2 gRPC service (with `grpcPort` in the spec). */
  grpcPort: number | undefined;
  /** `127.0.0.1:<grpcPort>`, a gRPC target (with `grpcPort` in the spec). */
  grpcTarget: string | undefined;
}

/** How to start iris-api. */
export interface ApiSpec {
  /** more environment (INFERENCE_CONCURRENCY, ...) */
  env?: Readonly<Record<string, string>>;
  /** 0 (default) lets it choose; a restart in place passes the old port */
  port?: number;
  /** worker processes (default 1); with more, all listen on the port the first one got */
  workers?: number;
  /** serve the v2 gRPC service too (GRPC_PORT): 0 lets it choose, read back from its ready line */
  grpcPort?: number;
  cpu?: number;
}

/**
 * Starts the built iris-api on 127.0.0.1 and resolves once every worker is ready; its port is read from a
 * worker's ready line (with several workers Node's cluster gives them all the port the first one got).
 */
export async function startApi(spec: ApiSpec = {}): Promise<ApiProcess> {
  const workers = spec.workers ?? 1;
  const proc = await startProcess({
    name: 'iris-api',
    command: process.execPath,
    args: [API_BIN],
    env: {
      PORT: String(spec.port ?? 0),
      HOST: '127.0.0.1',
      ...(spec.grpcPort === undefined ? {} : { GRPC_PORT: String(spec.grpcPort) }),
      ...spec.env,
      WORKERS: String(workers),
      LOG_LEVEL: 'info',
      LOG_FORMAT: 'json',
    },
    cpu: spec.cpu,
    readyLine: (l) => l.msg === (workers > 1 ? 'iris-api cluster ready' : 'iris-api ready'),
  });
  const ready = await proc.waitForLog(/^iris-api ready$/);
  const url = new URL(String(ready.url));
  const grpcPort = typeof ready.grpcPort === 'number' ? ready.grpcPort : undefined;
  return {
    proc,
    port: Number(url.port),
    origin: url.origin,
    grpcPort,
    grpcTarget: grpcPort === undefined ? undefined : `127.0.0.1:${grpcPort}`,
  };
}

/** The test upstream as its own process. */
export interface UpstreamProcess {
  proc: TestProcess;
  port: number;
  /** the gRPC port (started with `grpc: true`; 0 otherwise) */
  grpcPort: number;
  origin: string;
  /** what it has counted */
  stats(): Promise<UpstreamStats>;
  /** changes how it answers from now on (`serviceMs`, `mode`, `workers`, `backlog`) */
  control(changes: Record<string, string | number>): Promise<void>;
  /** starts its counters afresh */
  reset(): Promise<void>;
}

/** Starts the test upstream as a process (see upstream-main.ts for the options). */
export async function startUpstreamProcess(
  options: { workers?: number; serviceMs?: number; backlog?: number; cpu?: number; grpc?: boolean } = {},
): Promise<UpstreamProcess> {
  const args = [UPSTREAM_BIN, '--service-ms', String(options.serviceMs ?? 0)];
  if (options.grpc === true) args.push('--grpc');
  if (options.workers !== undefined) args.push('--workers', String(options.workers));
  if (options.backlog !== undefined) args.push('--backlog', String(options.backlog));
  const proc = await startProcess({
    name: 'test-upstream',
    command: process.execPath,
    args,
    cpu: options.cpu,
    readyLine: (l) => typeof l.port === 'number',
  });
  const port = proc.ready?.port as number;
  const grpcPort = proc.ready?.grpcPort as number;
  const origin = `http://127.0.0.1:${port}`;
  const call = async (path: string, method = 'GET'): Promise<unknown> => {
    const res = await fetch(`${origin}${path}`, { method, signal: AbortSignal.timeout(5000) });
    const body: unknown = await res.json();
    if (!res.ok) throw new Error(`test upstream ${path}: ${JSON.stringify(body)}`);
    return body;
  };
  return {
    proc,
    port,
    grpcPort,
    origin,
    stats: async () => (await call('/__stats')) as UpstreamStats,
    control: async (changes) => {
      const query = new URLSearchParams(Object.entries(changes).map(([k, v]): [string, string] => [k, String(v)]));
      await call(`/__control?${query}`, 'POST');
    },
    reset: async () => void (await call('/__reset')),
  };
}

/**
 * Finds an executable on PATH or where Debian puts daemons (/usr/sbin, /usr/local/sbin: haproxy).
 * @throws Error naming the make target that installs it
 */
export function findExecutable(name: string, installHint = 'make system-deps'): string {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/local/sbin', '/usr/sbin'];
  for (const dir of dirs) {
    if (dir === '') continue;
    try {
      accessSync(join(dir, name), constants.X_OK);
      return join(dir, name);
    } catch {
      /* next */
    }
  }
  throw new Error(`${name} not found on PATH, /usr/local/sbin or /usr/sbin: run \`${installHint}\``);
}
