import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { stringify } from 'yaml';
import { freePort, type Child, type Supervisor } from './processes.js';
import { findTool } from './tools.js';
import type { Topology } from './topology.js';

/** A Prometheus the lab runs: its URL and how to point it at an arm. */
export interface LabPrometheus {
  url: string;
  child: Child;
  /**
   * Rewrites the file_sd targets to every API and sidecar admin of the arm, then waits (up to 15 s) until
   * Prometheus has scraped each of them once, so its data covers the whole attack.
   */
  watch(topo: Topology): Promise<void>;
}

/**
 * Starts /usr/bin/prometheus (Debian package) on a free 127.0.0.1 port with a temporary TSDB and a
 * generated config: jobs `iris-api` and `cb-sidecar` from file_sd target files, scraped every second.
 * @throws LabError LAB_TOOL_MISSING (`make system-deps`) when prometheus is not installed
 */
export async function startPrometheus(sup: Supervisor, dir: string, repoRoot: string): Promise<LabPrometheus> {
  const bin = findTool('prometheus', repoRoot, 'make system-deps');
  mkdirSync(join(dir, 'tsdb'), { recursive: true });
  const apiTargets = join(dir, 'targets-api.json');
  const sidecarTargets = join(dir, 'targets-sidecar.json');
  writeFileSync(apiTargets, '[]');
  writeFileSync(sidecarTargets, '[]');
  const config = {
    global: { scrape_interval: '1s', evaluation_interval: '1s' },
    scrape_configs: [
      { job_name: 'iris-api', file_sd_configs: [{ files: [apiTargets], refresh_interval: '1s' }] },
      { job_name: 'cb-sidecar', file_sd_configs: [{ files: [sidecarTargets], refresh_interval: '1s' }] },
    ],
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
      const host = (u: string): string => new URL(u).host;
      const labels = (i: number): Record<string, string> => ({
        arm: topo.arm,
        replica: String(i),
        namespace: 'cb-lab',
      });
      writeFileSync(
        apiTargets,
        JSON.stringify(topo.replicas.map((r) => ({ targets: [host(r.apiUrl)], labels: labels(r.index) }))),
      );
      writeFileSync(
        sidecarTargets,
        JSON.stringify(
          topo.replicas
            .filter((r) => r.adminUrl !== undefined)
            .map((r) => ({ targets: [host(r.adminUrl as string)], labels: labels(r.index) })),
        ),
      );
      const want = new Set(
        topo.replicas.flatMap((r) => [host(r.apiUrl), ...(r.adminUrl === undefined ? [] : [host(r.adminUrl)])]),
      );
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
