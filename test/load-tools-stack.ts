// A local iris-api behind a cb-sidecar (the built dist/main.js of both packages) on 127.0.0.1, for the
// load-tool, dashboard and manifest-program tests; a small static limit lets a few hundred requests per
// second overload it. Processes are started and stopped by the test kit.
import { existsSync } from 'node:fs';
import {
  API_BIN,
  SIDECAR_BIN,
  startApi,
  startProcess,
  startSidecar,
  type ProcessSpec,
  type TestProcess,
} from '@infer-cb/testkit';

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
  /** Starts another process (e.g. Prometheus) that `stop` stops too. */
  start(spec: ProcessSpec): Promise<TestProcess>;
  /** Names of the stack's processes still running. */
  running(): string[];
  stop(): Promise<void>;
}

/** The built entry point of a package, or an error that says to build it. */
export function builtMain(pkg: 'api' | 'proxy'): string {
  const path = pkg === 'api' ? API_BIN : SIDECAR_BIN;
  if (!existsSync(path))
    throw new Error(`${path} is missing: build it first (make build or npx tsc -b packages/${pkg})`);
  return path;
}

/** Starts iris-api and a cb-sidecar in front of it with `config` (YAML text), each on a port it reports. */
export async function startStack(config = OVERLOAD_CONFIG): Promise<LocalStack> {
  builtMain('api');
  builtMain('proxy');
  const processes: TestProcess[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all(processes.map((p) => p.stop()));
  };
  try {
    const api = await startApi();
    processes.push(api.proc);
    const sidecar = await startSidecar({ upstream: api.origin, yaml: config, heapFlags: false });
    processes.push(sidecar.proc);
    return {
      apiUrl: api.origin,
      sidecarUrl: sidecar.url,
      adminUrl: sidecar.admin,
      start: async (spec) => {
        const proc = await startProcess(spec);
        processes.push(proc);
        return proc;
      },
      running: () => processes.filter((p) => p.running).map((p) => p.name),
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
