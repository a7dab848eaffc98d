// Helpers of the cb-lab end-to-end tests: run the built CLI as a real process, list its descendants.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export const repoRoot = process.cwd();
export const labMain = join(repoRoot, 'packages', 'lab', 'dist', 'main.js');

export interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Starts cb-lab; `done` resolves when it exits (it is killed after `timeoutMs`). */
export function startLab(
  args: readonly string[],
  timeoutMs = 150_000,
): { proc: ChildProcess; done: Promise<CliRun>; stderr: () => string } {
  const proc = spawn(process.execPath, [labMain, ...args], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  proc.stdout?.on('data', (c: Buffer) => (stdout += c.toString()));
  proc.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
  const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
  const done = new Promise<CliRun>((resolve) =>
    proc.once('exit', (code, signal) => {
      clearTimeout(timer);
      // Let the pipes drain.
      setImmediate(() => resolve({ code, signal, stdout, stderr }));
    }),
  );
  return { proc, done, stderr: () => stderr };
}

/** Runs cb-lab to the end. */
export function runLab(args: readonly string[], timeoutMs?: number): Promise<CliRun> {
  return startLab(args, timeoutMs).done;
}

function stat(pid: number): { ppid: number; state: string } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { state: rest[0] ?? '?', ppid: Number(rest[1]) };
  } catch {
    return undefined;
  }
}

/** Every live (non-zombie) process descending from `root`. */
export function descendants(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const s = stat(Number(name));
    if (s === undefined || s.state === 'Z') continue;
    const list = children.get(s.ppid) ?? [];
    list.push(Number(name));
    children.set(s.ppid, list);
  }
  const out: number[] = [];
  const walk = (pid: number): void => {
    for (const c of children.get(pid) ?? []) {
      out.push(c);
      walk(c);
    }
  };
  walk(root);
  return out;
}

/** True while `pid` exists and is not a zombie. */
export function alive(pid: number): boolean {
  if (!existsSync(`/proc/${pid}`)) return false;
  const s = stat(pid);
  return s !== undefined && s.state !== 'Z';
}

/**
 * Sends SIGINT to a running cb-lab and reports its exit code and which of the descendants it had just
 * before are still alive afterwards (the list a clean exit leaves empty).
 */
export async function interrupt(
  lab: ReturnType<typeof startLab>,
): Promise<{ seen: number[]; code: number | null; leftovers: number[] }> {
  const seen = descendants(lab.proc.pid as number);
  lab.proc.kill('SIGINT');
  const run = await lab.done;
  await new Promise((r) => setTimeout(r, 300));
  return { seen, code: run.code, leftovers: seen.filter(alive) };
}

/** Ends a cb-lab that a failed test left running: SIGTERM (it stops its children), SIGKILL after 10 s. */
export async function stopLab(lab: ReturnType<typeof startLab>): Promise<void> {
  if (lab.proc.exitCode !== null || lab.proc.signalCode !== null) return;
  lab.proc.kill('SIGTERM');
  const timer = setTimeout(() => lab.proc.kill('SIGKILL'), 10_000);
  await lab.done;
  clearTimeout(timer);
}

/** Waits (up to `timeoutMs`) until cb-lab's stderr contains `text`, e.g. an arm's progress line. */
export async function waitForStderr(lab: ReturnType<typeof startLab>, text: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!lab.stderr().includes(text) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
}
