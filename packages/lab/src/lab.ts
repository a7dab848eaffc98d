import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { runArm, type ArmRunContext } from './arm-run.js';
import { labRequest, type ModelServer, type Protocol } from './model-server.js';
import { mixText } from './mix.js';
import type { Driver } from './drivers/driver.js';
import type { ArmRun } from './plan.js';
import type { CapacityProbe } from './probe.js';
import type { Supervisor } from './processes.js';
import type { ArmResult } from './report/arm-result.js';
import { acceptance, type Acceptance } from './report/acceptance.js';
import { renderHtml } from './report/html.js';
import { hasCallerSweep } from './report/charts.js';
import { callersText, comparisonText, vegetaText } from './report/text.js';
import type { Profile, SidecarDerivation } from '@infer-cb/policy';
import type { LabPaths, Topology } from './topology.js';

/** Everything one lab run needs (the CLI builds it from flags). */
export interface LabOptions extends Omit<ArmRunContext, 'request' | 'rawDir'> {
  /** The runs in order: each an arm at a number of callers. */
  runs: ArmRun[];
  /** Offered rate; undefined = `overload` x the capacity the first probe measures. */
  rate?: number;
  /** Multiple of the probed capacity to attack at when `rate` is not given. */
  overload: number;
  /** The mesh policy both arms are derived from, and the Istio generation the Envoys are configured as. */
  policy: { file: string; profile: Profile };
  /** The sidecar numbers per sidecar arm, with their arithmetic (the record of what ran). */
  derivations: Record<string, SidecarDerivation>;
  /** Book figures to put beside the arms (the seed preset). */
  preset?: 'seed';
  outDir: string;
  paths: LabPaths;
  onTopology?: (topo: Topology) => Promise<void> | void;
  driver: Driver;
}

/** Where the lab writes text for people: stdout for reports, stderr for progress. */
export interface LabIO {
  out: (text: string) => void;
  err: NodeJS.WritableStream & { isTTY?: boolean };
}

/** The whole run, as written to summary.json (docs/lab.md describes every field). */
export interface LabSummary {
  schema: 'cb-lab/summary/v3';
  started_at: string;
  finished_at: string;
  host: { cpus: number; node: string; platform: string };
  config: {
    /** The arms in the order they ran (v2); `runs` pairs each with its callers. */
    arms: string[];
    runs: ArmRun[];
    replicas: number;
    workers: number;
    driver: string;
    duration_s: number;
    offered_rate: number;
    rate_source: 'flag' | 'probe';
    overload: number;
    timeout_ms: number;
    /** The sidecar numbers of each sidecar arm and how they were derived (docs/istio-arm.md). */
    sidecar_limits: Record<string, SidecarDerivation>;
    policy: string;
    istio_profile: Profile;
    preset: 'seed' | null;
    api_nice: number;
    api_cpu: number;
    api_cpu_period_ms: number;
    inference_concurrency: number;
    inference_ms: number;
    /** What served the model in each replica (v3, optional before). */
    model_server: ModelServer;
    /** What the callers spoke: rest (HTTP/1.1) or grpc (k6's k6/net/grpc, h2c). */
    protocol: Protocol;
    /** `--mix` as given (`critical:20,default:50,sheddable:30`); null without it. */
    mix: string | null;
  };
  /** The probe that set the rate (first run's stack), when the rate was not given. */
  probe: CapacityProbe | null;
  arms: Omit<ArmResult, 'series' | 'scrapes'>[];
  acceptance: Acceptance;
  files: { report_html: string; raw: Record<string, string> };
}

/**
 * Runs the experiment: per run (an arm at a number of callers) start the stack, probe its capacity, attack
 * it, scrape it, stop it; then print the comparison and write summary.json, report.html and the raw series.
 */
export async function runLab(sup: Supervisor, opts: LabOptions, io: LabIO): Promise<LabSummary> {
  const startedAt = new Date();
  const rawDir = join(opts.outDir, 'raw');
  mkdirSync(rawDir, { recursive: true });
  const ctx: ArmRunContext = { ...opts, request: labRequest(opts.modelServer, opts.paths.repoRoot), rawDir };
  let rate = opts.rate;
  let rateProbe: CapacityProbe | null = null;
  const results: ArmResult[] = [];
  const raw: Record<string, string> = {};
  for (const run of opts.runs) {
    if (opts.signal?.aborted === true) break;
    const where = run.arm === 'istio' || run.arm === 'istio-sidecar' ? 'each caller with its own Envoy' : 'the Service';
    io.err.write(
      `cb-lab: starting arm ${run.arm} with ${run.callers} caller(s): ${opts.replicas} ${opts.modelServer === 'mlserver' ? 'MLServer ' : ''}replica(s) behind ${where}${opts.protocol === 'grpc' ? ', gRPC' : ''}\n`,
    );
    const out = await runArm(
      sup,
      ctx,
      run,
      (probe) => {
        if (rate === undefined) {
          rateProbe = probe;
          rate = Math.max(10, Math.round((probe.capacityRps * opts.overload) / 10) * 10);
          io.err.write(
            `cb-lab: offered rate for every arm: ${opts.overload} x ${probe.capacityRps.toFixed(0)} = ${rate} req/s\n`,
          );
        }
        return rate;
      },
      io.err,
    );
    results.push(out.result);
    raw[out.result.key] = out.rawFile;
    const r = out.result;
    io.out(
      `\n== ${r.arm}, ${r.callers} caller(s): ${opts.replicas} ${opts.modelServer === 'mlserver' ? 'MLServer' : 'iris-api'} replica(s), ${r.offered_rate} req/s offered for ${opts.durationSeconds}s over ${opts.protocol === 'grpc' ? 'gRPC' : 'REST'}, driver ${opts.driver.name} ==\n${vegetaText(r)}\n`,
    );
    if (r.void.void) io.out(`VOID (not counted): ${r.void.reason}\n`);
  }
  const verdict = acceptance(results, opts.preset);
  if (results.length > 0) io.out(`\n== comparison ==\n${comparisonText(results, opts.preset)}\n`);
  if (hasCallerSweep(results)) io.out(`\n== by number of callers ==\n${callersText(results)}\n`);
  for (const line of verdict.lines) io.out(`${line}\n`);
  const reportHtml = join(opts.outDir, 'report.html');
  const summary: LabSummary = {
    schema: 'cb-lab/summary/v3',
    started_at: startedAt.toISOString(),
    finished_at: new Date().toISOString(),
    host: { cpus: cpus().length, node: process.version, platform: `${process.platform}-${process.arch}` },
    config: {
      arms: opts.runs.map((r) => r.arm),
      runs: opts.runs,
      replicas: opts.replicas,
      workers: opts.workers,
      driver: opts.driver.name,
      duration_s: opts.durationSeconds,
      offered_rate: rate ?? 0,
      rate_source: opts.rate === undefined ? 'probe' : 'flag',
      overload: opts.overload,
      timeout_ms: opts.timeoutMs,
      sidecar_limits: opts.derivations,
      policy: opts.policy.file,
      istio_profile: opts.policy.profile,
      preset: opts.preset ?? null,
      api_nice: opts.apiNice,
      api_cpu: opts.apiCpu,
      api_cpu_period_ms: opts.apiCpuPeriodMs,
      inference_concurrency: opts.inference.concurrency,
      inference_ms: opts.inference.ms,
      model_server: opts.modelServer,
      protocol: opts.protocol,
      mix: opts.mix === undefined ? null : mixText(opts.mix),
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
