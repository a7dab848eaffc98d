// A local iris-api behind a cb-sidecar (the built dist/main.js of both packages) on 127.0.0.1, for the
// load-tool, dashboard and manifest-program tests; a small static limit lets a few hundred requests per
// second overload it. Processes are started and reaped by the lab's Supervisor.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Supervisor, freePorts } from '../packages/lab/src/processes.js';
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

/** Running processes of the stack, where they listen, and the supervisor that owns them. */
export interface LocalStack {
  apiUrl: string;
  sidecarUrl: string;
  adminUrl: string;
  /** Start more processes (e.g. Prometheus) here so `stop` reaps them too. */
  supervisor: Supervisor;
  stop(): Promise<void>;
}

/** The built entry point of a package, or an error that says to build it. */
export function builtMain(pkg: 'api' | 'proxy'): string {
  const path = join(ROOT, 'packages', pkg, 'dist', 'main.js');
  if (!existsSync(path))
    throw new Error(`${path} is missing: build it first (make build or npx tsc -b packages/${pkg})`);
  return path;
}

/** Starts iris-api and a cb-sidecar in front of it with `config` (YAML text). */
export async function startStack(config = OVERLOAD_CONFIG): Promise<LocalStack> {
  const [apiMain, proxyMain] = [builtMain('api'), builtMain('proxy')];
  const dir = mkdtempSync(join(tmpdir(), 'cb-stack-'));
  const configPath = join(dir, 'cb-sidecar.yaml');
  writeFileSync(configPath, config);
  const [apiPort, listenPort, adminPort] = await freePorts(3);
  const apiUrl = `http://127.0.0.1:${apiPort}`;
  const adminUrl = `http://127.0.0.1:${adminPort}`;
  const supervisor = new Supervisor();
  const stop = async (): Promise<void> => {
    await supervisor.stopAll();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await supervisor.spawn({
      name: 'iris-api',
      command: process.execPath,
      args: [apiMain],
      cwd: ROOT,
      env: { PORT: String(apiPort), HOST: '127.0.0.1', LOG_LEVEL: 'warn' },
      readyUrl: `${apiUrl}/ready`,
      readyTimeoutMs: 20_000,
    });
    await supervisor.spawn({
      name: 'cb-sidecar',
      command: process.execPath,
      cwd: ROOT,
      env: { LOG_LEVEL: 'warn' },
      args: [
        proxyMain,
        '--listen',
        `127.0.0.1:${listenPort}`,
        '--upstream',
        apiUrl,
        '--admin-port',
        String(adminPort),
        '--config',
        configPath,
      ],
      readyUrl: `${adminUrl}/readyz`,
      readyTimeoutMs: 20_000,
    });
  } catch (err) {
    await stop();
    throw err;
  }
  return { apiUrl, sidecarUrl: `http://127.0.0.1:${listenPort}`, adminUrl, supervisor, stop };
}
