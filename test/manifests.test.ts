// The Kubernetes + Istio A/B manifests, verified without a cluster: every overlay rendered by the real
// `kubectl kustomize`, every object validated by the real kubeconform against Kubernetes 1.30 and Istio 1.22
// schemas (the oldest versions the arms support), then what schemas cannot see.
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { callersJob } from '@infer-cb/deploy';
import { runCli } from '@infer-cb/policy';
import {
  ARMS,
  ROOT,
  containers,
  env,
  find,
  kubeconform,
  kubeconformSets,
  kustomize,
  portReferenceProblems,
  pods,
  renderArm,
  selects,
  type Arm,
  type Container,
  type K8sObject,
  type PodView,
} from './manifests-render.js';

/** Paths each of our programs serves for probes (API: packages/api/src/app.ts; sidecar admin: packages/proxy/src/admin.ts). */
const SERVED = { api: ['/health', '/ready'], sidecar: ['/healthz', '/readyz'] } as const;
/** How long cb-sidecar's /readyz waits for the model's port (packages/proxy/src/admin.ts READY_PROBE_TIMEOUT_MS). */
const READY_CHECK_S = 1;

const arms = Object.keys(ARMS) as Arm[];
const sidecarArms = arms.filter((a) => a !== 'istio');
const rendered = Object.fromEntries(arms.map((a) => [a, renderArm(a)])) as Record<Arm, K8sObject[]>;
const schemaFailures = kubeconformSets(rendered);

function podsOf(arm: Arm): PodView[] {
  return pods(rendered[arm]);
}

function apiPod(arm: Arm): PodView {
  const p = podsOf(arm).find((x) => x.labels['app'] === 'iris-svc');
  if (!p) throw new Error(`${arm}: no iris-svc pod`);
  return p;
}

function container(pod: PodView, name: string): Container {
  const c = containers(pod).find((x) => x.name === name);
  if (!c) throw new Error(`no container ${name} in ${pod.owner.metadata.name}`);
  return c;
}

function trafficPolicyOf(o: K8sObject): unknown {
  return (o.spec as { trafficPolicy?: unknown }).trafficPolicy;
}

function sidecarConfig(arm: Arm): { trafficPolicy: unknown; sidecar: { concurrency: { mode: string } } } {
  const cm = rendered[arm].find((o) => o.kind === 'ConfigMap' && o.metadata.name.startsWith('cb-sidecar-config'));
  return parse(cm?.data?.['cb-sidecar.yaml'] ?? '') as ReturnType<typeof sidecarConfig>;
}

function makeDryRun(target: string, vars: string[] = []): string {
  return execFileSync('make', ['-n', '--no-print-directory', target, ...vars], {
    cwd: ROOT,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** Mebibytes in a Kubernetes memory quantity (Mi, Gi, M, G or bytes). */
function mebibytes(q: string): number {
  const m = /^(\d+(?:\.\d+)?)(Mi|Gi|M|G)?$/.exec(q);
  if (!m) throw new Error(`cannot read memory quantity ${q}`);
  const n = Number(m[1]);
  return { Mi: n, Gi: n * 1024, M: (n * 1e6) / 2 ** 20, G: (n * 1e9) / 2 ** 20, '': n / 2 ** 20 }[m[2] ?? '']!;
}

/** The NODE_OPTIONS a container runs with: its own env, else the image's (docker/*.Dockerfile ENV). */
function nodeOptions(c: Container): string | undefined {
  return env(c, 'NODE_OPTIONS');
}

describe.each(arms)('overlay %s', (arm) => {
  const objects = rendered[arm];

  it('validates every rendered object against the Kubernetes 1.30 and Istio 1.22 schemas (strict)', () => {
    expect(schemaFailures[arm]).toEqual([]);
  });

  it('puts every object in the arm namespace, which is in the mesh, labelled with the arm', () => {
    const ns = find(objects, 'Namespace', ARMS[arm]);
    expect(ns.metadata.labels).toMatchObject({ 'istio-injection': 'enabled', 'ab-arm': arm });
    for (const o of objects.filter((x) => x.kind !== 'Namespace')) expect(o.metadata.namespace).toBe(ARMS[arm]);
    for (const p of podsOf(arm)) expect(p.labels['ab-arm']).toBe(arm);
  });

  it('runs three replicas whose model gets 500m and 300Mi, reserved (requests = limits), as in every arm', () => {
    expect((find(objects, 'Deployment', 'iris-svc').spec as { replicas: number }).replicas).toBe(3);
    const api = container(apiPod(arm), 'iris-api');
    const model = { cpu: '500m', memory: '300Mi' };
    expect(api.resources).toEqual({ requests: model, limits: model });
  });

  it('points every Service at a port number its pods declare', () => {
    for (const svc of objects.filter((o) => o.kind === 'Service')) {
      const spec = svc.spec as { selector: Record<string, string>; ports: { targetPort: unknown }[] };
      const selected = podsOf(arm).filter((p) => selects(spec.selector, p.labels));
      expect(selected.length).toBeGreaterThan(0);
      for (const port of spec.ports) {
        expect(typeof port.targetPort).toBe('number');
        for (const p of selected)
          expect(containers(p).flatMap((c) => (c.ports ?? []).map((x) => x.containerPort))).toContain(port.targetPort);
      }
    }
    expect((find(objects, 'Service', 'iris-svc').spec as { ports: unknown[] }).ports).toEqual([
      expect.objectContaining({ name: 'http', port: 8000 }),
    ]);
  });

  it('names no port that only an init container declares (Service, PodMonitor, NetworkPolicy, probes)', () => {
    expect(portReferenceProblems(objects)).toEqual([]);
  });

  it('probes over HTTP only (no probe starts a process), on paths our programs serve', () => {
    for (const pod of podsOf(arm)) {
      for (const c of containers(pod)) {
        for (const probe of [c.startupProbe, c.readinessProbe, c.livenessProbe]) {
          if (!probe) continue;
          expect({ where: c.name, exec: probe.exec }).toEqual({ where: c.name, exec: undefined });
          expect(probe.httpGet).toBeDefined();
          expect(c.name === 'cb-sidecar' ? SERVED.sidecar : SERVED.api).toContain(probe.httpGet?.path);
        }
      }
    }
  });

  it('gives readiness and liveness probes time and misses to survive load', () => {
    for (const pod of podsOf(arm))
      for (const c of containers(pod))
        for (const probe of [c.readinessProbe, c.livenessProbe].filter(Boolean)) {
          expect(probe!.timeoutSeconds).toBeGreaterThan(READY_CHECK_S);
          expect(probe!.failureThreshold).toBeGreaterThanOrEqual(3);
        }
  });

  it('caps the V8 heap of every Node container at half its memory limit or less', () => {
    const nodeImages = /\/(iris-api|model-loader|cb-sidecar):/;
    const checked = podsOf(arm).flatMap((p) => containers(p).filter((c) => nodeImages.test(c.image)));
    expect(checked.length).toBeGreaterThanOrEqual(2);
    for (const c of checked) {
      const cap = Number(/--max-old-space-size=(\d+)/.exec(nodeOptions(c) ?? '')?.[1]);
      const limit = mebibytes(c.resources?.limits?.['memory'] ?? '0');
      expect({ container: c.name, ratio: cap / limit <= 0.5 }).toEqual({ container: c.name, ratio: true });
    }
  });

  it('fetches the model named in one ConfigMap, with its sha256, and falls back to the baked-in model', () => {
    const pod = apiPod(arm);
    const loader = container(pod, 'model-loader');
    const ref = loader.envFrom?.[0]?.configMapRef?.name ?? '';
    const source = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === ref)?.data ?? {};
    expect(source['MODEL_SOURCE']).toMatch(/^(gs|https?):\/\//);
    const shipped = createHash('sha256')
      .update(readFileSync(join(ROOT, 'packages/api/models/iris_svc.onnx')))
      .digest('hex');
    expect(source['MODEL_SHA256']).toBe(shipped);
    expect(source['MODEL_REQUIRED']).toBe('false');
    const script = loader.args?.join('\n') ?? '';
    expect(loader.command).toEqual(['sh', '-c']);
    expect(script).toContain('--sha256 "$MODEL_SHA256"');
    expect(script).toContain(`--model-filepath ${env(container(pod, 'iris-api'), 'MODEL_FILEPATH')}`);
  });

  it('references only ConfigMaps and volumes that exist', () => {
    const names = new Set(objects.filter((o) => o.kind === 'ConfigMap').map((o) => o.metadata.name));
    for (const p of podsOf(arm)) {
      for (const v of p.spec.volumes ?? []) if (v.configMap) expect(names).toContain(v.configMap.name);
      for (const c of containers(p)) for (const e of c.envFrom ?? []) expect(names).toContain(e.configMapRef?.name);
      const volumes = new Set((p.spec.volumes ?? []).map((v) => v.name));
      for (const c of containers(p)) for (const m of c.volumeMounts ?? []) expect(volumes).toContain(m.name);
    }
  });

  it('ships no monitoring unless asked: no PodMonitor, PrometheusRule or dashboard ConfigMap', () => {
    expect(objects.filter((o) => o.apiVersion.startsWith('monitoring.coreos.com/'))).toEqual([]);
    expect(objects.filter((o) => o.metadata.labels?.['grafana_dashboard'])).toEqual([]);
  });

  it('keeps mesh retries off so 503s are measured, not retried', () => {
    const vs = find(objects, 'VirtualService', 'iris-svc').spec as {
      hosts: string[];
      http: { retries?: { attempts: number } }[];
    };
    expect(vs.hosts).toEqual(['iris-svc']);
    for (const route of vs.http) expect(route.retries?.attempts).toBe(0);
  });

  it('runs every container as non-root with a read-only root filesystem and no capabilities', () => {
    for (const pod of podsOf(arm)) {
      const podSc = pod.spec.securityContext ?? {};
      for (const c of containers(pod)) {
        const sc = { ...podSc, ...c.securityContext };
        const where = `${pod.owner.metadata.name}/${c.name}`;
        expect({ where, runAsNonRoot: sc.runAsNonRoot }).toEqual({ where, runAsNonRoot: true });
        expect(sc.runAsUser).toBeGreaterThan(0);
        expect({ where, ro: c.securityContext?.readOnlyRootFilesystem }).toEqual({ where, ro: true });
        expect({ where, ape: c.securityContext?.allowPrivilegeEscalation }).toEqual({ where, ape: false });
        expect(c.securityContext?.capabilities?.drop).toEqual(['ALL']);
        expect(c.securityContext?.capabilities?.add ?? []).toEqual([]);
        expect(sc.seccompProfile?.type).toBe('RuntimeDefault');
      }
    }
  });

  it('uses exactly the images the Makefile builds', () => {
    const built = [...makeDryRun('build_all').matchAll(/-t (\S+)/g)].map((m) => m[1]);
    expect(built).toHaveLength(4);
    for (const image of new Set(podsOf(arm).flatMap((p) => containers(p).map((c) => c.image))))
      expect(built).toContain(image);
  });

  it('spreads the model pods over zones and nodes and lets drains take one at a time', () => {
    const pod = apiPod(arm);
    const spread = (pod.spec as { topologySpreadConstraints?: { topologyKey: string }[] }).topologySpreadConstraints;
    expect(spread?.map((s) => s.topologyKey)).toEqual(['topology.kubernetes.io/zone', 'kubernetes.io/hostname']);
    const pdb = find(objects, 'PodDisruptionBudget', 'iris-svc').spec as {
      maxUnavailable: number;
      selector: { matchLabels: Record<string, string> };
    };
    expect(pdb.maxUnavailable).toBe(1);
    expect(selects(pdb.selector.matchLabels, pod.labels)).toBe(true);
  });

  it('has a callers Job: indexed, in the mesh, never retried, with the image PID 1 that ends on SIGTERM', () => {
    const job = find(objects, 'Job', 'callers');
    expect(job.spec).toMatchObject({ completionMode: 'Indexed', completions: 1, parallelism: 1, backoffLimit: 0 });
    const pod = podsOf(arm).find((p) => p.owner === job)!;
    expect(pod.spec).toMatchObject({ restartPolicy: 'Never' });
    const caller = container(pod, 'caller');
    expect(caller.image).toMatch(/\/iris-client:/);
    // No command: the image's CMD is the PID 1 that exits on SIGTERM (test/manifests-docker.test.ts runs it).
    expect(caller.command).toBeUndefined();
    expect(env(caller, 'BASE_URL')).toBe('http://iris-svc:8000');
  });

  it('renders the callers Job for N callers from the overlay, and it validates', () => {
    const job = callersJob(objects.map((o) => stringify(o)).join('---\n'), 4) as unknown as K8sObject;
    expect(job.spec).toMatchObject({ completionMode: 'Indexed', completions: 4, parallelism: 4 });
    expect(kubeconform([job])).toEqual([]);
  });
});

describe('the arms run the same policy', () => {
  it('runs one mTLS mode in every arm, stated in the namespace', () => {
    const modes = arms.map((a) => find(rendered[a], 'PeerAuthentication', 'default').spec);
    expect(modes[0]).toEqual({ mtls: { mode: 'PERMISSIVE' } });
    for (const m of modes) expect(m).toEqual(modes[0]);
  });

  it('runs no cb-sidecar in the istio arm, and the seed numbers in its DestinationRule and Sidecar', () => {
    const istio = rendered.istio;
    expect(podsOf('istio').flatMap((p) => containers(p).map((c) => c.name))).not.toContain('cb-sidecar');
    expect(istio.some((o) => o.kind === 'NetworkPolicy')).toBe(false);
    const pool = {
      tcp: { maxConnections: 100 },
      http: { http1MaxPendingRequests: 100, maxRequestsPerConnection: 100 },
    };
    expect(trafficPolicyOf(find(istio, 'DestinationRule', 'iris-svc'))).toMatchObject({
      connectionPool: pool,
      outlierDetection: expect.any(Object),
    });
    expect(find(istio, 'Sidecar', 'iris-svc').spec).toMatchObject({
      workloadSelector: { labels: { app: 'iris-svc' } },
      inboundConnectionPool: pool,
    });
  });

  it.each(sidecarArms)('has no DestinationRule limits or Sidecar in the %s arm', (arm) => {
    for (const dr of rendered[arm].filter((o) => o.kind === 'DestinationRule'))
      expect((trafficPolicyOf(dr) as { connectionPool?: unknown } | undefined)?.connectionPool).toBeUndefined();
    expect(rendered[arm].some((o) => o.kind === 'Sidecar')).toBe(false);
  });

  it('runs static limits in the sidecar arm and adaptive ones in the sidecar-adaptive arm', () => {
    expect(sidecarConfig('sidecar').sidecar.concurrency.mode).toBe('static');
    expect(sidecarConfig('sidecar-adaptive').sidecar.concurrency.mode).toBe('adaptive');
  });

  it.each([
    ['sidecar', 'static'],
    ['sidecar-adaptive', 'adaptive'],
  ] as const)(
    'runs in the %s arm exactly the %s limits make limits derives from the Istio arm DestinationRule',
    (arm, mode) => {
      // The one function the lab uses too (packages/policy): per pod, for the Deployment's replicas and one caller.
      const replicas = (find(rendered[arm], 'Deployment', 'iris-svc').spec as { replicas: number }).replicas;
      const derived = runCli([
        'limits',
        '--policy',
        'manifests/components/istio-circuit-breaker/destinationrule.yaml',
        '--replicas',
        String(replicas),
        '--callers',
        '1',
        '--mode',
        mode,
        '--overrides',
        'manifests/overlays/cb-sidecar-overrides.yaml',
      ]);
      expect(derived.code).toBe(0);
      const cm = rendered[arm].find((o) => o.kind === 'ConfigMap' && o.metadata.name.startsWith('cb-sidecar-config'));
      expect(cm?.data?.['cb-sidecar.yaml']).toBe(derived.stdout);
      // 100 in flight per caller over 3 replicas: 34 per pod.
      expect(sidecarConfig(arm).trafficPolicy).toMatchObject({ connectionPool: { tcp: { maxConnections: 34 } } });
      // Prometheus scrapes the API through the sidecar: its scrapes are served first, never shed for inference.
      expect(sidecarConfig(arm).sidecar).toMatchObject({
        priority: { rules: [{ pathPrefix: '/metrics', class: 'critical' }] },
      });
    },
  );

  it.each(sidecarArms)('gives the %s arm the same model CPU as the istio arm, the sidecar on top', (arm) => {
    const sidecar = container(apiPod(arm), 'cb-sidecar');
    expect(container(apiPod(arm), 'iris-api').resources).toEqual(container(apiPod('istio'), 'iris-api').resources);
    expect(sidecar.resources?.requests).toEqual({ cpu: '100m', memory: '160Mi' });
  });
});

describe.each(sidecarArms)('%s arm security and wiring', (arm) => {
  const pod = apiPod(arm);
  const sidecar = container(pod, 'cb-sidecar');
  const api = container(pod, 'iris-api');

  it('runs cb-sidecar as the first native sidecar, probed on its admin port, draining through the API preStop', () => {
    expect(pod.spec.initContainers?.map((c) => c.name)).toEqual(['cb-sidecar', 'model-loader']);
    expect(sidecar.restartPolicy).toBe('Always');
    expect(sidecar.readinessProbe?.httpGet).toEqual({ path: '/readyz', port: 9901 });
    expect(sidecar.livenessProbe?.httpGet).toEqual({ path: '/healthz', port: 9901 });
    expect(api).toMatchObject({ lifecycle: { preStop: { sleep: { seconds: 5 } } } });
  });

  it('binds the API to 127.0.0.1 so only the sidecar reaches it; its health reaches kubelet through /readyz', () => {
    expect(env(api, 'HOST')).toBe('127.0.0.1');
    expect(api.ports ?? []).toEqual([]);
    expect([api.startupProbe, api.readinessProbe, api.livenessProbe]).toEqual([undefined, undefined, undefined]);
    expect(env(sidecar, 'CB_UPSTREAM')).toBe(`http://127.0.0.1:${env(api, 'PORT')}`);
    expect(pod.annotations['kubectl.kubernetes.io/default-container']).toBe('iris-api');
  });

  it('does not expose the sidecar admin port through the Service, and keeps it out of the mesh', () => {
    const svc = find(rendered[arm], 'Service', 'iris-svc').spec as { ports: { targetPort: number }[] };
    expect(sidecar.ports?.find((p) => p.name === 'http-admin')?.containerPort).toBe(9901);
    expect(svc.ports.map((p) => p.targetPort)).toEqual([8080]);
    expect(env(sidecar, 'CB_LISTEN')).toBe('0.0.0.0:8080');
    expect(pod.annotations['traffic.sidecar.istio.io/excludeInboundPorts']).toBe('9901');
  });

  it('lets only the sidecar port in from anywhere, and never the API port', () => {
    const np = find(rendered[arm], 'NetworkPolicy', 'iris-svc-cb-sidecar').spec as {
      podSelector: { matchLabels: Record<string, string> };
      policyTypes: string[];
      ingress: {
        from?: { namespaceSelector?: { matchLabels: Record<string, string> } }[];
        ports: { port: number }[];
      }[];
    };
    expect(selects(np.podSelector.matchLabels, pod.labels)).toBe(true);
    expect(np.policyTypes).toEqual(['Ingress']);
    expect(np.ingress.filter((r) => !r.from).flatMap((r) => r.ports.map((p) => p.port))).toEqual([8080]);
    for (const r of np.ingress.filter((x) => x.from))
      for (const f of r.from ?? [])
        expect(f.namespaceSelector?.matchLabels).toEqual({ 'kubernetes.io/metadata.name': 'monitoring' });
    expect(np.ingress.flatMap((r) => r.ports.map((p) => p.port))).not.toContain(8000);
  });
});

describe('kustomize sources', () => {
  const kustomizations: string[] = [];
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (name === 'kustomization.yaml') kustomizations.push(path);
    }
  };
  walk(join(ROOT, 'manifests'));

  it('uses only current kustomize fields', () => {
    expect(kustomizations.length).toBeGreaterThanOrEqual(10);
    for (const k of kustomizations) {
      const doc = parse(readFileSync(k, 'utf8')) as Record<string, unknown>;
      for (const old of [
        'commonLabels',
        'commonAnnotations',
        'patchesStrategicMerge',
        'patchesJson6902',
        'bases',
        'vars',
      ])
        expect({ k, field: old, present: old in doc }).toEqual({ k, field: old, present: false });
    }
  });

  it('keeps one resource per file', () => {
    for (const k of kustomizations) {
      const dir = join(k, '..');
      const doc = parse(readFileSync(k, 'utf8')) as { resources?: string[]; patches?: { path?: string }[] };
      const files = [...(doc.resources ?? []), ...(doc.patches ?? []).flatMap((p) => (p.path ? [p.path] : []))].filter(
        (r) => r.endsWith('.yaml'),
      );
      for (const f of files)
        expect({ f, docs: parseAllDocuments(readFileSync(join(dir, f), 'utf8')).length }).toEqual({ f, docs: 1 });
    }
  });

  it('renders the base on its own', () => {
    expect(
      kustomize('manifests/base')
        .map((o) => o.kind)
        .sort(),
    ).toEqual([
      'ConfigMap',
      'ConfigMap',
      'Deployment',
      'Job',
      'Namespace',
      'PeerAuthentication',
      'PodDisruptionBudget',
      'Service',
    ]);
  });

  it('keeps the client ConfigMap copies identical to vegeta/', () => {
    for (const f of ['post-target', 'get-target', 'data.json'])
      expect(readFileSync(join(ROOT, 'manifests/base/client', f), 'utf8')).toBe(
        readFileSync(join(ROOT, 'vegeta', f), 'utf8'),
      );
  });

  it('names the same default images in components/images and components/cb-sidecar as the Makefile', () => {
    const doc = parse(readFileSync(join(ROOT, 'manifests/components/images/kustomization.yaml'), 'utf8')) as {
      images: { name: string; newName: string; newTag: string }[];
    };
    const sidecar = /image: (\S+)/.exec(
      readFileSync(join(ROOT, 'manifests/components/cb-sidecar/deployment-sidecar.yaml'), 'utf8'),
    )?.[1];
    const built = [...makeDryRun('build_all').matchAll(/-t (\S+)/g)].map((m) => m[1]).sort();
    expect([...doc.images.map((i) => `${i.newName}:${i.newTag}`), sidecar].sort()).toEqual(built);
  });
});

describe('pinned validation', () => {
  const deployment = (spec: Record<string, unknown>): unknown => ({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'd' },
    spec: {
      selector: { matchLabels: { a: 'b' } },
      template: { metadata: { labels: { a: 'b' } }, spec: { containers: [{ name: 'c', image: 'i' }], ...spec } },
    },
  });

  it('rejects a field Kubernetes 1.30 does not have (pod-level resources, 1.32)', () => {
    expect(kubeconform([deployment({ resources: { limits: { cpu: '1' } } })])).toEqual([
      expect.objectContaining({ kind: 'Deployment', msg: expect.stringMatching(/resources/) }),
    ]);
  });

  it('rejects an Istio field that 1.22 does not have (retryIgnorePreviousHosts, 1.24)', () => {
    const vs = {
      apiVersion: 'networking.istio.io/v1',
      kind: 'VirtualService',
      metadata: { name: 'v' },
      spec: {
        hosts: ['x'],
        http: [{ route: [{ destination: { host: 'x' } }], retries: { attempts: 0, retryIgnorePreviousHosts: false } }],
      },
    };
    expect(kubeconform([vs])).toEqual([
      expect.objectContaining({ msg: expect.stringMatching(/retryIgnorePreviousHosts/) }),
    ]);
  });

  it('counts a kind without a schema as a failure', () => {
    expect(kubeconform([{ apiVersion: 'example.com/v1', kind: 'Nothing', metadata: { name: 'n' } }])).toEqual([
      expect.objectContaining({ kind: 'Nothing', status: 'statusError' }),
    ]);
  });

  it('finds a name that only an init container declares', () => {
    const objects = rendered.sidecar.map((o) =>
      o.kind === 'Service'
        ? { ...o, spec: { ...o.spec, ports: [{ name: 'http', port: 8000, targetPort: 'http-cb' }] } }
        : o,
    );
    expect(portReferenceProblems(objects)).toEqual([
      'Service iris-svc names port "http-cb", which no regular container of iris-svc declares',
    ]);
  });
});
