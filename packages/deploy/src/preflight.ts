// What `make deploy-*` checks before it applies anything: the cluster's Kubernetes and Istio are recent enough,
// and the arm's images are where the cluster will pull them from. Each unmet point is one line that says what
// to run; every point is checked, so one run lists them all.
import { MIN_ISTIO, MIN_KUBERNETES, atLeast, formatVersion, parseVersion, type Version } from './arms.js';
import { DeployError } from './errors.js';
import { firstLine, type Run } from './run.js';

/** Where the cluster pulls images from: decided from the kubectl context when `auto`. */
export type ImageCheck = 'auto' | 'registry' | 'minikube' | 'kind' | 'none';

/** What to check. */
export interface PreflightOptions {
  /** Full image references the arm runs. */
  readonly images: readonly string[];
  readonly imageCheck: ImageCheck;
  /** The istiod revision the namespace will use (istio.io/rev); `default` otherwise. */
  readonly istioRevision?: string;
  /** The make command that builds and publishes the images, quoted in the hint (REGISTRY/TAG included). */
  readonly buildHint: string;
}

/** Checks everything; resolves with the lines it reports on success, rejects with a DeployError listing every problem. */
export async function preflight(run: Run, o: PreflightOptions): Promise<string[]> {
  const ok: string[] = [];
  const problems: string[] = [];
  const k8s = await kubernetesVersion(run);
  if (typeof k8s === 'string') {
    // Without a cluster, nothing else can be checked.
    throw new DeployError('DEPLOY_PREFLIGHT', [k8s]);
  }
  if (!atLeast(k8s, MIN_KUBERNETES))
    problems.push(
      `Kubernetes ${formatVersion(k8s)} is too old: the arms need ${formatVersion(MIN_KUBERNETES, false)} or later (native sidecars, the preStop sleep action)`,
    );
  else ok.push(`Kubernetes ${formatVersion(k8s)} (>= ${formatVersion(MIN_KUBERNETES, false)})`);

  const istio = await istioVersion(run, o.istioRevision ?? 'default');
  if (typeof istio === 'string') problems.push(istio);
  else if (!atLeast(istio, MIN_ISTIO))
    problems.push(
      `Istio ${formatVersion(istio)} is too old: the arms need ${formatVersion(MIN_ISTIO, false)} or later (networking.istio.io/v1, security.istio.io/v1)`,
    );
  else ok.push(`Istio ${formatVersion(istio)} (>= ${formatVersion(MIN_ISTIO, false)})`);

  const where = await imageSource(run, o.imageCheck);
  if (where.kind !== 'none') {
    for (const image of o.images) {
      const missing = await imageMissing(run, where, image, o.buildHint);
      if (missing) problems.push(missing);
    }
    if (problems.length === 0) ok.push(`${o.images.length} images present (${where.label})`);
  }
  if (problems.length > 0) throw new DeployError('DEPLOY_PREFLIGHT', problems);
  return ok;
}

/** The server's version, or one line saying why it is not known. */
export async function kubernetesVersion(run: Run): Promise<Version | string> {
  const r = await run('kubectl', ['version', '-o', 'json'], { timeoutMs: 30_000 });
  const server = safeJson<{ serverVersion?: { gitVersion?: string } }>(r.stdout)?.serverVersion?.gitVersion;
  if (!server) return `cannot reach the cluster (kubectl version: ${firstLine(r)})`;
  return parseVersion(server) ?? `cannot read the cluster's version from "${server}"`;
}

interface IstiodList {
  items?: {
    metadata?: { labels?: Record<string, string> };
    spec?: { template?: { spec?: { containers?: { image?: string }[] } } };
  }[];
}

/** The version of the istiod serving `revision`, or one line saying why there is none. */
export async function istioVersion(run: Run, revision: string): Promise<Version | string> {
  const r = await run('kubectl', ['-n', 'istio-system', 'get', 'deployments', '-l', 'app=istiod', '-o', 'json'], {
    timeoutMs: 30_000,
  });
  if (r.code !== 0) return `cannot list istiod in istio-system (kubectl: ${firstLine(r)})`;
  const found = (safeJson<IstiodList>(r.stdout)?.items ?? []).map((d) => ({
    revision: d.metadata?.labels?.['istio.io/rev'] ?? 'default',
    image: d.spec?.template?.spec?.containers?.[0]?.image ?? '',
  }));
  if (found.length === 0)
    return `Istio is not installed (no istiod in istio-system): run make istio-install, or install Istio ${formatVersion(MIN_ISTIO, false)} or later yourself`;
  const match = found.find((f) => f.revision === revision);
  if (!match)
    return `no istiod of revision "${revision}" in istio-system (found: ${found.map((f) => `${f.revision} ${f.image}`).join(', ')}): set ISTIO_REVISION to one of them, or run make istio-install ISTIO_REVISION=${revision}`;
  return (
    parseVersion(match.image.split(':').at(-1) ?? '') ??
    `cannot read Istio's version from istiod's image "${match.image}"`
  );
}

interface ImageSource {
  readonly kind: Exclude<ImageCheck, 'auto'>;
  /** minikube profile or kind cluster name */
  readonly name: string;
  readonly label: string;
}

/** Where images come from: minikube and kind clusters have their own image stores, other clusters a registry. */
export async function imageSource(run: Run, check: ImageCheck): Promise<ImageSource> {
  if (check === 'none') return { kind: 'none', name: '', label: 'not checked' };
  const context = (await run('kubectl', ['config', 'current-context'], { timeoutMs: 10_000 })).stdout.trim();
  let kind = check;
  if (kind === 'auto') {
    if (context.startsWith('kind-')) kind = 'kind';
    else {
      const profiles = await run('minikube', ['profile', 'list', '-o', 'json'], { timeoutMs: 30_000 });
      const valid = safeJson<{ valid?: { Name?: string }[] }>(profiles.stdout)?.valid ?? [];
      kind = valid.some((p) => p.Name === context) ? 'minikube' : 'registry';
    }
  }
  const name = kind === 'kind' ? context.replace(/^kind-/, '') : context;
  const label = kind === 'registry' ? 'registry' : `${kind} ${name}`;
  return { kind, name, label };
}

/** One line when `image` is not where the cluster will look for it; undefined when it is there. */
export async function imageMissing(
  run: Run,
  where: ImageSource,
  image: string,
  buildHint: string,
): Promise<string | undefined> {
  switch (where.kind) {
    case 'minikube': {
      const r = await run('minikube', ['-p', where.name, 'image', 'ls'], { timeoutMs: 60_000 });
      const have = new Set(r.stdout.split('\n').map((l) => l.trim()));
      if (have.has(image) || have.has(`docker.io/${image}`)) return undefined;
      return `image ${image} is not in minikube profile ${where.name}: run make build_all load-minikube MINIKUBE_PROFILE=${where.name} (same REGISTRY/TAG)`;
    }
    case 'kind': {
      const r = await run('docker', ['exec', `${where.name}-control-plane`, 'crictl', 'inspecti', image], {
        timeoutMs: 60_000,
      });
      if (r.code === 0) return undefined;
      return `image ${image} is not in kind cluster ${where.name}: run make build_all load-kind KIND_CLUSTER=${where.name} (same REGISTRY/TAG)`;
    }
    case 'registry': {
      const r = await run('docker', ['manifest', 'inspect', image], { timeoutMs: 60_000 });
      if (r.code === 0) return undefined;
      return `image ${image} cannot be found in its registry (docker manifest inspect: ${firstLine(r)}): run ${buildHint}, or IMAGE_CHECK=none when the cluster can pull what docker cannot see`;
    }
    default:
      return undefined;
  }
}

function safeJson<T>(text: string): T | undefined {
  try {
    return JSON.parse(text) as T;
  } catch {
    return undefined;
  }
}
