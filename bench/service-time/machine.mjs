/* global setTimeout -- Node 24 global */
// What the shared 2-core machine did during an attack, from /proc: the CPU of our processes, of kernel threads
// and of everyone else's (another engineer's build), and the sockets left in TIME_WAIT.
import { readdirSync, readFileSync } from 'node:fs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Every process now: parent, command name and CPU seconds (user + system) so far, by pid. */
function processes() {
  const all = new Map();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const f = readFileSync(`/proc/${d}/stat`, 'utf8');
      const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
      all.set(Number(d), {
        ppid: Number(rest[1]),
        comm: f.slice(f.indexOf('(') + 1, f.lastIndexOf(')')),
        cpu: (Number(rest[11]) + Number(rest[12])) / 100, // utime + stime, in USER_HZ (100) ticks
      });
    } catch {
      /* exited meanwhile */
    }
  }
  return all;
}

/** CPU seconds (user + system) of one process so far; 0 when it is gone. */
export function cpuSeconds(pid) {
  return processes().get(pid)?.cpu ?? 0;
}

/** The process id of this process's child named `comm` (the first found); undefined when there is none. */
export function childPid(comm) {
  for (const [pid, p] of processes()) if (p.ppid === process.pid && p.comm === comm) return pid;
  return undefined;
}

/** Busy, stolen and total ticks of the whole machine so far (/proc/stat). */
export function machineTicks() {
  const [, ...v] = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).map(Number);
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
  return { busy: total - v[3] - v[4], total, steal: v[7] };
}

/**
 * Samples every process's CPU (call `sample()` every few hundred ms, then `result()`): ours (this process and
 * everything it started; the supervisor's children sit in their own process groups but keep it as their parent),
 * kernel threads, and everyone else's. A process that exits between two samples loses at most its last interval.
 */
export class CpuSplit {
  #first = new Map();
  #last = new Map();
  #comm = new Map();
  #ours = new Set([process.pid]);
  #kernel = new Set([2]);

  constructor() {
    this.sample(true);
  }

  sample(initial = false) {
    const all = processes();
    for (let grew = true; grew;) {
      grew = false;
      for (const [pid, p] of all)
        if (!this.#ours.has(pid) && this.#ours.has(p.ppid)) {
          this.#ours.add(pid);
          grew = true;
        }
    }
    for (const [pid, p] of all) {
      if (p.ppid === 2) this.#kernel.add(pid);
      this.#comm.set(pid, p.comm);
      if (initial) this.#first.set(pid, p.cpu);
      this.#last.set(pid, Math.max(p.cpu, this.#last.get(pid) ?? 0));
    }
  }

  /** CPU seconds since construction: ours, kernel threads', others'; and the others' biggest users. */
  result() {
    this.sample();
    const cpu = { ours: 0, kernel: 0, foreign: 0 };
    const foreign = new Map();
    for (const [pid, s] of this.#last) {
      const used = s - (this.#first.get(pid) ?? 0);
      if (this.#ours.has(pid)) cpu.ours += used;
      else if (this.#kernel.has(pid)) cpu.kernel += used;
      else if (used > 0) {
        cpu.foreign += used;
        const name = this.#comm.get(pid);
        foreign.set(name, (foreign.get(name) ?? 0) + used);
      }
    }
    const top = [...foreign].sort((a, b) => b[1] - a[1]).slice(0, 3);
    return { ...cpu, foreignTop: top.map(([c, v]) => `${c} ${v.toFixed(1)} s`).join(', ') };
  }
}

/** Sockets in TIME_WAIT on this machine (IPv4), from /proc/net/tcp. */
function timeWaitSockets() {
  try {
    return readFileSync('/proc/net/tcp', 'utf8')
      .split('\n')
      .filter((l) => l.trim().split(/\s+/)[3] === '06').length;
  } catch {
    return 0;
  }
}

/**
 * Waits (at most 70 s) until at most `max` sockets are in TIME_WAIT. Each closed connection stays there for 60 s
 * holding one of the 28,232 ephemeral ports: Envoy answers an overflow 503 to a POST with `connection: close`
 * (the body is unread, so the connection cannot be reused), and at 5 ms one 8 s Envoy arm leaves ~25,000 of
 * them; the next arm's load generator could not connect.
 */
export async function settlePorts(max) {
  const start = Date.now();
  let n = timeWaitSockets();
  while (n > max && Date.now() - start < 70_000) {
    await sleep(1000);
    n = timeWaitSockets();
  }
  return { waitedS: (Date.now() - start) / 1000, timeWait: n };
}
