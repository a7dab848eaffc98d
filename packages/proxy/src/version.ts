import { readFileSync } from 'node:fs';

/** The package version, reported in `cb_build_info` and /state. */
export const VERSION: string = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
).version;
