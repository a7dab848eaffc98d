import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { LabError } from './errors.js';

/**
 * Finds an executable on PATH, in the repository's .tools/bin (where `make tools` puts vegeta and k6) or
 * in /usr/local/sbin or /usr/sbin (daemons, Debian's haproxy among them, often not on a user's PATH).
 * @throws LabError LAB_TOOL_MISSING naming the make target that installs it
 */
export function findTool(name: string, repoRoot: string, installHint = 'make tools'): string {
  const dirs = [
    ...(process.env['PATH'] ?? '').split(delimiter),
    join(repoRoot, '.tools', 'bin'),
    '/usr/local/sbin',
    '/usr/sbin',
  ];
  for (const dir of dirs) {
    if (dir === '') continue;
    const file = join(dir, name);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      /* next */
    }
  }
  throw new LabError(
    'LAB_TOOL_MISSING',
    `${name} not found on PATH, in .tools/bin, /usr/local/sbin or /usr/sbin: run \`${installHint}\``,
  );
}
