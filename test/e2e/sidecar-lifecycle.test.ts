// The sidecar's lifecycle under load, as built processes: SIGTERM drains (readiness fails first, every
// request in flight finishes, exit 0), SIGHUP applies a valid config and keeps the old one on an invalid
// one, and a rolling restart of every replica behind a Service (HAProxy with readiness checks, as
// Kubernetes removes a pod from its endpoints when /readyz fails) loses no request.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { freePort, Supervisor } from '../../packages/lab/src/processes.js';
import { fetchServiceStats, startService } from '../../packages/lab/src/service.js';
import { findTool } from '../../packages/lab/src/tools.js';
import { FaultUpstream } from './support/fault-upstream.js';
import { openLoop, SEED_BODY, warmUp } from './support/load.js';
import { eventually, getJson, recordReliability, startSidecar, type SidecarProcess } from './support/stack.js';

const sup = new Supervisor();
let upstream: FaultUpstream;
beforeEach(async () => {
  upstream = await new FaultUpstream().start();
});
afterEach(async () => {
  await sup.stopAll(2000);
  await upstream.stop();
});

const config = (timeout: string, drainDelay = '0ms'): string =>
  `sidecar:\n  upstream: { timeout: ${timeout} }\n  drain: { delay: ${drainDelay}, grace: 10s }\n`;

describe('sidecar lifecycle under load', () => {
  it('on SIGTERM fails readiness first, finishes every request in flight, and exits 0', async () => {
    upstream.baseDelayMs = 300; // every request is in flight for 300 ms
    const sidecar = await startSidecar(sup, upstream.origin, config('5s', '1s'));
    await warmUp(`${sidecar.url}/predict`, SEED_BODY, 32);
    let readyFailed: Promise<boolean> | undefined;
    const result = await openLoop({
      url: `${sidecar.url}/predict`,
      method: 'POST',
      body: SEED_BODY,
      rate: 100,
      durationMs: 1500,
      onTick: (t) => {
        if (readyFailed === undefined && t >= 800) {
          sidecar.child.signal('SIGTERM');
          // Within the drain delay (1 s) readiness must turn 503 while the listener still serves.
          readyFailed = eventually(async () => (await getJson(`${sidecar.admin}/readyz`)).status === 503, 900);
        }
      },
    });
    expect(await readyFailed).toBe(true);
    const exit = await sidecar.child.exited;
    expect(exit).toEqual({ code: 0, signal: null });
    expect(result.errors).toEqual({});
    expect(result.byStatus).toEqual({ 200: result.sent });
    recordReliability('sidecar-sigterm', {
      fault: 'SIGTERM to the sidecar with ~30 requests in flight',
      sent: result.sent,
      answered: result.answered,
      byStatus: result.byStatus,
      recoveryMs: null,
      note: 'readiness 503 at once, exit 0 after the last answer',
    });
  }, 30_000);

  it('on SIGHUP applies a valid config and keeps serving under load', async () => {
    const sidecar = await startSidecar(sup, upstream.origin, config('10s'), undefined, true);
    await warmUp(`${sidecar.url}/predict`, SEED_BODY, 32);
    let reloaded = false;
    const result = await openLoop({
      url: `${sidecar.url}/predict`,
      method: 'POST',
      body: SEED_BODY,
      rate: 100,
      durationMs: 2000,
      onTick: (t) => {
        if (!reloaded && t >= 1000) {
          reloaded = true;
          writeFileSync(sidecar.configPath, config('1s'));
          sidecar.child.signal('SIGHUP');
        }
      },
    });
    expect(result.errors).toEqual({});
    expect(result.byStatus).toEqual({ 200: result.sent });
    // The new upstream timeout is in force: a hanging upstream now costs 1 s, not 10 s.
    upstream.mode = 'hang';
    const started = performance.now();
    const res = await fetch(`${sidecar.url}/predict`, {
      method: 'POST',
      body: SEED_BODY,
      signal: AbortSignal.timeout(8000),
    });
    expect(res.status).toBe(504);
    expect(performance.now() - started).toBeLessThan(5000);
    recordReliability('sidecar-sighup', {
      fault: 'SIGHUP with a valid config under load',
      sent: result.sent,
      answered: result.answered,
      byStatus: result.byStatus,
      recoveryMs: null,
      note: 'new upstream.timeout in force',
    });
  }, 30_000);

  it('on SIGHUP with an invalid config keeps the previous one, logs every problem, and keeps serving', async () => {
    const sidecar = await startSidecar(sup, upstream.origin, config('1s'), undefined, true);
    writeFileSync(
      sidecar.configPath,
      'sidecar:\n  upstream: { timeout: 5s }\n  queue: { timeout: banana }\n  breaker: { errorThresholdPercentage: 500 }\n',
    );
    sidecar.child.signal('SIGHUP');
    expect(await eventually(() => sidecar.child.stdout().includes('config reload rejected'), 3000)).toBe(true);
    const log = sidecar.child.stdout();
    expect(log).toContain('banana');
    expect(log).toContain('errorThresholdPercentage');
    expect(sidecar.child.running).toBe(true);
    upstream.mode = 'hang';
    const res = await fetch(`${sidecar.url}/predict`, {
      method: 'POST',
      body: SEED_BODY,
      signal: AbortSignal.timeout(4000),
    });
    expect(res.status).toBe(504); // still the old 1 s, not the rejected 5 s
    upstream.mode = 'ok';
    expect((await fetch(`${sidecar.url}/predict`, { method: 'POST', body: SEED_BODY })).status).toBe(200);
  }, 30_000);

  it('loses no request when every replica behind the Service is restarted one by one', async () => {
    const replicas: SidecarProcess[] = await Promise.all(
      [0, 1, 2].map(() => startSidecar(sup, upstream.origin, config('5s', '500ms'))),
    );
    // The Service: HAProxy asks each sidecar's /readyz every 100 ms, as the kubelet's readiness probe
    // and the endpoints controller take a draining pod out of a Service (less promptly).
    const dir = mkdtempSync(join(tmpdir(), 'cb-rolling-'));
    const backends = replicas.map((r) => r.url);
    const { url: service } = await startService(sup, {
      haproxy: findTool('haproxy', resolve(import.meta.dirname, '..', '..'), 'make system-deps'),
      name: 'service',
      configFile: join(dir, 'haproxy.cfg'),
      port: await freePort(),
      backends,
      readiness: { path: '/readyz', ports: replicas.map((r) => r.adminPort), intervalMs: 100 },
    });
    // Whether the Service routes to replica i again (its readiness check passed), as a rolling update
    // waits for the new pod to be Ready before it stops the next one.
    const serviceUp = async (i: number): Promise<boolean> =>
      (await fetchServiceStats(service, backends))?.backends[i]?.ready === true;
    const started = performance.now();
    try {
      await warmUp(`${service}/predict`, SEED_BODY, 48);
      let rolling: Promise<void> | undefined;
      let rolledAtMs = 0;
      const result = await openLoop({
        url: `${service}/predict`,
        method: 'POST',
        body: SEED_BODY,
        rate: 100,
        durationMs: 9000,
        onTick: (t) => {
          rolling ??=
            t < 500
              ? undefined
              : (async () => {
                  for (let i = 0; i < replicas.length; i++) {
                    const old = replicas[i] as SidecarProcess;
                    old.child.signal('SIGTERM');
                    expect(await old.child.exited).toEqual({ code: 0, signal: null });
                    replicas[i] = await startSidecar(
                      sup,
                      upstream.origin,
                      config('5s', '500ms'),
                      old.port,
                      false,
                      old.adminPort,
                    );
                    expect(await eventually(() => serviceUp(i), 3000)).toBe(true);
                  }
                  rolledAtMs = performance.now() - started;
                })();
        },
      });
      const loadEndedMs = performance.now() - started;
      await rolling;
      // All three restarts happened while the load ran.
      expect(rolledAtMs).toBeGreaterThan(0);
      expect(rolledAtMs).toBeLessThan(loadEndedMs);
      expect(result.errors).toEqual({});
      expect(result.byStatus).toEqual({ 200: result.sent });
      const stats = await fetchServiceStats(service, backends);
      recordReliability('rolling-restart', {
        fault: 'rolling restart of 3 sidecars behind a Service (HAProxy, readiness checks)',
        sent: result.sent,
        answered: result.answered,
        byStatus: result.byStatus,
        recoveryMs: null,
        note: `Service errors ${stats?.errors ?? 'unknown'}`,
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
