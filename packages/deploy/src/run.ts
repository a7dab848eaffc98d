// Running the tools cb-deploy drives (kubectl, minikube, docker, vegeta): every call goes through a `Run`, so
// the checks can be exercised with recorded answers where no cluster exists.
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';

/** What a finished command left: its exit code (-1 when it could not start) and its output. */
export interface RunResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Options of one command. */
export interface RunOptions {
  /** text written to its stdin */
  readonly input?: string;
  /** its stdout goes to this file instead of `stdout` (binary-safe) */
  readonly stdoutFile?: string;
  /** killed after this long (ms); every call is bounded */
  readonly timeoutMs?: number;
}

/** Runs a command to completion. */
export type Run = (command: string, args: readonly string[], options?: RunOptions) => Promise<RunResult>;

/** Default bound on one command: long enough for an attack, short enough that nothing hangs forever. */
export const DEFAULT_TIMEOUT_MS = 10 * 60_000;

/** Runs commands for real, with child_process.spawn (no shell). */
export const run: Run = (command, args, options = {}) =>
  new Promise((resolve) => {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const file = options.stdoutFile ? createWriteStream(options.stdoutFile) : undefined;
    if (file) child.stdout.pipe(file);
    else child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    const timer = setTimeout(() => child.kill('SIGTERM'), options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    const finish = (code: number, extra = ''): void => {
      clearTimeout(timer);
      const result = {
        code,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8') + extra,
      };
      if (file) file.end(() => resolve(result));
      else resolve(result);
    };
    child.once('error', (e) => finish(-1, e.message));
    child.once('close', (code, signal) => finish(code ?? (signal ? 128 : -1)));
    child.stdin.on('error', () => undefined); // a command that exits without reading its input
    child.stdin.end(options.input ?? '');
  });

/** The first non-empty line of a command's stderr (or stdout), for one-line error messages. */
export function firstLine(r: RunResult): string {
  const line = `${r.stderr}\n${r.stdout}`
    .split('\n')
    .map((l) => l.trim())
    .find(Boolean);
  return line ?? `exit ${r.code}`;
}
