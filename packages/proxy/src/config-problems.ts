import type { ErrorObject } from 'ajv';

/** One line per schema problem, naming the key path; unknown keys get a did-you-mean hint. */
export function formatAjv(errors: ErrorObject[], source: string): string[] {
  const out = new Set<string>();
  for (const e of errors) {
    const at = e.instancePath === '' ? '(top level)' : e.instancePath.slice(1).replaceAll('/', '.');
    switch (e.keyword) {
      case 'additionalProperties': {
        const key = (e.params as { additionalProperty: string }).additionalProperty;
        const known = Object.keys((e.parentSchema as { properties?: object } | undefined)?.properties ?? {});
        const hint = closest(key, known);
        const where = e.instancePath === '' ? key : `${at}.${key}`;
        out.add(
          `${source}: ${where}: unknown key${hint ? `; did you mean "${hint}"?` : ` (known: ${known.join(', ')})`}`,
        );
        break;
      }
      case 'pattern':
        out.add(
          (e.parentSchema as { pattern?: string }).pattern?.startsWith('^((\\d')
            ? `${source}: ${at}: ${JSON.stringify(e.data)} is not a duration (use e.g. "100ms", "1s", "1m")`
            : `${source}: ${at}: ${JSON.stringify(e.data)} ${e.message ?? 'is invalid'}`,
        );
        break;
      case 'type':
        out.add(`${source}: ${at}: must be ${(e.params as { type: string }).type}, got ${JSON.stringify(e.data)}`);
        break;
      case 'minimum':
      case 'maximum':
      case 'exclusiveMinimum':
        out.add(`${source}: ${at}: ${JSON.stringify(e.data)} is out of range (${e.message ?? ''})`);
        break;
      case 'enum':
        out.add(
          `${source}: ${at}: must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.join(', ')}` +
            `, got ${JSON.stringify(e.data)}`,
        );
        break;
      default:
        out.add(`${source}: ${at}: ${e.message ?? 'is invalid'}`);
    }
  }
  return [...out];
}

/** The known key closest to `key` by edit distance, when it is close enough to be a typo. */
export function closest(key: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(key.length / 3)) + 1;
  for (const k of known) {
    const dist = editDistance(key.toLowerCase(), k.toLowerCase());
    if (dist < bestDistance) [best, bestDistance] = [k, dist];
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(
        (prev[j] as number) + 1,
        (cur[j - 1] as number) + 1,
        (prev[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    prev = cur;
  }
  return prev[b.length] as number;
}
