// Fetches the schemas the manifest tests validate against with kubeconform, pinned to the oldest versions the
// manifests support, and writes them where kubeconform's -schema-location templates find them:
//   <out>/kubernetes/v<K8S>-local-strict/<kind>-<group>-<version>.json   Kubernetes, from the PyPI wheel
//        kubernetes-validate (hash-pinned in test/schemas/requirements.txt), which carries every minor's schemas
//   <out>/crds/<group>/<kind>_<version>.json                             CRDs, from Go modules (Go module proxy,
//        checked against sum.golang.org): Istio's from istio.io/api, prometheus-operator's from its repository
// Usage: node scripts/k8s-schemas.mjs --out DIR --kubernetes 1.30.0 --python PY --crds MODULE@VERSION:PATH[,...]
// Nothing is downloaded when <out>/.complete exists (the directory name carries every pinned version).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parseAllDocuments } from 'yaml';

const { values } = parseArgs({
  options: {
    out: { type: 'string' },
    kubernetes: { type: 'string' },
    python: { type: 'string', default: 'python3' },
    requirements: { type: 'string', default: 'test/schemas/requirements.txt' },
    crds: { type: 'string', default: '' },
  },
});
if (!values.out || !values.kubernetes) {
  console.error('k8s-schemas: --out DIR and --kubernetes X.Y.Z are required');
  process.exit(2);
}
const out = values.out;
if (existsSync(join(out, '.complete'))) process.exit(0);
rmSync(out, { recursive: true, force: true });
const tmp = mkdtempSync(join(tmpdir(), 'k8s-schemas-'));

try {
  kubernetesSchemas(`v${values.kubernetes}-local-strict`);
  for (const spec of values.crds.split(',').filter(Boolean)) crdSchemas(spec);
  writeFileSync(join(out, '.complete'), `${new Date().toISOString()}\n`);
} finally {
  rmSync(tmp, { recursive: true, force: true });
}

/** Kubernetes' own kinds: one minor's strict schemas out of the kubernetes-validate wheel. */
function kubernetesSchemas(dirName) {
  execFileSync(
    values.python,
    ['-m', 'pip', 'download', '--quiet', '--no-deps', '--require-hashes', '-r', values.requirements, '-d', tmp],
    { stdio: 'inherit' },
  );
  const wheel = readdirSync(tmp).find((f) => f.endsWith('.whl'));
  if (!wheel) throw new Error('k8s-schemas: pip downloaded no wheel');
  const prefix = `kubernetes_validate/kubernetes-json-schema/${dirName}/`;
  // The standard library's zipfile: no unzip binary needed on a fresh machine.
  execFileSync(values.python, [
    '-c',
    'import sys, zipfile\nz = zipfile.ZipFile(sys.argv[1])\nz.extractall(sys.argv[2], [n for n in z.namelist() if n.startswith(sys.argv[3])])',
    join(tmp, wheel),
    tmp,
    prefix,
  ]);
  const from = join(tmp, prefix);
  const to = join(out, 'kubernetes', dirName);
  mkdirSync(to, { recursive: true });
  const files = readdirSync(from);
  if (files.length < 100) throw new Error(`k8s-schemas: only ${files.length} schemas under ${prefix}`);
  for (const f of files) {
    // The wheel's loader serves these under https://kubernetes.io/api/; kubeconform reads them from disk, so
    // the $id goes and every reference to the shared definitions becomes relative to the file.
    const schema = JSON.parse(readFileSync(join(from, f), 'utf8'));
    delete schema.$id;
    const text = JSON.stringify(schema).replaceAll('"/api/_definitions.json#', '"_definitions.json#');
    writeFileSync(join(to, f), text);
  }
}

/** One CRD file from a Go module (`module@version:path/in/module.yaml`): each served version as a strict schema. */
function crdSchemas(spec) {
  const [module, path] = spec.split(':');
  const info = JSON.parse(
    execFileSync('go', ['mod', 'download', '-json', module], {
      encoding: 'utf8',
      env: { ...process.env, GOFLAGS: '-mod=mod' },
    }),
  );
  if (info.Error) throw new Error(`k8s-schemas: go mod download ${module}: ${info.Error}`);
  const docs = parseAllDocuments(readFileSync(join(info.Dir, path), 'utf8')).map((d) => d.toJS());
  for (const crd of docs.filter((d) => d?.kind === 'CustomResourceDefinition')) {
    const { group, names } = crd.spec;
    for (const version of crd.spec.versions.filter((v) => v.served)) {
      const schema = strict(version.schema.openAPIV3Schema, true);
      const dir = join(out, 'crds', group);
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, `${names.kind.toLowerCase()}_${version.name}.json`), JSON.stringify(schema));
    }
  }
}

/**
 * A CRD's OpenAPI v3 schema as strict JSON Schema, as the API server reads it with `kubectl apply`'s default
 * strict field validation: objects with declared properties reject unknown fields unless they preserve them;
 * int-or-string and nullable become JSON Schema types; the root also admits apiVersion, kind and metadata.
 */
function strict(node, root = false) {
  if (Array.isArray(node)) return node.map((n) => strict(n));
  if (node === null || typeof node !== 'object') return node;
  const out = {};
  for (const [k, v] of Object.entries(node)) out[k] = k === 'properties' ? mapValues(v, strict) : strict(v);
  if (out['x-kubernetes-int-or-string']) {
    delete out.type;
    out.anyOf ??= [{ type: 'integer' }, { type: 'string' }];
  }
  if (out.nullable && typeof out.type === 'string') out.type = [out.type, 'null'];
  if (root) {
    out.properties = {
      apiVersion: { type: 'string' },
      kind: { type: 'string' },
      metadata: { type: 'object' },
      ...out.properties,
    };
  }
  if (out.properties && out.additionalProperties === undefined && !out['x-kubernetes-preserve-unknown-fields'])
    out.additionalProperties = false;
  return out;
}

function mapValues(obj, fn) {
  return Object.fromEntries(Object.entries(obj).map(([k, v]) => [k, fn(v)]));
}
