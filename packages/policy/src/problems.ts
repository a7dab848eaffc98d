import type { Schema } from './schema.js';

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
