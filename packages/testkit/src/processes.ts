import { spawn, type ChildProcess } from 'node:child_process';
import { sleep } from './wait.js';

/** How a process ended. */
export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A stdout line: the parsed object of a JSON line (pino logs, `{"port":N}`), else `{ line }`. */
export type Line = Record<string, unknown>;

/** How to start one process. */
export interface ProcessSpec {
  /** short name for messages */
  name: string;
  command: string;
  args?: readonly string[];
  /** extra environment, over this process's own */
  env?: Readonly<Record<string, string>>;
  /** pin to this CPU (taskset) */
  cpu?: number;
  /** ready once this stdout line appears (the process reports its port here); its line is `ready` */
  readyLine?: (line: Line) => boolean;
  /** ready once a GET of this URL answers 2xx */
  readyUrl?: string;
  /** ready once this resolves true (a check that throws counts as not yet) */
  readyCheck?: () => Promise<boolean>;
  /** upper bound on the wait for readiness (default 20 s) */
  readyTimeoutMs?: number;
}

const STDERR_TAIL = 8192;
const STDOUT_LIMIT = 4 * 1024 * 1024;
const live = new Set<TestProcess>();
const HOOK = Symbol.for('@infer-cb/testkit/exit-hook');

/** Kills every process still running, at once (a process 'exit' handler, a failed bench). */
export function killAll(): void {
  for (const p of live) p.killNow();
}

// One exit hook per Node process, however many test files load this module.
const hooked = process as unknown as Record<symbol, boolean>;
if (hooked[HOOK] !== true) {
  hooked[HOOK] = true;
  process.once('exit', () => killAll());
}

/**
 * A started process, leader of its own process group (a stop reaches what it started too), with its stdout
 * as lines and the tail of its stderr for messages.
 */
export class TestProcess {
  /** resolves when the process has exited */
  readonly exited: Promise<ExitStatus>;
  /** stdout, one entry per line */
  readonly lines: Line[] = [];
  /** the line that made it ready (with `readyLine`) */
  ready: Line | undefined;
  private out = '';
  private outBytes = 0;
  private err = '';
  private partial = '';
  private status: ExitStatus | undefined;
  private readonly waiters: { match: (l: Line) => boolean; resolve: (l: Line) => void }[] = [];

  constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (d: string) => (this.err = (this.err + d).slice(-STDERR_TAIL)));
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (d: string) => this.onStdout(d));
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => resolve((this.status = { code, signal })));
      child.once('error', (e) => {
        this.err += `\n${e.message}`;
        resolve((this.status = { code: -1, signal: null }));
      });
    });
    void this.exited.then(() => {
      live.delete(this);
      this.killNow(); // the leader may exit before its group
    });
  }

  /** Process id (and process group id). */
  get pid(): number {
    return this.child.pid ?? -1;
  }

  /** True until the process exits. */
  get running(): boolean {
    return this.status === undefined && this.child.pid !== undefined;
  }

  /** Everything written to stdout (the first 4 MiB). */
  stdout(): string {
    return this.out;
  }

  /** The last 8 KiB of stderr. */
  stderr(): string {
    return this.err.trim();
  }

  /** Resolves with the first stdout line (past or future) that `match` accepts; throws after `timeoutMs`. */
  waitForLine(match: (line: Line) => boolean, timeoutMs = 5000): Promise<Line> {
    const seen = this.lines.find(match);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${this.name}: no such stdout line within ${timeoutMs} ms; stderr: ${this.stderr()}`)),
        timeoutMs,
      );
      this.waiters.push({ match, resolve: (l) => (clearTimeout(timer), resolve(l)) });
    });
  }

  /** Resolves with the first log line whose `msg` matches `re` (pino JSON logs). */
  waitForLog(re: RegExp, timeoutMs = 5000): Promise<Line> {
    return this.waitForLine((l) => re.test(String(l.msg)), timeoutMs);
  }

  /** Sends a signal to the whole group; a group already gone is ignored. */
  signal(sig: NodeJS.Signals): void {
    if (!this.running) return;
    try {
      process.kill(-this.pid, sig);
    } catch {
      try {
        this.child.kill(sig);
      } catch {
        /* gone */
      }
    }
  }

  /** `signal` (SIGTERM), then SIGKILL when it has not exited after `graceMs`. */
  async stop(graceMs = 3000, signal: NodeJS.Signals = 'SIGTERM'): Promise<ExitStatus> {
    if (!this.running) return this.exited;
    this.signal(signal);
    const timer = setTimeout(() => this.signal('SIGKILL'), graceMs);
    const status = await this.exited;
    clearTimeout(timer);
    return status;
  }

  /** Synchronous SIGKILL of the group: safe in an 'exit' handler. */
  killNow(): void {
    if (this.child.pid === undefined) return;
    try {
      process.kill(-this.child.pid, 'SIGKILL');
    } catch {
      /* the group is gone */
    }
  }

  private onStdout(data: string): void {
    if (this.outBytes < STDOUT_LIMIT) {
      this.out += data;
      this.outBytes += data.length;
    }
    this.partial += data;
    let nl: number;
    while ((nl = this.partial.indexOf('\n')) >= 0) {
      const text = this.partial.slice(0, nl);
      this.partial = this.partial.slice(nl + 1);
      let line: Line;
      try {
        const parsed: unknown = JSON.parse(text);
        line = typeof parsed === 'object' && parsed !== null ? (parsed as Line) : { line: text };
      } catch {
        line = { line: text };
      }
      if (this.lines.length < 10_000) this.lines.push(line);
      for (let i = this.waiters.length - 1; i >= 0; i--) {
        const w = this.waiters[i] as (typeof this.waiters)[number];
        if (w.match(line)) {
          this.waiters.splice(i, 1);
          w.resolve(line);
        }
      }
    }
  }
}

/**
 * Starts a process and waits until it is ready: its `readyLine` on stdout, or its `readyUrl` answering 2xx.
 * Every process started here is killed when this Node process exits, whatever happens to the test.
 * @throws Error when it exits first or is not ready in time, with the tail of its stderr
 */
export async function startProcess(spec: ProcessSpec): Promise<TestProcess> {
  const [command, args] =
    spec.cpu === undefined
      ? [spec.command, spec.args ?? []]
      : ['taskset', ['-c', String(spec.cpu), spec.command, ...(spec.args ?? [])]];
  const child = spawn(command, args, {
    env: { ...process.env, ...spec.env },
    detached: true, // its own process group: one kill(-pgid) reaches its children too
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const proc = new TestProcess(spec.name, child);
  live.add(proc);
  try {
    await waitReady(proc, spec);
  } catch (err) {
    await proc.stop(500);
    throw err;
  }
  return proc;
}

async function waitReady(proc: TestProcess, spec: ProcessSpec): Promise<void> {
  const timeoutMs = spec.readyTimeoutMs ?? 20_000;
  const exited = proc.exited.then((st) => {
    throw new Error(
      `${proc.name} exited (${st.code ?? st.signal}) before it was ready: ${proc.stderr() || 'no stderr'}`,
    );
  });
  exited.catch(() => undefined); // the race below reports it; an exit after readiness is not an error here
  if (spec.readyLine !== undefined) {
    proc.ready = await Promise.race([proc.waitForLine(spec.readyLine, timeoutMs), exited]);
    return;
  }
  const url = spec.readyUrl;
  const check =
    spec.readyCheck ??
    (url === undefined
      ? undefined
      : async (): Promise<boolean> => {
          const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
          await res.arrayBuffer();
          if (!res.ok) throw new Error(`HTTP ${res.status}`);
          return true;
        });
  if (check === undefined) return;
  const until = performance.now() + timeoutMs;
  let last = 'no answer';
  while (performance.now() < until) {
    if (!proc.running) await exited;
    try {
      if (await check()) {
        if (!proc.running) await exited; // what answered was not this process
        return;
      }
      last = 'not yet';
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    await sleep(50);
  }
  throw new Error(`${proc.name} not ready after ${timeoutMs} ms (${url ?? 'check'}: ${last}): ${proc.stderr()}`);
}

/** Stops every process still running (SIGTERM, then SIGKILL after `graceMs`). */
export async function stopAll(graceMs = 3000): Promise<void> {
  await Promise.all([...live].map((p) => p.stop(graceMs)));
}

/** Runs a command to its end: its exit code, stdout and stderr (a CLI given bad input, `--check-config`). */
export function runToExit(
  command: string,
  args: readonly string[],
  env: Readonly<Record<string, string>> = {},
  timeoutMs = 30_000,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${command} ${args.join(' ')} did not exit within ${timeoutMs} ms`));
    }, timeoutMs);
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
