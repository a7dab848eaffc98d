// Renders the kustomize overlays with the real `kubectl kustomize` and offers typed views of the
// objects the manifest tests cross-check (pods of Deployments and Pods, their containers, services).
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';

/** Repository root. */
export const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** The two arms of the A/B deployment and their namespaces. */
export const ARMS = { istio: 'circuit-breaker-istio', sidecar: 'circuit-breaker-sidecar' } as const;
/** An arm's name. */
export type Arm = keyof typeof ARMS;

/** A rendered Kubernetes object, loosely typed (schemas are checked separately). */
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: Record<string, unknown>;
  data?: Record<string, string>;
  [key: string]: unknown;
}

/** The parts of a container the cross-checks read. */
export interface Container {
  name: string;
  image: string;
  args?: string[];
  env?: { name: string; value?: string }[];
  ports?: { name?: string; containerPort: number }[];
  restartPolicy?: string;
  startupProbe?: Probe;
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  securityContext?: SecurityContext;
  volumeMounts?: { name: string; mountPath: string }[];
}

/** A probe: HTTP or exec. */
export interface Probe {
  httpGet?: { path: string; port: string | number };
  exec?: { command: string[] };
}

/** Pod- or container-level security settings. */
export interface SecurityContext {
  runAsNonRoot?: boolean;
  runAsUser?: number;
  readOnlyRootFilesystem?: boolean;
  allowPrivilegeEscalation?: boolean;
  capabilities?: { drop?: string[]; add?: string[] };
  seccompProfile?: { type: string };
}

/** A pod spec with the fields the cross-checks read. */
export interface PodSpec {
  securityContext?: SecurityContext;
  initContainers?: Container[];
  containers: Container[];
  volumes?: { name: string; configMap?: { name: string }; emptyDir?: object }[];
}

/** A pod as it will run: its owner object, labels and spec. */
export interface PodView {
  owner: K8sObject;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  spec: PodSpec;
}

/** Runs `kubectl kustomize` on a directory relative to the repository root. */
export function kustomize(dir: string): K8sObject[] {
  const text = execFileSync('kubectl', ['kustomize', dir], { cwd: ROOT, encoding: 'utf8' });
  return parseAllDocuments(text).map((d) => d.toJS() as K8sObject);
}

/** Renders one arm's overlay. */
export function renderArm(arm: Arm): K8sObject[] {
  return kustomize(`manifests/overlays/${arm}`);
}

/** Every pod the objects will create (Deployment templates and bare Pods). */
export function pods(objects: K8sObject[]): PodView[] {
  const out: PodView[] = [];
  for (const o of objects) {
    if (o.kind === 'Pod') {
      out.push({
        owner: o,
        labels: o.metadata.labels ?? {},
        annotations: o.metadata.annotations ?? {},
        spec: o.spec as unknown as PodSpec,
      });
    } else if (o.kind === 'Deployment') {
      const t = (o.spec as { template: { metadata?: K8sObject['metadata']; spec: PodSpec } }).template;
      out.push({
        owner: o,
        labels: t.metadata?.labels ?? {},
        annotations: t.metadata?.annotations ?? {},
        spec: t.spec,
      });
    }
  }
  return out;
}

/** Every container of a pod: init containers (native sidecars included) and regular ones. */
export function containers(pod: PodView): Container[] {
  return [...(pod.spec.initContainers ?? []), ...pod.spec.containers];
}

/** The one object of a kind and name, or a thrown error naming what is missing. */
export function find(objects: K8sObject[], kind: string, name: string): K8sObject {
  const o = objects.find((x) => x.kind === kind && x.metadata.name === name);
  if (!o) throw new Error(`no ${kind}/${name} among ${objects.map((x) => `${x.kind}/${x.metadata.name}`).join(', ')}`);
  return o;
}

/** Whether a label selector (matchLabels or a plain map) selects these labels. */
export function selects(selector: Record<string, string>, labels: Record<string, string>): boolean {
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

/** The value of an env var of a container. */
export function env(c: Container, name: string): string | undefined {
  return c.env?.find((e) => e.name === name)?.value;
}
