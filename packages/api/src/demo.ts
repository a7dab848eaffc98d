#!/usr/bin/env node
/**
 * `make demo` (until the lab takes it over): starts iris-api on the shipped model on a free
 * 127.0.0.1 port, prints each sample request of the seed and its answer, stops it, exits 0.
 */
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

const MAIN = fileURLToPath(new URL('./main.js', import.meta.url));
const SAMPLE_BODY = fileURLToPath(new URL('../models/data.json', import.meta.url));
const READY_TIMEOUT_MS = 20_000;

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no free port');
  return address.port;
}

async function waitReady(base: string, exited: () => boolean): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline && !exited()) {
    const ok = await fetch(`${base}/ready`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`iris-api did not become ready at ${base}`);
}

async function show(base: string, method: 'GET' | 'POST', path: string, body?: string): Promise<void> {
  const curl =
    method === 'GET'
      ? `curl ${base}${path}`
      : `curl -X POST -H "Content-Type: application/json" -d '${body}' ${base}${path}`;
  const answer = await fetch(`${base}${path}`, {
    method,
    ...(body === undefined ? {} : { body, headers: { 'content-type': 'application/json' } }),
  });
  process.stdout.write(`$ ${curl}\n${answer.status} ${await answer.text()}\n\n`);
}

async function main(): Promise<number> {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const child = spawn(process.execPath, [MAIN], {
    env: { ...process.env, HOST: '127.0.0.1', PORT: String(port), LOG_LEVEL: 'warn', WORKERS: '1' },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  try {
    process.stdout.write(`iris-api (shipped iris model) on ${base}\n\n`);
    await waitReady(base, () => child.exitCode !== null);
    const sample = (await readFile(SAMPLE_BODY, 'utf8')).trim();
    await show(base, 'GET', '/health');
    await show(base, 'GET', '/metadata');
    await show(base, 'GET', '/label');
    await show(base, 'GET', '/predict/test');
    await show(base, 'GET', '/predict/test/label');
    await show(base, 'POST', '/predict', sample);
    await show(base, 'POST', '/predict', '{"data": [[5.1, 3.5, 1.4, 0.2]]}');
    await show(base, 'POST', '/predict/label', '{"data": [[5.1, 3.5, 1.4, 0.2]]}');
    await show(base, 'POST', '/predict/label', '{"data": [[6.4, 3.2, 4.5, 1.5], [6.3, 3.3, 6.0, 2.5]]}');
  } finally {
    if (child.exitCode === null) child.kill('SIGTERM');
  }
  const code = await exit;
  process.stdout.write(`iris-api stopped (exit ${code})\n`);
  return code === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`demo: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
