import { writeFileSync } from 'node:fs';
import { request } from 'undici';
import type { Child, Supervisor } from './processes.js';

/**
 * The lab's Kubernetes Service: HAProxy (the Debian package), round robin per request over the replicas,
 * with no queue or connection limit of its own (a Service admits everything; kube-proxy is in the kernel),
 * and a client's close passed on to the replica at once (`option abortonclose`), as kube-proxy's NAT does:
 * without it HAProxy kept every request the load generator had given up on until the replica answered.
 * The balancer written in Node it replaced cost ~1 ms of CPU per request on this 2-vCPU machine and
 * added 4-8 ms to the rejection p99 (GC, a shared event loop); HAProxy is a C process with no GC
 * (bench/results/lab.md).
 */

/** Where HAProxy answers its statistics on the Service's own port (`;csv` for the machine-readable form). */
export const SERVICE_STATS_PATH = '/-/haproxy';

/** Counters of one replica as the Service sees it. */
export interface BackendStats {
  url: string;
  /** Requests sent to this replica. */
  requests: number;
  /** Requests in flight to this replica now. */
  inflight: number;
  /** Highest number of requests in flight to this replica at once (exact). */
  maxInflight: number;
  /** Requests that failed at this replica (connect errors, resets, timeouts). */
  errors: number;
  /** Whether the Service routes to it: false while its readiness check fails (always true without checks). */
  ready: boolean;
}

/** What the Service says about an arm: totals and one entry per replica, in the order of the replicas. */
export interface ServiceStats {
  requests: number;
  errors: number;
  backends: BackendStats[];
}

/** Options of {@link haproxyConfig}. */
export interface ServiceConfigOptions {
  /** Port on 127.0.0.1. */
  port: number;
  /** Replica origins, e.g. `http://127.0.0.1:8001`, in order. */
  backends: readonly string[];
  /** Longest wait for a replica's answer (ms); default 60 s, above every driver's own timeout. */
  serverTimeoutMs?: number;
  /**
   * Readiness, as Kubernetes drives a Service's endpoints: HAProxy asks `GET path` on each replica's port
   * in `ports` (same order as `backends`) every `intervalMs` (each check may take up to 1 s) and sends
   * nothing to a replica that answers anything but 2xx/3xx until it answers so again. Off by default (the
   * lab's arms run without it).
   */
  readiness?: { path: string; ports: readonly number[]; intervalMs: number };
  /**
   * The replicas speak gRPC (HTTP/2 with prior knowledge): HAProxy talks h2 to them (`proto h2`) and balances
   * per request (stream). Its own port detects the h2 preface by itself, so HTTP/1.1 (the statistics) still works.
   */
  h2?: boolean;
}

/** The HAProxy configuration of one arm's Service. */
export function haproxyConfig(opts: ServiceConfigOptions): string {
  const ready = opts.readiness;
  if (ready !== undefined && ready.ports.length !== opts.backends.length) {
    throw new RangeError(`readiness.ports has ${ready.ports.length} port(s) for ${opts.backends.length} backend(s)`);
  }
  const servers = opts.backends.map((url, i) => {
    const { hostname, port } = new URL(url);
    const check = ready === undefined ? '' : ` check port ${ready.ports[i]} inter ${ready.intervalMs}ms fall 1 rise 1`;
    return `  server r${i} ${hostname}:${port}${opts.h2 === true ? ' proto h2' : ''}${check}`;
  });
  return [
    // No global maxconn: HAProxy derives it from the file-descriptor limit (a fixed one above that limit
    // stops it from starting).
    'global',
    '  nbthread 1',
    'defaults',
    '  mode http',
    '  option http-keep-alive',
    '  option abortonclose',
    '  http-reuse always',
    '  timeout connect 2s',
    '  timeout client 60s',
    `  timeout server ${Math.ceil(opts.serverTimeoutMs ?? 60_000)}ms`,
    'frontend service',
    `  bind 127.0.0.1:${opts.port}`,
    '  stats enable',
    `  stats uri ${SERVICE_STATS_PATH}`,
    '  default_backend replicas',
    'backend replicas',
    '  balance roundrobin',
    // Without `timeout check` a check must finish within `inter`: one slow answer would take a healthy replica out.
    ...(ready === undefined ? [] : [`  option httpchk GET ${ready.path}`, '  timeout check 1s']),
    ...servers,
    '',
  ].join('\n');
}

/** Reads HAProxy's `;csv` statistics: one {@link BackendStats} per server of backend `replicas`. */
export function parseServiceStats(csv: string, backends: readonly string[]): ServiceStats | null {
  const lines = csv.split('\n').filter((l) => l.length > 0);
  const header = lines[0];
  if (header === undefined || !header.startsWith('# ')) return null;
  const columns = header.slice(2).split(',');
  const col = (name: string): number => columns.indexOf(name);
  const [px, sv, scur, smax, stot, econ, eresp, status] = [
    'pxname',
    'svname',
    'scur',
    'smax',
    'stot',
    'econ',
    'eresp',
    'status',
  ].map(col) as number[];
  if ([px, sv, scur, smax, stot, econ, eresp, status].some((i) => i! < 0)) return null;
  const num = (fields: string[], i: number): number => Number(fields[i] ?? '') || 0;
  const stats: BackendStats[] = backends.map((url) => ({
    url,
    requests: 0,
    inflight: 0,
    maxInflight: 0,
    errors: 0,
    ready: false,
  }));
  for (const line of lines.slice(1)) {
    const f = line.split(',');
    if (f[px!] !== 'replicas') continue;
    const m = /^r(\d+)$/.exec(f[sv!] ?? '');
    const b = m === null ? undefined : stats[Number(m[1])];
    if (b === undefined) continue;
    b.requests = num(f, stot!);
    b.inflight = num(f, scur!);
    b.maxInflight = num(f, smax!);
    b.errors = num(f, econ!) + num(f, eresp!);
    // UP, "no check" (no readiness checks), or a transition such as "UP 1/2"; DOWN and MAINT take it out.
    b.ready = !/^(DOWN|MAINT|NOLB)/.test(f[status!] ?? '');
  }
  return {
    requests: stats.reduce((s, b) => s + b.requests, 0),
    errors: stats.reduce((s, b) => s + b.errors, 0),
    backends: stats,
  };
}

/** Where to start a Service and what with (see {@link startService}). */
export interface StartServiceOptions extends ServiceConfigOptions {
  /** The haproxy executable (`findTool('haproxy', ...)`). */
  haproxy: string;
  /** Where its configuration is written (kept, for the record). */
  configFile: string;
  /** The child's name in the supervisor. */
  name: string;
}

/** Writes the Service's configuration, starts HAProxy on it and resolves once its statistics answer. */
export async function startService(sup: Supervisor, opts: StartServiceOptions): Promise<{ url: string; child: Child }> {
  writeFileSync(opts.configFile, haproxyConfig(opts));
  const url = `http://127.0.0.1:${opts.port}`;
  const child = await sup.spawn({
    name: opts.name,
    command: opts.haproxy,
    args: ['-db', '-f', opts.configFile],
    readyUrl: `${url}${SERVICE_STATS_PATH}`,
    readyTimeoutMs: 10_000,
  });
  return { url, child };
}

/** The statistics of the Service at `url` (its base URL) for `backends` in order; null when it does not answer in time. */
export async function fetchServiceStats(
  url: string,
  backends: readonly string[],
  timeoutMs = 2000,
): Promise<ServiceStats | null> {
  try {
    const res = await request(`${url}${SERVICE_STATS_PATH};csv`, { signal: AbortSignal.timeout(timeoutMs) });
    const text = await res.body.text();
    return res.statusCode === 200 ? parseServiceStats(text, backends) : null;
  } catch {
    return null;
  }
}
