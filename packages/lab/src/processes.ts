import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { LabError } from './errors.js';

/** How to start one supervised child. */
export interface SpawnSpec {
  /** Short name used in messages (`api-0`, `sidecar-1`). */
  name: string;
  command: string;
  args?: readonly string[];
  /** Extra environment, merged over the lab's own. */
  env?: Readonly<Record<string, string>>;
  cwd?: string;
  /** When set, `spawn` resolves only once a GET to this URL answers 2xx. */
  readyUrl?: string;
  /** Upper bound on the wait for readiness. */
  readyTimeoutMs?: number;
  /** `buffer`: keep stdout for `stdout()`; `stream`: pipe it for the caller to read; default: discard. */
  stdout?: 'buffer' | 'stream';
}

/** How a child ended. */
export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

const STDERR_TAIL_BYTES = 4096;

/** One supervised child process, leader of its own process group. */
export class Child {
  /** Resolves when the process has exited. */
  readonly exited: Promise<ExitStatus>;
  private tail = '';
  private out: Buffer[] = [];
  private exitStatus: ExitStatus | undefined;

  constructor(
    readonly name: string,
    readonly proc: ChildProcess,
    keepStdout = false,
  ) {
    proc.stderr?.setEncoding('utf8');
    proc.stderr?.on('data', (chunk: string) => {
      this.tail = (this.tail + chunk).slice(-STDERR_TAIL_BYTES);
    });
    if (keepStdout) proc.stdout?.on('data', (chunk: Buffer) => this.out.push(chunk));
    this.exited = new Promise((resolve) => {
      proc.once('exit', (code, signal) => {
        this.exitStatus = { code, signal };
        resolve(this.exitStatus);
      });
      proc.once('error', (err) => {
        this.tail += `\n${err.message}`;
        this.exitStatus = { code: -1, signal: null };
        resolve(this.exitStatus);
      });
    });
  }

  /** Process id (the process group id too). */
  get pid(): number {
    return this.proc.pid ?? -1;
  }

  /** True while the process has not exited. */
  get running(): boolean {
    return this.exitStatus === undefined && this.proc.pid !== undefined;
  }

  /** The last few KiB of stderr, trimmed: what a failure message quotes. */
  stderrTail(): string {
    return this.tail.trim();
  }

  /** Everything the child wrote to stdout (only with `stdout: 'buffer'`). */
  stdout(): string {
    return Buffer.concat(this.out).toString('utf8');
  }

  /** Sends a signal to the whole process group; ignores a group that is already gone. */
  signal(sig: NodeJS.Signals): void {
    if (!this.running) return;
    try {
      process.kill(-this.pid, sig);
    } catch {
      try {
        this.proc.kill(sig);
      } catch {
        /* already gone */
      }
    }
  }

  /** SIGTERM, then SIGKILL when the child has not exited after `graceMs`. */
  async stop(graceMs = 3000): Promise<ExitStatus> {
    if (!this.running) return this.exited;
    this.signal('SIGTERM');
    const timer = setTimeout(() => this.signal('SIGKILL'), graceMs);
    const status = await this.exited;
    clearTimeout(timer);
    // The leader may exit before its group (e.g. a tool's own children): sweep the group.
    this.killGroupNow();
    return status;
  }

  /** Synchronous SIGKILL of the group: safe inside a process 'exit' handler. */
  killGroupNow(): void {
    if (this.proc.pid === undefined) return;
    try {
      process.kill(-this.proc.pid, 'SIGKILL');
    } catch {
      /* the group is gone */
    }
  }
}

// The reaper: a tiny detached process that outlives a SIGKILLed lab and kills the groups it left behind.
// argv: <lab pid> <file with the JSON list of process group ids>.
const REAPER = `
const fs = require('fs');
const [ppid, file] = process.argv.slice(1);
setInterval(() => {
  try { process.kill(Number(ppid), 0); return; } catch {}
  let groups = [];
  try { groups = JSON.parse(fs.readFileSync(file, 'utf8')); } catch {}
  for (const g of groups) { try { process.kill(-g, 'SIGKILL'); } catch {} }
  try { fs.rmSync(file, { force: true }); } catch {}
  process.exit(0);
}, 250);
`;

/**
 * Starts children in their own process groups, tracks every one of them and kills them all when the
 * lab ends: normally (`stopAll`), on SIGINT/SIGTERM, on an uncaught error, at process exit, and (through
 * the reaper) when the lab itself is killed.
 */
export class Supervisor {
  private readonly children = new Set<Child>();
  private handlersInstalled = false;
  private reaperFile: string | undefined;
  private reaper: ChildProcess | undefined;

  /** Every child started and not yet stopped. */
  get live(): readonly Child[] {
    return [...this.children].filter((c) => c.running);
  }

  /**
   * Spawns a child and, with `readyUrl`, waits until it answers.
   * @throws LabError LAB_CHILD_EXITED when it exits first, LAB_READY_TIMEOUT when it is not ready in time
   */
  async spawn(spec: SpawnSpec): Promise<Child> {
    const proc = spawn(spec.command, spec.args ?? [], {
      cwd: spec.cwd,
      env: { ...process.env, ...spec.env },
      detached: true, // own process group: one kill(-pgid) reaches grandchildren too
      stdio: ['ignore', spec.stdout === undefined ? 'ignore' : 'pipe', 'pipe'],
    });
    const child = new Child(spec.name, proc, spec.stdout === 'buffer');
    this.children.add(child);
    this.recordGroups();
    void child.exited.then(() => {
      if (!child.running) child.killGroupNow();
    });
    if (spec.readyUrl !== undefined) {
      try {
        await waitForReady(child, spec.readyUrl, spec.readyTimeoutMs ?? 15_000);
      } catch (err) {
        await child.stop(500);
        throw err;
      }
    }
    return child;
  }

  /** Stops one child and forgets it. */
  async stop(child: Child, graceMs?: number): Promise<void> {
    await child.stop(graceMs);
    this.children.delete(child);
    this.recordGroups();
  }

  /** Stops every child in parallel (SIGTERM, then SIGKILL after the grace). */
  async stopAll(graceMs = 3000): Promise<void> {
    const all = [...this.children];
    await Promise.all(all.map((c) => c.stop(graceMs)));
    for (const c of all) this.children.delete(c);
    this.recordGroups();
  }

  /**
   * Starts the reaper: a detached watcher that SIGKILLs every process group this supervisor still tracks
   * if the lab itself dies without cleaning up (SIGKILL, OOM). It exits with the lab otherwise.
   */
  startReaper(): void {
    if (this.reaper !== undefined) return;
    this.reaperFile = join(tmpdir(), `cb-lab-reaper-${process.pid}.json`);
    this.recordGroups();
    this.reaper = spawn(process.execPath, ['-e', REAPER, String(process.pid), this.reaperFile], {
      detached: true,
      stdio: 'ignore',
    });
    this.reaper.unref();
  }

  private recordGroups(): void {
    if (this.reaperFile === undefined) return;
    const groups = [...this.children].filter((c) => c.running).map((c) => c.pid);
    try {
      writeFileSync(this.reaperFile, JSON.stringify(groups));
    } catch {
      /* best effort: the exit handlers still kill them */
    }
  }

  private stopReaper(): void {
    if (this.reaperFile !== undefined) rmSync(this.reaperFile, { force: true });
    try {
      this.reaper?.kill('SIGKILL');
    } catch {
      /* gone */
    }
  }

  /** Synchronous last resort: SIGKILL every tracked group. */
  killAllNow(): void {
    for (const c of this.children) c.killGroupNow();
  }

  /**
   * Installs process handlers so no child outlives the lab: SIGINT/SIGTERM stop every child and exit
   * 130/143 (after `onSignal`, e.g. to print a note), an uncaught error kills them and exits 1.
   */
  installExitHandlers(onSignal?: (sig: NodeJS.Signals) => void): void {
    if (this.handlersInstalled) return;
    this.handlersInstalled = true;
    let stopping = false;
    const onSig = (sig: NodeJS.Signals): void => {
      if (stopping) {
        this.killAllNow();
        process.exit(sig === 'SIGINT' ? 130 : 143);
      }
      stopping = true;
      onSignal?.(sig);
      void this.stopAll(1500).finally(() => process.exit(sig === 'SIGINT' ? 130 : 143));
    };
    process.on('SIGINT', onSig);
    process.on('SIGTERM', onSig);
    this.startReaper();
    process.on('exit', () => {
      this.killAllNow();
      this.stopReaper();
    });
    const fatal = (err: unknown): void => {
      this.killAllNow();
      process.stderr.write(
        `cb-lab: unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
      );
      process.exit(1);
    };
    process.on('uncaughtException', fatal);
    process.on('unhandledRejection', fatal);
  }
}

/**
 * Polls `url` until it answers 2xx, the child exits, or `timeoutMs` passes.
 * @throws LabError LAB_CHILD_EXITED (with the child's stderr tail) or LAB_READY_TIMEOUT
 */
export async function waitForReady(child: Child, url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exited = false;
  void child.exited.then(() => (exited = true));
  let last = 'no answer';
  while (Date.now() < deadline) {
    if (exited || !child.running) {
      const st = await child.exited;
      throw new LabError(
        'LAB_CHILD_EXITED',
        `${child.name} exited (code ${st.code ?? st.signal}) before it was ready: ${child.stderrTail() || 'no stderr'}`,
      );
    }
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      if (res.ok) return;
      last = `HTTP ${res.status}`;
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    await sleep(50);
  }
  throw new LabError(
    'LAB_READY_TIMEOUT',
    `${child.name} not ready at ${url} after ${timeoutMs} ms (${last}): ${child.stderrTail() || 'no stderr'}`,
  );
}

function tryBind(port: number, host: string): Promise<number | undefined> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', () => resolve(undefined));
    srv.listen(port, host, () => {
      const addr = srv.address();
      const bound = typeof addr === 'object' && addr !== null ? addr.port : undefined;
      srv.close(() => resolve(bound));
    });
  });
}

// Below Linux's ephemeral range (32768-60999): a port found free here cannot be taken by an outgoing
// connection's source port or by another program's port-0 server before our child binds it.
const LOW_PORT_MIN = 20_000;
const LOW_PORT_SPAN = 12_000;

/**
 * Machine-wide reservations: a port handed out is claimed by creating `<dir>/<port>` exclusively (O_EXCL, so
 * of two processes asking at once exactly one gets it), holding the owner's pid. Every lab, test or bench that
 * asks here skips claimed ports, so none of them can be handed a port another one is about to bind: the race
 * of "bind to find it free, release, let the child bind" is gone between them. Claims are dropped when their
 * owner exits; a claim left by a killed process only keeps its port out of use until the machine restarts
 * (/tmp), because deleting another process's claim could race with a new claim of the same port.
 */
const RESERVATIONS = join(tmpdir(), 'cb-ports');
// One set of claims per process, however many times this module is loaded (a test runner loads it per file).
const CLAIMS = Symbol.for('@infer-cb/lab/port-claims');
const holder = process as unknown as Record<symbol, Set<number> | undefined>;
const claimed: Set<number> =
  holder[CLAIMS] ??
  (holder[CLAIMS] = ((set: Set<number>) => {
    process.once('exit', () => {
      for (const p of set) rmSync(join(RESERVATIONS, String(p)), { force: true });
    });
    return set;
  })(new Set()));

/** Claims `port` for this process; false when another process holds it (or claims cannot be written). */
function claim(port: number): boolean {
  try {
    mkdirSync(RESERVATIONS, { recursive: true });
    writeFileSync(join(RESERVATIONS, String(port)), String(process.pid), { flag: 'wx' });
  } catch {
    return false;
  }
  claimed.add(port);
  return true;
}

function release(port: number): void {
  claimed.delete(port);
  rmSync(join(RESERVATIONS, String(port)), { force: true });
}

/**
 * A free TCP port on 127.0.0.1, for a child to bind a moment later: a random port below the ephemeral range,
 * claimed for this process machine-wide (see RESERVATIONS) and free now. After 50 tries, whatever port 0
 * gives (ephemeral, so never one another caller of this function claims).
 */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const port = LOW_PORT_MIN + Math.floor(Math.random() * LOW_PORT_SPAN);
    if (claimed.has(port) || !claim(port)) continue;
    if ((await tryBind(port, host)) !== undefined) return port;
    release(port); // held by a program that does not claim (it was already bound)
  }
  const port = await tryBind(0, host);
  if (port === undefined) throw new Error(`no free port on ${host}`);
  return port;
}

/** `count` distinct free ports on 127.0.0.1, each claimed for this process (see {@link freePort}). */
export async function freePorts(count: number, host = '127.0.0.1'): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await freePort(host));
  return [...ports];
}
