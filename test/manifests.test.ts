// The Kubernetes + Istio A/B manifests, verified without a cluster: every overlay rendered by the real
// `kubectl kustomize`, every object validated against its schema, then what schemas cannot see.
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigMap, Namespace, Pod, Service } from 'kubernetes-models/v1';
import { Deployment } from 'kubernetes-models/apps/v1';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { DestinationRule, Sidecar, VirtualService } from '@kubernetes-models/istio/networking.istio.io/v1';
import { PodMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';
import { parse, parseAllDocuments } from 'yaml';
import {
  ARMS,
  ROOT,
  containers,
  env,
  find,
  kustomize,
  pods,
  renderArm,
  selects,
  type Arm,
  type Container,
  type K8sObject,
  type PodView,
} from './manifests-render.js';

interface Validatable {
  validate(): void;
}
type ModelClass = new (data: never) => Validatable;

const MODELS: Record<string, ModelClass> = {
  'v1/Namespace': Namespace,
  'v1/ConfigMap': ConfigMap,
  'v1/Service': Service,
  'v1/Pod': Pod,
  'apps/v1/Deployment': Deployment,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy,
  'networking.istio.io/v1/DestinationRule': DestinationRule,
  'networking.istio.io/v1/VirtualService': VirtualService,
  'networking.istio.io/v1/Sidecar': Sidecar,
  'monitoring.coreos.com/v1/PodMonitor': PodMonitor,
};

/** Paths each of our programs serves for probes (API: packages/api/src/app.ts; sidecar admin: packages/proxy/src/admin.ts). */
const SERVED = { api: ['/health', '/ready'], sidecar: ['/healthz', '/readyz'] } as const;
/** Ports Istio's injector adds to istio-proxy (not in our manifests). */
const INJECTED_PORTS = new Set(['http-envoy-prom']);

const rendered: Record<Arm, K8sObject[]> = { istio: renderArm('istio'), sidecar: renderArm('sidecar') };
const arms = Object.keys(ARMS) as Arm[];

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

function makeDryRun(target: string, vars: string[] = []): string {
  return execFileSync('make', ['-n', '--no-print-directory', target, ...vars], {
    cwd: ROOT,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

describe.each(arms)('overlay %s', (arm) => {
  const objects = rendered[arm];

  it('validates every rendered object against its schema', () => {
    for (const o of objects) {
      const Model = MODELS[`${o.apiVersion}/${o.kind}`];
      if (!Model) throw new Error(`no schema for ${o.apiVersion} ${o.kind} (${o.metadata.name})`);
      expect(() => new Model(o as never).validate()).not.toThrow();
    }
  });

  it('puts every object in the arm namespace, which is in the mesh, labelled with the arm', () => {
    const ns = find(objects, 'Namespace', ARMS[arm]);
    expect(ns.metadata.labels).toMatchObject({ 'istio-injection': 'enabled', 'ab-arm': arm });
    for (const o of objects.filter((x) => x.kind !== 'Namespace')) expect(o.metadata.namespace).toBe(ARMS[arm]);
    for (const p of podsOf(arm)) expect(p.labels['ab-arm']).toBe(arm);
  });

  it('runs three iris-svc replicas with the seed resources and the model loader into an emptyDir', () => {
    const deploy = find(objects, 'Deployment', 'iris-svc');
    expect((deploy.spec as { replicas: number }).replicas).toBe(3);
    const pod = apiPod(arm);
    const api = container(pod, 'iris-api');
    expect(api).toMatchObject({ resources: { requests: { cpu: '500m', memory: '300Mi' } } });
    const loader = container(pod, 'model-loader');
    expect(loader.args).toEqual(expect.arrayContaining(['--source', '--model-filepath', '/workdir/iris_svc.onnx']));
    expect(loader.args?.[loader.args.indexOf('--source') + 1]).toMatch(/^(gs|https?):\/\//);
    expect(env(api, 'MODEL_FILEPATH')).toBe('/workdir/iris_svc.onnx');
    const workdir = pod.spec.volumes?.find((v) => v.name === 'workdir');
    expect(workdir?.emptyDir).toBeDefined();
    for (const c of [api, loader])
      expect(c.volumeMounts?.some((m) => m.name === 'workdir' && m.mountPath === '/workdir')).toBe(true);
  });

  it('selects pods with every Service and points it at a named port those pods declare', () => {
    for (const svc of objects.filter((o) => o.kind === 'Service')) {
      const spec = svc.spec as {
        selector: Record<string, string>;
        ports: { name: string; port: number; targetPort: string | number }[];
      };
      const selected = podsOf(arm).filter((p) => selects(spec.selector, p.labels));
      expect(selected.length).toBeGreaterThan(0);
      for (const port of spec.ports) {
        expect(typeof port.targetPort).toBe('string');
        for (const p of selected) {
          expect(
            containers(p)
              .flatMap((c) => c.ports ?? [])
              .map((x) => x.name),
          ).toContain(port.targetPort);
        }
      }
    }
    const svc = find(objects, 'Service', 'iris-svc');
    expect((svc.spec as { ports: { name: string; port: number }[] }).ports).toEqual([
      expect.objectContaining({ name: 'http', port: 8000 }),
    ]);
  });

  it('probes only ports the container declares and paths our programs serve', () => {
    for (const pod of podsOf(arm)) {
      for (const c of containers(pod)) {
        for (const probe of [c.startupProbe, c.readinessProbe, c.livenessProbe]) {
          if (!probe) continue;
          const served: readonly string[] = c.name === 'cb-sidecar' ? SERVED.sidecar : SERVED.api;
          if (probe.httpGet) {
            expect(served).toContain(probe.httpGet.path);
            expect((c.ports ?? []).map((p) => p.name)).toContain(probe.httpGet.port);
          } else {
            // exec probe: a loopback fetch of a served path
            const url = new URL(
              /fetch\('([^']+)'\)/.exec(probe.exec?.command.join(' ') ?? '')?.[1] ?? 'http://invalid/',
            );
            expect(url.hostname).toBe('127.0.0.1');
            expect(served).toContain(url.pathname);
          }
        }
      }
      if (pod.labels['app'] === 'iris-svc') {
        const api = container(pod, 'iris-api');
        expect([api.startupProbe, api.readinessProbe, api.livenessProbe].every(Boolean)).toBe(true);
      }
    }
  });

  it('references only ConfigMaps that exist', () => {
    const names = new Set(objects.filter((o) => o.kind === 'ConfigMap').map((o) => o.metadata.name));
    const refs = podsOf(arm).flatMap((p) =>
      (p.spec.volumes ?? []).flatMap((v) => (v.configMap ? [v.configMap.name] : [])),
    );
    expect(refs.length).toBeGreaterThan(0);
    for (const r of refs) expect(names).toContain(r);
    for (const p of podsOf(arm)) {
      const volumes = new Set((p.spec.volumes ?? []).map((v) => v.name));
      for (const c of containers(p)) for (const m of c.volumeMounts ?? []) expect(volumes).toContain(m.name);
    }
  });

  it('scrapes named ports that the selected pods declare', () => {
    for (const pm of objects.filter((o) => o.kind === 'PodMonitor')) {
      const spec = pm.spec as {
        selector: { matchLabels?: Record<string, string> };
        podMetricsEndpoints: { port: string }[];
      };
      const selected = podsOf(arm).filter((p) => selects(spec.selector.matchLabels ?? {}, p.labels));
      const isSidecarMonitor = pm.metadata.name === 'cb-sidecar';
      expect(selected.length > 0).toBe(!(isSidecarMonitor && arm === 'istio'));
      for (const ep of spec.podMetricsEndpoints) {
        if (INJECTED_PORTS.has(ep.port)) continue;
        for (const p of selected)
          expect(
            containers(p)
              .flatMap((c) => c.ports ?? [])
              .map((x) => x.name),
          ).toContain(ep.port);
      }
    }
  });

  it('asks Envoy for circuit-breaker stats in the client and the model pods', () => {
    for (const p of podsOf(arm)) {
      const config = parse(p.annotations['proxy.istio.io/config'] ?? '') as {
        proxyStatsMatcher?: { inclusionRegexps?: string[] };
      } | null;
      expect(config?.proxyStatsMatcher?.inclusionRegexps).toEqual(
        expect.arrayContaining(['.*circuit_breakers.*', '.*upstream_rq_pending.*']),
      );
    }
  });

  it('ships the Grafana dashboards as ConfigMaps the Grafana sidecar picks up', () => {
    const boards = objects.filter((o) => o.kind === 'ConfigMap' && o.metadata.labels?.['grafana_dashboard'] === '1');
    expect(
      boards
        .map((b) => Object.keys(b.data ?? {}))
        .flat()
        .sort(),
    ).toEqual(['cb-sidecar.json', 'circuit-breaker-ab.json']);
    for (const b of boards)
      for (const text of Object.values(b.data ?? {})) expect(JSON.parse(text)).toHaveProperty('uid');
  });

  it('keeps mesh retries off so 503s are measured, not retried', () => {
    const vs = find(objects, 'VirtualService', 'iris-svc').spec as { http: { retries?: { attempts: number } }[] };
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
    const used = new Set(podsOf(arm).flatMap((p) => containers(p).map((c) => c.image)));
    for (const image of used) expect(built).toContain(image);
  });
});

describe('arm differences', () => {
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

  it('has no DestinationRule connection limits in the sidecar arm', () => {
    for (const dr of rendered.sidecar.filter((o) => o.kind === 'DestinationRule')) {
      expect((trafficPolicyOf(dr) as { connectionPool?: unknown } | undefined)?.connectionPool).toBeUndefined();
    }
    expect(rendered.sidecar.some((o) => o.kind === 'Sidecar')).toBe(false);
  });

  it('configures cb-sidecar with exactly the DestinationRule trafficPolicy', () => {
    const cm = rendered.sidecar.find((o) => o.kind === 'ConfigMap' && o.metadata.name.startsWith('cb-sidecar-config'));
    const sidecarConfig = parse(cm?.data?.['cb-sidecar.yaml'] ?? '') as { trafficPolicy: unknown };
    expect(sidecarConfig.trafficPolicy).toEqual(trafficPolicyOf(find(rendered.istio, 'DestinationRule', 'iris-svc')));
  });
});

describe('sidecar arm security', () => {
  const pod = apiPod('sidecar');
  const sidecar = container(pod, 'cb-sidecar');
  const api = container(pod, 'iris-api');

  it('runs cb-sidecar as a native sidecar probed on its admin port, draining through the API preStop', () => {
    expect(pod.spec.initContainers?.map((c) => c.name)).toContain('cb-sidecar');
    expect(sidecar.restartPolicy).toBe('Always');
    expect(sidecar.readinessProbe?.httpGet).toEqual({ path: '/readyz', port: 'http-admin' });
    expect(sidecar.livenessProbe?.httpGet).toEqual({ path: '/healthz', port: 'http-admin' });
    // The pod drains through the main container's preStop: native sidecars are stopped after it exits.
    expect(api).toMatchObject({ lifecycle: { preStop: { sleep: { seconds: 5 } } } });
    expect(pod.spec.initContainers?.map((c) => c.name)).toEqual(['cb-sidecar', 'model-loader']);
  });

  it('binds the API to 127.0.0.1 so only the sidecar reaches it', () => {
    expect(env(api, 'HOST')).toBe('127.0.0.1');
    expect(api.ports ?? []).toEqual([]);
    expect(env(sidecar, 'CB_UPSTREAM')).toBe(`http://127.0.0.1:${env(api, 'PORT')}`);
  });

  it('does not expose the sidecar admin port through the Service', () => {
    const svc = find(rendered.sidecar, 'Service', 'iris-svc').spec as { ports: { targetPort: string }[] };
    const admin = sidecar.ports?.find((p) => p.name === 'http-admin');
    expect(admin?.containerPort).toBe(9901);
    expect(svc.ports.map((p) => p.targetPort)).toEqual(['http-cb']);
    expect(String(env(sidecar, 'CB_LISTEN'))).toMatch(/:8080$/);
  });

  it('lets only the sidecar port in from anywhere, and never the API port', () => {
    const np = find(rendered.sidecar, 'NetworkPolicy', 'iris-svc-ingress').spec as {
      podSelector: { matchLabels: Record<string, string> };
      policyTypes: string[];
      ingress: {
        from?: { namespaceSelector?: { matchLabels: Record<string, string> } }[];
        ports: { port: number }[];
      }[];
    };
    expect(selects(np.podSelector.matchLabels, pod.labels)).toBe(true);
    expect(np.policyTypes).toEqual(['Ingress']);
    const open = np.ingress.filter((r) => !r.from);
    expect(open.flatMap((r) => r.ports.map((p) => p.port))).toEqual([8080]);
    for (const r of np.ingress.filter((x) => x.from)) {
      for (const f of r.from ?? [])
        expect(f.namespaceSelector?.matchLabels).toEqual({ 'kubernetes.io/metadata.name': 'monitoring' });
    }
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
    expect(kustomizations.length).toBeGreaterThanOrEqual(8);
    for (const k of kustomizations) {
      const doc = parse(readFileSync(k, 'utf8')) as Record<string, unknown>;
      for (const old of [
        'commonLabels',
        'commonAnnotations',
        'patchesStrategicMerge',
        'patchesJson6902',
        'bases',
        'vars',
      ]) {
        expect({ k, field: old, present: old in doc }).toEqual({ k, field: old, present: false });
      }
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
    ).toEqual(['ConfigMap', 'Deployment', 'Namespace', 'Pod', 'Service']);
  });

  it('keeps the client ConfigMap copies identical to vegeta/', () => {
    for (const f of ['post-target', 'get-target', 'data.json']) {
      expect(readFileSync(join(ROOT, 'manifests/base/client', f), 'utf8')).toBe(
        readFileSync(join(ROOT, 'vegeta', f), 'utf8'),
      );
    }
  });

  it('names the same default images in components/images as the Makefile', () => {
    const doc = parse(readFileSync(join(ROOT, 'manifests/components/images/kustomization.yaml'), 'utf8')) as {
      images: { name: string; newName: string; newTag: string }[];
    };
    const built = [...makeDryRun('build_all').matchAll(/-t (\S+)/g)].map((m) => m[1]).sort();
    expect(doc.images.map((i) => `${i.newName}:${i.newTag}`).sort()).toEqual(built);
  });
});

describe('Makefile', () => {
  it('deploys each arm with istioctl and kubectl apply -k', () => {
    for (const arm of arms) {
      const out = makeDryRun(`deploy-${arm}`);
      expect(out).toContain('istioctl install -y');
      // istio-proxy must run before the model-loader init container fetches the model
      expect(out).toContain('ENABLE_NATIVE_SIDECARS=true');
      expect(out).toContain(`kubectl apply -k manifests/overlays/${arm}`);
    }
  });

  it('attacks from the client pod with vegeta and reports', () => {
    const out = makeDryRun('attack', ['ARM=istio', 'RATE=200', 'DURATION=5s']);
    expect(out).toMatch(/kubectl -n circuit-breaker-istio exec client -c client -- sh -c/);
    expect(out).toMatch(/vegeta attack -duration=5s -rate=200 -targets=vegeta\/post-target \| vegeta report/);
  });

  it('runs k6 in the client pod of the chosen arm', () => {
    const out = makeDryRun('k6', ['ARM=sidecar', 'RATE=300']);
    expect(out).toMatch(
      /kubectl -n circuit-breaker-sidecar exec client -c client -- .*\n?.*RATE=300 .*k6 run --quiet k6\/reference\.ts/,
    );
  });

  it('rejects an unknown arm with one clear line', () => {
    expect(() => makeDryRun('attack', ['ARM=envoy'])).toThrow(/ARM must be one of: istio sidecar/);
  });

  it('feeds other registries and tags to the manifests through a kustomize wrapper', () => {
    const out = makeDryRun('deploy-sidecar', ['REGISTRY=registry.example/me', 'TAG=9.9.9']);
    expect(out).toContain('newName: registry.example/me/cb-sidecar, newTag: "9.9.9"');
    expect(out).toContain('kubectl apply -k out/kustomize/sidecar');
  });
});
