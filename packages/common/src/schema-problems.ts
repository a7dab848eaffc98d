import leven from 'leven';
import { DURATION_PATTERN } from './duration.js';

/**
 * The fields of a JSON-schema validation error this formatter reads (ajv's `ErrorObject` has them all), so that
 * every config reader in the repository lists its problems in the same words.
 */
export interface SchemaError {
  keyword: string;
  instancePath: string;
  params: object;
  data?: unknown;
  message?: string;
  parentSchema?: object;
}

/** A value as JSON for a problem line; a value that contains itself cannot be shown. */
function show(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return '(a value that contains itself)';
  }
}

/** The known key closest to `key` by edit distance, when it is close enough to be a typo. */
export function closest(key: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(key.length / 3)) + 1;
  for (const k of known) {
    const d = leven(key.toLowerCase(), k.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [k, d];
  }
  return best;
}

/**
 * One line per schema problem, each prefixed with `where` (the file or flag the value came from) and naming the
 * dotted key path; an unknown key gets a did-you-mean hint or the list of known keys, a malformed duration an
 * example of the form. Duplicates (ajv reports some twice) are dropped.
 */
export function formatSchemaProblems(errors: readonly SchemaError[], where: string): string[] {
  const out = new Set<string>();
  for (const e of errors) {
    const at = e.instancePath === '' ? '(top level)' : e.instancePath.slice(1).replaceAll('/', '.');
    const prefix = e.instancePath === '' ? '' : `${at}.`;
    const got = show(e.data);
    const params = e.params as Record<string, unknown>;
    switch (e.keyword) {
      case 'additionalProperties': {
        const key = params['additionalProperty'] as string;
        const known = Object.keys((e.parentSchema as { properties?: object } | undefined)?.properties ?? {});
        const hint = closest(key, known);
        out.add(
          `${where}: ${prefix}${key}: unknown key${hint ? `; did you mean "${hint}"?` : ` (known: ${known.join(', ')})`}`,
        );
        break;
      }
      case 'required':
        out.add(`${where}: ${prefix}${params['missingProperty'] as string}: is required`);
        break;
      case 'pattern':
        out.add(
          (e.parentSchema as { pattern?: string } | undefined)?.pattern === DURATION_PATTERN
            ? `${where}: ${at}: ${got} is not a duration (use e.g. "100ms", "1s", "1m")`
            : `${where}: ${at}: ${got} ${e.message ?? 'is invalid'}`,
        );
        break;
      case 'type':
        out.add(`${where}: ${at}: must be ${params['type'] as string}, got ${got}`);
        break;
      case 'enum':
        out.add(`${where}: ${at}: must be one of ${(params['allowedValues'] as unknown[]).join(', ')}, got ${got}`);
        break;
      case 'minimum':
      case 'maximum':
      case 'exclusiveMinimum':
      case 'exclusiveMaximum':
        out.add(`${where}: ${at}: ${got} is out of range (${e.message ?? ''})`);
        break;
      default:
        out.add(`${where}: ${at}: ${e.message ?? 'is invalid'}`);
    }
  }
  return [...out];
}
