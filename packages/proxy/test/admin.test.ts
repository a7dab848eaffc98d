import * as errors from '../src/errors.js';
import { STATUS_BY_REASON } from '../src/outcomes.js';
import { useFixture } from './support/fixture.js';
import { metricsText, send } from './support/sidecar.js';

const fx = useFixture('all');

describe('admin server', () => {
  it('exposes every contract metric by name', async () => {
    await send(fx.sidecar.port, '/ok');
    const text = await metricsText(fx.sidecar);
    for (const name of [
      'cb_requests_total{outcome="forwarded",code="200",class="default"} 1',
      'cb_request_duration_seconds_bucket{le="0.005",outcome="forwarded"}',
      'cb_upstream_request_duration_seconds_count 1',
      'cb_inflight_requests{class="critical"} 0',
      'cb_inflight_requests{class="sheddable"} 0',
      'cb_queue_depth{class="default"} 0',
      'cb_priority_unknown_total 0',
      'cb_concurrency_limit 64',
      'cb_breaker_state{state="closed"} 1',
      'cb_breaker_state{state="open"} 0',
      'cb_breaker_state{state="half-open"} 0',
      '# TYPE cb_breaker_transitions_total counter',
      'cb_build_info{version="0.1.0"} 1',
      'process_cpu_user_seconds_total',
      'nodejs_eventloop_lag_seconds',
    ]) {
      expect(text).toContain(name);
    }
  });

  it('answers /healthz while alive', async () => {
    const r = await send(fx.sidecar.adminPort, '/healthz');
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body)).toEqual({ status: 'ok' });
  });

  it('describes breaker, limit, in-flight, queue and counters in /state', async () => {
    const state = JSON.parse((await send(fx.sidecar.adminPort, '/state')).body) as Record<string, unknown>;
    expect(state).toMatchObject({
      breaker: { state: 'closed', retryAfterMs: 0 },
      concurrency: { mode: 'static', limit: 64 },
      inflight: 0,
      queue: { depth: 0, size: 256 },
      admission: { admitted: expect.any(Number), overload: 0 },
    });
  });

  it('answers unknown admin paths with 404 and a JSON error', async () => {
    const r = await send(fx.sidecar.adminPort, '/nope');
    expect(r.status).toBe(404);
    expect(JSON.parse(r.body).error.code).toBe('CB_NOT_FOUND');
  });
});

describe('error registry', () => {
  it('keeps its stable codes and statuses', () => {
    const codes = Object.values(errors)
      .filter((v) => typeof v === 'function' && (v as { prototype: unknown }).prototype instanceof Error)
      .map((cls) => (cls as { name: string }).name)
      .sort();
    expect(codes).toEqual([
      'BadRequestError',
      'CircuitOpenError',
      'ClientClosedError',
      'ConfigError',
      'DeadlineError',
      'OverloadError',
      'QueueTimeoutError',
      'SidecarError',
      'UpstreamProtocolError',
      'UpstreamStatusError',
      'UpstreamTimeoutError',
      'UpstreamUnavailableError',
    ]);
    expect([
      new errors.OverloadError('').code,
      new errors.QueueTimeoutError('').code,
      new errors.DeadlineError('').code,
      new errors.CircuitOpenError('', 0).code,
      new errors.UpstreamTimeoutError('').code,
      new errors.UpstreamUnavailableError('').code,
      new errors.UpstreamProtocolError('').code,
      new errors.ClientClosedError('').code,
      new errors.ConfigError([]).code,
    ]).toEqual([
      'CB_OVERLOAD',
      'CB_QUEUE_TIMEOUT',
      'CB_DEADLINE',
      'CB_CIRCUIT_OPEN',
      'CB_UPSTREAM_TIMEOUT',
      'CB_UPSTREAM_UNAVAILABLE',
      'CB_UPSTREAM_ERROR',
      'CB_CLIENT_CLOSED',
      'CB_CONFIG_INVALID',
    ]);
    expect(STATUS_BY_REASON).toEqual({
      overload: 503,
      'queue-timeout': 503,
      deadline: 503,
      'circuit-open': 503,
      'upstream-unavailable': 503,
      'upstream-timeout': 504,
      'upstream-error': 502,
    });
    expect(errors.REASONS).toEqual(
      Object.keys(STATUS_BY_REASON).sort(
        (a, b) => errors.REASONS.indexOf(a as errors.Reason) - errors.REASONS.indexOf(b as errors.Reason),
      ),
    );
  });
});
