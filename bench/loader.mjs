// Benchmark of the model loader CLI (packages/loader/dist/main.js): wall time and peak RSS per run,
// for the iris model (2 KB) and a 64 MiB ONNX model served over HTTP from 127.0.0.1, plus the
// "already present" path and bare start-up (--help). Bounded: RUNS runs per scenario, run in sequence.
// Usage: node bench/loader.mjs [RUNS]   (after npx tsc -b packages/loader)
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;
const root = dirname(dirname(fileURLToPath(import.meta.url)));
const CLI = join(root, 'packages/loader/dist/main.js');
const RUNS = Number(process.argv[2] ?? 7);
const BIG_MIB = Number(process.env.LOADER_BENCH_MIB ?? 64);

/** A valid ONNX model whose only content is one float initializer of `mib` MiB, returned by Identity. */
function bigModel(mib) {
  const count = (mib * 1024 * 1024) / 4;
  const raw = new Uint8Array(count * 4);
  for (let i = 0; i < raw.length; i += 4096) raw[i] = i & 0xff;
  const model = onnx.ModelProto.create({
    irVersion: 7,
    opsetImport: [{ domain: '', version: 13 }],
    graph: {
      name: 'big',
      initializer: [{ name: 'W', dims: [count], dataType: onnx.TensorProto.DataType.FLOAT, rawData: raw }],
      node: [{ opType: 'Identity', input: ['W'], output: ['Y'] }],
      output: [
        {
          name: 'Y',
          type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape: { dim: [{ dimValue: count }] } } },
        },
      ],
    },
  });
  return onnx.ModelProto.encode(model).finish();
}

/** Runs the CLI under /usr/bin/time; returns wall ms, peak RSS in MiB and the exit code. */
function runCli(args) {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn('/usr/bin/time', ['-f', '%M', process.execPath, CLI, ...args], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (c) => (stderr += c));
    child.on('error', reject);
    child.on('close', (code) => {
      const wallMs = performance.now() - started;
      const rssKiB = Number(stderr.trim().split('\n').at(-1));
      resolve({ code, wallMs, rssMiB: rssKiB / 1024 });
    });
  });
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const dir = await mkdtemp(join(tmpdir(), 'loader-bench-'));
const iris = await readFile(join(root, 'packages/loader/test/fixtures/iris_svc.onnx'));
const big = bigModel(BIG_MIB);
const bodies = { '/iris.onnx': iris, '/big.onnx': big };
const server = createServer((req, res) => {
  const body = bodies[req.url ?? ''];
  if (body === undefined) return res.writeHead(404).end();
  res.writeHead(200, { 'content-length': String(body.byteLength) }).end(body);
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const origin = `http://127.0.0.1:${server.address().port}`;
const irisSha = createHash('sha256').update(iris).digest('hex');
const presentPath = join(dir, 'present.onnx');
await writeFile(presentPath, iris);

const scenarios = [
  ['start-up only (--help)', ['--help']],
  ['iris 2 KB over http', ['--source', `${origin}/iris.onnx`, '--model-filepath', join(dir, 'iris.onnx')]],
  [
    'iris already present (sha256 matches)',
    ['--source', `${origin}/iris.onnx`, '--model-filepath', presentPath, '--sha256', irisSha],
  ],
  [`${BIG_MIB} MiB model over http`, ['--source', `${origin}/big.onnx`, '--model-filepath', join(dir, 'big.onnx')]],
  // A wrong --sha256 stops after the download (exit 7): the streaming part alone, without onnxruntime.
  [
    `${BIG_MIB} MiB download only (sha256 mismatch, exit 7)`,
    ['--source', `${origin}/big.onnx`, '--model-filepath', join(dir, 'big2.onnx'), '--sha256', '0'.repeat(64)],
    7,
  ],
];

const rows = [];
try {
  for (const [name, args, expectedCode = 0] of scenarios) {
    const runs = [];
    for (let i = 0; i < RUNS; i++) {
      const run = await runCli(args);
      if (run.code !== expectedCode) throw new Error(`${name}: exit ${run.code}`);
      runs.push(run);
    }
    rows.push(
      `| ${name} | ${median(runs.map((r) => r.wallMs)).toFixed(0)} | ${Math.max(...runs.map((r) => r.wallMs)).toFixed(0)} | ${median(runs.map((r) => r.rssMiB)).toFixed(0)} |`,
    );
  }
} finally {
  server.close();
  await rm(dir, { recursive: true, force: true });
}
console.log(`model-loader CLI, ${RUNS} runs per scenario, Node ${process.versions.node}\n`);
console.log('| scenario | median wall ms | max wall ms | median peak RSS MiB |\n|---|---|---|---|');
console.log(rows.join('\n'));
