import { parseSettings } from '../src/config.js';
import { ConfigError } from '../src/errors.js';
import { useFixture } from './support/fixture.js';
import { metricsText, send, type Answer } from './support/sidecar.js';
import { eventually, sleep } from '@infer-cb/testkit';

const fx = useFixture('each');

/** limit 1, queue 3, waits never time out: the order of the upstream's calls is the queue's order. */
const LIMIT1_QUEUE3 = `
trafficPolicy: { connectionPool: { tcp: { maxConnections: 1 }, http: { http1MaxPendingRequests: 3 } } }
sidecar: { queue: { timeout: 20s, codelTarget: 20s } }
`;

const as = (priority: string): { headers: Record<string, string> } => ({ headers: { 'x-request-priority': priority } });

describe('priority classes', () => {
  it('serves a queued critical request first, then default, then sheddable, never above the limit', async () => {
    const sidecar = await fx.start(LIMIT1_QUEUE3);
    // The first call ends only once all three are queued, however slowly a loaded machine sends them.
    const allQueued = (): Promise<void> =>
      eventually(() => sidecar.state().queue.depth === 3, 10_000).then(() => undefined);
    fx.upstream.handler = (req, res) =>
      void Promise.all([sleep(50), req.url === '/first' ? allQueued() : undefined]).then(() => res.end('ok'));
    const running = send(sidecar.port, '/first', as('sheddable'));
    await eventually(() => sidecar.state().inflight === 1);
    const queued: Promise<Answer>[] = [];
    for (const [path, priority] of [
      ['/s', 'sheddable'],
      ['/d', 'default'],
      ['/c', 'critical'],
    ] as const) {
      queued.push(send(sidecar.port, path, as(priority)));
      await eventually(() => sidecar.state().queue.depth === queued.length);
    }
    expect((await Promise.all([running, ...queued])).map((a) => a.status)).toEqual([200, 200, 200, 200]);
    expect(fx.upstream.paths).toEqual(['/first', '/c', '/d', '/s']);
    expect(fx.upstream.maxInflight).toBe(1);
    expect(sidecar.state().classes).toMatchObject({
      critical: { admitted: 1, admittedFromQueue: 1 },
      default: { admitted: 1, admittedFromQueue: 1 },
      sheddable: { admitted: 2, admittedFromQueue: 1 },
    });
  });

  it('sheds with 503 overload naming the class, and gives a lower class’s queue place to a higher class', async () => {
    const sidecar = await fx.start(LIMIT1_QUEUE3);
    // The first call ends only once the critical request is queued.
    const criticalQueued = (): Promise<void> =>
      eventually(() => sidecar.state().classes.critical.queued === 1, 10_000).then(() => undefined);
    fx.upstream.handler = (req, res) =>
      void Promise.all([sleep(50), req.url === '/first' ? criticalQueued() : undefined]).then(() => res.end('ok'));
    const running = send(sidecar.port, '/first');
    await eventually(() => sidecar.state().inflight === 1);
    const sheddable = [1, 2, 3].map((i) => send(sidecar.port, `/s${i}`, as('sheddable')));
    await eventually(() => sidecar.state().queue.depth === 3);
    const shed = await send(sidecar.port, '/s4', as('sheddable'));
    expect(shed.status).toBe(503);
    expect(shed.headers['x-cb-reason']).toBe('overload');
    expect(shed.headers['x-cb-class']).toBe('sheddable');
    expect(JSON.parse(shed.body)).toEqual({
      error: { code: 'CB_OVERLOAD', message: expect.stringContaining('class sheddable') },
    });
    const critical = send(sidecar.port, '/c', as('critical'));
    const evicted = await sheddable[2]!; // the newest sheddable request gave its place up at once
    expect(evicted.status).toBe(503);
    expect(evicted.headers['x-cb-class']).toBe('sheddable');
    expect((await critical).status).toBe(200);
    expect((await Promise.all([running, sheddable[0]!, sheddable[1]!])).map((a) => a.status)).toEqual([200, 200, 200]);
    expect(fx.upstream.paths).toEqual(['/first', '/c', '/s1', '/s2']);
    const metrics = await metricsText(sidecar);
    expect(metrics).toContain('cb_requests_total{outcome="overload",code="503",class="sheddable"} 2');
    expect(metrics).toContain('cb_requests_total{outcome="forwarded",code="200",class="critical"} 1');
    expect(metrics).toContain('cb_requests_total{outcome="forwarded",code="200",class="default"} 1');
    expect(sidecar.state().classes.sheddable).toMatchObject({ overload: 2, admitted: 2 });
  });

  it('classifies by the configured path rules, serves unknown header values as default and counts them', async () => {
    const sidecar = await fx.start(`
sidecar:
  priority:
    rules: [{ pathPrefix: /health, class: critical }, { pathPrefix: /batch, class: sheddable }]
`);
    await send(sidecar.port, '/health/live');
    await send(sidecar.port, '/batch/1');
    await send(sidecar.port, '/batch/2', as('default')); // the header wins
    await send(sidecar.port, '/x', as('urgent'));
    expect(sidecar.state().classes).toMatchObject({
      critical: { admitted: 1 },
      default: { admitted: 2 },
      sheddable: { admitted: 1 },
    });
    expect(sidecar.state().unknownPriority).toBe(1);
    expect(await metricsText(sidecar)).toContain('cb_priority_unknown_total 1');
  });

  it('applies reloaded rules and shares in place', async () => {
    const sidecar = await fx.start('sidecar: { priority: { rules: [{ pathPrefix: /a, class: sheddable }] } }');
    await send(sidecar.port, '/a');
    sidecar.reload(
      parseSettings(`
trafficPolicy: { connectionPool: { tcp: { maxConnections: 10 } } }
sidecar: { priority: { header: x-class, shares: { default: 0.2, sheddable: 0.4 }, rules: [{ pathPrefix: /a, class: critical }] } }
`),
    );
    await send(sidecar.port, '/a');
    await send(sidecar.port, '/b', { headers: { 'x-class': 'sheddable' } });
    expect(sidecar.state().classes).toMatchObject({
      critical: { admitted: 1, reserved: 0 },
      default: { reserved: 2 },
      sheddable: { admitted: 2, reserved: 4 },
    });
  });
});

describe('priority config', () => {
  it('lists every problem of the priority section at once', () => {
    let problems: readonly string[] = [];
    try {
      parseSettings(
        `
sidecar:
  priority:
    header: "bad header"
    shares: { default: 0.8, sheddable: 0.3, critical: 0.1 }
    rules:
      - { pathPrefix: health, class: critical }
      - { pathPrefix: /b, class: urgent }
      - { class: default }
`,
        'cfg',
      );
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      problems = err.problems;
    }
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/sidecar\.priority\.header: "bad header"/),
        expect.stringMatching(/sidecar\.priority\.shares\.critical: unknown key/),
        expect.stringMatching(/sidecar\.priority\.rules\.0\.pathPrefix: "health"/),
        expect.stringMatching(/sidecar\.priority\.rules\.1\.class: must be one of critical, default, sheddable/),
        expect.stringMatching(/sidecar\.priority\.rules\.2\.pathPrefix: is required/),
      ]),
    );
    expect(() => parseSettings('sidecar: { priority: { shares: { default: 0.8, sheddable: 0.3 } } }')).toThrow(
      /sidecar\.priority\.shares: default \(0\.8\) \+ sheddable \(0\.3\) must be <= 1/,
    );
    expect(() => parseSettings('sidecar: { priority: { shares: { default: 1.5 } } }')).toThrow(/out of range/);
  });
});
