// Renders the kustomize overlays with the real `kubectl kustomize`, validates them with the real kubeconform
// against the pinned schemas (`make tools`), and offers typed views of the objects the manifest tests
// cross-check (pods of Deployments, Jobs and Pods, their containers, services).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments, stringify } from 'yaml';
import { ARMS as ARM_TABLE, type Arm } from '@infer-cb/deploy';

/** Repository root. */
export const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** The arms of the A/B deployment and their namespaces. */
export const ARMS = Object.fromEntries(Object.entries(ARM_TABLE).map(([a, i]) => [a, i.namespace])) as Record<
  Arm,
  string
>;
export type { Arm };

/** A Makefile variable's value (`make print-NAME`). */
export function makeVar(name: string): string {
  return execFileSync('make', ['-s', '--no-print-directory', `print-${name}`], { cwd: ROOT, encoding: 'utf8' }).trim();
}

/** One object kubeconform did not accept, and why. */
export interface SchemaFailure {
  kind: string;
  name: string;
  status: string;
  msg: string;
}

/**
 * Validates objects with kubeconform, strict, against Kubernetes 1.30, Istio 1.22 and prometheus-operator
 * 0.79 schemas (the Makefile's pins, fetched by `make tools`). Returns what failed, with a missing schema
 * counted as a failure: nothing passes unchecked.
 */
export function kubeconform(objects: readonly unknown[]): SchemaFailure[] {
  return kubeconformSets({ objects }).objects ?? [];
}

/**
 * {@link kubeconform} for several sets of objects in one kubeconform process (each schema is compiled once),
 * the failures of each set under its key.
 */
export function kubeconformSets(sets: Record<string, readonly unknown[]>): Record<string, SchemaFailure[]> {
  const bin = makeVar('KUBECONFORM');
  const schemas = makeVar('SCHEMAS');
  if (!existsSync(bin) || !existsSync(`${schemas}/.complete`))
    throw new Error(`kubeconform or its schemas are missing (${bin}, ${schemas}): run make tools`);
  const dir = mkdtempSync(join(tmpdir(), 'kubeconform-'));
  try {
    const files = Object.entries(sets).map(([key, objects]) => {
      const file = join(dir, `${key}.yaml`);
      writeFileSync(file, objects.map((o) => stringify(o)).join('---\n'));
      return file;
    });
    const r = spawnSync(
      bin,
      [
        '-strict',
        '-output',
        'json',
        '-kubernetes-version',
        makeVar('SCHEMA_K8S_VERSION'),
        '-schema-location',
        `${schemas}/kubernetes/{{ .NormalizedKubernetesVersion }}-local{{ .StrictSuffix }}/{{ .ResourceKind }}{{ .KindSuffix }}.json`,
        '-schema-location',
        `${schemas}/crds/{{ .Group }}/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json`,
        ...files,
      ],
      { encoding: 'utf8', timeout: 60_000 },
    );
    const report = JSON.parse(r.stdout || '{"resources":[]}') as {
      resources: (SchemaFailure & { filename: string })[];
    };
    if (r.status !== 0 && report.resources.length === 0) throw new Error(`kubeconform failed: ${r.stderr}`);
    const out: Record<string, SchemaFailure[]> = Object.fromEntries(Object.keys(sets).map((k) => [k, []]));
    for (const { filename, ...failure } of report.resources.filter((x) => x.status !== 'statusValid'))
      out[basename(filename, '.yaml')]!.push(failure);
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

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
  command?: string[];
  args?: string[];
  env?: { name: string; value?: string }[];
  envFrom?: { configMapRef?: { name: string } }[];
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  ports?: { name?: string; containerPort: number }[];
  restartPolicy?: string;
  startupProbe?: Probe;
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  securityContext?: SecurityContext;
  volumeMounts?: { name: string; mountPath: string }[];
}

/** A probe: HTTP, TCP, gRPC or exec. */
export interface Probe {
  httpGet?: { path: string; port: string | number };
  tcpSocket?: { port: string | number };
  grpc?: { port: number };
  exec?: { command: string[] };
  periodSeconds?: number;
  timeoutSeconds?: number;
  failureThreshold?: number;
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
  return kustomize(ARM_TABLE[arm].overlay);
}

/** Every pod the objects will create (Deployment and Job templates, and bare Pods). */
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
    } else if (o.kind === 'Deployment' || o.kind === 'Job') {
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

/** Every container port a pod's regular containers declare by name (init containers' names are not resolvable everywhere). */
function regularPortNames(pod: PodView): Set<string> {
  return new Set(pod.spec.containers.flatMap((c) => (c.ports ?? []).flatMap((p) => (p.name ? [p.name] : []))));
}

/**
 * Every reference to a container port *by name* that no regular container of the pods it points at declares,
 * one line each: Service targetPorts, PodMonitor ports, NetworkPolicy ports and probe ports. A name only a
 * native sidecar (an init container) declares reaches EndpointSlices only from Kubernetes 1.33, Istio's
 * inbound listeners only from 1.28.5/1.29.1, and some CNIs' NetworkPolicy never: such references must be numbers.
 */
export function portReferenceProblems(objects: readonly K8sObject[]): string[] {
  const all = pods([...objects]);
  const problems: string[] = [];
  const check = (where: string, name: unknown, targets: PodView[]): void => {
    if (typeof name !== 'string') return;
    for (const p of targets)
      if (!regularPortNames(p).has(name))
        problems.push(`${where} names port "${name}", which no regular container of ${p.owner.metadata.name} declares`);
  };
  for (const o of objects) {
    const spec = (o.spec ?? {}) as Record<string, unknown>;
    if (o.kind === 'Service') {
      const selected = all.filter((p) => selects((spec['selector'] as Record<string, string>) ?? {}, p.labels));
      for (const port of (spec['ports'] as { targetPort?: unknown }[]) ?? [])
        check(`Service ${o.metadata.name}`, port.targetPort, selected);
    }
    if (o.kind === 'PodMonitor') {
      const sel = (spec['selector'] as { matchLabels?: Record<string, string> }).matchLabels ?? {};
      const selected = all.filter((p) => selects(sel, p.labels));
      for (const ep of (spec['podMetricsEndpoints'] as { port?: unknown; targetPort?: unknown }[]) ?? []) {
        check(`PodMonitor ${o.metadata.name}`, ep.port, selected);
        check(`PodMonitor ${o.metadata.name}`, ep.targetPort, selected);
      }
    }
    if (o.kind === 'NetworkPolicy') {
      const sel = (spec['podSelector'] as { matchLabels?: Record<string, string> }).matchLabels ?? {};
      const selected = all.filter((p) => selects(sel, p.labels));
      for (const rule of (spec['ingress'] as { ports?: { port?: unknown }[] }[]) ?? [])
        for (const port of rule.ports ?? []) check(`NetworkPolicy ${o.metadata.name}`, port.port, selected);
    }
  }
  for (const p of all)
    for (const c of containers(p))
      for (const probe of [c.startupProbe, c.readinessProbe, c.livenessProbe])
        check(`${p.owner.metadata.name}/${c.name} probe`, probe?.httpGet?.port ?? probe?.tcpSocket?.port, [p]);
  return problems;
}
