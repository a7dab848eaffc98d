import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findTool } from '../src/tools.js';

describe('findTool', () => {
  const path = process.env['PATH'];
  afterEach(() => {
    process.env['PATH'] = path;
  });

  it('says to run `make tools` when vegeta is neither on PATH nor in .tools/bin', () => {
    const empty = mkdtempSync(join(tmpdir(), 'cb-lab-nopath-'));
    process.env['PATH'] = empty;
    expect(() => findTool('vegeta', empty)).toThrow(
      expect.objectContaining({
        code: 'LAB_TOOL_MISSING',
        message: expect.stringContaining('run `make tools`'),
      }),
    );
  });

  it('finds vegeta in the repository .tools/bin when PATH lacks it (`make tools` puts it there)', () => {
    process.env['PATH'] = mkdtempSync(join(tmpdir(), 'cb-lab-nopath-'));
    expect(findTool('vegeta', process.cwd())).toBe(join(process.cwd(), '.tools', 'bin', 'vegeta'));
  });

  it("finds haproxy in /usr/sbin, where Debian puts it, off a user's PATH (`make system-deps` installs it)", () => {
    const empty = mkdtempSync(join(tmpdir(), 'cb-lab-nopath-'));
    process.env['PATH'] = empty;
    expect(findTool('haproxy', empty, 'make system-deps')).toMatch(/^\/usr(\/local)?\/sbin\/haproxy$/);
  });
});
