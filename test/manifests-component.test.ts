// components/cb-sidecar on a second model that is not iris (test/fixtures/cb-sidecar-component: a "sentiment"
// Deployment on port 9000 behind Service sentiment:80), rendered by the real kubectl kustomize and validated by
// kubeconform: the parameters land where they must, and misuse fails with kustomize's own message.
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { parse } from 'yaml';
import {
  ROOT,
  containers,
  env,
  find,
  kubeconform,
  kustomize,
  portReferenceProblems,
  pods,
  selects,
} from './manifests-render.js';

const FIXTURE = 'test/fixtures/cb-sidecar-component';
const objects = kustomize(FIXTURE);
const pod = pods(objects).find((p) => p.owner.metadata.name === 'sentiment')!;
const sidecar = containers(pod).find((c) => c.name === 'cb-sidecar')!;
const params = parse(readFileSync(join(ROOT, FIXTURE, 'cb-sidecar-params.yaml'), 'utf8')) as {
  spec: { container: string; appPort: number; port: number; adminPort: number };
};

it('validates against the Kubernetes 1.30 and Istio 1.22 schemas and drops the parameters object', () => {
  expect(kubeconform(objects)).toEqual([]);
  expect(objects.map((o) => o.kind).sort()).toEqual([
    'ConfigMap',
    'Deployment',
    'NetworkPolicy',
    'Service',
    'VirtualService',
  ]);
});

it('puts the sidecar first, as a native sidecar, forwarding to the model port on loopback', () => {
  expect(pod.spec.initContainers?.map((c) => c.name)).toEqual(['cb-sidecar']);
  expect(sidecar.restartPolicy).toBe('Always');
  expect(env(sidecar, 'CB_UPSTREAM')).toBe(`http://127.0.0.1:${params.spec.appPort}`);
  expect(env(sidecar, 'CB_LISTEN')).toBe(`0.0.0.0:${params.spec.port}`);
  expect(env(sidecar, 'CB_ADMIN_PORT')).toBe(String(params.spec.adminPort));
  expect(sidecar.ports?.map((p) => p.containerPort)).toEqual([params.spec.port, params.spec.adminPort]);
  for (const probe of [sidecar.startupProbe, sidecar.readinessProbe, sidecar.livenessProbe])
    expect(probe?.httpGet?.port).toBe(params.spec.adminPort);
  expect(pod.annotations).toMatchObject({
    'kubectl.kubernetes.io/default-container': params.spec.container,
    'traffic.sidecar.istio.io/excludeInboundPorts': String(params.spec.adminPort),
  });
  // The model container is left as it was.
  expect(containers(pod).find((c) => c.name === 'model')?.ports).toEqual([{ name: 'http', containerPort: 9000 }]);
});

it('retargets the Service at the sidecar by number, and names no port only an init container declares', () => {
  const svc = find(objects, 'Service', 'sentiment').spec as { ports: { port: number; targetPort: unknown }[] };
  expect(svc.ports).toEqual([expect.objectContaining({ port: 80, targetPort: params.spec.port })]);
  expect(portReferenceProblems(objects)).toEqual([]);
});

it("admits only the sidecar's port from anywhere, to the Deployment's pods", () => {
  const np = find(objects, 'NetworkPolicy', 'sentiment-cb-sidecar').spec as {
    podSelector: { matchLabels: Record<string, string> };
    ingress: { from?: unknown[]; ports: { port: number }[] }[];
  };
  expect(selects(np.podSelector.matchLabels, pod.labels)).toBe(true);
  expect(np.ingress.filter((r) => !r.from).flatMap((r) => r.ports.map((p) => p.port))).toEqual([params.spec.port]);
  expect(np.ingress.flatMap((r) => r.ports.map((p) => p.port))).toContain(params.spec.adminPort);
  expect(np.ingress.flatMap((r) => r.ports.map((p) => p.port))).not.toContain(params.spec.appPort);
});

it("carries the mesh's no-retries VirtualService for the model's Service", () => {
  expect(find(objects, 'VirtualService', 'sentiment').spec).toEqual({
    hosts: ['sentiment'],
    http: [{ route: [{ destination: { host: 'sentiment', port: { number: 80 } } }], retries: { attempts: 0 } }],
  });
});

it("mounts the limits the kustomization generated (the model's own cb-sidecar.yaml)", () => {
  const volume = pod.spec.volumes?.find((v) => v.name === 'cb-sidecar-config');
  const cm = find(objects, 'ConfigMap', volume?.configMap?.name ?? '');
  expect(cm.data?.['cb-sidecar.yaml']).toBe(readFileSync(join(ROOT, FIXTURE, 'cb-sidecar.yaml'), 'utf8'));
});

describe('misuse', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'cb-component-'));
    cpSync(join(ROOT, FIXTURE), dir, { recursive: true });
    const k = readFileSync(join(dir, 'kustomization.yaml'), 'utf8');
    writeFileSync(
      join(dir, 'kustomization.yaml'),
      k.replace('../../../manifests', relative(dir, join(ROOT, 'manifests'))),
    );
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  function render(): { code: number | null; stderr: string } {
    const r = spawnSync('kubectl', ['kustomize', dir], { encoding: 'utf8' });
    return { code: r.status, stderr: r.stderr };
  }

  it('renders the copy as it is (the check below can pass)', () => {
    expect(render().code).toBe(0);
  });

  it('stops with "multiple matches" when the kustomization holds two Deployments', () => {
    const second = readFileSync(join(dir, 'deployment.yaml'), 'utf8').replace('name: sentiment\n', 'name: other\n');
    writeFileSync(join(dir, 'other.yaml'), second);
    const k = readFileSync(join(dir, 'kustomization.yaml'), 'utf8');
    writeFileSync(
      join(dir, 'kustomization.yaml'),
      k.replace('  - deployment.yaml\n', '  - deployment.yaml\n  - other.yaml\n'),
    );
    expect(render()).toEqual({ code: 1, stderr: expect.stringContaining('multiple matches for selector') });
  });

  it('stops when the parameters are missing', () => {
    const k = readFileSync(join(dir, 'kustomization.yaml'), 'utf8');
    writeFileSync(join(dir, 'kustomization.yaml'), k.replace('  - cb-sidecar-params.yaml\n', ''));
    expect(render()).toEqual({ code: 1, stderr: expect.stringMatching(/SidecarParams|cb-sidecar/) });
  });
});

it('is the component the iris arms use too, with the parameters params.example.yaml documents', () => {
  const overlay = readFileSync(join(ROOT, 'manifests/overlays/sidecar/kustomization.yaml'), 'utf8');
  expect(overlay).toContain('../../components/cb-sidecar');
  const keys = (file: string): string[] =>
    Object.keys((parse(readFileSync(join(ROOT, file), 'utf8')) as { spec: object }).spec).sort();
  expect(keys('manifests/components/cb-sidecar/params.example.yaml')).toEqual(
    keys(`${FIXTURE}/cb-sidecar-params.yaml`),
  );
  expect(keys('manifests/overlays/sidecar/cb-sidecar-params.yaml')).toEqual(keys(`${FIXTURE}/cb-sidecar-params.yaml`));
});

describe('the optional HPA example (components/hpa-inflight on the sidecar arm, with monitoring)', () => {
  const hpaObjects = kustomize('test/fixtures/hpa-inflight');
  const hpa = find(hpaObjects, 'HorizontalPodAutoscaler', 'iris-svc').spec as {
    scaleTargetRef: { kind: string; name: string };
    minReplicas: number;
    metrics: { type: string; pods: { metric: { name: string }; target: { averageValue: string } } }[];
  };

  it('validates against the Kubernetes 1.30 schemas', () => {
    expect(kubeconform(hpaObjects)).toEqual([]);
  });

  it("scales the model Deployment on cb-sidecar's in-flight metric, from the A/B's 3 replicas up", () => {
    expect(hpa.scaleTargetRef).toMatchObject({ kind: 'Deployment', name: 'iris-svc' });
    expect(hpa.minReplicas).toBe(3);
    expect(hpa.metrics).toEqual([expect.objectContaining({ type: 'Pods' })]);
    expect(hpa.metrics[0]!.pods.metric.name).toBe('cb_inflight_requests');
    // The HPA owns the replica count.
    expect(find(hpaObjects, 'Deployment', 'iris-svc').spec).not.toHaveProperty('replicas');
  });

  it("scales out below the sidecar's static concurrency limit", () => {
    const cm = hpaObjects.find((o) => o.kind === 'ConfigMap' && o.metadata.name.startsWith('cb-sidecar-config'));
    const limit = (
      parse(cm?.data?.['cb-sidecar.yaml'] ?? '') as {
        trafficPolicy: { connectionPool: { tcp: { maxConnections: number } } };
      }
    ).trafficPolicy.connectionPool.tcp.maxConnections;
    expect(Number(hpa.metrics[0]!.pods.target.averageValue)).toBeLessThan(limit);
  });

  it('serves that metric through the prometheus-adapter rule it ships, from a series the PodMonitor scrapes', () => {
    const values = parse(
      readFileSync(join(ROOT, 'manifests/components/hpa-inflight/prometheus-adapter-values.yaml'), 'utf8'),
    ) as { rules: { custom: { seriesQuery: string; name: { as: string } }[] } };
    const rule = values.rules.custom[0]!;
    expect(rule.name.as).toBe(hpa.metrics[0]!.pods.metric.name);
    expect(rule.seriesQuery).toMatch(/^cb_inflight_requests\{/);
    expect(hpaObjects.some((o) => o.kind === 'PodMonitor' && o.metadata.name === 'cb-sidecar')).toBe(true);
  });
});
