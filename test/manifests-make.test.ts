// The Makefile's Kubernetes targets, read with `make -n` (they print their commands without running them: no
// cluster, no Docker engine here): what each would run, with which variables.
import { execFileSync, spawnSync } from 'node:child_process';
import { ROOT } from './manifests-render.js';

function makeDryRun(target: string, vars: string[] = []): string {
  return execFileSync('make', ['-n', '--no-print-directory', target, ...vars], {
    cwd: ROOT,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  }).replace(/\\\n\s*/g, '');
}

describe.each(['istio', 'sidecar', 'sidecar-adaptive'])('make deploy-%s', (arm) => {
  const out = makeDryRun(`deploy-${arm}`);

  it('writes the wrapper, checks the cluster, Istio and images, then applies it and waits for the rollout', () => {
    const lines = out.split('\n');
    const at = (re: RegExp): number => lines.findIndex((l) => re.test(l));
    expect(at(new RegExp(`main\\.js overlay --arm ${arm} --out out/kustomize/${arm} `))).toBeGreaterThan(-1);
    expect(at(/main\.js preflight (--image \S+ ){4}--image-check auto --build-hint/)).toBeGreaterThan(
      at(/main\.js overlay/),
    );
    expect(at(new RegExp(`^kubectl apply -k out/kustomize/${arm}$`))).toBeGreaterThan(at(/main\.js preflight/));
    expect(out).toContain(`kubectl -n circuit-breaker-${arm} rollout status deployment/iris-svc`);
  });

  it('never installs Istio itself', () => {
    expect(out).not.toContain('istioctl install');
  });
});

it('passes REGISTRY/TAG, MONITORING, the model, an Istio revision and the mTLS mode to the wrapper', () => {
  const out = makeDryRun('deploy-sidecar', [
    'REGISTRY=registry.example/me',
    'TAG=9.9.9',
    'MONITORING=1',
    'MONITORING_LABELS=release=prom',
    'MODEL_SOURCE=https://models.example/iris.onnx',
    `MODEL_SHA256=${'a'.repeat(64)}`,
    'ISTIO_REVISION=1-30-3',
    'MTLS_MODE=STRICT',
  ]);
  for (const flag of [
    '--image cb-sidecar=registry.example/me/cb-sidecar:9.9.9',
    "--monitoring --monitoring-labels 'release=prom'",
    "--model-source 'https://models.example/iris.onnx'",
    `--model-sha256 ${'a'.repeat(64)}`,
    '--istio-revision 1-30-3',
    '--mtls STRICT',
  ])
    expect(out).toContain(flag);
  expect(out).toMatch(/preflight .*--image registry\.example\/me\/iris-api:9\.9\.9 .*--istio-revision 1-30-3/);
  expect(makeDryRun('deploy-istio')).not.toMatch(/--monitoring|--model-source|--istio-revision|--mtls/);
  // An empty MODEL_SOURCE on the command line means "no source": the API's baked-in model.
  expect(makeDryRun('deploy-istio', ['MODEL_SOURCE='])).toContain("--model-source ''");
});

it('installs exactly ISTIO_VERSION with istioctl of that version, minimal and with native sidecars', () => {
  const out = makeDryRun('istio-install');
  expect(out).toMatch(/istioctl version --remote=false/);
  expect(out).toContain('if [ "$v" != "1.30.3" ]');
  expect(out).toContain('istioctl install -y --set profile=minimal --set values.pilot.env.ENABLE_NATIVE_SIDECARS=true');
  expect(makeDryRun('istio-install', ['ISTIO_REVISION=1-30-3'])).toContain('--revision 1-30-3');
});

it('attacks from CALLERS caller pods with the total RATE, one merged report', () => {
  const out = makeDryRun('attack', ['ARM=istio', 'CALLERS=4', 'RATE=2000', 'DURATION=30s']);
  expect(out).toMatch(
    /main\.js attack --arm istio --kustomization out\/kustomize\/istio --callers 4 --rate 2000 --duration 30s --tool vegeta --targets vegeta\/post-target --vegeta \S+\/\.tools\/bin\/vegeta/,
  );
});

it('runs k6 from CALLERS caller pods', () => {
  expect(makeDryRun('k6', ['ARM=sidecar-adaptive', 'CALLERS=3', 'K6_SCRIPT=k6/spike.ts'])).toMatch(
    /main\.js attack --arm sidecar-adaptive .*--callers 3 .*--tool k6 --script k6\/spike\.ts/,
  );
});

it('rejects an unknown arm with one clear line', () => {
  const r = spawnSync('make', ['-n', 'attack', 'ARM=envoy'], { cwd: ROOT, encoding: 'utf8' });
  expect(r.status).not.toBe(0);
  expect(r.stderr).toMatch(/ARM=envoy: must be one of istio sidecar sidecar-adaptive/);
});

it('loads the images into minikube or kind, and starts a minikube that fits two arms', () => {
  expect(makeDryRun('load-minikube', ['MINIKUBE_PROFILE=ab']).match(/minikube -p ab image load \S+/g)).toHaveLength(4);
  expect(makeDryRun('load-kind', ['KIND_CLUSTER=lab'])).toMatch(/^kind load docker-image --name lab( \S+){4}$/m);
  expect(makeDryRun('minikube-start')).toContain(
    'minikube start -p minikube --kubernetes-version=v1.32.13 --cpus=8 --memory=12g --cni=calico',
  );
});

it('deletes an arm by its overlay', () => {
  expect(makeDryRun('delete-sidecar-adaptive')).toContain(
    'kubectl delete -k manifests/overlays/sidecar-adaptive --ignore-not-found',
  );
});
