#!/usr/bin/env node
// cb-lab: parse flags, run the arms, print the reports; every child process dies with the lab.
import '@infer-cb/proxy/node-check'; // first: one clear line on a Node too old to load the rest
import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseLabArgs, USAGE } from './args.js';
import { BuiltinDriver } from './drivers/builtin.js';
import type { Driver } from './drivers/driver.js';
import { K6Driver } from './drivers/k6.js';
import { VegetaDriver } from './drivers/vegeta.js';
import { LabError } from './errors.js';
import { runLab } from './lab.js';
import { Supervisor } from './processes.js';
import { startPrometheus, type LabPrometheus } from './prometheus.js';
import { findTool } from './tools.js';
import type { LabPaths, MeshBootstraps } from './topology.js';
import { hasSidecar, type ArmName } from './plan.js';
import {
  callerBootstrap,
  deriveSidecarLimits,
  inboundBootstrap,
  PolicyError,
  readMeshPolicy,
  sidecarConfig,
  type MeshPolicy,
  type Profile,
  type SidecarConfigOptions,
  type SidecarDerivation,
  withSheddingPods,
} from '@infer-cb/policy';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, '..', '..', '..');
const paths: LabPaths = {
  repoRoot,
  apiMain: join(repoRoot, 'packages', 'api', 'dist', 'main.js'),
  proxyMain: join(repoRoot, 'packages', 'proxy', 'dist', 'main.js'),
  cpuQuotaMain: join(here, 'cpu-quota-main.js'),
};

/** The mesh policy both arms run from when --policy is not given (the DestinationRule in manifests/). */
const DEFAULT_POLICY_FILE = 'manifests/components/istio-circuit-breaker/destinationrule.yaml';

/** The mesh arms' Envoys from the policy: what Istio would push to each caller's and each replica's Envoy. */
function meshBootstraps(policy: MeshPolicy, profile: Profile): MeshBootstraps {
  const any = { address: '127.0.0.1', port: 0 };
  return {
    // Istio's sidecar runs 2 workers by default; on this 2-core machine each Envoy gets 1 (docs/lab.md).
    workers: 1,
    caller: (endpoints) =>
      callerBootstrap(policy, { profile, service: 'iris-svc', endpoints, listen: any, admin: any }),
    inbound: (app) => inboundBootstrap(policy, { profile, app, listen: any, admin: any }),
  };
}

function timestamp(): string {
  return new Date()
    .toISOString()
    .replace(/[:.]/g, '-')
    .replace(/-\d{3}Z$/, 'Z');
}

async function main(): Promise<number> {
  const flags = parseLabArgs(process.argv.slice(2));
  if (flags.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  // The policy first: a malformed one is a bad flag, said before anything starts.
  const policyFile = resolve(repoRoot, flags.policy ?? DEFAULT_POLICY_FILE);
  let policy: MeshPolicy;
  try {
    policy = readMeshPolicy(policyFile);
  } catch (err) {
    if (!(err instanceof PolicyError)) throw err;
    throw new LabError('LAB_BAD_FLAGS', `--policy ${policyFile}: ${err.problems.join('; ')}`);
  }
  let driver: Driver;
  if (flags.driver === 'vegeta') driver = new VegetaDriver(findTool('vegeta', repoRoot));
  else if (flags.driver === 'k6') driver = new K6Driver(findTool('k6', repoRoot));
  else driver = new BuiltinDriver();
  const outDir = resolve(flags.out ?? join(repoRoot, 'reports', timestamp()));
  mkdirSync(outDir, { recursive: true });
  const sup = new Supervisor();
  const abort = new AbortController();
  sup.installExitHandlers((sig) => {
    abort.abort();
    process.stderr.write(`\ncb-lab: ${sig}: stopping every process it started\n`);
  });
  let prom: LabPrometheus | undefined;
  if (flags.prometheus) {
    prom = await startPrometheus(sup, join(outDir, 'prometheus'), repoRoot);
    process.stderr.write(
      `cb-lab: Prometheus at ${prom.url} (jobs iris-api, cb-sidecar, envoy; labels arm, callers, pod, role)\n`,
    );
  }
  try {
    const sidecarOptions = (arm: ArmName): SidecarConfigOptions => ({
      replicas: flags.replicas,
      callers: 1,
      mode: arm === 'sidecar-adaptive' ? 'adaptive' : 'static',
      explicit: flags.explicit,
      // The lab stops an arm at once: no drain delay.
      overrides: { drain: { delay: '0s', grace: '2s' } },
      ...(flags.inferenceConcurrency > 0 && flags.inferenceMs > 0
        ? { model: { concurrency: flags.inferenceConcurrency, serviceTimeMs: flags.inferenceMs } }
        : {}),
    });
    const derivations: Record<string, SidecarDerivation> = {};
    for (const arm of new Set(flags.runs.map((r) => r.arm))) {
      if (hasSidecar(arm)) derivations[arm] = deriveSidecarLimits(policy, sidecarOptions(arm));
    }
    const summary = await runLab(
      sup,
      {
        runs: flags.runs,
        replicas: flags.replicas,
        workers: flags.workers,
        overload: flags.overload,
        durationSeconds: flags.durationSeconds,
        probeSeconds: flags.probeSeconds,
        timeoutMs: flags.timeoutMs,
        maxInflight: flags.maxInflight,
        driver,
        derivations,
        sidecarFor: (arm) => sidecarConfig(policy, sidecarOptions(arm)),
        // Inside the mesh, pods that shed need outlier detection that does not eject them for it (docs/istio-arm.md).
        meshFor: (arm) =>
          meshBootstraps(
            arm === 'istio-sidecar' ? withSheddingPods(policy, flags.istioProfile) : policy,
            flags.istioProfile,
          ),
        policy: { file: policyFile, profile: flags.istioProfile },
        apiNice: flags.apiNice,
        apiCpu: flags.apiCpu,
        apiCpuPeriodMs: flags.apiCpuPeriodMs,
        inference: { concurrency: flags.inferenceConcurrency, ms: flags.inferenceMs },
        modelServer: flags.modelServer,
        protocol: flags.protocol,
        outDir,
        paths,
        signal: abort.signal,
        ...(flags.preset === undefined ? {} : { preset: flags.preset }),
        ...(flags.mix === undefined ? {} : { mix: flags.mix }),
        ...(flags.faultSeconds === undefined
          ? {}
          : {
              fault: {
                replica: 0,
                atSeconds: (flags.durationSeconds - flags.faultSeconds) / 2,
                downSeconds: flags.faultSeconds,
              },
            }),
        ...(flags.rate === undefined ? {} : { rate: flags.rate }),
        ...(flags.model === undefined ? {} : { modelPath: resolve(flags.model) }),
        ...(flags.labels === undefined ? {} : { labelPath: resolve(flags.labels) }),
        ...(prom === undefined ? {} : { onTopology: (t) => prom?.watch(t) }),
      },
      { out: (t) => process.stdout.write(t), err: process.stderr },
    );
    if (prom !== undefined && flags.keep) {
      process.stderr.write(`cb-lab: arms done; Prometheus stays at ${prom.url} until Ctrl-C\n`);
      await new Promise<never>(() => {});
    }
    return summary.arms.length === flags.runs.length ? 0 : 1;
  } finally {
    await sup.stopAll(3000);
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    const line =
      err instanceof LabError
        ? `cb-lab: ${err.code}: ${err.message}`
        : `cb-lab: ${err instanceof Error ? err.message : String(err)}`;
    process.stderr.write(`${line}\n`);
    process.exit(err instanceof LabError ? err.exitCode : 1);
  },
);
