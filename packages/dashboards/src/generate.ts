// Writes every generated file: the dashboards to grafana/dashboards/ and to the copy kustomize packs into
// ConfigMaps (manifests/components/monitoring/dashboards/), the alerts to the component's PrometheusRule.
// `--check` only reports files that are out of date.
import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { generatedFiles } from './index.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));

async function current(path: string): Promise<string | undefined> {
  return readFile(path, 'utf8').catch(() => undefined);
}

async function main(check: boolean): Promise<number> {
  const stale: string[] = [];
  for (const { path, text } of generatedFiles()) {
    if ((await current(`${root}${path}`)) === text) continue;
    if (check) stale.push(path);
    else await writeFile(`${root}${path}`, text);
  }
  if (stale.length > 0) {
    console.error(`generated files out of date (run make dashboards): ${stale.join(', ')}`);
    return 1;
  }
  return 0;
}

process.exitCode = await main(process.argv.includes('--check'));
