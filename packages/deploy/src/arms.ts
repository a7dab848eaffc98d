// The arms of the A/B deployment and the versions they need. One table: the Makefile, the overlay wrapper,
// the preflight and the callers all read it.

/** An arm: its overlay under manifests/overlays/ and the namespace it runs in. */
export interface ArmInfo {
  readonly overlay: string;
  readonly namespace: string;
}

/** Every arm, by name. */
export const ARMS = {
  istio: { overlay: 'manifests/overlays/istio', namespace: 'circuit-breaker-istio' },
  sidecar: { overlay: 'manifests/overlays/sidecar', namespace: 'circuit-breaker-sidecar' },
  'sidecar-adaptive': { overlay: 'manifests/overlays/sidecar-adaptive', namespace: 'circuit-breaker-sidecar-adaptive' },
} as const satisfies Record<string, ArmInfo>;

/** An arm's name. */
export type Arm = keyof typeof ARMS;

/** The arm names, in the order the docs list them. */
export const ARM_NAMES = Object.keys(ARMS) as Arm[];

/** Whether `name` is an arm. */
export function isArm(name: string): name is Arm {
  return Object.hasOwn(ARMS, name);
}

/** A version as major.minor.patch. */
export interface Version {
  readonly major: number;
  readonly minor: number;
  readonly patch: number;
}

/**
 * The oldest Kubernetes the manifests run on: native sidecars (initContainers with restartPolicy: Always) are
 * on by default from 1.29, and the preStop `sleep` action from 1.30.
 */
export const MIN_KUBERNETES: Version = { major: 1, minor: 30, patch: 0 };

/** The oldest Istio: networking.istio.io/v1 and security.istio.io/v1 are served from 1.22. */
export const MIN_ISTIO: Version = { major: 1, minor: 22, patch: 0 };

/** The first version in `text` ("v1.30.4-gke.1200", "docker.io/istio/pilot:1.22.3-distroless"), if any. */
export function parseVersion(text: string): Version | undefined {
  const m = /(\d+)\.(\d+)(?:\.(\d+))?/.exec(text);
  if (!m) return undefined;
  return { major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3] ?? 0) };
}

/** Whether `v` is `min` or later. */
export function atLeast(v: Version, min: Version): boolean {
  if (v.major !== min.major) return v.major > min.major;
  if (v.minor !== min.minor) return v.minor > min.minor;
  return v.patch >= min.patch;
}

/** `1.30` or `1.30.4`. */
export function formatVersion(v: Version, withPatch = true): string {
  return withPatch ? `${v.major}.${v.minor}.${v.patch}` : `${v.major}.${v.minor}`;
}
