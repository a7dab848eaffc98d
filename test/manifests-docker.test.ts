// The Dockerfiles, checked statically (there is no Docker engine here): multi-stage on node:24-slim,
// production dependencies only, non-root, `node dist/main.js`, and every path they copy exists in the
// build context the Makefile passes (the repository root, minus .dockerignore).
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './manifests-render.js';
import { SIDECAR_NODE_OPTIONS } from '../packages/proxy/src/runtime.js';

const NODE_IMAGES = { api: 'api', loader: 'loader', proxy: 'proxy' } as const;
const buildAll = execFileSync('make', ['-n', '--no-print-directory', 'build_all'], { cwd: ROOT, encoding: 'utf8' });
const dockerfiles = [...buildAll.matchAll(/-f (docker\/\S+\.Dockerfile) \./g)].map((m) => m[1]!);
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

function finalStage(lines: string[]): string[] {
  const starts = lines.map((l, i) => (l.startsWith('FROM ') ? i : -1)).filter((i) => i >= 0);
  return lines.slice(starts.at(-1));
}

it('builds the four images from docker/*.Dockerfile', () => {
  expect(dockerfiles.sort()).toEqual([
    'docker/api.Dockerfile',
    'docker/client.Dockerfile',
    'docker/loader.Dockerfile',
    'docker/proxy.Dockerfile',
  ]);
});

it('proxy image bounds the V8 heap with the NODE_OPTIONS the lab and the e2e suite use', () => {
  expect(finalStage(instructions('docker/proxy.Dockerfile'))).toContain(`ENV NODE_OPTIONS="${SIDECAR_NODE_OPTIONS}"`);
});

it.each(Object.entries(NODE_IMAGES))(
  '%s image: multi-stage node:24-slim, production deps, non-root, node dist/main.js',
  (name, pkg) => {
    const lines = instructions(`docker/${name}.Dockerfile`);
    expect(lines).toContain('ARG NODE_IMAGE=node:24-slim');
    expect(lines.filter((l) => l.startsWith('FROM ')).length).toBeGreaterThanOrEqual(3);
    expect(lines.some((l) => l.startsWith('ENV ') && l.includes('ONNXRUNTIME_NODE_INSTALL=skip'))).toBe(true);
    expect(lines).toContain(`RUN npm install --no-save --omit=dev -w packages/${pkg} && npm cache clean --force`);
    const last = finalStage(lines);
    expect(last).toContain('USER 10001:10001');
    expect(last.at(-1)).toBe('CMD ["node", "dist/main.js"]');
    expect(last).toContain(`WORKDIR /app/packages/${pkg}`);
    expect(last.some((l) => l.includes('npm ') && l.startsWith('RUN'))).toBe(false);
  },
);

it('client image: vegeta and k6 built with go install at the Makefile versions, targets and scripts copied', () => {
  const lines = instructions('docker/client.Dockerfile');
  const make = readFileSync(join(ROOT, 'Makefile'), 'utf8');
  const version = (v: string): string => new RegExp(`^${v}\\s*:=\\s*(\\S+)`, 'm').exec(make)?.[1] ?? 'missing';
  expect(lines).toContain(`ARG VEGETA_VERSION=${version('VEGETA_VERSION')}`);
  expect(lines).toContain(`ARG K6_VERSION=${version('K6_VERSION')}`);
  expect(
    lines.some((l) =>
      /go install github\.com\/tsenart\/vegeta\/v12@\$\{VEGETA_VERSION\}.*go install go\.k6\.io\/k6@\$\{K6_VERSION\}/.test(
        l,
      ),
    ),
  ).toBe(true);
  expect(finalStage(lines)).toEqual(
    expect.arrayContaining(['COPY vegeta/ vegeta/', 'COPY k6/*.ts k6/', 'USER 10001:10001']),
  );
});

it.each(['api', 'loader', 'proxy', 'client'])('%s image copies only paths that exist in the build context', (name) => {
  for (const line of instructions(`docker/${name}.Dockerfile`)) {
    if (!line.startsWith('COPY ') || line.includes('--from=')) continue;
    const sources = line.split(/\s+/).slice(1, -1);
    for (const src of sources) {
      const path = src.replace(/\*\.ts$/, '').replace(/\/$/, '');
      expect({ src, exists: existsSync(join(ROOT, path)) }).toEqual({ src, exists: true });
      expect(ignored).not.toContain(path);
    }
  }
});

it('keeps build output, dependencies and git out of the build context', () => {
  expect(ignored).toEqual(expect.arrayContaining(['**/node_modules', '**/dist', '.git', '.tools']));
});
