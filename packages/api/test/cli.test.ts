import { spawn } from 'node:child_process';
import { MAIN_JS } from './helpers.js';

/** Runs the built iris-api with `args` (a port that would be free if it did start) until it exits. */
function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [MAIN_JS, ...args], {
      env: { ...process.env, HOST: '127.0.0.1', PORT: '0' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    // A server that started instead of answering the flag never exits by itself: the test then fails on the code.
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('iris-api command line', () => {
  it.each([['--help'], ['-h']])(
    '%s prints the environment variables it reads and exits 0 without serving',
    async (flag) => {
      const { code, stdout, stderr } = await run([flag]);
      expect(code).toBe(0);
      expect(stderr).toBe('');
      expect(stdout).toMatch(/^Usage: iris-api/);
      for (const name of [
        'PORT',
        'HOST',
        'MODEL_FILEPATH',
        'LABEL_FILEPATH',
        'WORKERS',
        'LOG_LEVEL',
        'LOG_FORMAT',
        'MAX_BATCH_ROWS',
        'BODY_LIMIT_BYTES',
        'SHUTDOWN_TIMEOUT_MS',
      ]) {
        expect(stdout).toContain(`  ${name} `);
      }
      expect(stdout).not.toContain('iris-api ready');
    },
  );

  it.each([['--port', '8000'], ['serve']])('%s: one line on stderr and exit 2', async (...args) => {
    const { code, stdout, stderr } = await run(args);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(stderr).toContain(`"${args[0]}"`);
    expect(stderr).toMatch(/^iris-api: (unknown flag|unexpected argument) .*iris-api --help/);
  });
});
