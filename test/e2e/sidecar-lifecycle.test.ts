// The sidecar's lifecycle under load, as built processes: SIGTERM drains (readiness fails first, every
// request in flight finishes, exit 0), SIGHUP applies a valid config and keeps the old one on an invalid
// one, and a rolling restart of every replica behind a Service (HAProxy with readiness checks, as
// Kubernetes removes a pod from its endpoints when /readyz fails) loses no request.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { haproxyConfig, parseServiceStats, SERVICE_STATS_PATH, type ServiceStats } from '@infer-cb/lab';
import {
  eventually,
  findExecutable,
  onFreePort,
  openLoop,
  SEED_BODY,
  startProcess,
  startSidecar,
  stopAll,
  TestUpstream,
  warmUp,
  type SidecarProcess,
} from '@infer-cb/testkit';
import { getJson, recordReliability } from './support/stack.js';

let upstream: TestUpstream;
beforeEach(async () => {
  upstream = await new TestUpstream({ serviceMs: 2 }).start();
});
afterEach(async () => {
  await stopAll(2000);
  await upstream.stop();
});

/** The Service's statistics (HAProxy's CSV page), null when it does not answer. */
async function fetchServiceStats(service: string, backends: readonly string[]): Promise<ServiceStats | null> {
  try {
    const res = await fetch(`${service}${SERVICE_STATS_PATH};csv`, { signal: AbortSignal.timeout(2000) });
    return res.ok ? parseServiceStats(await res.text(), backends) : null;
  } catch {
    return null;
  }
}

/**
 * Starts the lab's Service (HAProxy, with its readiness checks) in front of `backends`; HAProxy cannot report
 * a port of its own choosing, so it starts on a chosen one and again on another when that one is taken.
 */
async function startService(
  dir: string,
  backends: readonly string[],
  readiness: { path: string; ports: readonly number[]; intervalMs: number },
): Promise<string> {
  const haproxy = findExecutable('haproxy');
  return onFreePort(async (port) => {
    const configFile = join(dir, 'haproxy.cfg');
    writeFileSync(configFile, haproxyConfig({ port, backends, readiness }));
    const url = `http://127.0.0.1:${port}`;
    await startProcess({
      name: 'service',
      command: haproxy,
      args: ['-db', '-f', configFile],
      // Its own statistics for these backends: never another server that holds the port.
      readyCheck: async () => (await fetchServiceStats(url, backends)) !== null,
      readyTimeoutMs: 10_000,
    });
    return url;
  });
}

const config = (timeout: string, drainDelay = '0ms'): string =>
  `sidecar:\n  upstream: { timeout: ${timeout} }\n  drain: { delay: ${drainDelay}, grace: 10s }\n`;

describe('sidecar lifecycle under load', () => {
  it('on SIGTERM fails readiness first, finishes every request in flight, and exits 0', async () => {
    upstream.serviceMs = 300; // every request is in flight for 300 ms
    const sidecar = await startSidecar({ upstream: upstream.origin, yaml: config('5s', '1s') });
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
          sidecar.proc.signal('SIGTERM');
          // Within the drain delay (1 s) readiness must turn 503 while the listener still serves.
          readyFailed = eventually(async () => (await getJson(`${sidecar.admin}/readyz`)).status === 503, 900);
        }
      },
    });
    expect(await readyFailed).toBe(true);
    const exit = await sidecar.proc.exited;
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
    const sidecar = await startSidecar({ upstream: upstream.origin, yaml: config('10s') });
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
          sidecar.proc.signal('SIGHUP');
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
    const sidecar = await startSidecar({ upstream: upstream.origin, yaml: config('1s') });
    writeFileSync(
      sidecar.configPath,
      'sidecar:\n  upstream: { timeout: 5s }\n  queue: { timeout: banana }\n  breaker: { errorThresholdPercentage: 500 }\n',
    );
    sidecar.proc.signal('SIGHUP');
    expect(await eventually(() => sidecar.proc.stdout().includes('config reload rejected'), 3000)).toBe(true);
    const log = sidecar.proc.stdout();
    expect(log).toContain('banana');
    expect(log).toContain('errorThresholdPercentage');
    expect(sidecar.proc.running).toBe(true);
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
      [0, 1, 2].map(() => startSidecar({ upstream: upstream.origin, yaml: config('5s', '500ms') })),
    );
    // The Service: HAProxy asks each sidecar's /readyz every 100 ms, as the kubelet's readiness probe
    // and the endpoints controller take a draining pod out of a Service (less promptly).
    const dir = mkdtempSync(join(tmpdir(), 'cb-rolling-'));
    const backends = replicas.map((r) => r.url);
    const service = await startService(dir, backends, {
      path: '/readyz',
      ports: replicas.map((r) => r.adminPort),
      intervalMs: 100,
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
                    old.proc.signal('SIGTERM');
                    expect(await old.proc.exited).toEqual({ code: 0, signal: null });
                    // The same pod address: back on its ports, which the Service checks and forwards to.
                    replicas[i] = await startSidecar({
                      upstream: upstream.origin,
                      yaml: config('5s', '500ms'),
                      port: old.port,
                      adminPort: old.adminPort,
                    });
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
