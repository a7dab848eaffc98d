/* global URL, fetch, setTimeout, clearTimeout -- Node 24 globals; the shared eslint config lists only a few for .mjs */
// Helpers shared by bench/adaptive and bench/overhead: free ports, child processes that are always
// stopped, vegeta open-loop attacks decoded to per-request records, percentiles.
import { execFileSync, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const VEGETA = `${ROOT}.tools/bin/vegeta`;
export const SIDECAR = `${ROOT}packages/proxy/dist/main.js`;
export const QUEUEING_UPSTREAM = `${ROOT}packages/proxy/test/limit/queueing-upstream.ts`;

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const uptime = () => execFileSync('uptime', { encoding: 'utf8' }).trim();

/** A scratch directory removed by `cleanup()`. */
export function scratch(prefix) {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export async function freePort() {
  const s = createServer();
  await new Promise((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

const children = new Set();
/** Kills every child still running (called on exit and on errors). */
export function killAll() {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
}
process.once('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM']) process.once(sig, () => (killAll(), process.exit(130)));

/** Spawns a process (optionally pinned with taskset) and waits until `readyUrl` answers 2xx. */
export async function startProcess(command, args, { readyUrl, env = {}, cpu, name = command } = {}) {
  const [cmd, argv] = cpu === undefined ? [command, args] : ['taskset', ['-c', String(cpu), command, ...args]];
  const child = spawn(cmd, argv, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  children.add(child);
  child.once('exit', () => children.delete(child));
  let stdout = '';
  child.stdout.on('data', (d) => (stdout += d));
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) break;
    if (readyUrl === undefined) {
      if (stdout.includes('\n')) return { child, stdout: () => stdout };
    } else if (
      await fetch(readyUrl).then(
        (r) => r.ok,
        () => false,
      )
    ) {
      return { child, stdout: () => stdout };
    }
    await sleep(100);
  }
  child.kill('SIGKILL');
  throw new Error(`${name} did not start (${readyUrl ?? 'no output'})`);
}

/** Stops a child with `signal`, then SIGKILL after 5 s. */
export async function stopProcess({ child }, signal = 'SIGINT') {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

/** Starts the queueing upstream process (bench/adaptive). */
export async function startQueueingUpstream({ parallelism, serviceMs, backlog }) {
  const proc = await startProcess(
    process.execPath,
    [
      QUEUEING_UPSTREAM,
      '--parallelism',
      String(parallelism),
      '--service-ms',
      String(serviceMs),
      '--backlog',
      String(backlog),
    ],
    { name: 'queueing-upstream' },
  );
  const { port } = JSON.parse(proc.stdout().split('\n')[0]);
  return { ...proc, origin: `http://127.0.0.1:${port}` };
}

/**
 * Runs `vegeta attack` (open loop, constant rate) at POST `url` with the seed body and returns one record
 * per request: { startMs (epoch), latencyMs, code }. Bounded by `duration` and `timeout`.
 */
export function vegetaAttack({ url, rate, duration, timeout = '5s', dir, headers = [], cpu, maxConnections }) {
  const targets = join(dir, 'targets.txt');
  const results = join(dir, 'results.bin');
  writeFileSync(
    targets,
    [`POST ${url}`, 'Content-Type: application/json', ...headers, `@${ROOT}vegeta/data.json`, ''].join('\n'),
  );
  return new Promise((resolve, reject) => {
    const args = [
      'attack',
      `-targets=${targets}`,
      `-rate=${rate}`,
      `-duration=${duration}`,
      `-timeout=${timeout}`,
      `-output=${results}`,
      ...(maxConnections ? [`-max-connections=${maxConnections}`] : []),
    ];
    const [cmd, argv] = cpu === undefined ? [VEGETA, args] : ['taskset', ['-c', String(cpu), VEGETA, ...args]];
    const child = spawn(cmd, argv, { stdio: ['ignore', 'ignore', 'inherit'] });
    children.add(child);
    child.once('error', reject);
    child.once('exit', (code) => {
      children.delete(child);
      if (code !== 0) return reject(new Error(`vegeta attack exited ${code}`));
      const json = execFileSync(VEGETA, ['encode', '--to', 'json', results], { encoding: 'utf8', maxBuffer: 1 << 30 });
      const records = [];
      for (const line of json.split('\n')) {
        if (line.length === 0) continue;
        const r = JSON.parse(line);
        records.push({
          startMs:
            Date.parse(r.timestamp) + Number(/\.\d{3}(\d{0,6})/.exec(r.timestamp)?.[1].padEnd(6, '0') ?? 0) / 1e6,
          latencyMs: r.latency / 1e6,
          code: r.code,
        });
      }
      resolve(records);
    });
  });
}

/** The p-th percentile (0..100) of numbers, nearest rank; NaN when empty. */
export function percentile(values, p) {
  if (values.length === 0) return NaN;
  const sorted = Float64Array.from(values).sort();
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}
