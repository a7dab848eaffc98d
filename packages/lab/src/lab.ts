import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { readSeedBody } from './drivers/builtin.js';
import type { Driver } from './drivers/driver.js';
import { Progress } from './progress.js';
import { probeCapacity, type CapacityProbe } from './probe.js';
import type { Supervisor } from './processes.js';
import type { ArmResult } from './report/arm-result.js';
import { acceptance, type Acceptance } from './report/acceptance.js';
import { renderHtml } from './report/html.js';
import { comparisonText, vegetaText } from './report/text.js';
import { ResultRecorder } from './results.js';
import { histogramPercentile } from './prom-text.js';
import {
  machineStats,
  readCpuTimes,
  RuntimeMonitor,
  type CpuTimes,
  type MachineStats,
  type RuntimeStats,
} from './runtime-stats.js';
import { ArmScraper } from './scraper.js';
import {
  startTopology,
  stopTopology,
  type ArmName,
  type LabPaths,
  type SidecarTuning,
  type Topology,
} from './topology.js';

/** Everything one lab run needs (the CLI builds it from flags). */
export interface LabOptions {
  arms: ArmName[];
  replicas: number;
  workers: number;
  /** Offered rate; undefined = 3x the capacity the first probe measures. */
  rate?: number;
  /** Multiple of the probed capacity to attack at when `rate` is not given. */
  overload: number;
  durationSeconds: number;
  probeSeconds: number;
  timeoutMs: number;
  maxInflight: number;
  driver: Driver;
  modelPath?: string;
  labelPath?: string;
  tuning: SidecarTuning;
  /** Niceness of the API processes (see TopologyOptions.apiNice). */
  apiNice: number;
  /** CPU limit per API replica, fraction of a core (see TopologyOptions.apiCpu). */
  apiCpu: number;
  /** The replicas' model slots and service time (see TopologyOptions.inference). */
  inference: { concurrency: number; ms: number };
  outDir: string;
  paths: LabPaths;
  /** Called with each arm's topology once it runs (e.g. to point Prometheus at it); awaited. */
  onTopology?: (topo: Topology) => Promise<void> | void;
  signal?: AbortSignal;
}

/** Where the lab writes text for people: stdout for reports, stderr for progress. */
export interface LabIO {
  out: (text: string) => void;
  err: NodeJS.WritableStream & { isTTY?: boolean };
}

/** The whole run, as written to summary.json. */
export interface LabSummary {
  schema: 'cb-lab/summary/v2';
  started_at: string;
  finished_at: string;
  host: { cpus: number; node: string; platform: string };
  config: {
    arms: ArmName[];
    replicas: number;
    workers: number;
    driver: string;
    duration_s: number;
    offered_rate: number;
    rate_source: 'flag' | 'probe';
    overload: number;
    timeout_ms: number;
    tuning: SidecarTuning;
    api_nice: number;
    api_cpu: number;
    inference_concurrency: number;
    inference_ms: number;
  };
  /** The probe that set the rate (first arm's stack), when the rate was not given. */
  probe: CapacityProbe | null;
  arms: Omit<ArmResult, 'series' | 'scrapes'>[];
  acceptance: Acceptance;
  files: { report_html: string; raw: Record<string, string> };
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

function round(v: number, digits = 3): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

function maxOf(values: Iterable<number | null>): number | null {
  let m: number | null = null;
  for (const v of values) if (v !== null && (m === null || v > m)) m = v;
  return m;
}

/** Builds an arm's result from its recorder, scrapes and the Service's counters. */
export function armResult(
  arm: ArmName,
  driver: string,
  replicas: number,
  offeredRate: number,
  rec: ResultRecorder,
  scrapes: ArmScraper['points'],
  servicePeak: number | null,
  capacity: number | null,
  configPath: string | null,
  sidecarRejectionP99Ms: number | null = null,
  labRuntime: RuntimeStats | null = null,
  machine: MachineStats | null = null,
): ArmResult {
  const durationS = rec.requests === 0 ? 0 : Math.max(0.001, (rec.lastSendMs - rec.firstSendMs) / 1000);
  const waitS = rec.requests === 0 ? 0 : Math.max(0, (rec.lastDoneMs - rec.lastSendMs) / 1000);
  const ok = rec.successes;
  const throughput = durationS + waitS > 0 ? ok / (durationS + waitS) : 0;
  const apiPeak = maxOf(scrapes.flatMap((p) => p.apiInflight));
  const sidecarPeak = maxOf(scrapes.flatMap((p) => p.sidecars.map((s) => s.inflight)));
  let peak: number | null;
  let source: string;
  if (arm === 'direct') {
    peak = servicePeak ?? apiPeak;
    source =
      servicePeak !== null
        ? 'Service (HAProxy smax): exact peak of requests in flight to one replica'
        : 'iris_api_inflight_requests (scraped)';
  } else {
    peak = maxOf([apiPeak, sidecarPeak]);
    source = 'max of scraped iris_api_inflight_requests and cb_inflight_requests per replica';
  }
  return {
    arm,
    driver,
    replicas,
    requests: rec.requests,
    offered_rate: offeredRate,
    rate: round(durationS > 0 ? (rec.requests - 1) / durationS : 0, 2),
    duration_s: round(durationS),
    wait_s: round(waitS),
    throughput: round(throughput, 2),
    success_ratio: rec.requests === 0 ? 0 : round(ok / rec.requests, 4),
    status_codes: Object.fromEntries([...rec.statusCodes].sort((a, b) => a[0] - b[0]).map(([k, v]) => [String(k), v])),
    errors: rec.errors,
    error_set: Object.fromEntries(rec.errorSet),
    rejection_reasons: Object.fromEntries(rec.reasons),
    bytes_in: rec.bytesIn,
    bytes_out: rec.bytesOut,
    latency_ms: rec.latency(),
    sidecar_rejection_p99_ms: sidecarRejectionP99Ms,
    driver_send_lag_ms: rec.sendLagSummary(),
    runtime: { driver: rec.driverRuntime, lab: labRuntime ?? new RuntimeMonitor().snapshot(), machine },
    max_upstream_concurrency: peak,
    max_upstream_concurrency_source: source,
    capacity_rps: capacity === null ? null : round(capacity, 1),
    goodput_ratio: capacity === null || capacity === 0 ? null : round(throughput / capacity, 3),
    sidecar_config: configPath,
    series: rec.series(),
    scrapes,
  };
}

/**
 * Runs the experiment: per arm start the stack, probe its capacity, attack it, scrape it, stop it;
 * then print the comparison and write summary.json, report.html and the raw series.
 */
export async function runLab(sup: Supervisor, opts: LabOptions, io: LabIO): Promise<LabSummary> {
  const startedAt = new Date();
  const rawDir = join(opts.outDir, 'raw');
  mkdirSync(rawDir, { recursive: true });
  const body = readSeedBody(opts.paths.repoRoot);
  let rate = opts.rate;
  let rateProbe: CapacityProbe | null = null;
  const results: ArmResult[] = [];
  const raw: Record<string, string> = {};
  for (const arm of opts.arms) {
    if (opts.signal?.aborted === true) break;
    io.err.write(
      `cb-lab: starting arm ${arm}: ${opts.replicas} replica(s)${arm === 'direct' ? '' : ' with sidecars'} behind the Service (HAProxy)\n`,
    );
    const topo = await startTopology(sup, {
      arm,
      replicas: opts.replicas,
      workers: opts.workers,
      tuning: opts.tuning,
      workDir: rawDir,
      paths: opts.paths,
      apiNice: opts.apiNice,
      apiCpu: opts.apiCpu,
      inference: opts.inference,
      warmupRequests: opts.apiCpu > 0 ? API_WARMUP_REQUESTS : 0,
      warmupBody: body,
      ...(opts.modelPath === undefined ? {} : { modelPath: opts.modelPath }),
      ...(opts.labelPath === undefined ? {} : { labelPath: opts.labelPath }),
    });
    try {
      await opts.onTopology?.(topo);
      // The probe goes to the APIs directly, so warm the rest of the path first, as the traffic a running
      // Service and sidecar have seen would: the Service's and sidecars' connections and JIT, for answers
      // and rejections alike. Discarded.
      await probeCapacity([topo.baseUrl], body, {
        concurrencyPerTarget: opts.replicas * PROBE_INFLIGHT_PER_REPLICA,
        durationSeconds: PATH_WARMUP_SECONDS,
        warmupSeconds: 0,
        ...(opts.signal === undefined ? {} : { signal: opts.signal }),
      });
      const probe = await probeCapacity(
        topo.replicas.map((r) => r.apiUrl),
        body,
        {
          concurrencyPerTarget: PROBE_INFLIGHT_PER_REPLICA,
          durationSeconds: opts.probeSeconds,
          label: 'replicas (each API directly)',
          ...(opts.signal === undefined ? {} : { signal: opts.signal }),
        },
      );
      io.err.write(
        `cb-lab: ${arm}: closed-loop probe of the replicas (${probe.concurrency} in flight, ${probe.durationSeconds}s): capacity ${probe.capacityRps.toFixed(0)} req/s (median of ${probe.windowsRps.join(', ')}), p50 ${probe.p50Ms.toFixed(2)} ms\n`,
      );
      if (rate === undefined) {
        rateProbe = probe;
        rate = Math.max(10, Math.round((probe.capacityRps * opts.overload) / 10) * 10);
        io.err.write(
          `cb-lab: offered rate for every arm: ${opts.overload} x ${probe.capacityRps.toFixed(0)} = ${rate} req/s\n`,
        );
      }
      const rec = new ResultRecorder();
      const scraper = new ArmScraper(topo);
      const progress = new Progress(arm, rec, io.err, opts.durationSeconds);
      // Count only the attack: the sidecars' histograms from here on.
      const sidecarBaseline = await scraper.sidecarMetrics();
      const monitor = new RuntimeMonitor();
      let cpuAtStart: CpuTimes | null = null;
      let started = false;
      const onStart = (): void => {
        if (started) return;
        started = true;
        cpuAtStart = readCpuTimes();
        monitor.start();
        scraper.start();
        progress.start();
      };
      let files: string[];
      let labRuntime: RuntimeStats;
      let machine: MachineStats | null;
      try {
        files = await opts.driver.attack({
          baseUrl: topo.baseUrl,
          rate,
          durationSeconds: opts.durationSeconds,
          timeoutMs: opts.timeoutMs,
          maxInflight: opts.maxInflight,
          repoRoot: opts.paths.repoRoot,
          workDir: rawDir,
          recorder: rec,
          supervisor: sup,
          onStart,
          ...(opts.signal === undefined ? {} : { signal: opts.signal }),
        });
      } finally {
        labRuntime = monitor.snapshot();
        machine = machineStats(cpuAtStart, readCpuTimes());
        monitor.stop();
        progress.stop();
        scraper.stop();
      }
      const stats = await scraper.serviceStats();
      const insideP99 = histogramPercentile(
        await scraper.sidecarMetrics(),
        'cb_request_duration_seconds',
        99,
        (l) => l['outcome'] !== 'forwarded' && l['outcome'] !== 'client-closed',
        sidecarBaseline,
      );
      const servicePeak = stats === null ? null : Math.max(...stats.backends.map((b) => b.maxInflight));
      const result = armResult(
        arm,
        opts.driver.name,
        opts.replicas,
        rate,
        rec,
        scraper.points,
        servicePeak,
        probe.capacityRps,
        topo.configPath ?? null,
        insideP99 === undefined ? null : round(insideP99 * 1000),
        labRuntime,
        machine,
      );
      results.push(result);
      const rawFile = join(rawDir, `${arm}.json`);
      writeFileSync(
        rawFile,
        JSON.stringify({ arm, series: result.series, scrapes: result.scrapes, service: stats, tool_files: files }),
      );
      raw[arm] = rawFile;
      io.out(
        `\n== ${arm}: ${opts.replicas} replica(s), ${rate} req/s offered for ${opts.durationSeconds}s, driver ${opts.driver.name} ==\n${vegetaText(result)}\n`,
      );
    } finally {
      await stopTopology(sup, topo);
    }
  }
  const verdict = acceptance(results);
  if (results.length > 0) io.out(`\n== comparison ==\n${comparisonText(results)}\n`);
  for (const line of verdict.lines) io.out(`${line}\n`);
  const reportHtml = join(opts.outDir, 'report.html');
  const summary: LabSummary = {
    schema: 'cb-lab/summary/v2',
    started_at: startedAt.toISOString(),
    finished_at: new Date().toISOString(),
    host: { cpus: cpus().length, node: process.version, platform: `${process.platform}-${process.arch}` },
    config: {
      arms: opts.arms,
      replicas: opts.replicas,
      workers: opts.workers,
      driver: opts.driver.name,
      duration_s: opts.durationSeconds,
      offered_rate: rate ?? 0,
      rate_source: opts.rate === undefined ? 'probe' : 'flag',
      overload: opts.overload,
      timeout_ms: opts.timeoutMs,
      tuning: opts.tuning,
      api_nice: opts.apiNice,
      api_cpu: opts.apiCpu,
      inference_concurrency: opts.inference.concurrency,
      inference_ms: opts.inference.ms,
    },
    probe: rateProbe,
    arms: results.map(({ series: _s, scrapes: _p, ...rest }) => rest),
    acceptance: verdict,
    files: { report_html: reportHtml, raw },
  };
  writeFileSync(join(opts.outDir, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
  writeFileSync(reportHtml, renderHtml(summary, results));
  io.out(`\nreports: ${join(opts.outDir, 'summary.json')}  ${reportHtml}\n`);
  return summary;
}
