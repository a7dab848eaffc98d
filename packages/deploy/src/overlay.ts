// The kustomization `make render` and `make deploy-*` apply: an arm's overlay as it is, plus what the make
// variables ask for (images, monitoring, the model's source, an Istio revision, the mTLS mode). Everything is
// expressed as kustomize fields on top of the committed overlay, so `kubectl kustomize` renders it and the
// tests validate exactly what is applied.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { stringify } from 'yaml';
import { ARMS, type Arm } from './arms.js';
import { DeployError } from './errors.js';

/** The images the manifests name (components/images), in the order the Makefile builds them. */
export const IMAGE_NAMES = ['iris-api', 'model-loader', 'cb-sidecar', 'iris-client'] as const;
/** One of the four images. */
export type ImageName = (typeof IMAGE_NAMES)[number];

/** What the wrapper adds to an arm's overlay. Unset fields leave the overlay's own value. */
export interface OverlayOptions {
  readonly arm: Arm;
  /** The registry and tag the overlay names by default (components/images). */
  readonly defaultRegistry: string;
  /** Full image references (registry/name:tag) to use instead of the defaults. */
  readonly images?: Partial<Record<ImageName, string>>;
  /** Add components/monitoring (PodMonitors, PrometheusRule, dashboards). */
  readonly monitoring?: boolean;
  /** Labels for the PodMonitors and the PrometheusRule, e.g. release=kube-prometheus-stack. */
  readonly monitoringLabels?: Readonly<Record<string, string>>;
  /** The namespace Prometheus scrapes from (the sidecar arms' NetworkPolicy admits metrics from it). */
  readonly monitoringNamespace?: string;
  readonly modelSource?: string;
  readonly modelSha256?: string;
  readonly modelRequired?: boolean;
  /** Label the namespace istio.io/rev=<revision> instead of istio-injection=enabled. */
  readonly istioRevision?: string;
  readonly mtlsMode?: 'PERMISSIVE' | 'STRICT';
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const LABEL_KEY = /^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/;
const IMAGE_REF = /^[a-z0-9][a-z0-9._\-/:]*:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

/**
 * Every problem with the options, one line each (empty when they are valid).
 */
export function overlayProblems(o: OverlayOptions): string[] {
  const problems: string[] = [];
  for (const [name, ref] of Object.entries(o.images ?? {}))
    if (!IMAGE_REF.test(ref)) problems.push(`image ${name}: "${ref}" is not registry/name:tag`);
  for (const [k, v] of Object.entries(o.monitoringLabels ?? {})) {
    if (!LABEL_KEY.test(k)) problems.push(`monitoring label "${k}" is not a valid label key`);
    if (!LABEL_VALUE.test(v)) problems.push(`monitoring label ${k}="${v}" is not a valid label value`);
  }
  if (o.monitoringNamespace !== undefined && !DNS_LABEL.test(o.monitoringNamespace))
    problems.push(`monitoring namespace "${o.monitoringNamespace}" is not a namespace name`);
  if (o.modelSource !== undefined && o.modelSource !== '' && !/^(gs|https?|file):\/\/\S+$/.test(o.modelSource))
    problems.push(`model source "${o.modelSource}" is not a gs://, http(s):// or file:// URI`);
  if (o.modelSha256 !== undefined && o.modelSha256 !== '' && !/^[0-9a-fA-F]{64}$/.test(o.modelSha256))
    problems.push(`model sha256 "${o.modelSha256}" is not 64 hex digits`);
  if (o.istioRevision !== undefined && !DNS_LABEL.test(o.istioRevision))
    problems.push(`Istio revision "${o.istioRevision}" is not a revision name (lower case, digits, -)`);
  return problems;
}

/** The wrapper kustomization for `o`, as a plain object, with paths relative to `outDir` (repository root `root`). */
export function overlayKustomization(o: OverlayOptions, root: string, outDir: string): Record<string, unknown> {
  const problems = overlayProblems(o);
  if (problems.length > 0) throw new DeployError('DEPLOY_USAGE', problems);
  const rel = (p: string): string => relative(outDir, join(root, p)) || '.';
  const arm = ARMS[o.arm];
  const k: Record<string, unknown> = {
    apiVersion: 'kustomize.config.k8s.io/v1beta1',
    kind: 'Kustomization',
    // The overlay's own namespace, so what the components below add lands beside the rest.
    namespace: arm.namespace,
    resources: [rel(arm.overlay)],
  };
  if (o.monitoring) k['components'] = [rel('manifests/components/monitoring')];

  const images = IMAGE_NAMES.flatMap((name) => {
    const ref = o.images?.[name];
    if (!ref) return [];
    const at = ref.lastIndexOf(':');
    return [{ name: `${o.defaultRegistry}/${name}`, newName: ref.slice(0, at), newTag: ref.slice(at + 1) }];
  });
  if (images.length > 0) k['images'] = images;

  const literals = [
    ...(o.modelSource !== undefined ? [`MODEL_SOURCE=${o.modelSource}`] : []),
    ...(o.modelSha256 !== undefined ? [`MODEL_SHA256=${o.modelSha256.toLowerCase()}`] : []),
    ...(o.modelRequired !== undefined ? [`MODEL_REQUIRED=${o.modelRequired}`] : []),
  ];
  if (literals.length > 0) k['configMapGenerator'] = [{ name: 'model-source', behavior: 'merge', literals }];

  const patches: unknown[] = [];
  if (o.istioRevision !== undefined) {
    patches.push({
      target: { kind: 'Namespace' },
      patch: ops([
        { op: 'remove', path: '/metadata/labels/istio-injection' },
        { op: 'add', path: '/metadata/labels/istio.io~1rev', value: o.istioRevision },
      ]),
    });
  }
  if (o.mtlsMode !== undefined) {
    patches.push({
      target: { kind: 'PeerAuthentication', name: 'default' },
      patch: ops([{ op: 'replace', path: '/spec/mtls/mode', value: o.mtlsMode }]),
    });
  }
  const labels = Object.entries(o.monitoringLabels ?? {});
  if (o.monitoring && labels.length > 0) {
    for (const kind of ['PodMonitor', 'PrometheusRule']) {
      // A strategic merge: it adds the labels whether or not the object has labels already.
      patches.push({
        target: { group: 'monitoring.coreos.com', kind },
        patch: stringify({
          apiVersion: 'monitoring.coreos.com/v1',
          kind,
          metadata: { name: 'any', labels: Object.fromEntries(labels) },
        }),
      });
    }
  }
  if (o.monitoringNamespace !== undefined && o.arm !== 'istio') {
    patches.push({
      target: { kind: 'NetworkPolicy' },
      patch: ops([
        {
          op: 'replace',
          path: '/spec/ingress/1/from/0/namespaceSelector/matchLabels/kubernetes.io~1metadata.name',
          value: o.monitoringNamespace,
        },
      ]),
    });
  }
  if (patches.length > 0) k['patches'] = patches;
  return k;
}

/** Writes the wrapper to `<outDir>/kustomization.yaml` and returns its path. */
export function writeOverlay(o: OverlayOptions, root: string, outDir: string): string {
  const k = overlayKustomization(o, root, outDir);
  mkdirSync(outDir, { recursive: true });
  const path = join(outDir, 'kustomization.yaml');
  const header = `# Generated by cb-deploy overlay (make render / make deploy-*): ${o.arm} arm with the make variables\n# applied. Do not edit: change the variables, or the overlay in ${ARMS[o.arm].overlay}.\n`;
  writeFileSync(path, header + stringify(k, { lineWidth: 0 }));
  return path;
}

/** Parses `key=value,key2=value2` (the MONITORING_LABELS form) into a map. */
export function parseLabels(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of text.split(',').filter(Boolean)) {
    const at = pair.indexOf('=');
    if (at <= 0) throw new DeployError('DEPLOY_USAGE', [`"${pair}" is not key=value`]);
    out[pair.slice(0, at)] = pair.slice(at + 1);
  }
  return out;
}

function ops(list: unknown[]): string {
  return stringify(list, { lineWidth: 0 });
}
