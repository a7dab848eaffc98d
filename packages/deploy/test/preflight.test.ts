// The preflight make deploy-* runs, fed the answers kubectl, minikube and docker give (recorded here, since this
// machine has no cluster): one line per unmet point, naming what to run; everything checked in one pass. The
// last test runs the built CLI with stand-in kubectl/minikube on the PATH, for the wiring.
import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { DeployError } from '../src/errors.js';
import { preflight, type PreflightOptions } from '../src/preflight.js';
import type { Run, RunResult } from '../src/run.js';
import { ROOT } from '../../../test/manifests-render.js';

/** A cluster as the tools describe it. */
interface Cluster {
  server?: string;
  istiod?: { revision?: string; image: string }[];
  context?: string;
  minikubeProfiles?: string[];
  minikubeImages?: string[];
  kindImages?: string[];
  registryImages?: string[];
}

function tools(c: Cluster): { run: Run; calls: string[] } {
  const calls: string[] = [];
  const ok = (stdout: string): RunResult => ({ code: 0, stdout, stderr: '' });
  const fail = (stderr: string): RunResult => ({ code: 1, stdout: '', stderr });
  const run: Run = async (cmd, args) => {
    const line = [cmd, ...args].join(' ');
    calls.push(line);
    if (line === 'kubectl version -o json')
      return c.server
        ? ok(JSON.stringify({ clientVersion: { gitVersion: 'v1.32.4' }, serverVersion: { gitVersion: c.server } }))
        : {
            code: 1,
            stdout: '{"clientVersion":{}}',
            stderr: 'The connection to the server localhost:8080 was refused',
          };
    if (line.startsWith('kubectl -n istio-system get deployments'))
      return ok(
        JSON.stringify({
          items: (c.istiod ?? []).map((d) => ({
            metadata: { labels: d.revision ? { 'istio.io/rev': d.revision } : {} },
            spec: { template: { spec: { containers: [{ image: d.image }] } } },
          })),
        }),
      );
    if (line === 'kubectl config current-context') return ok(`${c.context ?? 'gke_p_z_c'}\n`);
    if (line === 'minikube profile list -o json')
      return ok(JSON.stringify({ valid: (c.minikubeProfiles ?? []).map((Name) => ({ Name })) }));
    if (/^minikube -p \S+ image ls$/.test(line)) return ok((c.minikubeImages ?? []).join('\n'));
    if (line.startsWith('docker exec') && line.includes('crictl inspecti'))
      return (c.kindImages ?? []).includes(args.at(-1)!) ? ok('{}') : fail('FATA no such image');
    if (line.startsWith('docker manifest inspect'))
      return (c.registryImages ?? []).includes(args.at(-1)!) ? ok('{}') : fail('no such manifest: ' + args.at(-1));
    throw new Error(`unexpected command: ${line}`);
  };
  return { run, calls };
}

const IMAGES = ['ghcr.io/infer-cb/iris-api:0.1.0', 'ghcr.io/infer-cb/cb-sidecar:0.1.0'];
const options: PreflightOptions = {
  images: IMAGES,
  imageCheck: 'auto',
  buildHint: 'make build_all push_all REGISTRY=r TAG=t',
};
const healthy: Cluster = {
  server: 'v1.32.13',
  istiod: [{ image: 'docker.io/istio/pilot:1.30.3' }],
  registryImages: IMAGES,
};

async function problems(c: Cluster, o: Partial<PreflightOptions> = {}): Promise<readonly string[]> {
  try {
    await preflight(tools(c).run, { ...options, ...o });
    return [];
  } catch (err) {
    expect(err).toBeInstanceOf(DeployError);
    expect((err as DeployError).code).toBe('DEPLOY_PREFLIGHT');
    return (err as DeployError).problems;
  }
}

it('passes a cluster at the minimums with its images in the registry, and says what it checked', async () => {
  const ok = await preflight(
    tools({ ...healthy, server: 'v1.30.0', istiod: [{ image: 'istio/pilot:1.22.0-distroless' }] }).run,
    options,
  );
  expect(ok).toEqual(['Kubernetes 1.30.0 (>= 1.30)', 'Istio 1.22.0 (>= 1.22)', '2 images present (registry)']);
});

it('stops at once, in one line, when there is no cluster', async () => {
  expect(await problems({})).toEqual([
    'cannot reach the cluster (kubectl version: The connection to the server localhost:8080 was refused)',
  ]);
});

it('refuses Kubernetes 1.29 and Istio 1.21, one line each, in the same run', async () => {
  expect(
    await problems({
      ...healthy,
      server: 'v1.29.9-gke.1496000',
      istiod: [{ image: 'gcr.io/istio-release/pilot:1.21.6' }],
    }),
  ).toEqual([
    'Kubernetes 1.29.9 is too old: the arms need 1.30 or later (native sidecars, the preStop sleep action)',
    'Istio 1.21.6 is too old: the arms need 1.22 or later (networking.istio.io/v1, security.istio.io/v1)',
  ]);
});

it('says how to install Istio when there is none', async () => {
  expect(await problems({ ...healthy, istiod: [] })).toEqual([
    'Istio is not installed (no istiod in istio-system): run make istio-install, or install Istio 1.22 or later yourself',
  ]);
});

it('finds the istiod of the revision the namespace will use', async () => {
  const revisioned: Cluster = { ...healthy, istiod: [{ revision: '1-30-3', image: 'istio/pilot:1.30.3' }] };
  expect(await problems(revisioned, { istioRevision: '1-30-3' })).toEqual([]);
  expect(await problems(revisioned)).toEqual([
    'no istiod of revision "default" in istio-system (found: 1-30-3 istio/pilot:1.30.3): set ISTIO_REVISION to one of them, or run make istio-install ISTIO_REVISION=default',
  ]);
});

it('names each image missing from the registry and what to run', async () => {
  expect(await problems({ ...healthy, registryImages: [IMAGES[0]!] })).toEqual([
    `image ${IMAGES[1]} cannot be found in its registry (docker manifest inspect: no such manifest: ${IMAGES[1]}): run make build_all push_all REGISTRY=r TAG=t, or IMAGE_CHECK=none when the cluster can pull what docker cannot see`,
  ]);
});

it('looks in minikube when the context is a minikube profile', async () => {
  const c: Cluster = { ...healthy, context: 'ab', minikubeProfiles: ['ab'], minikubeImages: [IMAGES[0]!] };
  expect(await problems(c)).toEqual([
    `image ${IMAGES[1]} is not in minikube profile ab: run make build_all load-minikube MINIKUBE_PROFILE=ab (same REGISTRY/TAG)`,
  ]);
  expect(await problems({ ...c, minikubeImages: IMAGES })).toEqual([]);
});

it('looks in the kind nodes when the context is kind-<name>', async () => {
  const c: Cluster = { ...healthy, context: 'kind-lab', kindImages: [] };
  expect(await problems(c)).toHaveLength(2);
  expect((await problems(c))[0]).toBe(
    `image ${IMAGES[0]} is not in kind cluster lab: run make build_all load-kind KIND_CLUSTER=lab (same REGISTRY/TAG)`,
  );
});

it('skips the image check with IMAGE_CHECK=none', async () => {
  const { run, calls } = tools({ ...healthy, registryImages: [] });
  await preflight(run, { ...options, imageCheck: 'none' });
  expect(calls.filter((c) => c.startsWith('docker'))).toEqual([]);
});

describe('cb-deploy preflight (the built CLI)', () => {
  let bin: string;
  beforeAll(() => {
    bin = mkdtempSync(join(tmpdir(), 'fake-tools-'));
    // Stand-ins for kubectl and minikube: a 1.29 cluster without Istio.
    writeFileSync(
      join(bin, 'kubectl'),
      `#!/bin/sh
case "$*" in
  "version -o json") echo '{"serverVersion":{"gitVersion":"v1.29.2"}}' ;;
  *"get deployments"*) echo '{"items":[]}' ;;
  "config current-context") echo minikube ;;
  *) echo "unexpected: $*" >&2; exit 9 ;;
esac
`,
    );
    writeFileSync(join(bin, 'minikube'), '#!/bin/sh\necho \'{"valid":[{"Name":"minikube"}]}\'\n');
    chmodSync(join(bin, 'kubectl'), 0o755);
    chmodSync(join(bin, 'minikube'), 0o755);
  });
  afterAll(() => rmSync(bin, { recursive: true, force: true }));

  it('prints one line per problem and exits 3', async () => {
    const r = await promisify(execFile)(
      process.execPath,
      [join(ROOT, 'packages/deploy/dist/main.js'), 'preflight', '--image', 'x/y:1', '--image-check', 'none'],
      { env: { ...process.env, PATH: `${bin}:${process.env['PATH']}` } },
    ).then(
      () => ({ code: 0, stderr: '' }),
      (e: { code: number; stderr: string }) => ({ code: e.code, stderr: e.stderr }),
    );
    expect(r.code).toBe(3);
    expect(r.stderr.trim().split('\n')).toEqual([
      'cb-deploy: DEPLOY_PREFLIGHT: Kubernetes 1.29.2 is too old: the arms need 1.30 or later (native sidecars, the preStop sleep action)',
      'cb-deploy: DEPLOY_PREFLIGHT: Istio is not installed (no istiod in istio-system): run make istio-install, or install Istio 1.22 or later yourself',
    ]);
  });
});
