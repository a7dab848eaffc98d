import { readFileSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { stringify } from 'yaml';
import { envoyArgs } from '@infer-cb/policy';
import { LabError } from './errors.js';
import type { Child, Supervisor } from './processes.js';
import { parsePromText, type PromSample } from './prom-text.js';

/** A running Envoy: its admin URL and the port its one listener bound. */
export interface RunningEnvoy {
  child: Child;
  /** `http://127.0.0.1:<admin port>`: /ready, /stats/prometheus, /listeners. */
  adminUrl: string;
  /** The listener's origin, `http://127.0.0.1:<port>`. */
  url: string;
  /** Where its bootstrap was written (kept, for the record). */
  configFile: string;
}

/** How to start one Envoy. */
export interface StartEnvoyOptions {
  /** The envoy executable (`findTool('envoy', ...)`). */
  envoy: string;
  /** The child's name in the supervisor (`istio/caller-0`). */
  name: string;
  /** The bootstrap (listener and admin on port 0: Envoy binds them, the lab reads the ports back). */
  bootstrap: object;
  /** Where the bootstrap is written; `<file>.admin` receives the admin address. */
  configFile: string;
  /** Worker threads (`--concurrency`): 1 on the lab's 2 cores; Istio's sidecar default is 2. */
  workers: number;
}

async function readAdminAddress(file: string, child: Child, deadline: number): Promise<string> {
  for (;;) {
    try {
      const text = readFileSync(file, 'utf8').trim();
      if (text !== '') return text;
    } catch {
      /* not written yet */
    }
    if (!child.running) {
      throw new LabError('LAB_CHILD_EXITED', `${child.name} exited before it was ready: ${child.stderrTail()}`);
    }
    if (Date.now() > deadline) {
      throw new LabError('LAB_READY_TIMEOUT', `${child.name} wrote no admin address: ${child.stderrTail()}`);
    }
    await sleep(20);
  }
}

/**
 * Starts Envoy on a bootstrap whose listener and admin bind port 0 (so no port can be taken between choosing
 * and binding it), and resolves once it is ready (`/ready` 200) with the ports it bound.
 * @throws LabError LAB_CHILD_EXITED (a bootstrap Envoy rejects exits at once, with its reason) or LAB_READY_TIMEOUT
 */
export async function startEnvoy(sup: Supervisor, opts: StartEnvoyOptions): Promise<RunningEnvoy> {
  writeFileSync(opts.configFile, stringify(opts.bootstrap));
  const adminFile = `${opts.configFile}.admin`;
  writeFileSync(adminFile, '');
  const child = await sup.spawn({
    name: opts.name,
    command: opts.envoy,
    args: envoyArgs(opts.configFile, { workers: opts.workers, adminAddressPath: adminFile }),
  });
  try {
    const deadline = Date.now() + 15_000;
    const admin = await readAdminAddress(adminFile, child, deadline);
    const adminUrl = `http://${admin}`;
    for (;;) {
      const port = await listenerPort(adminUrl);
      if (port !== undefined && (await ready(adminUrl))) {
        return { child, adminUrl, url: `http://127.0.0.1:${port}`, configFile: opts.configFile };
      }
      if (!child.running) {
        throw new LabError('LAB_CHILD_EXITED', `${child.name} exited before it was ready: ${child.stderrTail()}`);
      }
      if (Date.now() > deadline) {
        throw new LabError('LAB_READY_TIMEOUT', `${child.name} not ready after 15 s: ${child.stderrTail()}`);
      }
      await sleep(20);
    }
  } catch (err) {
    await sup.stop(child, 500);
    throw err;
  }
}

async function ready(adminUrl: string): Promise<boolean> {
  try {
    const res = await request(`${adminUrl}/ready`, { signal: AbortSignal.timeout(1000) });
    await res.body.dump();
    return res.statusCode === 200;
  } catch {
    return false;
  }
}

/** The port of the Envoy's (only) listener, from its admin `/listeners?format=json`. */
async function listenerPort(adminUrl: string): Promise<number | undefined> {
  try {
    const res = await request(`${adminUrl}/listeners?format=json`, { signal: AbortSignal.timeout(1000) });
    const doc = (await res.body.json()) as {
      listener_statuses?: { local_address?: { socket_address?: { port_value?: number } } }[];
    };
    const port = doc.listener_statuses?.[0]?.local_address?.socket_address?.port_value;
    return typeof port === 'number' && port > 0 ? port : undefined;
  } catch {
    return undefined;
  }
}

/** Envoy's statistics the lab reports for the mesh arms, summed over the clusters of one or more Envoys. */
export interface EnvoyStats {
  /** Requests Envoy sent upstream. */
  upstream_rq_total: number;
  /** 503 UO: the pending queue was full (`max_pending_requests`). */
  upstream_rq_pending_overflow: number;
  /** Times `max_connections` was reached (requests then wait in the pending queue). */
  upstream_cx_overflow: number;
  /** Times `max_requests` was reached (503 UO). */
  upstream_rq_overflow: number;
  /** Requests that waited in the pending queue at all. */
  upstream_rq_pending_total: number;
  /** Retries sent, retries that succeeded, and retries refused by `max_retries`. */
  upstream_rq_retry: number;
  upstream_rq_retry_success: number;
  upstream_rq_retry_overflow: number;
  /** Upstream answers by class. */
  upstream_rq_5xx: number;
  upstream_rq_503: number;
  /** Outlier detection: ejections enforced (consecutive 5xx) in all, and hosts ejected now. */
  outlier_ejections_enforced: number;
  outlier_ejections_active: number;
  /** Requests that found no healthy host (503 UH). */
  upstream_rq_no_healthy: number;
}

const FIGURES: readonly (keyof EnvoyStats)[] = [
  'upstream_rq_total',
  'upstream_rq_pending_overflow',
  'upstream_cx_overflow',
  'upstream_rq_overflow',
  'upstream_rq_pending_total',
  'upstream_rq_retry',
  'upstream_rq_retry_success',
  'upstream_rq_retry_overflow',
  'upstream_rq_5xx',
  'upstream_rq_503',
  'outlier_ejections_enforced',
  'outlier_ejections_active',
  'upstream_rq_no_healthy',
];

/** Zero of every figure. */
export function emptyEnvoyStats(): EnvoyStats {
  return Object.fromEntries(FIGURES.map((k) => [k, 0])) as unknown as EnvoyStats;
}

/**
 * Reads the figures from Envoy's `/stats/prometheus` text, summed over every cluster but the admin's
 * own. Envoy names most cluster counters `envoy_cluster_<stat>`; the answer classes are
 * `envoy_cluster_upstream_rq_xx{envoy_response_code_class="5"}` and `envoy_cluster_upstream_rq{envoy_response_code="503"}`.
 */
export function envoyStatsFromProm(text: string): EnvoyStats {
  const s = emptyEnvoyStats();
  const samples = parsePromText(text);
  const sum = (pick: (x: PromSample) => boolean): number => samples.filter(pick).reduce((a, x) => a + x.value, 0);
  const named = (name: string) => (x: PromSample) => x.name === name;
  s.upstream_rq_total = sum(named('envoy_cluster_upstream_rq_total'));
  s.upstream_rq_pending_overflow = sum(named('envoy_cluster_upstream_rq_pending_overflow'));
  s.upstream_cx_overflow = sum(named('envoy_cluster_upstream_cx_overflow'));
  s.upstream_rq_pending_total = sum(named('envoy_cluster_upstream_rq_pending_total'));
  s.upstream_rq_retry = sum(named('envoy_cluster_upstream_rq_retry'));
  s.upstream_rq_retry_success = sum(named('envoy_cluster_upstream_rq_retry_success'));
  s.upstream_rq_retry_overflow = sum(named('envoy_cluster_upstream_rq_retry_overflow'));
  s.upstream_rq_5xx = sum(
    (x) => x.name === 'envoy_cluster_upstream_rq_xx' && x.labels['envoy_response_code_class'] === '5',
  );
  s.upstream_rq_503 = sum((x) => x.name === 'envoy_cluster_upstream_rq' && x.labels['envoy_response_code'] === '503');
  s.outlier_ejections_enforced = sum(named('envoy_cluster_outlier_detection_ejections_enforced_total'));
  s.outlier_ejections_active = sum(named('envoy_cluster_outlier_detection_ejections_active'));
  s.upstream_rq_no_healthy = sum(named('envoy_cluster_upstream_cx_none_healthy'));
  s.upstream_rq_overflow = sum(named('envoy_cluster_upstream_rq_overflow')); // not every Envoy has it
  return s;
}

/** `a - b` per figure (counters since a baseline; gauges keep `a`'s value). */
export function envoyStatsSince(a: EnvoyStats, b: EnvoyStats): EnvoyStats {
  const out = emptyEnvoyStats();
  for (const k of FIGURES) {
    out[k] = k === 'outlier_ejections_active' ? a[k] : Math.max(0, a[k] - b[k]);
  }
  return out;
}

/** Sums the figures of several Envoys. */
export function addEnvoyStats(list: readonly EnvoyStats[]): EnvoyStats {
  const out = emptyEnvoyStats();
  for (const s of list) for (const k of FIGURES) out[k] += s[k];
  return out;
}

/** One Envoy's figures now; zeros when it does not answer (a gap, never a failed lab). */
export async function fetchEnvoyStats(adminUrl: string, timeoutMs = 2000): Promise<EnvoyStats> {
  try {
    const res = await request(`${adminUrl}/stats/prometheus`, { signal: AbortSignal.timeout(timeoutMs) });
    const text = await res.body.text();
    return res.statusCode === 200 ? envoyStatsFromProm(text) : emptyEnvoyStats();
  } catch {
    return emptyEnvoyStats();
  }
}
