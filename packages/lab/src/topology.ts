import { existsSync, writeFileSync } from 'node:fs';
import { setPriority } from 'node:os';
import { join } from 'node:path';
import { Pool } from 'undici';
import { stringify } from 'yaml';
import { LabError } from './errors.js';
import { startEnvoy } from './envoy.js';
import { hasSidecar, isMeshArm, type ArmName } from './plan.js';
import { freePorts, type Child, type SpawnSpec, type Supervisor } from './processes.js';
import { mlserverPaths, OIP_MODEL, writeMlserverRepository, type ModelServer, type Protocol } from './model-server.js';
import { startService } from './service.js';
import { findTool } from './tools.js';
import { SIDECAR_NODE_OPTIONS } from '@infer-cb/proxy/runtime';

export { ARM_NAMES, type ArmName } from './plan.js';

/** An address Envoy connects to or listens on. */
export interface Endpoint {
  address: string;
  port: number;
}

/**
 * The Envoys of a mesh arm, as bootstraps (listener and admin on port 0): one per caller, balancing over the
 * replicas' inbound Envoys, and one inbound Envoy per replica in front of its app (the sidecar or the API).
 */
export interface MeshBootstraps {
  caller(endpoints: readonly Endpoint[], index: number): object;
  inbound(app: Endpoint, index: number): object;
  /** Envoy worker threads per Envoy. */
  workers: number;
}

/** One replica, like a pod: the API and, in sidecar arms, its sidecar in front, in mesh arms its inbound Envoy. */
export interface Replica {
  index: number;
  /** The model server's REST origin (iris-api's port, MLServer's HTTP port). */
  apiUrl: string;
  /** The model server's gRPC origin (`http://127.0.0.1:<port>`), with `--protocol grpc` or MLServer. */
  grpcUrl?: string;
  /** True when the model server answers `GET /metrics` (iris-api; MLServer runs with its metrics port off). */
  metrics: boolean;
  sidecarUrl?: string;
  /** The sidecar's admin server (GET /metrics, /state). */
  adminUrl?: string;
  /** The replica's own (inbound) Envoy in mesh arms. */
  inbound?: { url: string; adminUrl: string };
  /** How its API was started, and the process now (the fault run kills and restarts it). */
  model?: { spec: SpawnSpec; child: Child; nice: number };
}

/** A running arm: replicas behind one Service (HAProxy, see service.ts), or behind each caller's Envoy. */
export interface Topology {
  arm: ArmName;
  /** How many callers share the load. */
  callers: number;
  /** Where caller i sends its requests: `callerUrls[i % callerUrls.length]` (the Service, or caller i's Envoy). */
  callerUrls: string[];
  /** The Service's URL (HAProxy), in arms that have one. */
  serviceUrl?: string;
  /** The callers' Envoys (mesh arms), in caller order. */
  callerEnvoys: { url: string; adminUrl: string }[];
  replicas: Replica[];
  /** The sidecar config file written for this arm (sidecar arms only). */
  configPath?: string;
  children: Child[];
  /** The cpu-quota process (stopped first, so no API stays stopped). */
  quota?: Child;
}

/** Where the lab finds the other packages' binaries and files. */
export interface LabPaths {
  repoRoot: string;
  apiMain: string;
  proxyMain: string;
  cpuQuotaMain: string;
}

/** How to start one arm. */
export interface TopologyOptions {
  arm: ArmName;
  /** Callers: in mesh arms one Envoy each. */
  callers: number;
  replicas: number;
  /** The cb-sidecar config document of sidecar arms (written to `<workDir>/<arm>.sidecar.yaml`). */
  sidecar?: Record<string, unknown>;
  /** The Envoys of mesh arms. */
  mesh?: MeshBootstraps;
  workers: number;
  modelPath?: string;
  labelPath?: string;
  workDir: string;
  paths: LabPaths;
  /**
   * Niceness of the API processes (0-19). The cluster gives the client, the network and each sidecar
   * their own CPU and caps the model container; on one machine a positive niceness makes the API the
   * resource that runs short first, as it is in the cluster, instead of starving the load generator.
   */
  apiNice?: number;
  /**
   * CPU limit of each API replica as a fraction of one core (a pod's `limits.cpu`; 0 = none), enforced
   * by a cpu-quota child (SIGSTOP/SIGCONT per 50 ms period, like CFS bandwidth control).
   */
  apiCpu?: number;
  /** The CPU limit's period (ms, default 50). */
  apiCpuPeriodMs?: number;
  /**
   * The replica's model as a server with a fixed number of execution slots (the API's
   * INFERENCE_CONCURRENCY and INFERENCE_MIN_MS, service-time.ts): at most `concurrency` inferences at
   * once, each holding its slot `ms`. Capacity per replica is then `concurrency / ms`, whatever else
   * runs on the machine. Absent or 0: the model runs as fast as its CPU (limit) allows.
   */
  inference?: { concurrency: number; ms: number };
  /** What serves the model (default iris-api); MLServer serves its REST and gRPC ports. */
  modelServer?: ModelServer;
  /** What the callers speak (default rest): with grpc, the Service and the sidecars forward to the gRPC port. */
  protocol?: Protocol;
  /**
   * POST /predict requests each API answers before its CPU limit applies (default 0): V8 compiles the
   * hot paths within ~1000 requests, which at full speed takes a fraction of a second but under a
   * 0.03-core limit takes seconds of the probe and of the attack.
   */
  warmupRequests?: number;
  /** The warm-up requests (the seed's POST /predict, or its v2 twin for MLServer). */
  warmup?: { path: string; body: string };
}

/** Sends `requests` POSTs of `request` to `url`, `concurrency` at a time, as fast as it answers, for at most `maxMs`. */
export async function warmUp(
  url: string,
  request: { path: string; body: string },
  requests: number,
  concurrency = 8,
  maxMs = 3000,
): Promise<void> {
  const pool = new Pool(url, { connections: concurrency, pipelining: 1, headersTimeout: 10_000, bodyTimeout: 10_000 });
  let left = requests;
  // Bounded in time too: through model slots (8 x 200 ms) 2000 requests would take 50 s.
  const deadline = performance.now() + maxMs;
  const worker = async (): Promise<void> => {
    while (left > 0 && performance.now() < deadline) {
      left--;
      const res = await pool.request({
        method: 'POST',
        path: request.path,
        headers: { 'content-type': 'application/json' },
        body: request.body,
      });
      await res.body.dump();
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(concurrency, requests) }, worker));
  } finally {
    await pool.destroy();
  }
}

function requireFile(file: string, what: string): void {
  if (!existsSync(file)) throw new LabError('LAB_FILE_MISSING', `${what} not found at ${file}: run \`make build\``);
}

/**
 * Starts one arm: N API replicas (each with its sidecar in sidecar arms and its inbound Envoy in mesh arms),
 * then what the callers send to: the Service (HAProxy), or in mesh arms one Envoy per caller; resolves once
 * every process answers its readiness URL.
 * @throws LabError when a binary is missing or a process fails to become ready (with its stderr)
 */
export async function startTopology(sup: Supervisor, opts: TopologyOptions): Promise<Topology> {
  const { paths } = opts;
  requireFile(paths.apiMain, 'iris-api (packages/api/dist/main.js)');
  const withSidecar = hasSidecar(opts.arm);
  const mesh = isMeshArm(opts.arm) ? opts.mesh : undefined;
  if (isMeshArm(opts.arm) && mesh === undefined) throw new RangeError(`arm ${opts.arm} needs its mesh bootstraps`);
  if (withSidecar && opts.sidecar === undefined) throw new RangeError(`arm ${opts.arm} needs a sidecar config`);
  const haproxy = mesh === undefined ? findTool('haproxy', paths.repoRoot, 'make system-deps') : undefined;
  const envoy = mesh === undefined ? undefined : findTool('envoy', paths.repoRoot, 'make envoy');
  if (withSidecar) requireFile(paths.proxyMain, 'cb-sidecar (packages/proxy/dist/main.js)');
  const n = opts.replicas;
  const mlserver = opts.modelServer === 'mlserver';
  const grpc = opts.protocol === 'grpc';
  const mlserverDir = mlserver ? mlserverRepository(opts) : undefined;
  // Per replica: the model's REST port, its gRPC port (MLServer always has one), the sidecar's two.
  const perReplica = 1 + (mlserver || grpc ? 1 : 0) + (withSidecar ? 2 : 0);
  const ports = await freePorts(n * perReplica + (mesh === undefined ? 1 : 0));
  const take = (): number => ports.shift() as number;
  let configPath: string | undefined;
  if (withSidecar) {
    configPath = join(opts.workDir, `${opts.arm}-c${opts.callers}.sidecar.yaml`);
    const header = `# cb-sidecar config written by cb-lab for arm ${opts.arm}: the mesh policy derived for one replica\n`;
    writeFileSync(configPath, header + stringify(opts.sidecar));
  }
  const children: Child[] = [];
  const apis: Child[] = [];
  const replicas: Replica[] = [];
  const starts: Promise<void>[] = [];
  for (let i = 0; i < n; i++) {
    const apiPort = take();
    const replica: Replica = { index: i, apiUrl: `http://127.0.0.1:${apiPort}`, metrics: !mlserver };
    const grpcPort = mlserver || grpc ? take() : undefined;
    if (grpcPort !== undefined) replica.grpcUrl = `http://127.0.0.1:${grpcPort}`;
    // What the Service and the sidecar forward to: the gRPC port when the callers speak gRPC.
    const servedUrl = grpc ? (replica.grpcUrl as string) : replica.apiUrl;
    const env: Record<string, string> = {
      PORT: String(apiPort),
      HOST: '127.0.0.1',
      WORKERS: String(opts.workers),
      LOG_LEVEL: 'warn',
      LOG_FORMAT: 'json',
    };
    if (opts.modelPath !== undefined) env['MODEL_FILEPATH'] = opts.modelPath;
    if (opts.labelPath !== undefined) env['LABEL_FILEPATH'] = opts.labelPath;
    if (opts.inference !== undefined) {
      env['INFERENCE_CONCURRENCY'] = String(opts.inference.concurrency);
      env['INFERENCE_MIN_MS'] = String(opts.inference.ms);
    }
    if (grpcPort !== undefined) env['GRPC_PORT'] = String(grpcPort);
    let sidecarPort = 0;
    let adminPort = 0;
    if (withSidecar) {
      sidecarPort = take();
      adminPort = take();
      replica.sidecarUrl = `http://127.0.0.1:${sidecarPort}`;
      replica.adminUrl = `http://127.0.0.1:${adminPort}`;
    }
    replicas.push(replica);
    starts.push(
      (async () => {
        const spec: SpawnSpec =
          mlserverDir === undefined
            ? {
                name: `${opts.arm}/api-${i}`,
                command: process.execPath,
                args: [paths.apiMain],
                env,
                readyUrl: `${replica.apiUrl}/ready`,
                readyTimeoutMs: 30_000,
              }
            : mlserverSpec(`${opts.arm}/mlserver-${i}`, paths.repoRoot, mlserverDir, apiPort, grpcPort as number);
        const api = await sup.spawn(spec);
        replica.model = { spec, child: api, nice: opts.apiNice ?? 0 };
        children.push(api);
        apis.push(api);
        if ((opts.apiNice ?? 0) > 0) setPriority(api.pid, opts.apiNice ?? 0);
        if (withSidecar) {
          children.push(
            await sup.spawn({
              name: `${opts.arm}/sidecar-${i}`,
              command: process.execPath,
              args: [
                paths.proxyMain,
                '--listen',
                `127.0.0.1:${sidecarPort}`,
                '--upstream',
                servedUrl,
                '--admin-port',
                String(adminPort),
                '--config',
                configPath as string,
              ],
              env: { LOG_LEVEL: 'warn', NODE_OPTIONS: SIDECAR_NODE_OPTIONS },
              readyUrl: `${replica.adminUrl}/readyz`,
              readyTimeoutMs: 15_000,
            }),
          );
        }
        if (mesh !== undefined && envoy !== undefined) {
          const app = new URL(replica.sidecarUrl ?? replica.apiUrl);
          const inbound = await startEnvoy(sup, {
            envoy,
            name: `${opts.arm}/inbound-envoy-${i}`,
            bootstrap: mesh.inbound({ address: app.hostname, port: Number(app.port) }, i),
            configFile: join(opts.workDir, `${opts.arm}-c${opts.callers}-inbound-${i}.envoy.yaml`),
            workers: mesh.workers,
          });
          children.push(inbound.child);
          replica.inbound = { url: inbound.url, adminUrl: inbound.adminUrl };
        }
      })(),
    );
  }
  await Promise.all(starts);
  if ((opts.warmupRequests ?? 0) > 0 && opts.warmup !== undefined) {
    const request = opts.warmup;
    await Promise.all(replicas.map((r) => warmUp(r.apiUrl, request, opts.warmupRequests ?? 0)));
  }
  let quota: Child | undefined;
  if ((opts.apiCpu ?? 0) > 0) {
    requireFile(paths.cpuQuotaMain, 'the lab cpu quota (packages/lab/dist/cpu-quota-main.js)');
    quota = await sup.spawn({
      name: `${opts.arm}/cpu-quota`,
      command: process.execPath,
      args: [
        paths.cpuQuotaMain,
        '--cpu',
        String(opts.apiCpu),
        '--period-ms',
        String(opts.apiCpuPeriodMs ?? 50),
        ...apis.flatMap((a) => ['--pid', String(a.pid)]),
      ],
    });
  }
  const topo: Topology = { arm: opts.arm, callers: opts.callers, callerUrls: [], callerEnvoys: [], replicas, children };
  if (mesh !== undefined && envoy !== undefined) {
    // Mesh traffic: each caller's Envoy balances over the replicas' inbound Envoys itself (no kube-proxy).
    const endpoints = replicas.map((r) => {
      const u = new URL((r.inbound as { url: string }).url);
      return { address: u.hostname, port: Number(u.port) };
    });
    const callers = await Promise.all(
      Array.from({ length: opts.callers }, (_, i) =>
        startEnvoy(sup, {
          envoy,
          name: `${opts.arm}/caller-envoy-${i}`,
          bootstrap: mesh.caller(endpoints, i),
          configFile: join(opts.workDir, `${opts.arm}-c${opts.callers}-caller-${i}.envoy.yaml`),
          workers: mesh.workers,
        }),
      ),
    );
    for (const c of callers) {
      children.push(c.child);
      topo.callerEnvoys.push({ url: c.url, adminUrl: c.adminUrl });
      topo.callerUrls.push(c.url);
    }
  } else if (haproxy !== undefined) {
    const service = await startService(sup, {
      haproxy,
      name: `${opts.arm}/service`,
      configFile: join(opts.workDir, `${opts.arm}-c${opts.callers}-haproxy.cfg`),
      port: take(),
      backends: replicas.map((r) => r.sidecarUrl ?? (grpc ? (r.grpcUrl as string) : r.apiUrl)),
      h2: grpc,
    });
    children.push(service.child);
    topo.serviceUrl = service.url;
    topo.callerUrls.push(service.url);
  }
  if (configPath !== undefined) topo.configPath = configPath;
  if (quota !== undefined) topo.quota = quota;
  return topo;
}

/** Writes the arm's MLServer model repository (its settings and the iris model, shaped like --inference-*). */
function mlserverRepository(opts: TopologyOptions): string {
  const { python, model } = mlserverPaths(opts.paths.repoRoot);
  for (const file of [python, model]) {
    if (!existsSync(file)) {
      throw new LabError(
        'LAB_FILE_MISSING',
        `${file} not found: run \`make mlserver\` (MLServer 1.7.1, the iris model)`,
      );
    }
  }
  const inference = opts.inference ?? { concurrency: 0, ms: 0 };
  return writeMlserverRepository(join(opts.workDir, `${opts.arm}-c${opts.callers}.mlserver`), opts.paths.repoRoot, {
    concurrency: inference.concurrency,
    minMs: inference.ms,
  });
}

/**
 * One MLServer replica (mlserver/serve.py: MLServer's CLI with its gRPC port bound exclusively) on its REST and
 * gRPC ports, ready once the model answers ready; one process (parallel_workers 0), so --api-cpu's quota,
 * --api-nice and --fault's kill reach all of it.
 */
function mlserverSpec(name: string, repoRoot: string, dir: string, httpPort: number, grpcPort: number): SpawnSpec {
  const paths = mlserverPaths(repoRoot);
  return {
    name,
    command: paths.python,
    args: [paths.serve, 'start', dir],
    env: {
      PYTHONPATH: paths.dir,
      MLSERVER_HOST: '127.0.0.1',
      MLSERVER_HTTP_PORT: String(httpPort),
      MLSERVER_GRPC_PORT: String(grpcPort),
    },
    readyUrl: `http://127.0.0.1:${httpPort}/v2/models/${OIP_MODEL}/ready`,
    readyTimeoutMs: 60_000,
  };
}

/** Kills replica `index`'s model (its API process group) outright, as a crashed container; resolves once it is gone. */
export async function killModel(topo: Topology, index: number): Promise<void> {
  const model = topo.replicas[index]?.model;
  if (model === undefined) throw new RangeError(`replica ${index} has no model to kill`);
  model.child.signal('SIGKILL');
  await model.child.exited;
}

/**
 * Starts replica `index`'s model again, as it was started (same port, same settings), and resolves once it
 * answers its readiness check: the container back after a restart.
 */
export async function restartModel(sup: Supervisor, topo: Topology, index: number): Promise<void> {
  const model = topo.replicas[index]?.model;
  if (model === undefined) throw new RangeError(`replica ${index} has no model to restart`);
  const child = await sup.spawn(model.spec);
  if (model.nice > 0) setPriority(child.pid, model.nice);
  topo.children[topo.children.indexOf(model.child)] = child;
  model.child = child;
}

/** Stops every process of an arm (SIGTERM, then SIGKILL after the grace). */
export async function stopTopology(sup: Supervisor, topo: Topology): Promise<void> {
  if (topo.quota !== undefined) await sup.stop(topo.quota, 1000);
  await Promise.all(topo.children.map((c) => sup.stop(c, 3000)));
}
