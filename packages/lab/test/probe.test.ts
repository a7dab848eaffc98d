import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { probeCapacity } from '../src/probe.js';

function server(status: number): Promise<{ server: Server; url: string }> {
  const s = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(status, { 'content-type': 'application/json' }).end('{"prediction":[1,0,0]}'));
  });
  return new Promise((resolve) =>
    s.listen(0, '127.0.0.1', () =>
      resolve({ server: s, url: `http://127.0.0.1:${(s.address() as AddressInfo).port}` }),
    ),
  );
}

describe('probeCapacity', () => {
  const servers: Server[] = [];
  afterEach(async () => {
    await Promise.all(
      servers.splice(0).map(
        (s) =>
          new Promise((r) => {
            s.closeAllConnections();
            s.close(r);
          }),
      ),
    );
  });

  it('probes every target with its own workers; capacity is the median of the per-window rates', async () => {
    const a = await server(200);
    const b = await server(200);
    servers.push(a.server, b.server);
    const p = await probeCapacity([a.url, b.url], '{"data":[[1,2,3,4]]}', {
      concurrencyPerTarget: 2,
      durationSeconds: 1.5,
      warmupSeconds: 0.1,
      windowSeconds: 0.5,
      label: 'two',
    });
    expect(p.concurrency).toBe(4);
    expect(p.target).toBe('two');
    expect(p.windowsRps).toHaveLength(3);
    const sorted = [...p.windowsRps].sort((x, y) => x - y);
    expect(p.capacityRps).toBe(sorted[1]);
    expect(p.capacityRps).toBeGreaterThan(0);
    expect(p.failures).toBe(0);
    // The mean over the whole time and the windows describe the same answers.
    expect(p.meanRps).toBeCloseTo(p.windowsRps.reduce((s, w) => s + w * 0.5, 0) / 1.5, 0);
  });

  it('counts non-2xx answers as failures, not capacity', async () => {
    const shed = await server(503);
    servers.push(shed.server);
    const p = await probeCapacity([shed.url], '{}', {
      concurrencyPerTarget: 2,
      durationSeconds: 0.5,
      warmupSeconds: 0.1,
    });
    expect(p.capacityRps).toBe(0);
    expect(p.windowsRps).toEqual([0]);
    expect(p.failures).toBeGreaterThan(0);
  });
});
