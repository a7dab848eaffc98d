import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { stringify } from 'yaml';
import { freePort, type Child, type Supervisor } from './processes.js';
import { findTool } from './tools.js';
import type { Topology } from './topology.js';

/** A file_sd target group: `host:port` targets and the labels Prometheus puts on their series. */
export interface TargetGroup {
  targets: string[];
  labels: Record<string, string>;
}

/** The lab's scrape jobs, each fed by a file_sd file the lab rewrites per run. */
export const SCRAPE_JOBS = [
  { job: 'iris-api', path: '/metrics' },
  { job: 'cb-sidecar', path: '/metrics' },
  { job: 'envoy', path: '/stats/prometheus' },
] as const;

/** One of {@link SCRAPE_JOBS}. */
export type ScrapeJob = (typeof SCRAPE_JOBS)[number]['job'];

/**
 * What Prometheus scrapes in a run, by job: every API and sidecar admin, and in mesh arms every Envoy's admin
 * (`/stats/prometheus`: the callers' and the replicas' inbound ones). Every target carries `arm`, `callers`
 * and `namespace="cb-lab"`, and `pod` as in a cluster: `iris-<i>` for replica i's containers (API, sidecar,
 * inbound Envoy), `caller-<i>` for caller i's Envoy. Envoy targets also carry `role` (`caller` or `inbound`).
 */
export function scrapeTargets(topo: Topology): Record<ScrapeJob, TargetGroup[]> {
  const host = (u: string): string => new URL(u).host;
  const base = { arm: topo.arm, callers: String(topo.callers), namespace: 'cb-lab' };
  const replica = (i: number): Record<string, string> => ({ ...base, pod: `iris-${i}`, replica: String(i) });
  return {
    'iris-api': topo.replicas.flatMap((r) =>
      r.metrics ? [{ targets: [host(r.apiUrl)], labels: replica(r.index) }] : [],
    ),
    'cb-sidecar': topo.replicas.flatMap((r) =>
      r.adminUrl === undefined ? [] : [{ targets: [host(r.adminUrl)], labels: replica(r.index) }],
    ),
    envoy: [
      ...topo.callerEnvoys.map((e, i) => ({
        targets: [host(e.adminUrl)],
        labels: { ...base, pod: `caller-${i}`, caller: String(i), role: 'caller' },
      })),
      ...topo.replicas.flatMap((r) =>
        r.inbound === undefined
          ? []
          : [{ targets: [host(r.inbound.adminUrl)], labels: { ...replica(r.index), role: 'inbound' } }],
      ),
    ],
  };
}

/** A Prometheus the lab runs: its URL and how to point it at a run. */
export interface LabPrometheus {
  url: string;
  child: Child;
  /**
   * Rewrites the file_sd targets to the run's processes ({@link scrapeTargets}), then waits (up to 15 s) until
   * Prometheus has scraped each of them once, so its data covers the whole attack.
   */
  watch(topo: Topology): Promise<void>;
}

/**
 * Starts /usr/bin/prometheus (Debian package) on a free 127.0.0.1 port with a temporary TSDB and a
 * generated config: the jobs of {@link SCRAPE_JOBS} from file_sd target files, scraped every second.
 * @throws LabError LAB_TOOL_MISSING (`make system-deps`) when prometheus is not installed
 */
export async function startPrometheus(sup: Supervisor, dir: string, repoRoot: string): Promise<LabPrometheus> {
  const bin = findTool('prometheus', repoRoot, 'make system-deps');
  mkdirSync(join(dir, 'tsdb'), { recursive: true });
  const targetFile = (job: ScrapeJob): string => join(dir, `targets-${job}.json`);
  for (const { job } of SCRAPE_JOBS) writeFileSync(targetFile(job), '[]');
  const config = {
    global: { scrape_interval: '1s', evaluation_interval: '1s' },
    scrape_configs: SCRAPE_JOBS.map(({ job, path }) => ({
      job_name: job,
      metrics_path: path,
      file_sd_configs: [{ files: [targetFile(job)], refresh_interval: '1s' }],
    })),
  };
  const configFile = join(dir, 'prometheus.yml');
  writeFileSync(configFile, stringify(config));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = await sup.spawn({
    name: 'prometheus',
    command: bin,
    args: [
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${join(dir, 'tsdb')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--storage.tsdb.retention.time=1d',
      '--log.level=warn',
    ],
    readyUrl: `${url}/-/ready`,
    readyTimeoutMs: 30_000,
  });
  return {
    url,
    child,
    async watch(topo: Topology): Promise<void> {
      const groups = scrapeTargets(topo);
      for (const { job } of SCRAPE_JOBS) writeFileSync(targetFile(job), JSON.stringify(groups[job]));
      const want = new Set(Object.values(groups).flatMap((g) => g.flatMap((t) => t.targets)));
      const deadline = Date.now() + 15_000;
      while (Date.now() < deadline) {
        try {
          const res = await fetch(`${url}/api/v1/targets?state=active`, { signal: AbortSignal.timeout(2000) });
          const body = (await res.json()) as {
            data?: { activeTargets?: { labels?: Record<string, string>; health?: string }[] };
          };
          const up = new Set(
            (body.data?.activeTargets ?? []).filter((t) => t.health === 'up').map((t) => t.labels?.['instance'] ?? ''),
          );
          if ([...want].every((w) => up.has(w))) return;
        } catch {
          /* not answering yet */
        }
        await sleep(250);
      }
    },
  };
}
