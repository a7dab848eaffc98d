// Upstream faults under bounded open-loop load, through the built cb-sidecar process: every request gets
// one of the documented answers, the breaker opens, and the system returns to normal afterwards.
import { REASONS, type StateDocument } from '@infer-cb/proxy/outcomes';
import {
  eventually,
  openLoop,
  percentile,
  SEED_BODY,
  startApi,
  startSidecar,
  stopAll,
  TestUpstream,
  warmUp,
  type FaultMode,
  type LoadResult,
  type SidecarProcess,
  type Shot,
} from '@infer-cb/testkit';
import { breakerState, getJson, recordReliability } from './support/stack.js';

const RESET_MS = 1000;
// The open interval stays at resetTimeout (max = reset), so "recovers within resetTimeout + 1 s" is exact.
const CONFIG = `
sidecar:
  concurrency: { mode: static }
  queue: { timeout: 250ms }
  breaker: { errorThresholdPercentage: 50, volumeThreshold: 10, rollingWindow: 2s, resetTimeout: 1s, maxResetTimeout: 1s }
  upstream: { timeout: 300ms }
  drain: { delay: 0ms, grace: 5s }
`;
/** Admission answers: documented, and possible in any case when the shared CPU stalls the sidecar. */
const SHEDDING = ['overload', 'queue-timeout'];
/** Every x-cb-reason the sidecar documents (its exported list). */
const SIDECAR_REASONS = new Set<string>(REASONS);

afterAll(() => stopAll(2000));

/** Every answer made by the sidecar itself carries a documented reason and status. */
function expectDocumentedAnswers(result: LoadResult, allowed: Record<number, readonly string[] | 'forwarded'>): void {
  expect(result.errors).toEqual({});
  expect(result.answered).toBe(result.sent);
  for (const s of result.shots) {
    const rule = allowed[s.status];
    if (rule === undefined)
      throw new Error(`unexpected status ${s.status} (reason ${s.reason}) at ${s.sentAtMs.toFixed(0)} ms`);
    if (rule === 'forwarded') expect(s.reason).toBeUndefined();
    else expect([...rule, ...SHEDDING]).toContain(s.reason);
    if (s.reason !== undefined) expect(SIDECAR_REASONS.has(s.reason)).toBe(true);
  }
}

/**
 * ms from `fromMs` (run time) to the first answer that opens 500 ms of nothing but 200s; null if none.
 * Then the rest of the run must be normal: at least 98% 200s (one stray shed on a shared CPU is not a relapse).
 */
function recoveryAfter(shots: Shot[], fromMs: number): number | null {
  const after = shots.filter((s) => s.sentAtMs >= fromMs);
  for (let i = 0; i < after.length; i++) {
    const start = after[i] as Shot;
    const window = after.filter((s) => s.sentAtMs >= start.sentAtMs && s.sentAtMs < start.sentAtMs + 500);
    if (window.every((s) => s.status === 200) && (after[after.length - 1] as Shot).sentAtMs >= start.sentAtMs + 500) {
      const rest = after.slice(i);
      expect(rest.filter((s) => s.status === 200).length).toBeGreaterThanOrEqual(0.98 * rest.length);
      return start.sentAtMs - fromMs;
    }
  }
  return null;
}

async function sidecarFor(origin: string, yaml = CONFIG): Promise<SidecarProcess> {
  return startSidecar({ upstream: origin, yaml });
}

describe('upstream faults under load', () => {
  it('answers 503 upstream-unavailable fast when the API is killed, opens the breaker, and recovers within resetTimeout + 1 s of the restart', async () => {
    let api = await startApi();
    // The real model on a shared CPU can take longer than 300 ms; this case is about a dead process, not a slow one.
    const sidecar = await sidecarFor(
      api.origin,
      CONFIG.replace('upstream: { timeout: 300ms }', 'upstream: { timeout: 3s }'),
    );
    await warmUp(`${sidecar.url}/predict`);
    let killedAt = -1;
    let restartedAt = -1;
    let restarting: Promise<void> | undefined;
    const t0 = performance.now();
    const result = await openLoop({
      url: `${sidecar.url}/predict`,
      method: 'POST',
      body: SEED_BODY,
      rate: 150,
      durationMs: 6000,
      onTick: (t) => {
        if (killedAt < 0 && t >= 1000) {
          killedAt = t;
          api.proc.signal('SIGKILL');
          restarting = (async () => {
            await api.proc.exited;
            await new Promise((r) => setTimeout(r, 1000));
            api = await startApi({ port: api.port }); // back on the port the sidecar forwards to
            restartedAt = performance.now() - t0;
          })();
        }
      },
    });
    await restarting;
    expectDocumentedAnswers(result, {
      200: 'forwarded',
      502: ['upstream-error'],
      503: ['upstream-unavailable', 'circuit-open'],
    });
    // Only requests in flight at the kill can see the connection cut (502); the rest are refused fast.
    expect(result.byStatus['502'] ?? 0).toBeLessThanOrEqual(10);
    const refused = result.shots.filter((s) => s.reason === 'upstream-unavailable' || s.reason === 'circuit-open');
    expect(refused.length).toBeGreaterThan(0);
    // Refusals cost a failed connect or nothing at all (open breaker). Bounds are loose: CI shares 2 cores.
    expect(
      percentile(
        refused.map((s) => s.latencyMs),
        50,
      ),
    ).toBeLessThan(50);
    expect(
      percentile(
        refused.map((s) => s.latencyMs),
        99,
      ),
    ).toBeLessThan(1000);
    expect(result.byReason['circuit-open'] ?? 0).toBeGreaterThan(0);
    const recoveryMs = recoveryAfter(result.shots, restartedAt);
    expect(recoveryMs).not.toBeNull();
    expect(recoveryMs as number).toBeLessThanOrEqual(RESET_MS + 1000);
    expect(await breakerState(sidecar.admin)).toBe('closed');
    recordReliability('api-killed', {
      fault: 'API process killed (SIGKILL), restarted 1 s later',
      sent: result.sent,
      answered: result.answered,
      byStatus: result.byStatus,
      recoveryMs,
      note: `503 p50 ${percentile(
        refused.map((s) => s.latencyMs),
        50,
      ).toFixed(1)} ms, p99 ${percentile(
        refused.map((s) => s.latencyMs),
        99,
      ).toFixed(1)} ms; recovery counted from the restart`,
    });
    await sidecar.proc.stop();
    await api.proc.stop();
  }, 40_000);

  describe('with a controllable upstream', () => {
    let upstream: TestUpstream;
    let sidecar: SidecarProcess;
    beforeEach(async () => {
      upstream = await new TestUpstream({ serviceMs: 2 }).start();
    });
    afterEach(async () => {
      await sidecar.proc.stop();
      await upstream.stop();
    });

    /** Runs `rate`/s for `durationMs`, with `mode` between `fromMs` and `toMs`; then checks the sidecar is alive. */
    async function faultRun(
      mode: FaultMode,
      fromMs: number,
      toMs: number,
      rate = 150,
      durationMs = 4500,
      onTick?: (t: number) => void,
    ): Promise<LoadResult> {
      upstream.mode = 'ok';
      await warmUp(`${sidecar.url}/predict`);
      const result = await openLoop({
        url: `${sidecar.url}/predict`,
        method: 'POST',
        body: SEED_BODY,
        rate,
        durationMs,
        onTick: (t) => {
          if (t >= fromMs && t < toMs) upstream.mode = mode;
          else if (t >= toMs) upstream.mode = 'ok';
          onTick?.(t);
        },
      });
      expect(sidecar.proc.running).toBe(true);
      return result;
    }

    it('answers 504 upstream-timeout when the upstream hangs, opens the breaker, and recovers', async () => {
      sidecar = await sidecarFor(upstream.origin);
      const result = await faultRun('hang', 500, 2000);
      expectDocumentedAnswers(result, { 200: 'forwarded', 504: ['upstream-timeout'], 503: ['circuit-open'] });
      const timeouts = result.shots.filter((s) => s.status === 504);
      expect(timeouts.length).toBeGreaterThan(0);
      // upstream.timeout is 300 ms; the margins are for a CPU shared with other jobs, not for the sidecar.
      expect(
        percentile(
          timeouts.map((s) => s.latencyMs),
          50,
        ),
      ).toBeLessThan(300 + 300);
      expect(Math.max(...timeouts.map((s) => s.latencyMs))).toBeLessThan(3000);
      expect(result.byReason['circuit-open'] ?? 0).toBeGreaterThan(0);
      const recoveryMs = recoveryAfter(result.shots, 2000);
      expect(recoveryMs).not.toBeNull();
      expect(recoveryMs as number).toBeLessThanOrEqual(RESET_MS + 1000);
      recordReliability('upstream-hangs', {
        fault: 'upstream hangs for 1.5 s (upstream.timeout 300 ms)',
        sent: result.sent,
        answered: result.answered,
        byStatus: result.byStatus,
        recoveryMs,
        note: `504 p50 ${percentile(
          timeouts.map((s) => s.latencyMs),
          50,
        ).toFixed(0)} ms, max ${Math.max(...timeouts.map((s) => s.latencyMs)).toFixed(0)} ms`,
      });
    }, 30_000);

    it('keeps accepted latency bounded when the upstream becomes 10x slower (adaptive limit, queue timeout)', async () => {
      upstream.workers = 4;
      upstream.serviceMs = 10; // capacity 400/s, then 40/s when slow
      sidecar = await sidecarFor(
        upstream.origin,
        CONFIG.replace('mode: static', 'mode: adaptive, min: 1, max: 64').replace(
          'upstream: { timeout: 300ms }',
          'upstream: { timeout: 5s }',
        ),
      );
      let limitWhileSlow: Promise<number> | undefined;
      const result = await faultRun('slow', 1000, 3000, 200, 5000, (t) => {
        limitWhileSlow ??=
          t >= 2900
            ? getJson<StateDocument>(`${sidecar.admin}/state`).then(({ body }) => body.concurrency.limit)
            : undefined;
      });
      expectDocumentedAnswers(result, { 200: 'forwarded', 503: ['overload', 'queue-timeout', 'deadline'] });
      const accepted = result.shots
        .filter((s) => s.status === 200 && s.sentAtMs >= 1000 && s.sentAtMs < 3000)
        .map((s) => s.latencyMs);
      // Unprotected, 200/s into 40/s grows a backlog of 320 requests (8 s of waiting) over these 2 s. Admitted,
      // a request waits at most queue.timeout (250 ms) plus the upstream's own queue at the limit in flight,
      // which the adaptive limit pulls down from 64 (64 / 4 workers x 100 ms = 1.6 s) as it measures.
      const p99 = percentile(accepted, 99);
      expect(accepted.length).toBeGreaterThan(0);
      expect(p99).toBeLessThan(250 + 1600 + 750);
      const recoveryMs = recoveryAfter(result.shots, 3000);
      expect(recoveryMs).not.toBeNull();
      expect(recoveryMs as number).toBeLessThanOrEqual(3000);
      recordReliability('upstream-slow', {
        fault: 'upstream 10x slower for 2 s at 5x its slow capacity',
        sent: result.sent,
        answered: result.answered,
        byStatus: result.byStatus,
        recoveryMs,
        note: `accepted p99 ${p99.toFixed(0)} ms while slow (unprotected: backlog of 8 s); adaptive limit 64 -> ${await limitWhileSlow}`,
      });
    }, 30_000);

    it('trips the breaker on a burst of 5xx and closes it again through a half-open probe', async () => {
      sidecar = await sidecarFor(upstream.origin);
      const result = await faultRun('5xx', 500, 1500);
      expectDocumentedAnswers(result, { 200: 'forwarded', 500: 'forwarded', 503: ['circuit-open'] });
      expect(result.byReason['circuit-open'] ?? 0).toBeGreaterThan(0);
      // The breaker stops the 5xx burst from reaching clients long before it ends.
      expect(result.byStatus['500'] ?? 0).toBeLessThan(0.5 * 150);
      const recoveryMs = recoveryAfter(result.shots, 1500);
      expect(recoveryMs).not.toBeNull();
      expect(recoveryMs as number).toBeLessThanOrEqual(RESET_MS + 1000);
      expect(await eventually(async () => (await breakerState(sidecar.admin)) === 'closed', 2000)).toBe(true);
      recordReliability('upstream-5xx', {
        fault: 'upstream answers 500 for 1 s',
        sent: result.sent,
        answered: result.answered,
        byStatus: result.byStatus,
        recoveryMs,
        note: 'half-open probe closes the breaker',
      });
    }, 30_000);

    it('answers 502 upstream-error to garbage and to a connection closed after the headers, without crashing', async () => {
      sidecar = await sidecarFor(upstream.origin);
      const garbage = await faultRun('garbage', 300, 800, 100, 2500);
      expectDocumentedAnswers(garbage, { 200: 'forwarded', 502: ['upstream-error'], 503: ['circuit-open'] });
      expect(garbage.byStatus['502'] ?? 0).toBeGreaterThan(0);
      const cut = await faultRun('headers-then-close', 300, 800, 100, 3000);
      expectDocumentedAnswers(cut, { 200: 'forwarded', 502: ['upstream-error'], 503: ['circuit-open'] });
      expect(cut.byStatus['502'] ?? 0).toBeGreaterThan(0);
      const recoveryMs = recoveryAfter(cut.shots, 800);
      expect(recoveryMs).not.toBeNull();
      expect(recoveryMs as number).toBeLessThanOrEqual(RESET_MS + 1000);
      const both = { sent: garbage.sent + cut.sent, answered: garbage.answered + cut.answered };
      const byStatus: Record<string, number> = { ...garbage.byStatus };
      for (const [k, v] of Object.entries(cut.byStatus)) byStatus[k] = (byStatus[k] ?? 0) + v;
      recordReliability('upstream-garbage', {
        fault: 'upstream writes non-HTTP bytes / closes after the headers (0.5 s each)',
        ...both,
        byStatus,
        recoveryMs,
        note: 'sidecar stays up',
      });
    }, 30_000);

    it('cuts the client connection when the upstream closes mid-body, so a truncated answer never looks complete', async () => {
      sidecar = await sidecarFor(upstream.origin);
      const result = await faultRun('mid-body-close', 300, 800, 100, 2500);
      for (const s of result.shots) {
        if (s.error !== undefined) expect([s.status, s.error]).toEqual([200, 'TRUNCATED']);
        else expect([200, 502, 503]).toContain(s.status);
      }
      expect(result.errors.TRUNCATED ?? 0).toBeGreaterThan(0);
      expect(result.shots.filter((s) => s.status === 0)).toEqual([]);
      const recoveryMs = recoveryAfter(result.shots, 800);
      expect(recoveryMs as number).toBeLessThanOrEqual(RESET_MS + 1000);
      recordReliability('upstream-mid-body', {
        fault: 'upstream closes mid-body for 0.5 s (client sees 200 + cut body)',
        sent: result.sent,
        answered: result.answered,
        byStatus: result.byStatus,
        recoveryMs,
        note: `${result.errors.TRUNCATED ?? 0} got 200 then a cut body (the answer had started; as Envoy does), counted in 200, not answered`,
      });
    }, 30_000);
  });
});
