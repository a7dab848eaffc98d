// One run of the plan: start an arm at a number of callers, probe it, attack it, scrape it, stop it.
import { writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import type { AttackSpec, Driver } from './drivers/driver.js';
import { faultResult, type FaultSpec } from './fault.js';
import type { LabRequest, ModelServer, Protocol } from './model-server.js';
import { addEnvoyStats, envoyStatsSince, fetchEnvoyStats, type EnvoyStats } from './envoy.js';
import { hasSidecar, isMeshArm, runKey, type ArmName, type ArmRun } from './plan.js';
import { probeCapacity, type CapacityProbe } from './probe.js';
import type { Supervisor } from './processes.js';
import { Progress } from './progress.js';
import { histogramPercentile } from './prom-text.js';
import type { ArmResult, MachineVerdict } from './report/arm-result.js';
import { FINE_BIN_MS, ResultRecorder } from './results.js';
import { mixCycle, type Mix } from './mix.js';
import {
  machineStats,
  readCpuTimes,
  RuntimeMonitor,
  type CpuTimes,
  type MachineStats,
  type RuntimeStats,
} from './runtime-stats.js';
import { ArmScraper, type ScrapePoint } from './scraper.js';
import {
  killModel,
  restartModel,
  startTopology,
  stopTopology,
  type LabPaths,
  type MeshBootstraps,
  type Topology,
} from './topology.js';

/** What every run of a lab shares (the lab builds it from its options). */
export interface ArmRunContext {
  /** `--mix`: the priority classes' shares of the attack; undefined = no class header. */
  mix?: Mix;
  replicas: number;
  workers: number;
  durationSeconds: number;
  probeSeconds: number;
  timeoutMs: number;
  maxInflight: number;
  driver: Driver;
  modelPath?: string;
  labelPath?: string;
  apiNice: number;
  apiCpu: number;
  apiCpuPeriodMs: number;
  inference: { concurrency: number; ms: number };
  /** The cb-sidecar config of a sidecar arm. */
  sidecarFor: (arm: ArmName) => Record<string, unknown>;
  /** The Envoys of a mesh arm. */
  meshFor?: (arm: ArmName) => MeshBootstraps;
  /** What the callers, the probe and the warm-up POST over REST: the seed's body to /predict, or its v2 twin. */
  request: LabRequest;
  /** What serves the model in each replica. */
  modelServer: ModelServer;
  /** What the callers speak: REST, or gRPC (k6) to the model's gRPC port through the Service and sidecars. */
  protocol: Protocol;
  /** Kill one replica's model during every attack (`--fault`). */
  fault?: FaultSpec;
  rawDir: string;
  paths: LabPaths;
  onTopology?: (topo: Topology) => Promise<void> | void;
  signal?: AbortSignal;
}

/**
 * Requests each API answers at full speed before its CPU limit applies (see TopologyOptions.warmupRequests).
 * Only under a CPU limit: without one the path warm-up and the probe's warm-up compile the hot paths, and
 * through 8 model slots of 200 ms the 2000 requests would take 50 s per arm.
 */
const API_WARMUP_REQUESTS = 2000;

/** Closed-loop traffic through the Service (and sidecars) before the probe and the attack (s). */
const PATH_WARMUP_SECONDS = 1.5;

/** Closed-loop probe workers per replica: enough to keep a replica saturated (the direct arm's queue). */
const PROBE_INFLIGHT_PER_REPLICA = 16;

/**
 * A run is void, and not counted, when the machine rather than the arm set its figures: its CPUs were this
 * busy during the attack (the lab's processes had to wait for a CPU, so every latency includes that wait)...
 */
export const VOID_BUSY_PCT = 90;
/** ...or the hypervisor stole this share of the CPU time the attack had (a stall nobody on the path caused). */
export const VOID_STEAL_PCT = 5;

function round(v: number, digits = 3): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

function maxOf(values: Iterable<number | null>): number | null {
  let m: number | null = null;
  for (const v of values) if (v !== null && (m === null || v > m)) m = v;
  return m;
}

/** Whether the machine figures void the run (see {@link VOID_BUSY_PCT}, {@link VOID_STEAL_PCT}). */
export function machineVerdict(machine: MachineStats | null, attackSeconds: number, cpuCount: number): MachineVerdict {
  if (machine === null) return { void: false, reason: null };
  const stealPct = attackSeconds > 0 ? (machine.steal_ms / (attackSeconds * 1000 * cpuCount)) * 100 : 0;
  const reasons: string[] = [];
  if (machine.busy_pct >= VOID_BUSY_PCT) reasons.push(`machine CPU ${machine.busy_pct}% busy (>= ${VOID_BUSY_PCT}%)`);
  if (stealPct >= VOID_STEAL_PCT) {
    reasons.push(`${round(stealPct, 1)}% of the CPU time stolen by the hypervisor (>= ${VOID_STEAL_PCT}%)`);
  }
  return { void: reasons.length > 0, reason: reasons.length > 0 ? reasons.join(', ') : null };
}

/**
 * 2xx answered per second while the attack was sending (whole 100 ms bins up to the last send): what the
 * arm delivered under the load, not the backlog it answered afterwards (an unprotected queue still drains
 * for seconds after the attack, which counted would credit it with more than its capacity).
 */
export function goodputDuringAttack(rec: ResultRecorder): number {
  const bins = Math.floor(rec.lastSendMs / FINE_BIN_MS);
  if (bins <= 0) return 0;
  const ok = rec
    .fineSeries()
    .slice(0, bins)
    .reduce((a, b) => a + b.ok, 0);
  return ok / ((bins * FINE_BIN_MS) / 1000);
}

/** The inputs of {@link armResult} besides the recorder. */
export interface ArmFigures {
  run: ArmRun;
  driver: string;
  replicas: number;
  offeredRate: number;
  scrapes: ScrapePoint[];
  /** Exact peak in flight at one replica, from the Service (HAProxy), when the arm has one. */
  servicePeak: number | null;
  capacity: number | null;
  configPath: string | null;
  sidecarRejectionP99Ms?: number | null;
  labRuntime?: RuntimeStats | null;
  machine?: MachineStats | null;
  envoy?: { callers: EnvoyStats; inbound: EnvoyStats } | null;
}

/** Builds an arm's result from its recorder, scrapes and the Service's counters. */
export function armResult(rec: ResultRecorder, f: ArmFigures): ArmResult {
  const { arm, callers } = f.run;
  const durationS = rec.requests === 0 ? 0 : Math.max(0.001, (rec.lastSendMs - rec.firstSendMs) / 1000);
  const waitS = rec.requests === 0 ? 0 : Math.max(0, (rec.lastDoneMs - rec.lastSendMs) / 1000);
  const ok = rec.successes;
  const throughput = durationS + waitS > 0 ? ok / (durationS + waitS) : 0;
  const apiPeak = maxOf(f.scrapes.flatMap((p) => p.apiInflight));
  const sidecarPeak = maxOf(f.scrapes.flatMap((p) => p.sidecars.map((s) => s.inflight)));
  let peak: number | null;
  let source: string;
  if (arm === 'direct') {
    peak = f.servicePeak ?? apiPeak;
    source =
      f.servicePeak !== null
        ? 'Service (HAProxy smax): exact peak of requests in flight to one replica'
        : 'iris_api_inflight_requests (scraped)';
  } else if (hasSidecar(arm)) {
    peak = maxOf([apiPeak, sidecarPeak]);
    source = 'max of scraped iris_api_inflight_requests and cb_inflight_requests per replica';
  } else {
    peak = apiPeak;
    source = 'iris_api_inflight_requests per replica (scraped every 500 ms)';
  }
  const machine = f.machine ?? null;
  return {
    arm,
    callers,
    key: runKey(f.run),
    driver: f.driver,
    replicas: f.replicas,
    requests: rec.requests,
    offered_rate: f.offeredRate,
    rate: round(durationS > 0 ? (rec.requests - 1) / durationS : 0, 2),
    duration_s: round(durationS),
    wait_s: round(waitS),
    throughput: round(throughput, 2),
    goodput_rps: round(goodputDuringAttack(rec), 2),
    success_ratio: rec.requests === 0 ? 0 : round(ok / rec.requests, 4),
    status_codes: Object.fromEntries([...rec.statusCodes].sort((a, b) => a[0] - b[0]).map(([k, v]) => [String(k), v])),
    errors: rec.errors,
    error_set: Object.fromEntries(rec.errorSet),
    rejection_reasons: Object.fromEntries(rec.reasons),
    bytes_in: rec.bytesIn,
    bytes_out: rec.bytesOut,
    latency_ms: rec.latency(),
    classes: rec.classes(),
    sidecar_rejection_p99_ms: f.sidecarRejectionP99Ms ?? null,
    driver_send_lag_ms: rec.sendLagSummary(),
    runtime: { driver: rec.driverRuntime, lab: f.labRuntime ?? new RuntimeMonitor().snapshot(), machine },
    void: machineVerdict(machine, durationS, cpus().length),
    max_upstream_concurrency: peak,
    max_upstream_concurrency_source: source,
    capacity_rps: f.capacity === null ? null : round(f.capacity, 1),
    goodput_ratio: f.capacity === null || f.capacity === 0 ? null : round(throughput / f.capacity, 3),
    sidecar_config: f.configPath,
    envoy: f.envoy ?? null,
    series: rec.series(),
    scrapes: f.scrapes,
  };
}

/** Every caller's Envoy and every replica's inbound Envoy, read now (zeros where one does not answer). */
async function meshStats(topo: Topology): Promise<{ callers: EnvoyStats; inbound: EnvoyStats }> {
  const callers = await Promise.all(topo.callerEnvoys.map((e) => fetchEnvoyStats(e.adminUrl)));
  const inbound = await Promise.all(
    topo.replicas.flatMap((r) => (r.inbound === undefined ? [] : [fetchEnvoyStats(r.inbound.adminUrl)])),
  );
  return { callers: addEnvoyStats(callers), inbound: addEnvoyStats(inbound) };
}

/**
 * Runs `driver` once per caller at the same time, each with its share of the rate and of the in-flight bound,
 * its own connections, and its own target (`topo.callerUrls`); every request lands in the one recorder.
 * When one caller fails the others are stopped.
 */
export async function attackWithCallers(driver: Driver, spec: AttackSpec, topo: Topology): Promise<string[]> {
  const n = topo.callers;
  const stop = new AbortController();
  const onAbort = (): void => stop.abort();
  spec.signal?.addEventListener('abort', onAbort, { once: true });
  if (spec.signal?.aborted === true) stop.abort();
  try {
    const files = await Promise.all(
      Array.from({ length: n }, async (_, i) => {
        try {
          return await driver.attack({
            ...spec,
            baseUrl: topo.callerUrls[i % topo.callerUrls.length] as string,
            rate: spec.rate / n,
            maxInflight: Math.max(1, Math.floor(spec.maxInflight / n)),
            signal: stop.signal,
          });
        } catch (err) {
          stop.abort();
          throw err;
        }
      }),
    );
    return files.flat();
  } finally {
    spec.signal?.removeEventListener('abort', onAbort);
  }
}

/**
 * Kills one replica's model `atSeconds` into the attack and starts it again `downSeconds` later, noting both
 * times on the attack's clock (they start with the driver's `onStart`).
 */
class FaultInjector {
  killedAtMs: number | undefined;
  returnedAtMs: number | undefined;
  private t0 = 0;
  private timer: NodeJS.Timeout | undefined;
  private done: Promise<void> = Promise.resolve();

  constructor(
    private readonly sup: Supervisor,
    private readonly topo: Topology,
    readonly spec: FaultSpec,
    private readonly err: NodeJS.WritableStream,
    private readonly label: string,
  ) {}

  /** Starts the clock: the attack has begun. */
  arm(): void {
    this.t0 = performance.now();
    this.timer = setTimeout(() => {
      this.done = this.inject();
    }, this.spec.atSeconds * 1000);
  }

  private async inject(): Promise<void> {
    const i = this.spec.replica;
    this.killedAtMs = performance.now() - this.t0;
    await killModel(this.topo, i);
    this.err.write(`\ncb-lab: ${this.label}: fault: replica ${i}'s model killed; back in ${this.spec.downSeconds}s\n`);
    await new Promise((r) => setTimeout(r, this.spec.downSeconds * 1000));
    try {
      await restartModel(this.sup, this.topo, i);
      this.returnedAtMs = performance.now() - this.t0;
      this.err.write(`cb-lab: ${this.label}: fault: replica ${i}'s model ready again\n`);
    } catch (e) {
      this.err.write(`cb-lab: ${this.label}: fault: replica ${i}'s model did not come back: ${String(e)}\n`);
    }
  }

  /** Waits for a restart in progress, and cancels a fault the attack ended before. */
  async settle(): Promise<void> {
    clearTimeout(this.timer);
    await this.done;
  }
}

/** What one run produced: the result and where its raw series went. */
export interface ArmRunOutput {
  result: ArmResult;
  rawFile: string;
  probe: CapacityProbe;
}

/**
 * Starts the arm at its number of callers, warms its path, probes the replicas' capacity, attacks at
 * `rate()` (called after the probe, so the first run can set it), scrapes throughout, stops everything.
 */
export async function runArm(
  sup: Supervisor,
  ctx: ArmRunContext,
  run: ArmRun,
  rate: (probe: CapacityProbe) => number,
  err: NodeJS.WritableStream & { isTTY?: boolean },
): Promise<ArmRunOutput> {
  const { arm, callers } = run;
  const mesh = isMeshArm(arm);
  const topo = await startTopology(sup, {
    arm,
    callers,
    replicas: ctx.replicas,
    workers: ctx.workers,
    workDir: ctx.rawDir,
    paths: ctx.paths,
    apiNice: ctx.apiNice,
    apiCpu: ctx.apiCpu,
    apiCpuPeriodMs: ctx.apiCpuPeriodMs,
    inference: ctx.inference,
    warmupRequests: ctx.apiCpu > 0 ? API_WARMUP_REQUESTS : 0,
    warmup: ctx.request,
    modelServer: ctx.modelServer,
    protocol: ctx.protocol,
    ...(hasSidecar(arm) ? { sidecar: ctx.sidecarFor(arm) } : {}),
    ...(mesh && ctx.meshFor !== undefined ? { mesh: ctx.meshFor(arm) } : {}),
    ...(ctx.modelPath === undefined ? {} : { modelPath: ctx.modelPath }),
    ...(ctx.labelPath === undefined ? {} : { labelPath: ctx.labelPath }),
  });
  const signal = ctx.signal === undefined ? {} : { signal: ctx.signal };
  try {
    await ctx.onTopology?.(topo);
    // The probe goes to the APIs directly, so warm the rest of the path first, as the traffic a running
    // Service, sidecars and Envoys have seen would: their connections and JIT, for answers and rejections
    // alike. Discarded. (Not with gRPC: the path then speaks gRPC only, and the probe REST.)
    if (ctx.protocol === 'rest') {
      await probeCapacity(topo.callerUrls, ctx.request.body, {
        concurrencyPerTarget: Math.max(
          1,
          Math.ceil((ctx.replicas * PROBE_INFLIGHT_PER_REPLICA) / topo.callerUrls.length),
        ),
        durationSeconds: PATH_WARMUP_SECONDS,
        warmupSeconds: 0,
        path: ctx.request.path,
        ...signal,
      });
    }
    // The model's capacity, over REST at each replica (with gRPC too: the same model and slots serve both).
    const probe = await probeCapacity(
      topo.replicas.map((r) => r.apiUrl),
      ctx.request.body,
      {
        concurrencyPerTarget: PROBE_INFLIGHT_PER_REPLICA,
        durationSeconds: ctx.probeSeconds,
        label: `replicas (each ${ctx.modelServer === 'mlserver' ? 'MLServer' : 'API'} directly, REST)`,
        path: ctx.request.path,
        ...signal,
      },
    );
    const label = callers === 1 ? arm : `${arm}@${callers}`;
    err.write(
      `cb-lab: ${label}: closed-loop probe of the replicas (${probe.concurrency} in flight, ${probe.durationSeconds}s): capacity ${probe.capacityRps.toFixed(0)} req/s (median of ${probe.windowsRps.join(', ')}), p50 ${probe.p50Ms.toFixed(2)} ms\n`,
    );
    const offered = rate(probe);
    const rec = new ResultRecorder();
    // Mesh arms have no Service whose counters give the exact peak: read the APIs at every scrape (their
    // gauges cost them ~2 ms of CPU each, which matters only under a CPU limit).
    const scraper = new ArmScraper(topo, 500, mesh && ctx.apiCpu === 0 ? 500 : 2500);
    const progress = new Progress(label, rec, err, ctx.durationSeconds);
    // Count only the attack: the sidecars' histograms and the Envoys' counters from here on.
    const sidecarBaseline = await scraper.sidecarMetrics();
    const envoyBaseline = mesh ? await meshStats(topo) : null;
    const monitor = new RuntimeMonitor();
    let cpuAtStart: CpuTimes | null = null;
    let started = false;
    const fault = ctx.fault === undefined ? undefined : new FaultInjector(sup, topo, ctx.fault, err, label);
    const onStart = (): void => {
      if (started) return;
      started = true;
      cpuAtStart = readCpuTimes();
      monitor.start();
      scraper.start();
      progress.start();
      fault?.arm();
    };
    let files: string[];
    let labRuntime: RuntimeStats;
    let machine: MachineStats | null;
    try {
      files = await attackWithCallers(
        ctx.driver,
        {
          baseUrl: topo.callerUrls[0] as string,
          rate: offered,
          durationSeconds: ctx.durationSeconds,
          timeoutMs: ctx.timeoutMs,
          maxInflight: ctx.maxInflight,
          repoRoot: ctx.paths.repoRoot,
          workDir: ctx.rawDir,
          request: ctx.request,
          protocol: ctx.protocol,
          recorder: rec,
          supervisor: sup,
          onStart,
          ...(ctx.mix === undefined ? {} : { mix: mixCycle(ctx.mix) }),
          ...signal,
        },
        topo,
      );
    } finally {
      await fault?.settle();
      labRuntime = monitor.snapshot();
      machine = machineStats(cpuAtStart, readCpuTimes());
      monitor.stop();
      progress.stop();
      scraper.stop();
    }
    const stats = await scraper.serviceStats();
    const envoy =
      envoyBaseline === null
        ? null
        : await meshStats(topo).then((now) => ({
            callers: envoyStatsSince(now.callers, envoyBaseline.callers),
            inbound: envoyStatsSince(now.inbound, envoyBaseline.inbound),
          }));
    const insideP99 = histogramPercentile(
      await scraper.sidecarMetrics(),
      'cb_request_duration_seconds',
      99,
      (l) => l['outcome'] !== 'forwarded' && l['outcome'] !== 'client-closed',
      sidecarBaseline,
    );
    const result = armResult(rec, {
      run,
      driver: ctx.driver.name,
      replicas: ctx.replicas,
      offeredRate: offered,
      scrapes: scraper.points,
      servicePeak: stats === null ? null : Math.max(...stats.backends.map((b) => b.maxInflight)),
      capacity: probe.capacityRps,
      configPath: topo.configPath ?? null,
      sidecarRejectionP99Ms: insideP99 === undefined ? null : round(insideP99 * 1000),
      labRuntime,
      machine,
      envoy,
    });
    if (fault?.killedAtMs !== undefined) {
      result.fault = faultResult(rec.fineSeries(), fault.spec.replica, fault.killedAtMs, fault.returnedAtMs ?? null);
    }
    const rawFile = join(ctx.rawDir, `${runKey(run)}.json`);
    writeFileSync(
      rawFile,
      JSON.stringify({
        arm,
        callers,
        series: result.series,
        scrapes: result.scrapes,
        service: stats,
        envoy,
        tool_files: files,
      }),
    );
    return { result, rawFile, probe };
  } finally {
    await stopTopology(sup, topo);
  }
}
