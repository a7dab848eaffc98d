import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The built CLI (tests that need signals run it as a real child process). */
export const MAIN = fileURLToPath(new URL('../../dist/main.js', import.meta.url));

/** A cb-sidecar child process with its log lines. */
export interface Child {
  readonly process: ChildProcess;
  readonly logs: Record<string, unknown>[];
  readonly stderr: () => string;
  port: number;
  adminPort: number;
  /** resolves with the exit code */
  readonly exited: Promise<number | null>;
  /** resolves once a log line matching `msg` appears */
  waitForLog(msg: RegExp, timeoutMs?: number): Promise<Record<string, unknown>>;
}

/** Runs the CLI with `args` and waits for it to exit (for --check-config and bad configs). */
export function runCli(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [MAIN, ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Starts the CLI on 127.0.0.1 port 0 and resolves once it logs that it listens. */
export async function startChild(args: string[]): Promise<Child> {
  const p = spawn(process.execPath, [MAIN, '--listen', '127.0.0.1:0', '--admin-port', '0', ...args], {
    env: { ...process.env, CB_LOG_LEVEL: 'debug' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Record<string, unknown>[] = [];
  const waiters: { re: RegExp; resolve: (l: Record<string, unknown>) => void }[] = [];
  let buffered = '';
  let stderr = '';
  p.stderr.on('data', (d) => (stderr += d));
  p.stdout.setEncoding('utf8');
  p.stdout.on('data', (d: string) => {
    buffered += d;
    let nl;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = JSON.parse(buffered.slice(0, nl)) as Record<string, unknown>;
      buffered = buffered.slice(nl + 1);
      logs.push(line);
      for (const w of waiters) if (w.re.test(String(line.msg))) w.resolve(line);
    }
  });
  const exited = new Promise<number | null>((resolve) => p.on('exit', resolve));
  const child: Child = {
    process: p,
    logs,
    stderr: () => stderr,
    port: 0,
    adminPort: 0,
    exited,
    waitForLog(re, timeoutMs = 5000) {
      const seen = logs.find((l) => re.test(String(l.msg)));
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`no log line ${re} within ${timeoutMs} ms; stderr: ${stderr}`)),
          timeoutMs,
        );
        waiters.push({ re, resolve: (l) => (clearTimeout(timer), resolve(l)) });
      });
    },
  };
  const started = await Promise.race([
    child.waitForLog(/cb-sidecar started/),
    exited.then((c) => Promise.reject(new Error(`exited ${c}: ${stderr}`))),
  ]);
  child.port = started.listen as number;
  child.adminPort = started.admin as number;
  return child;
}

/** Kills the child if it still runs and waits for it. */
export async function stopChild(child: Child | undefined): Promise<void> {
  if (!child || child.process.exitCode !== null || child.process.signalCode !== null) return;
  child.process.kill('SIGKILL');
  await child.exited;
}
