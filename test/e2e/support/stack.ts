// What the end-to-end tests share beyond the test kit: the repository root, the sidecar's admin documents,
// and the Reliability rows they record.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BreakerState, StateDocument } from '@infer-cb/proxy/outcomes';

/** The repository root. */
export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** GET a JSON document (admin /state, /readyz); resolves status and body. */
export async function getJson<T = Record<string, unknown>>(url: string): Promise<{ status: number; body: T }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(3000) });
  return { status: res.status, body: (await res.json()) as T };
}

/** The breaker state the sidecar reports on /state. */
export async function breakerState(admin: string): Promise<BreakerState> {
  const { body } = await getJson<StateDocument>(`${admin}/state`);
  return body.breaker.state;
}

/** One row of the Reliability table (written by the e2e tests, assembled by bench/soak/reliability.mjs). */
export interface ReliabilityRow {
  fault: string;
  sent: number;
  answered: number;
  byStatus: Record<string, number>;
  /** ms from the end of the fault to steady 200s; null where the case has no recovery */
  recoveryMs: number | null;
  note: string;
}

/** Saves a row to .ci-results/reliability/<slug>.json. */
export function recordReliability(slug: string, row: ReliabilityRow): void {
  const dir = join(ROOT, '.ci-results', 'reliability');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `${slug}.json`), JSON.stringify({ ...row, at: new Date().toISOString() }, null, 2));
}
