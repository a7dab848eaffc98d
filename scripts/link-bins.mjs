// After `tsc -b`: make every workspace bin executable and linked in node_modules/.bin, so `npx iris-api`,
// `npx cb-sidecar`, `npx cb-lab` and `npx model-loader` work from the repo root. npm links a workspace bin
// only if its file existed at install time, and tsc writes new files without the execute bit.
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = process.cwd();
const binDir = join(root, 'node_modules', '.bin');
mkdirSync(binDir, { recursive: true });
const { workspaces } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
for (const ws of workspaces) {
  const pkg = JSON.parse(readFileSync(join(root, ws, 'package.json'), 'utf8'));
  for (const [name, file] of Object.entries(pkg.bin ?? {})) {
    const target = join(root, ws, file);
    if (!existsSync(target)) {
      console.error(`link-bins: ${ws}: bin ${name} -> ${file} does not exist (did tsc -b run?)`);
      process.exit(1);
    }
    chmodSync(target, 0o755);
    const link = join(binDir, name);
    rmSync(link, { force: true });
    symlinkSync(relative(binDir, target), link);
  }
}
