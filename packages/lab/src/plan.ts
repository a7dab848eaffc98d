// What a lab run consists of: arms, each at one number of callers, in the order they run.

/** The arms of the experiment. */
export const ARM_NAMES = ['direct', 'istio', 'sidecar', 'sidecar-adaptive', 'istio-sidecar'] as const;

/**
 * One arm:
 * - `direct`: replicas behind the Service, no protection;
 * - `istio`: Istio-only breaking, one Envoy per caller (the DestinationRule's limits) balancing over the
 *   replicas' own inbound Envoys (the DestinationRule's connection pool per pod), no Service in between;
 * - `sidecar`, `sidecar-adaptive`: cb-sidecar in every replica (static limits, learned limits), behind the Service;
 * - `istio-sidecar`: the `istio` arm with cb-sidecar between each inbound Envoy and its model.
 */
export type ArmName = (typeof ARM_NAMES)[number];

/** Arms whose callers each run their own Envoy (mesh traffic: no Service, the caller balances). */
export const MESH_ARMS: readonly ArmName[] = ['istio', 'istio-sidecar'];

/** Arms with cb-sidecar in front of every model. */
export const SIDECAR_ARMS: readonly ArmName[] = ['sidecar', 'sidecar-adaptive', 'istio-sidecar'];

/** True when the arm's callers go through Envoys of their own. */
export function isMeshArm(arm: ArmName): boolean {
  return MESH_ARMS.includes(arm);
}

/** True when the arm has cb-sidecar in every replica. */
export function hasSidecar(arm: ArmName): boolean {
  return SIDECAR_ARMS.includes(arm);
}

/** One run of the plan: an arm attacked by `callers` callers that share the offered rate evenly. */
export interface ArmRun {
  arm: ArmName;
  callers: number;
}

/** The key of a run in summary.json, the raw files and the acceptance lines: `sidecar-c4`. */
export function runKey(r: ArmRun): string {
  return `${r.arm}-c${r.callers}`;
}

/** The arms `make demo` runs: every kind at one caller, then Istio against the sidecar at four. */
export const DEFAULT_ARMS = 'direct,istio,sidecar,sidecar-adaptive,istio@4,sidecar@4';

/** The arms `--preset seed` runs: the book's arm and ours at the book's load. */
export const SEED_ARMS = 'istio,sidecar,sidecar-adaptive,istio-sidecar';

/** The arms `--protocol grpc` runs by default: those without the mesh's Envoys (HTTP/1.1 to the replicas). */
export const GRPC_ARMS = 'direct,sidecar,sidecar-adaptive';

/** The arms when `--callers` is given without `--arms`. */
export const CALLER_SWEEP_ARMS = 'direct,istio,sidecar,sidecar-adaptive';

/** Highest caller count: each caller is a load generator (and in mesh arms an Envoy) on this machine. */
export const MAX_CALLERS = 64;

/**
 * Expands `--arms` and `--callers` into the runs in order. An entry `arm@N` runs at N callers; a plain
 * `arm` runs at every count of `callers`, and for each count every plain arm runs before the next count
 * (so drift of the machine over the run touches the arms alike). Entries with `@` follow, as listed.
 * @returns the runs, or the problems found (every one)
 */
export function expandPlan(armsText: string, callers: readonly number[]): { runs: ArmRun[]; problems: string[] } {
  const problems: string[] = [];
  const plain: ArmName[] = [];
  const pinned: ArmRun[] = [];
  const entries = armsText
    .split(',')
    .map((a) => a.trim())
    .filter((a) => a !== '');
  if (entries.length === 0) problems.push(`--arms lists no arm`);
  for (const entry of entries) {
    const m = /^([a-z-]+)(?:@(\d+))?$/.exec(entry);
    const name = m?.[1];
    if (m === null || name === undefined || !(ARM_NAMES as readonly string[]).includes(name)) {
      problems.push(`--arms: "${entry}" is not one of ${ARM_NAMES.join(', ')} (optionally @callers, e.g. istio@4)`);
      continue;
    }
    if (m[2] === undefined) {
      plain.push(name as ArmName);
      continue;
    }
    const n = Number(m[2]);
    if (n < 1 || n > MAX_CALLERS) problems.push(`--arms: "${entry}": callers must be 1-${MAX_CALLERS}`);
    else pinned.push({ arm: name as ArmName, callers: n });
  }
  const runs: ArmRun[] = [];
  for (const c of callers) for (const arm of plain) runs.push({ arm, callers: c });
  runs.push(...pinned);
  const seen = new Set<string>();
  for (const r of runs) {
    const key = runKey(r);
    if (seen.has(key)) problems.push(`--arms/--callers run ${r.arm} at ${r.callers} caller(s) twice`);
    seen.add(key);
  }
  return { runs, problems };
}
