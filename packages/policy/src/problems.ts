import type { ErrorObject } from 'ajv';
import leven from 'leven';
import { DURATION_PATTERN } from '@infer-cb/proxy/duration';
import type { Schema } from './schema.js';

/** A dotted key path from an ajv instance path (`/spec/trafficPolicy` -> `spec.trafficPolicy`). */
function dotted(instancePath: string): string {
  return instancePath === '' ? '(top level)' : instancePath.slice(1).replaceAll('/', '.');
}

/** The known key closest to `key`, when it is close enough to be a typo. */
export function didYouMean(key: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(key.length / 3)) + 1;
  for (const k of known) {
    const d = leven(key.toLowerCase(), k.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [k, d];
  }
  return best;
}

/** One line per schema problem, prefixed with `where` and naming the key path; unknown keys get a hint. */
export function formatSchemaErrors(errors: readonly ErrorObject[], where: string): string[] {
  const out = new Set<string>();
  for (const e of errors) {
    const at = dotted(e.instancePath);
    const got = JSON.stringify(e.data);
    switch (e.keyword) {
      case 'additionalProperties': {
        const key = (e.params as { additionalProperty: string }).additionalProperty;
        const known = Object.keys((e.parentSchema as { properties?: object } | undefined)?.properties ?? {});
        const hint = didYouMean(key, known);
        const path = e.instancePath === '' ? key : `${at}.${key}`;
        out.add(
          `${where}: ${path}: unknown key${hint ? `; did you mean "${hint}"?` : ` (known: ${known.join(', ')})`}`,
        );
        break;
      }
      case 'required':
        out.add(
          `${where}: ${e.instancePath === '' ? '' : `${at}.`}${(e.params as { missingProperty: string }).missingProperty}: is required`,
        );
        break;
      case 'pattern':
        out.add(
          (e.parentSchema as Schema | undefined)?.['pattern'] === DURATION_PATTERN
            ? `${where}: ${at}: ${got} is not a duration (use e.g. "100ms", "1s", "10m")`
            : `${where}: ${at}: ${got} ${e.message ?? 'is invalid'}`,
        );
        break;
      case 'type':
        out.add(`${where}: ${at}: must be ${(e.params as { type: string }).type}, got ${got}`);
        break;
      case 'enum':
        out.add(
          `${where}: ${at}: must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.join(', ')}, got ${got}`,
        );
        break;
      case 'minimum':
      case 'maximum':
        out.add(`${where}: ${at}: ${got} is out of range (${e.message ?? ''})`);
        break;
      default:
        out.add(`${where}: ${at}: ${e.message ?? 'is invalid'}`);
    }
  }
  return [...out];
}

/**
 * Walks `data` along `schema` and lists the fields that are present but marked `x-not-modelled` or
 * `x-ignored`, as `path: why`. Runs on data that already passed the schema.
 */
export function markedFields(data: unknown, schema: Schema, path = ''): string[] {
  const out: string[] = [];
  const why = (schema['x-not-modelled'] ?? schema['x-ignored']) as string | undefined;
  if (why !== undefined) {
    const what = schema['x-ignored'] !== undefined ? 'ignored' : 'not modelled';
    return [`${path}: ${what} (${why})`];
  }
  if (Array.isArray(data) && schema['items'] !== undefined) {
    data.forEach((item, i) => out.push(...markedFields(item, schema['items'] as Schema, `${path}[${i}]`)));
  } else if (typeof data === 'object' && data !== null && schema['properties'] !== undefined) {
    const props = schema['properties'] as Record<string, Schema>;
    for (const [key, value] of Object.entries(data)) {
      const sub = props[key];
      if (sub !== undefined) out.push(...markedFields(value, sub, path === '' ? key : `${path}.${key}`));
    }
  }
  return out;
}
