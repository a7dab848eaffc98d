import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync } from 'node:fs';
import { request, createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { Express } from 'express';
import { createApp } from '../src/app.js';
import { loadModel } from '../src/model.js';

/** The shared reference files beside the repository (CI clones the repo with shared/ next to it). */
const SHARED_MODELS = fileURLToPath(new URL('../../../../shared/models/', import.meta.url));
/** The packaged copy of the reference model (the same bytes; a test pins its sha256). */
const PACKAGED_MODELS = fileURLToPath(new URL('../models/', import.meta.url));
/** The reference model from the seed deployment: ../shared/models when present, else the packaged copy. */
export const REFERENCE_MODEL = existsSync(`${SHARED_MODELS}iris_svc.onnx`)
  ? `${SHARED_MODELS}iris_svc.onnx`
  : `${PACKAGED_MODELS}iris_svc.onnx`;
/** A JSON file that is not a model. */
export const NOT_A_MODEL = `${PACKAGED_MODELS}label.json`;
/** The fixture models made by fixtures/make_models.py. */
export const FIXTURES = fileURLToPath(new URL('./fixtures/', import.meta.url));
/** The compiled bin (`make test` builds before it tests). */
export const MAIN_JS = fileURLToPath(new URL('../dist/main.js', import.meta.url));

export interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- test assertions read arbitrary JSON
  json: any;
}

/** One HTTP request with full control of the headers (fetch would add a Content-Type). */
export function call(
  base: string,
  method: string,
  path: string,
  options: { body?: string | Buffer; headers?: Record<string, string> } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(`${base}${path}`, { method, headers: options.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

/** POSTs a JSON value. */
export function postJson(base: string, path: string, value: unknown): Promise<Answer> {
  return call(base, 'POST', path, { body: JSON.stringify(value), headers: { 'content-type': 'application/json' } });
}

/** Serves an app on 127.0.0.1:0; returns its base URL and a closer. */
export async function serve(app: Express): Promise<{ base: string; close: () => Promise<void> }> {
  const server: Server = createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    base: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The v2 metadata of the reference iris model, over REST and gRPC alike. */
export const IRIS_V2_METADATA = {
  name: 'iris',
  versions: ['1'],
  platform: 'onnxruntime',
  inputs: [{ name: 'float_input', datatype: 'FP32', shape: [-1, 4] }],
  outputs: [
    { name: 'probabilities', datatype: 'FP32', shape: [-1, 3] },
    { name: 'label', datatype: 'BYTES', shape: [-1] },
  ],
};

/**
 * The reference model in createApp with the tests' limits (16 rows, 4 KiB bodies) on 127.0.0.1:0; `draining`
 * is read on every request. `close` stops the server and releases the model.
 */
export async function serveReference(draining: () => boolean): Promise<{ base: string; close: () => Promise<void> }> {
  const model = await loadModel({ modelFilepath: REFERENCE_MODEL });
  const server = await serve(createApp({ model, maxBatchRows: 16, bodyLimitBytes: 4096, draining }));
  return {
    base: server.base,
    close: async () => {
      await server.close();
      await model.close();
    },
  };
}

/** A running `iris-api` child process. */
export interface ApiProcess {
  child: ChildProcessWithoutNullStreams;
  base: string;
  output: () => string;
  exited: Promise<number | null>;
}

/** Starts dist/main.js on a free port and waits until it logs readiness (or exits). */
export async function startApi(env: Record<string, string>, readyMessage = 'iris-api ready'): Promise<ApiProcess> {
  if (!existsSync(MAIN_JS)) throw new Error(`${MAIN_JS} is missing: run "npx tsc -b packages/api" first`);
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  const child = spawn(process.execPath, [MAIN_JS], {
    env: { ...process.env, HOST: '127.0.0.1', PORT: String(port), LOG_LEVEL: 'info', ...env },
  });
  let out = '';
  child.stdout.on('data', (c: Buffer) => {
    out += c.toString();
  });
  child.stderr.on('data', (c: Buffer) => {
    out += c.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const deadline = Date.now() + 20_000;
  while (!out.includes(readyMessage)) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`iris-api did not become ready:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { child, base: `http://127.0.0.1:${port}`, output: () => out, exited };
}

/** Runs dist/main.js to completion (for startup failures). */
export function runApiToExit(env: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [MAIN_JS], { env: { ...process.env, HOST: '127.0.0.1', PORT: '0', ...env } });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
  });
}
