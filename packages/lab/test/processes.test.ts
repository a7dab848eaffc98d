import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Supervisor, freePort, freePorts } from '../src/processes.js';

function alive(pid: number): boolean {
  if (!existsSync(`/proc/${pid}`)) return false;
  try {
    // A zombie still has /proc/<pid>; its state letter is Z.
    return !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

describe('Supervisor', () => {
  const sup = new Supervisor();
  afterEach(() => sup.stopAll(500));

  it('waits until the child answers its readiness URL', async () => {
    const port = await freePort();
    const script = `setTimeout(() => require('http').createServer((q, s) => s.end('ok')).listen(${port}, '127.0.0.1'), 300)`;
    const child = await sup.spawn({
      name: 'late',
      command: process.execPath,
      args: ['-e', script],
      readyUrl: `http://127.0.0.1:${port}/`,
      readyTimeoutMs: 5000,
    });
    expect(child.running).toBe(true);
    const res = await fetch(`http://127.0.0.1:${port}/`);
    expect(await res.text()).toBe('ok');
  });

  it('reports a child that exits before it is ready with its stderr tail', async () => {
    const port = await freePort();
    await expect(
      sup.spawn({
        name: 'broken',
        command: process.execPath,
        args: ['-e', 'console.error("model file missing"); process.exit(3)'],
        readyUrl: `http://127.0.0.1:${port}/`,
        readyTimeoutMs: 5000,
      }),
    ).rejects.toMatchObject({ code: 'LAB_CHILD_EXITED', message: expect.stringContaining('model file missing') });
  });

  it('gives up after the readiness timeout', async () => {
    const port = await freePort();
    await expect(
      sup.spawn({
        name: 'mute',
        command: process.execPath,
        args: ['-e', 'setInterval(() => {}, 1000)'],
        readyUrl: `http://127.0.0.1:${port}/`,
        readyTimeoutMs: 300,
      }),
    ).rejects.toMatchObject({ code: 'LAB_READY_TIMEOUT' });
    expect(sup.live).toHaveLength(0);
  });

  it('stops the whole process group, grandchildren included, with SIGKILL after the grace', async () => {
    // The child ignores SIGTERM and starts a grandchild that ignores it too.
    const script = `process.on('SIGTERM', () => {}); const g = require('child_process').spawn(process.execPath, ['-e', "process.on('SIGTERM', () => {}); setInterval(() => {}, 1000)"], { stdio: 'ignore' }); console.log(g.pid); setInterval(() => {}, 1000)`;
    const child = await sup.spawn({
      name: 'stubborn',
      command: process.execPath,
      args: ['-e', script],
      stdout: 'buffer',
    });
    const deadline = Date.now() + 5000;
    while (child.stdout().trim() === '' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const grandchild = Number(child.stdout().trim());
    expect(alive(grandchild)).toBe(true);
    const status = await child.stop(200);
    expect(status.signal).toBe('SIGKILL');
    await new Promise((r) => setTimeout(r, 100));
    expect(alive(child.pid)).toBe(false);
    expect(alive(grandchild)).toBe(false);
  });

  it('never hands two processes the same port, and frees its claims when it exits', async () => {
    // Two other processes ask for 300 ports each at once, and hold them (live) until told to exit.
    const ask = `import('${join(import.meta.dirname, '..', 'dist', 'processes.js')}').then(async (m) => {
      process.stdout.write(JSON.stringify(await m.freePorts(300)) + '\\n');
      process.stdin.resume().once('end', () => process.exit(0));
    })`;
    const children = [0, 1].map(() => spawn(process.execPath, ['-e', ask], { stdio: ['pipe', 'pipe', 'inherit'] }));
    const ports = await Promise.all(
      children.map(
        (c) =>
          new Promise<number[]>((resolve) => {
            let out = '';
            c.stdout.on('data', (d: Buffer) => {
              out += d.toString();
              if (out.includes('\n')) resolve(JSON.parse(out) as number[]);
            });
          }),
      ),
    );
    expect(new Set(ports.flat()).size).toBe(600);
    const dir = join(tmpdir(), 'cb-ports');
    expect(ports[0]!.every((p) => readFileSync(join(dir, String(p)), 'utf8') === String(children[0]!.pid))).toBe(true);
    // Their claims go with them: once they exit, none of their ports is claimed any more.
    await Promise.all(children.map((c) => new Promise((resolve) => c.once('exit', resolve).stdin.end())));
    expect(ports.flat().filter((p) => existsSync(join(dir, String(p))))).toEqual([]);
  });

  it('hands out distinct free ports on 127.0.0.1', async () => {
    const ports = await freePorts(5);
    expect(new Set(ports).size).toBe(5);
    const srv = createServer();
    await new Promise<void>((r) => srv.listen(ports[0], '127.0.0.1', r));
    await new Promise((r) => srv.close(r));
  });
});
