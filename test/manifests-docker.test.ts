// The Dockerfiles, checked without a Docker engine (there is none here): statically (pinned bases, stages that
// build on the build machine's platform and final stages that only copy, `npm ci` from the lockfile with the
// manifests first, every workspace present), and by running for real what can run outside Docker: the
// onnxruntime prune script on the real package, the dependency installer's argument check, and the client's PID 1.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, containers, env, pods, renderArm } from './manifests-render.js';
import { SIDECAR_NODE_OPTIONS } from '@infer-cb/proxy/heap-flags';

const NODE_TARGETS = { api: 'api', loader: 'loader', proxy: 'proxy' } as const;
const make = readFileSync(join(ROOT, 'Makefile'), 'utf8');
const makeVersion = (v: string): string => new RegExp(`^${v}\\s*[:?]?=\\s*(\\S+)`, 'm').exec(make)?.[1] ?? 'missing';
const buildAll = (vars: string[] = []): string =>
  execFileSync('make', ['-n', '--no-print-directory', 'build_all', ...vars], { cwd: ROOT, encoding: 'utf8' });
const ignored = readFileSync(join(ROOT, '.dockerignore'), 'utf8')
  .split('\n')
  .filter((l) => l && !l.startsWith('#'));

/** Instructions of a Dockerfile with line continuations joined. */
function instructions(file: string): string[] {
  return readFileSync(join(ROOT, file), 'utf8')
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
}

/** The instructions of each stage, by stage name (`FROM ... AS name`; the last unnamed stage is `final`). */
function stages(file: string): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  let current: string[] | undefined;
  for (const line of instructions(file)) {
    if (line.startsWith('FROM ')) {
      current = [line];
      out[/ AS (\S+)$/i.exec(line)?.[1] ?? 'final'] = current;
    } else current?.push(line);
  }
  return out;
}

const node = stages('docker/node.Dockerfile');
const client = stages('docker/client.Dockerfile');

it('builds the four images for PLATFORM (linux/amd64 unless told), three targets of one Node Dockerfile', () => {
  const lines = buildAll()
    .replace(/\\\n/g, ' ')
    .split('\n')
    .filter((l) => l.startsWith('docker build'));
  expect(lines).toHaveLength(4);
  for (const l of lines) expect(l).toContain('--platform linux/amd64');
  expect(lines.map((l) => /--target (\S+)/.exec(l)?.[1] ?? /-f (\S+)/.exec(l)?.[1])).toEqual([
    'api',
    'loader',
    'proxy',
    'docker/client.Dockerfile',
  ]);
  expect(buildAll(['PLATFORM=linux/arm64'])).not.toContain('linux/amd64');
  expect(buildAll(['PLATFORM=linux/arm64']).match(/--platform linux\/arm64/g)).toHaveLength(4);
});

it('pins every base image to a version tag, Node and Go at the versions the Makefile uses', () => {
  expect(instructions('docker/node.Dockerfile')).toContain(`ARG NODE_VERSION=${makeVersion('NODE_VERSION')}`);
  expect(instructions('docker/client.Dockerfile')).toEqual(
    expect.arrayContaining([
      `ARG NODE_VERSION=${makeVersion('NODE_VERSION')}`,
      `ARG GO_VERSION=${makeVersion('GO_VERSION')}`,
    ]),
  );
  for (const file of ['docker/node.Dockerfile', 'docker/client.Dockerfile']) {
    const lines = instructions(file);
    expect(lines).toContain('ARG NODE_IMAGE=node:${NODE_VERSION}-bookworm-slim');
    for (const from of lines.filter((l) => l.startsWith('FROM ')))
      expect(from).toMatch(
        /^FROM (--platform=\$BUILDPLATFORM )?(\$\{NODE_IMAGE\}|golang:\$\{GO_VERSION\}-bookworm|manifests|runtime)( AS \S+)?$/,
      );
  }
  expect(buildAll()).toContain(`--build-arg NODE_VERSION=${makeVersion('NODE_VERSION')}`);
});

it('runs every build step on the build platform; the final stages only copy (no emulation)', () => {
  expect(node['manifests']![0]).toMatch(/^FROM --platform=\$BUILDPLATFORM /);
  expect(client['tools']![0]).toMatch(/^FROM --platform=\$BUILDPLATFORM /);
  for (const [name, lines] of Object.entries({ ...node, final: client['final']! })) {
    if (['runtime', 'api', 'loader', 'proxy', 'final'].includes(name))
      expect({ name, runs: lines.filter((l) => l.startsWith('RUN ')) }).toEqual({ name, runs: [] });
  }
});

it('installs with npm ci from the lockfile, manifests first so the install layer is cached', () => {
  const manifests = node['manifests']!;
  expect(manifests).toContain('COPY package.json package-lock.json ./');
  expect(manifests.some((l) => l.startsWith('COPY packages/ '))).toBe(false);
  const build = node['build']!;
  expect(build.indexOf('RUN npm ci --ignore-scripts')).toBeLessThan(build.indexOf('COPY packages/ packages/'));
  for (const [pkg] of Object.entries(NODE_TARGETS))
    expect(node[`deps-${pkg}`]).toContain(`RUN install-deps.sh ${pkg} "$TARGETARCH"`);
  expect(readFileSync(join(ROOT, 'docker/install-deps.sh'), 'utf8')).toMatch(
    /npm ci --omit=dev --ignore-scripts --os=linux --cpu="\$cpu" -w "packages\/\$pkg"/,
  );
  expect(instructions('docker/node.Dockerfile').some((l) => /npm install/.test(l))).toBe(false);
});

describe('the lockfile, as the image build sees it (the manifests stage: package.json, lockfile, workspace manifests)', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'npm-ci-'));
    const { workspaces } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { workspaces: string[] };
    for (const f of ['package.json', 'package-lock.json']) cpSync(join(ROOT, f), join(dir, f));
    for (const ws of workspaces) cpSync(join(ROOT, ws, 'package.json'), join(dir, ws, 'package.json'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  // npm ci refuses a lockfile out of step with any package.json; --dry-run --offline checks that without a download.
  it.each([
    ['linux', 'x64'],
    ['linux', 'arm64'],
    ['darwin', 'arm64'],
    ['darwin', 'x64'],
  ])('is accepted by npm ci for %s/%s', (os, cpu) => {
    const r = spawnSync(
      'npm',
      ['ci', '--dry-run', '--offline', '--ignore-scripts', '--no-audit', '--no-fund', `--os=${os}`, `--cpu=${cpu}`],
      { cwd: dir, encoding: 'utf8', timeout: 60_000 },
    );
    expect({ code: r.status, stderr: r.status === 0 ? '' : r.stderr }).toEqual({ code: 0, stderr: '' });
  });
});

it('copies the manifest of every workspace package (npm ci needs them all)', () => {
  const { workspaces } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { workspaces: string[] };
  for (const ws of workspaces) expect(node['manifests']).toContain(`COPY ${ws}/package.json ${ws}/`);
});

it.each(Object.entries(NODE_TARGETS))('%s target: non-root, node dist/main.js, its own dependencies', (target, pkg) => {
  const lines = node[target]!;
  expect(lines[0]).toBe(`FROM runtime AS ${target}`);
  expect(node['runtime']).toContain('USER 10001:10001');
  expect(lines).toContain(`COPY --from=deps-${pkg} /src/node_modules node_modules`);
  expect(lines).toContain(`WORKDIR /app/packages/${pkg}`);
  expect(lines.at(-1)).toBe('CMD ["node", "dist/main.js"]');
});

it('proxy image bounds the V8 heap with the NODE_OPTIONS the lab, the e2e suite and the manifests use', () => {
  expect(node['proxy']).toContain(`ENV NODE_OPTIONS="${SIDECAR_NODE_OPTIONS}"`);
  const sidecar = pods(renderArm('sidecar'))
    .flatMap((p) => containers(p))
    .find((c) => c.name === 'cb-sidecar')!;
  expect(env(sidecar, 'NODE_OPTIONS')).toBe(SIDECAR_NODE_OPTIONS);
});

it('client image: vegeta and k6 cross-built at the Makefile versions, targets and scripts copied', () => {
  const lines = instructions('docker/client.Dockerfile');
  expect(lines).toContain(`ARG VEGETA_VERSION=${makeVersion('VEGETA_VERSION')}`);
  expect(lines).toContain(`ARG K6_VERSION=${makeVersion('K6_VERSION')}`);
  expect(lines.some((l) => l.includes('GOOS=${TARGETOS} GOARCH=${TARGETARCH}'))).toBe(true);
  expect(client['final']).toEqual(
    expect.arrayContaining([
      'COPY vegeta/ vegeta/',
      'COPY k6/*.ts k6/',
      'COPY proto/grpc_predict_v2.proto proto/',
      'USER 10001:10001',
    ]),
  );
});

it("client image's PID 1 ends at once on SIGTERM (run for real)", async () => {
  const cmd = JSON.parse(client['final']!.at(-1)!.replace(/^CMD /, '')) as string[];
  expect(cmd.slice(0, 2)).toEqual(['sh', '-c']);
  const child = spawn(cmd[0]!, cmd.slice(1), { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 300));
  const started = Date.now();
  child.kill('SIGTERM');
  const [code, signal] = await new Promise<[number | null, string | null]>((r) =>
    child.on('exit', (c, s) => r([c, s])),
  );
  // exit code 0 is the trap: without a handler sh would die of the signal here, and ignore it as PID 1.
  expect({ code, signal }).toEqual({ code: 0, signal: null });
  expect(Date.now() - started).toBeLessThan(5000);
});

describe('onnxruntime-node pruned to one platform (docker/prune-onnxruntime.sh on the real package)', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'prune-'));
    mkdirSync(join(dir, 'node_modules'));
    // Hard links: a copy in milliseconds that the prune can delete from without touching the original.
    for (const pkg of ['onnxruntime-node', 'onnxruntime-common'])
      execFileSync('cp', ['-al', join(ROOT, 'node_modules', pkg), join(dir, 'node_modules', pkg)]);
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const platforms = (): string[] =>
    readdirSync(join(dir, 'node_modules/onnxruntime-node/bin/napi-v6')).flatMap((os) =>
      readdirSync(join(dir, 'node_modules/onnxruntime-node/bin/napi-v6', os)).map((cpu) => `${os}/${cpu}`),
    );

  it.each(['x64', 'arm64'])('keeps linux/%s alone', (cpu) => {
    expect(platforms().length).toBeGreaterThan(2);
    execFileSync(join(ROOT, 'docker/prune-onnxruntime.sh'), [join(dir, 'node_modules'), cpu]);
    expect(platforms()).toEqual([`linux/${cpu}`]);
  });

  it('leaves a package that still runs the model on this platform', () => {
    execFileSync(join(ROOT, 'docker/prune-onnxruntime.sh'), [join(dir, 'node_modules'), 'x64']);
    const script = `const ort = require('onnxruntime-node');
ort.InferenceSession.create(${JSON.stringify(join(ROOT, 'packages/api/models/iris_svc.onnx'))}).then(
  (s) => { console.log(s.inputNames.length > 0 ? 'ok' : 'no inputs'); }, (e) => { console.error(e); process.exit(1); });`;
    expect(execFileSync(process.execPath, ['-e', script], { cwd: dir, encoding: 'utf8' }).trim()).toBe('ok');
  });

  it('fails with one line when the platform is not in the package', () => {
    const r = spawnSync(join(ROOT, 'docker/prune-onnxruntime.sh'), [join(dir, 'node_modules'), 'riscv64'], {
      encoding: 'utf8',
    });
    expect({ code: r.status, stderr: r.stderr }).toEqual({
      code: 1,
      stderr: expect.stringMatching(/^prune-onnxruntime: no linux\/riscv64 binary/),
    });
  });
});

it('rejects a target architecture it cannot install for, in one line', () => {
  const r = spawnSync('sh', [join(ROOT, 'docker/install-deps.sh'), 'api', 's390x'], { encoding: 'utf8' });
  expect({ code: r.status, stderr: r.stderr }).toEqual({
    code: 1,
    stderr: 'install-deps: unsupported TARGETARCH s390x (amd64 or arm64)\n',
  });
});

it.each(['node', 'client'])('%s Dockerfile copies only paths that exist in the build context', (name) => {
  for (const line of instructions(`docker/${name}.Dockerfile`)) {
    if (!line.startsWith('COPY ') || line.includes('--from=')) continue;
    for (const src of line.split(/\s+/).slice(1, -1)) {
      const path = src.replace(/\*\.ts$/, '').replace(/\/$/, '');
      expect({ src, exists: existsSync(join(ROOT, path)) }).toEqual({ src, exists: true });
      expect(ignored).not.toContain(path);
    }
  }
});

it('keeps build output, dependencies and git out of the build context', () => {
  expect(ignored).toEqual(expect.arrayContaining(['**/node_modules', '**/dist', '.git', '.tools']));
});
