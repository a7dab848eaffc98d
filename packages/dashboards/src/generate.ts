// Writes every dashboard to grafana/dashboards/ and to the copy kustomize packs into ConfigMaps
// (manifests/components/monitoring/dashboards/). `--check` only reports files that are out of date.
import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { dashboards, render } from './index.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
/** Directories (relative to the repository root) that hold the generated JSON. */
export const outputDirs = ['grafana/dashboards', 'manifests/components/monitoring/dashboards'] as const;

async function current(path: string): Promise<string | undefined> {
  return readFile(path, 'utf8').catch(() => undefined);
}

async function main(check: boolean): Promise<number> {
  const stale: string[] = [];
  for (const d of dashboards) {
    const text = render(d);
    for (const dir of outputDirs) {
      const path = `${root}${dir}/${d.file}`;
      if ((await current(path)) === text) continue;
      if (check) stale.push(`${dir}/${d.file}`);
      else await writeFile(path, text);
    }
  }
  if (stale.length > 0) {
    console.error(`dashboards out of date (run make dashboards): ${stale.join(', ')}`);
    return 1;
  }
  return 0;
}

process.exitCode = await main(process.argv.includes('--check'));
