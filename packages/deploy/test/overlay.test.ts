// The wrapper make deploy-* applies, written by writeOverlay, rendered by the real kubectl kustomize and
// validated by kubeconform against the pinned schemas: each make variable changes what it should, and only that.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { ARMS, type Arm } from '../src/arms.js';
import { DeployError } from '../src/errors.js';
import { overlayProblems, parseLabels, writeOverlay, type OverlayOptions } from '../src/overlay.js';
import {
  ROOT,
  containers,
  find,
  kubeconformSets,
  kustomize,
  portReferenceProblems,
  pods,
  renderArm,
  type K8sObject,
} from '../../../test/manifests-render.js';

const DEFAULT_REGISTRY = 'ghcr.io/infer-cb';
const dir = mkdtempSync(join(tmpdir(), 'overlay-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
function render(o: Omit<OverlayOptions, 'defaultRegistry'>): K8sObject[] {
  const out = join(dir, `w${n++}`);
  writeOverlay({ defaultRegistry: DEFAULT_REGISTRY, ...o }, ROOT, out);
  return kustomize(out);
}

const arms = Object.keys(ARMS) as Arm[];
const monitored = Object.fromEntries(
  arms.map((arm) => [arm, render({ arm, monitoring: true, monitoringLabels: { release: 'kube-prometheus-stack' } })]),
) as Record<Arm, K8sObject[]>;
const failures = kubeconformSets(monitored);

it.each(arms)('renders the %s overlay unchanged when no variable is set', (arm) => {
  expect(render({ arm })).toEqual(renderArm(arm));
});

describe.each(arms)('MONITORING=1 on the %s arm', (arm) => {
  const objects = monitored[arm];

  it('validates against the pinned schemas (prometheus-operator 0.79 included)', () => {
    expect(failures[arm]).toEqual([]);
  });

  it('adds the PodMonitors and the PrometheusRule with the selector label, and the dashboards', () => {
    const monitoring = objects.filter((o) => o.apiVersion === 'monitoring.coreos.com/v1');
    expect(monitoring.map((o) => `${o.kind}/${o.metadata.name}`).sort()).toEqual([
      'PodMonitor/cb-sidecar',
      'PodMonitor/envoy-stats',
      'PodMonitor/iris-api',
      'PrometheusRule/circuit-breaker',
    ]);
    for (const o of monitoring) {
      expect(o.metadata.labels).toMatchObject({ release: 'kube-prometheus-stack' });
      expect(o.metadata.namespace).toBe(ARMS[arm].namespace);
    }
    const boards = objects.filter((o) => o.metadata.labels?.['grafana_dashboard'] === '1');
    expect(
      boards
        .map((b) => Object.keys(b.data ?? {}))
        .flat()
        .sort(),
    ).toEqual(['cb-sidecar.json', 'circuit-breaker-ab.json']);
  });

  it("scrapes the API on the Service's target port, by number", () => {
    const target = (find(objects, 'Service', 'iris-svc').spec as { ports: { targetPort: number }[] }).ports[0]!
      .targetPort;
    const pm = find(objects, 'PodMonitor', 'iris-api').spec as { podMetricsEndpoints: { portNumber: number }[] };
    expect(pm.podMetricsEndpoints[0]!.portNumber).toBe(target);
    expect(target).toBe(arm === 'istio' ? 8000 : 8080);
    expect(portReferenceProblems(objects)).toEqual([]);
  });

  it('asks Envoy for circuit-breaker stats in the callers and the model pods', () => {
    for (const p of pods(objects)) {
      const config = parse(p.annotations['proxy.istio.io/config'] ?? '') as {
        proxyStatsMatcher?: { inclusionRegexps?: string[] };
      } | null;
      expect(config?.proxyStatsMatcher?.inclusionRegexps).toEqual(
        expect.arrayContaining(['.*circuit_breakers.*', '.*upstream_rq_pending.*']),
      );
    }
  });
});

it('labels the namespace with an Istio revision instead of istio-injection', () => {
  const ns = find(render({ arm: 'sidecar', istioRevision: '1-30-3' }), 'Namespace', ARMS.sidecar.namespace);
  expect(ns.metadata.labels).toMatchObject({ 'istio.io/rev': '1-30-3' });
  expect(ns.metadata.labels).not.toHaveProperty('istio-injection');
});

it('sets one mTLS mode, the same in every arm', () => {
  for (const arm of arms)
    expect(find(render({ arm, mtlsMode: 'STRICT' }), 'PeerAuthentication', 'default').spec).toEqual({
      mtls: { mode: 'STRICT' },
    });
});

it('points the loader at another model, or at none', () => {
  const source = (objects: K8sObject[]): Record<string, string> =>
    objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name.startsWith('model-source'))?.data ?? {};
  expect(
    source(render({ arm: 'istio', modelSource: 'https://models.example/iris.onnx', modelSha256: 'AB'.repeat(32) })),
  ).toEqual({
    MODEL_SOURCE: 'https://models.example/iris.onnx',
    MODEL_SHA256: 'ab'.repeat(32),
    MODEL_REQUIRED: 'false',
  });
  expect(source(render({ arm: 'istio', modelSource: '', modelRequired: true }))).toMatchObject({
    MODEL_SOURCE: '',
    MODEL_REQUIRED: 'true',
  });
});

it('runs the images a registry and tag name', () => {
  const images = {
    'iris-api': 'registry.example/me/iris-api:9.9.9',
    'model-loader': 'registry.example/me/model-loader:9.9.9',
    'cb-sidecar': 'registry.example/me/cb-sidecar:9.9.9',
    'iris-client': 'registry.example/me/iris-client:9.9.9',
  };
  const used = new Set(pods(render({ arm: 'sidecar', images })).flatMap((p) => containers(p).map((c) => c.image)));
  expect([...used].sort()).toEqual(Object.values(images).sort());
});

it("admits the metrics scrape from another monitoring namespace in the sidecar arms' NetworkPolicy", () => {
  const np = find(
    render({ arm: 'sidecar', monitoringNamespace: 'observability' }),
    'NetworkPolicy',
    'iris-svc-cb-sidecar',
  );
  expect(JSON.stringify(np.spec)).toContain('"kubernetes.io/metadata.name":"observability"');
});

it('lists every bad option at once', () => {
  const o: OverlayOptions = {
    arm: 'istio',
    defaultRegistry: DEFAULT_REGISTRY,
    images: { 'iris-api': 'no-tag' },
    monitoringLabels: { 'bad key!': 'x' },
    modelSource: 'ftp://x',
    modelSha256: 'abc',
    istioRevision: 'Not_A_Revision',
  };
  expect(overlayProblems(o)).toHaveLength(5);
  expect(() => writeOverlay(o, ROOT, join(dir, 'bad'))).toThrow(DeployError);
});

it('reads MONITORING_LABELS as key=value pairs', () => {
  expect(parseLabels('release=kps,team=ml')).toEqual({ release: 'kps', team: 'ml' });
  expect(() => parseLabels('release')).toThrow(/"release" is not key=value/);
});
