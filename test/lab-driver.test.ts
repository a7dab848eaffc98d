// The builtin driver (built, as cb-lab runs it: its loop lives in a worker thread) against a real server on
// 127.0.0.1: its own warm-up never reaches the target, and the lab is told once when the clock starts.
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
// The built package (its public exports): the driver's loop runs in a worker thread from dist.
import { BuiltinDriver as Driver, ResultRecorder as Recorder, Supervisor as Sup } from '@infer-cb/lab';

it('warms up against a server of its own: the target gets exactly rate x duration requests, and onStart fires once', async () => {
  let seen = 0;
  const target = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      seen++;
      const body = seen % 2 === 0 ? '{"predictions":[0]}' : '{"error":{"code":"CB_OVERLOAD","message":"full"}}';
      res
        .writeHead(seen % 2 === 0 ? 200 : 503, { 'content-type': 'application/json', 'x-cb-reason': 'overload' })
        .end(body);
    });
  });
  await new Promise<void>((resolve) => target.listen(0, '127.0.0.1', resolve));
  try {
    const rec = new Recorder();
    const starts: number[] = [];
    const called = performance.now();
    await new Driver().attack({
      baseUrl: `http://127.0.0.1:${(target.address() as AddressInfo).port}`,
      rate: 200,
      durationSeconds: 1,
      timeoutMs: 5000,
      maxInflight: 1000,
      repoRoot: process.cwd(),
      workDir: mkdtempSync(join(tmpdir(), 'cb-lab-driver-')),
      recorder: rec,
      supervisor: new Sup(),
      onStart: () => starts.push(performance.now()),
    });
    expect(starts).toHaveLength(1);
    // The warm-up schedules requests for 0.3 s before the clock starts (a lower bound: a slow machine only adds).
    expect((starts[0] as number) - called).toBeGreaterThanOrEqual(300);
    expect(seen).toBe(200);
    expect(rec.requests).toBe(200);
    expect(rec.successes).toBe(100);
    expect(rec.count(503)).toBe(100);
  } finally {
    target.closeAllConnections();
    await new Promise<void>((resolve) => target.close(() => resolve()));
  }
});
