import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { DRIVER_NAMES } from './drivers/driver.js';
import { LabError } from './errors.js';
import { MODEL_SERVERS, PROTOCOLS, type ModelServer, type Protocol } from './model-server.js';
import {
  ARM_NAMES,
  CALLER_SWEEP_ARMS,
  DEFAULT_ARMS,
  expandPlan,
  GRPC_ARMS,
  isMeshArm,
  MAX_CALLERS,
  SEED_ARMS,
  type ArmRun,
} from './plan.js';
import { parseMix, type Mix } from './mix.js';
import { PROFILES, type ExplicitNumbers, type Profile } from '@infer-cb/policy';
import { durationToMs } from '@infer-cb/proxy/duration';

/** The parsed and validated command line. */
export interface LabFlags {
  help: boolean;
  replicas: number;
  /** The runs in order: each arm at each number of callers. */
  runs: ArmRun[];
  /** The caller counts of `--callers` (the runs' counts may differ where `--arms` pins them). */
  callers: number[];
  /** The mesh policy file (DestinationRule, optional VirtualService and Sidecar); undefined = manifests/. */
  policy: string | undefined;
  /** The Istio generation the mesh arms' Envoys are configured as. */
  istioProfile: Profile;
  /** `--fault D`: replica 0's model killed for this long in the middle of every attack (s). */
  faultSeconds: number | undefined;
  rate: number | undefined;
  durationSeconds: number;
  driver: (typeof DRIVER_NAMES)[number];
  model: string | undefined;
  labels: string | undefined;
  workers: number;
  out: string | undefined;
  preset: 'seed' | undefined;
  prometheus: boolean;
  keep: boolean;
  probeSeconds: number;
  overload: number;
  timeoutMs: number;
  maxInflight: number;
  /** Sidecar numbers given on the command line; the rest are derived from the policy and the model. */
  explicit: ExplicitNumbers;
  apiNice: number;
  apiCpu: number;
  /** The CPU limit's period (ms): how long a replica that spent its budget may be stopped at most. */
  apiCpuPeriodMs: number;
  inferenceConcurrency: number;
  inferenceMs: number;
  /** What serves the model in each replica. */
  modelServer: ModelServer;
  /** What the callers speak to the arm: REST (HTTP/1.1) or gRPC (h2c, k6's k6/net/grpc). */
  protocol: Protocol;
  /** `--mix`: the priority classes' shares of the load (builtin driver); undefined = no class header. */
  mix: Mix | undefined;
}

/**
 * The book's pods as the seed preset's replicas: 8 slots (the book's 8 gunicorn workers) of 31 ms each serve
 * 258 req/s per replica, 774 in all, against the ~764 req/s the book's three pods served (7828 answers in
 * 10.24 s). The replicas' service time is calibrated to the book's goodput; nothing else is.
 */
export const SEED_INFERENCE_MS = 31;

/** The book's DestinationRule (../shared/REFERENCE.md), the seed preset's policy, relative to the repository. */
export const SEED_POLICY_FILE = 'packages/policy/fixtures/book-destinationrule.yaml';

/** `--help` text. */
export const USAGE = `Usage: cb-lab [flags]
The local A/B lab: N inference replicas behind a round-robin Service (HAProxy), attacked per arm at an open-model
constant rate (default 3x the capacity a closed-loop probe measures), with a vegeta-style report per arm,
a side-by-side comparison, summary.json, report.html and raw series under --out.

  --replicas N          replicas (pods) per arm (default 3)
  --arms LIST           comma list of ${ARM_NAMES.join(',')}; an entry arm@N runs at N callers
                        (default ${DEFAULT_ARMS}; with --protocol grpc ${GRPC_ARMS})
  --callers N[,M...]    callers (client pods) sharing the offered rate, for every arm listed without @N;
                        each is its own load generator, and in the istio arms its own Envoy (default 1;
                        with --callers and no --arms: ${CALLER_SWEEP_ARMS})
  --policy FILE         the mesh policy for both arms: a DestinationRule (optionally with a VirtualService and
                        a Sidecar in the same YAML) (default manifests/components/istio-circuit-breaker)
  --istio-profile P     book (Istio 1.9 era: mesh retries on 503) | current (1.24+) (default current)
  --fault D             kill replica 0's model (SIGKILL) for D (e.g. 3s) in the middle of every attack, then start
                        it again; reports answers during the outage and the time to recover
  --rate R              offered req/s for every arm (default: ${'3'}x the probed capacity)
  --duration D          attack duration per arm: 10, 10s, 1m (default 10s)
  --driver NAME         builtin | vegeta | k6 (default builtin, k6 with --protocol grpc; vegeta/k6 need \`make tools\`)
  --model-server S      api (iris-api, POST /predict) | mlserver (MLServer 1.7.1 from \`make mlserver\`, the scikit-learn
                        iris model, POST /v2/models/iris/infer) (default api). With mlserver, --inference-*,
                        --api-cpu, --api-cpu-period, --api-nice and --fault apply to the MLServer replicas;
                        --workers (MLServer's parallel workers crash on start), --model and --labels do not
  --protocol P          rest | grpc (default rest). grpc: ModelInfer of inference.GRPCInferenceService by k6's
                        k6/net/grpc (k6/grpc.ts) to each replica's gRPC port, through the Service (HAProxy, h2)
                        and the sidecar (h2c); not with the istio arms, whose Envoys speak HTTP/1.1 to the replicas
  --mix LIST            priority classes' shares of the load, e.g. critical:20,default:50,sheddable:30: each request
                        carries x-request-priority (builtin driver); the report shows success by class per arm
  --model FILE          ONNX model for the API (MODEL_FILEPATH; default: the API's shipped model)
  --labels FILE         label.json for the API (LABEL_FILEPATH)
  --workers N           API workers per replica (WORKERS, default 1)
  --out DIR             output directory (default reports/<timestamp>/)
  --preset seed         the book's experiment: 1000 req/s for 10 s on 3 replicas calibrated to the book's pods
                        (8 slots x ${'31'} ms = ~774 req/s in all), the book's DestinationRule, the book profile,
                        arms ${SEED_ARMS}; explicit flags win
  --prometheus          run a real Prometheus scraping every API and sidecar; prints its URL
  --keep                with --prometheus: keep it running after the arms until Ctrl-C
  --probe-seconds S     closed-loop capacity probe per arm (default 3)
  --overload X          offered rate = X times the probed capacity when --rate is absent (default 3)
  --timeout-ms T        per-request timeout of the builtin driver (default 10000)
  --max-inflight N      builtin driver's bound on requests in flight (default 20000)
  --limit N             sidecar arms: static per-replica concurrency limit
  --pending N           sidecar arms: per-replica pending queue
  --queue-timeout D     sidecar arms: queue timeout, Istio duration (e.g. 20ms)
  --adaptive-max N      sidecar-adaptive arm: upper bound of the learned limit
                        (these four default to what \`cb-policy limits\` derives from --policy and the replicas'
                        slots and service time: docs/istio-arm.md "From the DestinationRule to the sidecar")
  --inference-concurrency N  inferences one replica runs at once, the rest wait in order (default 8; 0 = no limit)
  --inference-ms T      each inference holds its slot T ms: the replica serves N/T per second (default 200; 0 = off)
  --api-cpu C           CPU limit per API replica in cores, like a pod's limits.cpu (default 0 = none)
  --api-cpu-period D    the CPU limit's period (default 50ms; Kubernetes' CFS period is 100ms): a replica that
                        spent its budget is stopped for up to this long
  --api-nice N          niceness of the API processes, 0-19 (default 10; see docs/lab.md)
  --help                this text
`;

/** A duration flag: the sidecar's Istio-style durations (`10s`, `1m`, `500ms`), or bare seconds (`10`). */
function durationSeconds(text: string): number | undefined {
  const t = text.trim();
  const ms = /^\d+(?:\.\d+)?$/.test(t) ? Number(t) * 1000 : durationToMs(t);
  return Number.isFinite(ms) ? ms / 1000 : undefined;
}

/**
 * Parses and validates argv; every problem is collected and reported together in one line.
 * @throws LabError LAB_BAD_FLAGS (exit 2)
 */
export function parseLabArgs(argv: readonly string[]): LabFlags {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        help: { type: 'boolean', short: 'h' },
        replicas: { type: 'string' },
        arms: { type: 'string' },
        rate: { type: 'string' },
        duration: { type: 'string' },
        driver: { type: 'string' },
        model: { type: 'string' },
        labels: { type: 'string' },
        workers: { type: 'string' },
        out: { type: 'string' },
        preset: { type: 'string' },
        callers: { type: 'string' },
        policy: { type: 'string' },
        'istio-profile': { type: 'string' },
        fault: { type: 'string' },
        'api-cpu-period': { type: 'string' },
        prometheus: { type: 'boolean' },
        keep: { type: 'boolean' },
        'probe-seconds': { type: 'string' },
        overload: { type: 'string' },
        'timeout-ms': { type: 'string' },
        'max-inflight': { type: 'string' },
        limit: { type: 'string' },
        pending: { type: 'string' },
        'queue-timeout': { type: 'string' },
        'adaptive-max': { type: 'string' },
        'api-nice': { type: 'string' },
        'api-cpu': { type: 'string' },
        'inference-concurrency': { type: 'string' },
        'inference-ms': { type: 'string' },
        'model-server': { type: 'string' },
        protocol: { type: 'string' },
        mix: { type: 'string' },
      },
    }));
  } catch (err) {
    throw new LabError(
      'LAB_BAD_FLAGS',
      `${(err instanceof Error ? err.message : String(err)).replace(/\s*\n\s*/g, ' ')} (see --help)`,
    );
  }
  const problems: string[] = [];
  const str = (k: string): string | undefined => values[k] as string | undefined;
  const int = (k: string, def: number, min: number, max: number): number => {
    const raw = str(k);
    if (raw === undefined) return def;
    const v = Number(raw);
    if (!/^\d+$/.test(raw) || v < min || v > max)
      problems.push(`--${k} must be an integer ${min}-${max}, got "${raw}"`);
    return v;
  };
  const num = (k: string, def: number, min: number): number => {
    const raw = str(k);
    if (raw === undefined) return def;
    const v = Number(raw);
    if (!Number.isFinite(v) || v < min) problems.push(`--${k} must be a number >= ${min}, got "${raw}"`);
    return v;
  };
  const preset = str('preset');
  if (preset !== undefined && preset !== 'seed') problems.push(`--preset must be "seed", got "${preset}"`);
  const seed = preset === 'seed';
  const replicas = int('replicas', 3, 1, 16);
  const rateRaw = str('rate');
  let rate: number | undefined = seed ? 1000 : undefined;
  if (rateRaw !== undefined) rate = num('rate', 0, 1);
  const durRaw = str('duration') ?? '10s';
  const dur = durationSeconds(durRaw);
  if (dur === undefined || dur < 1 || dur > 3600)
    problems.push(`--duration must be 1s-1h (10, 10s, 1m), got "${durRaw}"`);
  const modelServer = str('model-server') ?? 'api';
  if (!(MODEL_SERVERS as readonly string[]).includes(modelServer))
    problems.push(`--model-server must be one of ${MODEL_SERVERS.join(', ')}, got "${modelServer}"`);
  const protocol = str('protocol') ?? 'rest';
  if (!(PROTOCOLS as readonly string[]).includes(protocol))
    problems.push(`--protocol must be one of ${PROTOCOLS.join(', ')}, got "${protocol}"`);
  const driver = str('driver') ?? (protocol === 'grpc' ? 'k6' : 'builtin');
  if (!(DRIVER_NAMES as readonly string[]).includes(driver))
    problems.push(`--driver must be one of ${DRIVER_NAMES.join(', ')}, got "${driver}"`);
  const callersRaw = str('callers');
  const callers = (callersRaw ?? '1').split(',').map((c) => c.trim());
  const badCallers = callers.filter((c) => !/^\d+$/.test(c) || Number(c) < 1 || Number(c) > MAX_CALLERS);
  if (badCallers.length > 0 || callers.length === 0)
    problems.push(`--callers must list integers 1-${MAX_CALLERS}, got "${callersRaw ?? ''}"`);
  const callerCounts = badCallers.length > 0 ? [1] : callers.map(Number);
  const armsRaw =
    str('arms') ??
    (seed ? SEED_ARMS : protocol === 'grpc' ? GRPC_ARMS : callersRaw !== undefined ? CALLER_SWEEP_ARMS : DEFAULT_ARMS);
  const plan = expandPlan(armsRaw, callerCounts);
  problems.push(...plan.problems);
  const profile = str('istio-profile') ?? (seed ? 'book' : 'current');
  if (!(PROFILES as readonly string[]).includes(profile))
    problems.push(`--istio-profile must be one of ${PROFILES.join(', ')}, got "${profile}"`);
  const periodRaw = str('api-cpu-period');
  const apiCpuPeriodS = periodRaw === undefined ? undefined : durationSeconds(periodRaw);
  if (periodRaw !== undefined && (apiCpuPeriodS === undefined || apiCpuPeriodS < 0.005 || apiCpuPeriodS > 1))
    problems.push(`--api-cpu-period must be a duration of 5ms-1s, got "${periodRaw}"`);
  const apiCpuPeriod = apiCpuPeriodS === undefined ? undefined : Math.round(apiCpuPeriodS * 1000);
  const faultRaw = str('fault');
  const fault = faultRaw === undefined ? undefined : durationSeconds(faultRaw);
  if (faultRaw !== undefined && (fault === undefined || fault <= 0 || fault >= (dur ?? 10)))
    problems.push(`--fault must be a duration shorter than the attack (e.g. 3s), got "${faultRaw}"`);
  // A file named on the command line is relative to where the lab was started, like --model and --out.
  const given = str('policy');
  const policy = given !== undefined ? resolve(given) : seed ? SEED_POLICY_FILE : undefined;
  if (given !== undefined && !existsSync(resolve(given))) problems.push(`--policy file not found: ${given}`);
  for (const k of ['model', 'labels'] as const) {
    const f = str(k);
    if (f !== undefined && !existsSync(f)) problems.push(`--${k} file not found: ${f}`);
  }
  const qt = str('queue-timeout');
  const qtMs = qt === undefined ? undefined : /^\d+(\.\d+)?(ms|s|m)$/.test(qt) ? durationToMs(qt) : Number.NaN;
  if (qtMs !== undefined && !Number.isFinite(qtMs))
    problems.push(`--queue-timeout must be an Istio duration like 50ms, got "${qt}"`);
  const mixRaw = str('mix');
  const mixed = mixRaw === undefined ? undefined : parseMix(mixRaw);
  if (mixed !== undefined && 'problem' in mixed) problems.push(mixed.problem);
  if (mixed !== undefined && driver !== 'builtin')
    problems.push(`--mix needs --driver builtin (vegeta and k6 send no class header), got "${driver}"`);
  const optionalInt = (k: string, min: number, max: number): number | undefined =>
    str(k) === undefined ? undefined : int(k, 0, min, max);
  const flags: LabFlags = {
    help: values['help'] === true,
    replicas,
    runs: plan.runs,
    callers: callerCounts,
    policy,
    istioProfile: profile as Profile,
    faultSeconds: fault,
    rate,
    durationSeconds: dur ?? 10,
    driver: driver as LabFlags['driver'],
    model: str('model'),
    labels: str('labels'),
    workers: int('workers', 1, 1, 64),
    out: str('out'),
    preset: seed ? 'seed' : undefined,
    prometheus: values['prometheus'] === true,
    keep: values['keep'] === true,
    probeSeconds: num('probe-seconds', 3, 0.5),
    overload: num('overload', 3, 0.1),
    timeoutMs: int('timeout-ms', 10_000, 10, 600_000),
    maxInflight: int('max-inflight', 20_000, 1, 1_000_000),
    apiNice: int('api-nice', 10, 0, 19),
    apiCpu: num('api-cpu', 0, 0),
    apiCpuPeriodMs: apiCpuPeriod ?? 50,
    inferenceConcurrency: int('inference-concurrency', 8, 0, 10_000),
    inferenceMs: int('inference-ms', seed ? SEED_INFERENCE_MS : 200, 0, 600_000),
    modelServer: modelServer as ModelServer,
    protocol: protocol as Protocol,
    mix: mixed !== undefined && 'mix' in mixed ? mixed.mix : undefined,
    explicit: Object.fromEntries(
      Object.entries({
        limit: optionalInt('limit', 1, 100_000),
        pending: optionalInt('pending', 0, 100_000),
        queueTimeoutMs: qtMs,
        adaptiveMax: optionalInt('adaptive-max', 1, 100_000),
      }).filter(([, v]) => v !== undefined),
    ) as ExplicitNumbers,
  };
  if (flags.keep && !flags.prometheus) problems.push('--keep only makes sense with --prometheus');
  if (modelServer === 'mlserver') {
    if (flags.workers > 1) {
      problems.push(
        '--workers does not apply to --model-server mlserver: its parallel inference workers crash on start ("There is no current event loop"); each replica serves with parallel_workers 0',
      );
    }
    for (const k of ['model', 'labels'] as const) {
      if (str(k) !== undefined)
        problems.push(`--${k} is the API's ONNX model; --model-server mlserver serves mlserver/iris`);
    }
  }
  if (protocol === 'grpc') {
    if (driver !== 'k6') problems.push(`--protocol grpc is driven by k6 (k6/net/grpc): use --driver k6, not ${driver}`);
    const mesh = [...new Set(plan.runs.filter((r) => isMeshArm(r.arm)).map((r) => r.arm))];
    if (mesh.length > 0) {
      problems.push(
        `--protocol grpc cannot run the arm(s) ${mesh.join(', ')}: the lab's Envoys speak HTTP/1.1 to the replicas (no gRPC route built)`,
      );
    }
  }
  if (fault !== undefined && flags.apiCpu > 0) problems.push('--fault cannot restart a model under --api-cpu');
  if (problems.length > 0) throw new LabError('LAB_BAD_FLAGS', `${problems.join('; ')} (see --help)`);
  return flags;
}
