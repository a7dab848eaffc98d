// The kit's own primitives, where a test that uses them could not tell a kit bug from a sidecar bug.
import { createServer } from 'node:net';
import {
  eventually,
  isAddressInUse,
  onFreePort,
  percentile,
  startUpstreamProcess,
  stopAll,
  TestUpstream,
} from '@infer-cb/testkit';

afterAll(() => stopAll(0));

describe('the controllable upstream', () => {
  it('serves within its workers, queues up to its backlog, and answers 503 beyond', async () => {
    const upstream = await new TestUpstream({ workers: 2, backlog: 1, serviceMs: 200 }).start();
    try {
      const answers = await Promise.all(
        Array.from({ length: 5 }, () => fetch(`${upstream.origin}/predict`, { method: 'POST', body: '{}' })),
      );
      expect(answers.map((a) => a.status).sort()).toEqual([200, 200, 200, 503, 503]);
      expect(upstream.snapshot()).toMatchObject({ received: 5, served: 3, rejected: 2, maxBusy: 2, maxQueued: 1 });
    } finally {
      await upstream.crash();
    }
  });

  it('as a process, reports its port and takes control changes, refusing bad ones', async () => {
    const upstream = await startUpstreamProcess({ serviceMs: 0 });
    await upstream.control({ mode: '5xx' });
    expect((await fetch(`${upstream.origin}/predict`)).status).toBe(500);
    await expect(upstream.control({ workers: 0 })).rejects.toThrow(/workers must be a number >= 1/);
    expect((await upstream.stats()).received).toBe(1);
  });
});

describe('ports', () => {
  it('starts again on another port when the chosen one is taken', async () => {
    const tried: number[] = [];
    const taken = createServer();
    const port = await onFreePort(async (p) => {
      tried.push(p);
      if (tried.length === 1) {
        await new Promise<void>((resolve) => taken.listen(p, '127.0.0.1', resolve));
        const err = Object.assign(new Error(`listen EADDRINUSE: address already in use 127.0.0.1:${p}`), {
          code: 'EADDRINUSE',
        });
        throw err;
      }
      return p;
    });
    taken.close();
    expect(tried).toHaveLength(2);
    expect(port).toBe(tried[1]);
    expect(isAddressInUse(new Error('[ALERT] Starting frontend service: cannot bind socket'))).toBe(true);
    await expect(onFreePort(() => Promise.reject(new Error('no such file')))).rejects.toThrow('no such file');
  });
});

describe('eventually and percentile', () => {
  it('waits for a condition, counting a throwing check as not yet, and gives up with the last error', async () => {
    let calls = 0;
    await expect(
      eventually(() => {
        if (++calls < 3) throw new Error('not up');
        return true;
      }),
    ).resolves.toBe(true);
    await expect(
      eventually(() => {
        throw new Error('still down');
      }, 50),
    ).rejects.toThrow(/within 50 ms[\s\S]*last error: still down/);
  });

  it('takes the nearest-rank percentile', () => {
    const values = Array.from({ length: 100 }, (_, i) => i + 1);
    expect([percentile(values, 50), percentile(values, 99), percentile(values, 100)]).toEqual([50, 99, 100]);
    expect(percentile([], 99)).toBeNaN();
  });
});
