// docs/sidecar.md's module map names every source file of the sidecar, and nothing else: it stays the map
// of the tree.
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';

const SRC = join(import.meta.dirname, '..', 'src');
const DOC = join(import.meta.dirname, '..', '..', '..', 'docs', 'sidecar.md');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sourceFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [relative(SRC, join(dir, e.name))] : [],
  );
}

/** The files the module map names: `name.ts` tokens, inside the `dir/` whose line is less indented above. */
function mappedFiles(): string[] {
  const text = readFileSync(DOC, 'utf8');
  const block = /## Module map[^\n]*\n+```\n([\s\S]*?)```/.exec(text)?.[1] ?? '';
  const files: string[] = [];
  let dir: { name: string; indent: number } | undefined;
  for (const line of block.split('\n')) {
    const indent = line.length - line.trimStart().length;
    const first = line.trim().split(/\s+/)[0] ?? '';
    if (dir !== undefined && indent <= dir.indent) dir = undefined;
    if (first.endsWith('/')) {
      dir = { name: first, indent };
      continue;
    }
    // Only the file column: a description that mentions a file is not an entry.
    const column = indent < 21 ? (line.trim().split(/\s{2,}/)[0] ?? '') : '';
    for (const m of column.matchAll(/([\w-]+\.ts)/g)) files.push(`${dir?.name ?? ''}${m[1]}`);
  }
  return files;
}

it('docs/sidecar.md maps every file of packages/proxy/src, and only those', () => {
  expect(mappedFiles().sort()).toEqual(sourceFiles(SRC).sort());
});
