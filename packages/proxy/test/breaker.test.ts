import { jest } from '@jest/globals';
import { Breaker, type BreakerOptions, type BreakerState } from '../src/layers/breaker.js';
import {
  CircuitOpenError,
  OverloadError,
  QueueTimeoutError,
  UpstreamStatusError,
  UpstreamTimeoutError,
  UpstreamUnavailableError,
} from '../src/errors.js';
import type { Handler, ProxyRequest } from '../src/pipeline.js';

const OPTIONS: BreakerOptions['breaker'] = {
  errorThresholdPercentage: 50,
  volumeThreshold: 10,
  rollingWindowMs: 10_000,
  resetTimeoutMs: 2000,
  maxResetTimeoutMs: 30_000,
  unreachableResetTimeoutMs: 250,
  consecutive5xxErrors: 0,
  consecutiveGatewayErrors: 0,
};
const REQUEST = {} as ProxyRequest;

/** A breaker over a downstream whose next result the test sets. */
function setup(options: Partial<BreakerOptions['breaker']> = {}) {
  const breaker = new Breaker({ breaker: { ...OPTIONS, ...options } });
  const transitions: string[] = [];
  breaker.onTransition((from: BreakerState, to: BreakerState) => transitions.push(`${from}->${to}`));
  let result: () => Promise<{ status: number }> = () => Promise.resolve({ status: 200 });
  let calls = 0;
  const downstream: Handler = () => {
    calls++;
    return result();
  };
  const handle = breaker.layer(downstream);
  return {
    breaker,
    transitions,
    calls: () => calls,
    respond(status: number) {
      result = () => (status >= 500 ? Promise.reject(new UpstreamStatusError(status)) : Promise.resolve({ status }));
    },
    until(gate: Promise<void>) {
      result = () => gate.then(() => ({ status: 200 }));
    },
    handle,
    throwing(err: Error) {
      result = () => Promise.reject(err);
    },
    /** Fires once; resolves with the status, or the error code when it threw. */
    async fire(): Promise<number | string> {
      try {
        return (await handle(REQUEST)).status;
      } catch (err) {
        return (err as { code: string }).code;
      }
    },
    async fireN(n: number): Promise<(number | string)[]> {
      const out: (number | string)[] = [];
      for (let i = 0; i < n; i++) out.push(await this.fire());
      return out;
    },
  };
}

beforeEach(() => jest.useFakeTimers());
afterEach(() => jest.useRealTimers());

describe('Breaker', () => {
  it('opens when the error rate exceeds the threshold after the volume threshold, then rejects at once', async () => {
    const b = setup();
    b.respond(503);
    const results = await b.fireN(10);
    expect(results.slice(0, 9)).toEqual(Array(9).fill(503)); // the 5xx answers themselves pass through
    expect(b.breaker.state).toBe('open');
    const before = b.calls();
    expect(await b.fire()).toBe('CB_CIRCUIT_OPEN');
    expect(b.calls()).toBe(before);
    expect(b.transitions).toEqual(['closed->open']);
    b.breaker.close();
  });

  it('stays closed below the volume threshold', async () => {
    const b = setup();
    b.respond(500);
    await b.fireN(9);
    expect(b.breaker.state).toBe('closed');
    b.breaker.close();
  });

  it('goes open -> half-open after resetTimeout, lets exactly one probe through, and closes when it succeeds', async () => {
    const b = setup();
    b.respond(500);
    await b.fireN(10);
    jest.advanceTimersByTime(2000);
    expect(b.breaker.state).toBe('half-open');
    let release!: () => void;
    b.until(new Promise<void>((resolve) => (release = resolve)));
    const before = b.calls();
    const probe = b.handle(REQUEST); // the probe hangs until released
    await expect(b.handle(REQUEST)).rejects.toBeInstanceOf(CircuitOpenError); // a second one meanwhile is rejected
    release();
    await expect(probe).resolves.toEqual({ status: 200 });
    expect(b.calls() - before).toBe(1);
    expect(b.breaker.state).toBe('closed');
    expect(b.transitions).toEqual(['closed->open', 'open->half-open', 'half-open->closed']);
    b.breaker.close();
  });

  it('doubles the open interval while probes fail, up to maxResetTimeout, and resets it after a close', async () => {
    const b = setup({ maxResetTimeoutMs: 6000 });
    b.respond(500);
    await b.fireN(10);
    const openIntervals: number[] = [];
    for (let i = 0; i < 4; i++) {
      openIntervals.push(b.breaker.retryAfterMs());
      jest.advanceTimersByTime(openIntervals[i]!);
      expect(b.breaker.state).toBe('half-open');
      await b.fire(); // probe fails
      expect(b.breaker.state).toBe('open');
    }
    expect(openIntervals).toEqual([2000, 4000, 6000, 6000]);
    jest.advanceTimersByTime(6000);
    b.respond(200);
    expect(await b.fire()).toBe(200);
    expect(b.breaker.state).toBe('closed');
    b.respond(500);
    await b.fireN(20);
    expect(b.breaker.retryAfterMs()).toBe(2000);
    b.breaker.close();
  });

  it('probes an unreachable upstream every unreachableResetTimeout, without backing off, and closes when it is back', async () => {
    const b = setup({ consecutive5xxErrors: 5 });
    b.throwing(new UpstreamUnavailableError('connect ECONNREFUSED'));
    await b.fireN(5);
    expect(b.breaker.state).toBe('open');
    const openIntervals: number[] = [];
    for (let i = 0; i < 4; i++) {
      openIntervals.push(b.breaker.retryAfterMs());
      jest.advanceTimersByTime(openIntervals[i]!);
      expect(b.breaker.state).toBe('half-open');
      expect(await b.fire()).toBe('CB_UPSTREAM_UNAVAILABLE'); // the probe is refused at once
      expect(b.breaker.state).toBe('open');
    }
    expect(openIntervals).toEqual([250, 250, 250, 250]);
    // The model is back: within one interval its probe goes through and the breaker closes.
    b.respond(200);
    jest.advanceTimersByTime(250);
    expect(await b.fire()).toBe(200);
    expect(b.breaker.state).toBe('closed');
    b.breaker.close();
  });

  it('backs off again once a reachable upstream answers its probe badly', async () => {
    const b = setup({ consecutive5xxErrors: 5 });
    b.throwing(new UpstreamUnavailableError('connect ECONNREFUSED'));
    await b.fireN(5);
    expect(b.breaker.retryAfterMs()).toBe(250);
    jest.advanceTimersByTime(250);
    b.respond(500); // it listens again, but fails: a struggling model gets the backoff
    await b.fire();
    expect(b.breaker.state).toBe('open');
    expect(b.breaker.retryAfterMs()).toBe(2000);
    jest.advanceTimersByTime(2000);
    await b.fire();
    expect(b.breaker.retryAfterMs()).toBe(4000);
    b.breaker.close();
  });

  it('reports Retry-After as the time left until the probe', async () => {
    const b = setup();
    b.respond(500);
    await b.fireN(10);
    jest.advanceTimersByTime(1500);
    try {
      await b.handle(REQUEST);
      throw new Error('expected a rejection');
    } catch (err) {
      expect(err).toBeInstanceOf(CircuitOpenError);
      expect((err as CircuitOpenError).retryAfterMs).toBe(500);
    }
    b.breaker.close();
  });

  it('refuses to guard a second handler', () => {
    const b = setup();
    expect(() => b.breaker.layer(() => Promise.resolve({ status: 200 }))).toThrow(/one handler/);
    b.breaker.close();
  });

  it('never counts 4xx answers', async () => {
    const b = setup({ consecutive5xxErrors: 3 });
    b.respond(404);
    expect(new Set(await b.fireN(50))).toEqual(new Set([404]));
    b.respond(429);
    await b.fireN(50);
    expect(b.breaker.state).toBe('closed');
    expect(b.breaker.counters.failures).toBe(0);
    b.breaker.close();
  });

  it('never counts admission rejections', async () => {
    const b = setup({ consecutive5xxErrors: 3 });
    b.throwing(new OverloadError('full'));
    await b.fireN(30);
    b.throwing(new QueueTimeoutError('waited'));
    await b.fireN(30);
    expect(b.breaker.state).toBe('closed');
    b.breaker.close();
  });

  it('does not count a call cut short by the client deadline', async () => {
    const b = setup({ consecutive5xxErrors: 3 });
    b.throwing(new UpstreamTimeoutError('deadline', true));
    await b.fireN(30);
    expect(b.breaker.state).toBe('closed');
    b.breaker.close();
  });

  it('counts upstream timeouts and connection failures', async () => {
    const b = setup();
    b.throwing(new UpstreamTimeoutError('slow'));
    await b.fireN(5);
    b.throwing(new UpstreamUnavailableError('refused'));
    await b.fireN(5);
    expect(b.breaker.state).toBe('open');
    b.breaker.close();
  });

  it('opens after consecutive5xxErrors failures in a row, below the volume threshold', async () => {
    const b = setup({ consecutive5xxErrors: 3, volumeThreshold: 1000 });
    b.respond(500);
    await b.fireN(2);
    b.respond(200);
    await b.fire(); // a success resets the run
    b.respond(500);
    await b.fireN(2);
    expect(b.breaker.state).toBe('closed');
    await b.fire();
    expect(b.breaker.state).toBe('open');
    b.breaker.close();
  });

  it('opens after consecutiveGatewayErrors 502/503/504 in a row but not on plain 500s', async () => {
    const b = setup({ consecutiveGatewayErrors: 3, volumeThreshold: 1000 });
    b.respond(500);
    await b.fireN(10);
    expect(b.breaker.state).toBe('closed');
    b.respond(502);
    await b.fireN(3);
    expect(b.breaker.state).toBe('open');
    b.breaker.close();
  });
});
