import { parseSettings } from '../src/config.js';
import { Admission } from '../src/layers/admission.js';
import { classify, nextClass, queuedAhead, reservedSlots, servedBefore } from '../src/layers/priority.js';
import type { PriorityClass } from '../src/outcomes.js';
import { Cancellation, type ProxyRequest, type ProxyResponse } from '../src/pipeline.js';

const DEFAULTS = parseSettings('').priority;

describe('classification', () => {
  const rules = parseSettings(`
sidecar:
  priority:
    rules:
      - { pathPrefix: /v2/health, class: critical }
      - { pathPrefix: /v2/models/batch, class: sheddable }
      - { pathPrefix: /v2, class: default }
`).priority;

  it('takes the class from the header, case-insensitive and trimmed', () => {
    expect(classify('critical', '/', DEFAULTS)).toEqual({
      priority: 'critical',
      unknown: false,
    });
    expect(classify(' Sheddable ', '/', DEFAULTS).priority).toBe('sheddable');
    expect(classify(undefined, '/', DEFAULTS)).toEqual({ priority: 'default', unknown: false });
  });

  it('serves an unknown header value as default and flags it', () => {
    expect(classify('urgent', '/', DEFAULTS)).toEqual({ priority: 'default', unknown: true });
    expect(classify('', '/', DEFAULTS).unknown).toBe(true);
  });

  it('takes the first path rule that matches when there is no header', () => {
    expect(classify(undefined, '/v2/health/ready', rules).priority).toBe('critical');
    expect(classify(undefined, '/v2/models/batch/infer', rules).priority).toBe('sheddable');
    expect(classify(undefined, '/v2/models/iris/infer', rules).priority).toBe('default');
    expect(classify(undefined, '/other', rules).priority).toBe('default');
  });

  it('lets the header win over the path rules', () => {
    expect(classify('critical', '/v2/models/batch/x', rules).priority).toBe('critical');
  });

  it('ignores the header when it is not trusted: the path rules alone classify', () => {
    const untrusted = parseSettings(`
sidecar:
  priority:
    trustHeader: false
    rules: [{ pathPrefix: /v2/health, class: critical }]
`).priority;
    expect(classify('critical', '/v2/models/iris/infer', untrusted)).toEqual({
      priority: 'default',
      unknown: false,
    });
    expect(classify('urgent', '/v2/health/ready', untrusted).priority).toBe('critical');
  });
});

describe('partition arithmetic', () => {
  it('reserves the documented default shares: default 0.5, sheddable 0.3 of the limit, critical none', () => {
    expect(DEFAULTS).toMatchObject({ defaultShare: 0.5, sheddableShare: 0.3 });
    expect(reservedSlots(10, 0.5, 0.3)).toEqual([0, 5, 3]);
    expect(reservedSlots(64, 0.5, 0.3)).toEqual([0, 32, 19]); // 32 + 19.2 + 12.8: the 0.8 goes to nobody
    expect(reservedSlots(4, 0.5, 0.3)).toEqual([0, 2, 1]); // 2 + 1.2 + 0.8
    expect(reservedSlots(2, 0.5, 0.3)).toEqual([0, 1, 1]); // 1 + 0.6 + 0.4
    expect(reservedSlots(1, 0.5, 0.3)).toEqual([0, 1, 0]); // 0.5 is the largest remainder
  });

  it('never reserves more than the limit, and reserves all of it when the shares sum to 1', () => {
    for (let limit = 1; limit <= 300; limit++) {
      for (const [d, s] of [
        [0.5, 0.3],
        [0.7, 0.3],
        [0, 0],
        [1, 0],
        [0.33, 0.33],
        [0.1, 0.05],
      ] as const) {
        const [, rd, rs] = reservedSlots(limit, d, s);
        expect(rd + rs).toBeLessThanOrEqual(limit);
        expect(Math.abs(rd - limit * d)).toBeLessThan(1);
        expect(Math.abs(rs - limit * s)).toBeLessThan(1);
        if (d + s === 1) expect(rd + rs).toBe(limit);
      }
    }
  });

  it('refuses shares that do not fit the limit', () => {
    expect(() => reservedSlots(10, 0.8, 0.3)).toThrow(RangeError);
    expect(() => reservedSlots(0, 0.5, 0.3)).toThrow(RangeError);
  });
});

describe('which class a freed slot goes to', () => {
  const reserved = [0, 5, 3];

  it('gives it to critical whenever critical waits, even above every share', () => {
    expect(nextClass([1, 4, 4], [9, 0, 0], reserved)).toBe(0);
  });

  it('gives it to a class below its share before a class above its share', () => {
    expect(nextClass([0, 4, 4], [2, 6, 2], reserved)).toBe(2); // default above 5, sheddable below 3
    expect(nextClass([0, 4, 4], [2, 4, 4], reserved)).toBe(1); // default below 5
  });

  it('lends an idle share to whoever waits, the higher class first', () => {
    expect(nextClass([0, 4, 4], [0, 6, 3], reserved)).toBe(1); // both at or above their share
    expect(nextClass([0, 0, 4], [0, 7, 3], reserved)).toBe(2); // default's share idle: sheddable borrows
    expect(nextClass([0, 0, 0], [0, 7, 3], reserved)).toBe(-1);
  });

  it('says which class is served before which, as nextClass orders them', () => {
    expect(servedBefore(0, 2, [9, 0, 0], reserved)).toBe(true); // critical before all
    expect(servedBefore(2, 0, [0, 0, 0], reserved)).toBe(false);
    expect(servedBefore(1, 2, [0, 4, 2], reserved)).toBe(true); // both below: the higher class
    expect(servedBefore(2, 1, [0, 6, 2], reserved)).toBe(true); // sheddable below, default above
    expect(servedBefore(1, 2, [0, 6, 3], reserved)).toBe(true); // both at or above: the higher class
  });

  it('counts ahead of a new request only those served before it', () => {
    expect(queuedAhead(0, [2, 5, 5], [4, 3, 3], reserved)).toBe(2);
    expect(queuedAhead(1, [2, 5, 5], [4, 3, 3], reserved)).toBe(7); // default still below its share
    expect(queuedAhead(1, [2, 5, 5], [2, 5, 2], reserved)).toBe(8); // then sheddable's 1 free reserved slot
    expect(queuedAhead(2, [2, 5, 0], [4, 5, 1], reserved)).toBe(2); // sheddable below its share: default waits
    expect(queuedAhead(2, [2, 5, 5], [4, 5, 1], reserved)).toBe(12);
  });
});

/** A request of `priority` as the intake makes it (no client socket: admission never touches it). */
function request(priority: PriorityClass): ProxyRequest {
  return {
    cancellation: new Cancellation(),
    path: '/',
    arrivedAt: performance.now(),
    deadline: Infinity,
    priority,
  } as unknown as ProxyRequest;
}

const harnesses: { calls: { finish: () => void }[]; tick: () => Promise<void> }[] = [];

// Every call still running ends, so the queue empties and no queue timer outlives its test.
afterEach(async () => {
  for (const h of harnesses.splice(0)) {
    while (h.calls.length > 0) {
      for (const c of h.calls.splice(0)) c.finish();
      await h.tick();
    }
  }
});

/** Admission with a stand-in upstream whose calls end when the test says. */
function harness(yaml: string) {
  const admission = new Admission(parseSettings(yaml));
  const calls: { priority: PriorityClass; finish: () => void }[] = [];
  const handle = admission.layer(
    (req) =>
      new Promise<ProxyResponse>((resolve) =>
        calls.push({ priority: req.priority, finish: () => resolve({ status: 200 }) }),
      ),
  );
  const settled: { priority: PriorityClass; outcome: string }[] = [];
  const send = (priority: PriorityClass): void =>
    void handle(request(priority)).then(
      () => settled.push({ priority, outcome: 'ok' }),
      (err: Error & { reason?: string }) => settled.push({ priority, outcome: err.reason ?? err.message }),
    );
  /** Ends the oldest call still running of `priority`, then lets the queue move. */
  const finish = async (priority: PriorityClass): Promise<void> => {
    const i = calls.findIndex((c) => c.priority === priority);
    calls.splice(i, 1)[0]?.finish();
    for (let k = 0; k < 5; k++) await Promise.resolve();
  };
  const tick = async (): Promise<void> => {
    for (let k = 0; k < 5; k++) await Promise.resolve();
  };
  harnesses.push({ calls, tick });
  return { admission, calls, send, finish, settled, tick };
}

const LIMIT10 = `
trafficPolicy: { connectionPool: { tcp: { maxConnections: 10 }, http: { http1MaxPendingRequests: 6 } } }
sidecar: { queue: { timeout: 60s, codelTarget: 60s } }
`;

describe('admission by class', () => {
  it('lets one class borrow the whole limit while the others are idle, never more', async () => {
    const h = harness(LIMIT10);
    for (let i = 0; i < 12; i++) h.send('sheddable');
    await h.tick();
    expect(h.admission.inflightBy).toEqual([0, 0, 10]);
    expect(h.admission.queuedBy).toEqual([0, 0, 2]);
  });

  it('gives the reserved share back as the borrowed slots free: default below its share before sheddable', async () => {
    const h = harness(LIMIT10);
    for (let i = 0; i < 10; i++) h.send('sheddable');
    await h.tick();
    for (let i = 0; i < 3; i++) h.send('sheddable');
    for (let i = 0; i < 3; i++) h.send('default');
    await h.tick();
    for (let i = 0; i < 3; i++) await h.finish('sheddable');
    expect(h.admission.inflightBy).toEqual([0, 3, 7]);
    expect(h.admission.queuedBy).toEqual([0, 0, 3]);
  });

  it('serves sheddable below its share before default above its share', async () => {
    const h = harness(LIMIT10);
    for (let i = 0; i < 10; i++) h.send('default');
    await h.tick();
    for (let i = 0; i < 4; i++) h.send('default');
    for (let i = 0; i < 2; i++) h.send('sheddable');
    await h.tick();
    await h.finish('default');
    await h.finish('default');
    await h.finish('default');
    // default holds 7 (above its 5): the first two slots go to sheddable (below its 3), the third to default
    expect(h.admission.inflightBy).toEqual([0, 8, 2]);
    expect(h.admission.queuedBy).toEqual([0, 3, 0]);
  });

  it('serves critical first from the queue whatever the shares', async () => {
    const h = harness(LIMIT10);
    for (let i = 0; i < 5; i++) h.send('default');
    for (let i = 0; i < 5; i++) h.send('sheddable');
    await h.tick();
    h.send('sheddable');
    h.send('default');
    h.send('critical');
    await h.tick();
    await h.finish('default'); // default below its share: still critical first
    expect(h.admission.inflightBy).toEqual([1, 4, 5]);
    expect(h.admission.snapshot().classes.critical).toMatchObject({ admitted: 1, admittedFromQueue: 1 });
  });

  it('gives a higher class the place of the newest lower-class request when the queue is full', async () => {
    const h = harness(LIMIT10);
    for (let i = 0; i < 16; i++) h.send('sheddable'); // 10 in flight, 6 queued: the queue is full
    await h.tick();
    h.send('critical');
    h.send('default');
    await h.tick();
    expect(h.admission.queuedBy).toEqual([1, 1, 4]);
    expect(h.settled).toEqual([
      { priority: 'sheddable', outcome: 'overload' },
      { priority: 'sheddable', outcome: 'overload' },
    ]);
    for (let i = 0; i < 5; i++) h.send('critical'); // the 4 sheddable, then the default, give way
    await h.tick();
    expect(h.admission.queuedBy).toEqual([6, 0, 0]);
    expect(h.settled.at(-1)).toEqual({ priority: 'default', outcome: 'overload' });
    h.send('critical'); // nothing of a lower class left to give way: shed
    h.send('sheddable');
    await h.tick();
    expect(h.settled.slice(-2)).toEqual([
      { priority: 'critical', outcome: 'overload' },
      { priority: 'sheddable', outcome: 'overload' },
    ]);
    expect(h.admission.snapshot().classes.sheddable).toMatchObject({ overload: 7, admitted: 10 });
  });

  it('keeps a free slot from a lower class while a class served before it is being shed', async () => {
    const h = harness(`
trafficPolicy: { connectionPool: { tcp: { maxConnections: 4 }, http: { http1MaxPendingRequests: 1 } } }
sidecar: { queue: { timeout: 60s, codelTarget: 60s, codelInterval: 10s } }
`); // reserved: default 2, sheddable 1
    h.send('sheddable');
    for (let i = 0; i < 4; i++) h.send('default'); // 3 in flight, 1 queued
    h.send('default'); // queue full: shed, so default is being shed for the next 10 s
    await h.tick();
    expect(h.settled).toEqual([{ priority: 'default', outcome: 'overload' }]);
    await h.finish('default');
    await h.finish('default');
    expect(h.admission.inflightBy).toEqual([0, 2, 1]);
    h.send('sheddable'); // a slot is free, but default (at its share, like sheddable) comes first: it waits
    await h.tick();
    expect(h.admission.inflightBy).toEqual([0, 2, 1]);
    expect(h.admission.queuedBy).toEqual([0, 0, 1]);
    h.send('default'); // takes the free slot at once
    await h.tick();
    expect(h.admission.inflightBy).toEqual([0, 3, 1]);
    await h.finish('default'); // the next slot to free goes to the waiting sheddable request
    expect(h.admission.inflightBy).toEqual([0, 2, 2]);
    expect(h.admission.queuedBy).toEqual([0, 0, 0]);
  });

  it('lets critical wait up to criticalQueueTimeout when the queue timeout is shorter', async () => {
    const h = harness(`
trafficPolicy: { connectionPool: { tcp: { maxConnections: 2 }, http: { http1MaxPendingRequests: 4 } } }
sidecar: { queue: { timeout: 20ms, codelTarget: 20ms, codelInterval: 10s }, priority: { criticalQueueTimeout: 5s } }
`);
    h.send('default');
    h.send('default');
    await h.tick();
    h.send('critical');
    h.send('default');
    await h.tick();
    expect(h.admission.queuedBy).toEqual([1, 1, 0]);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(h.settled).toEqual([{ priority: 'default', outcome: 'queue-timeout' }]); // its 20 ms ran out
    expect(h.admission.queuedBy).toEqual([1, 0, 0]); // critical still waits
    await h.finish('default');
    expect(h.admission.inflightBy).toEqual([1, 1, 0]);
    expect(h.admission.snapshot().classes.critical).toMatchObject({ admittedFromQueue: 1, queueTimeout: 0 });
  });

  it('moves the shares with the limit on reload', async () => {
    const h = harness(LIMIT10);
    expect(h.admission.snapshot().classes).toMatchObject({ default: { reserved: 5 }, sheddable: { reserved: 3 } });
    h.admission.reconfigure(
      parseSettings(`
trafficPolicy: { connectionPool: { tcp: { maxConnections: 20 } } }
sidecar: { priority: { shares: { default: 0.6, sheddable: 0.1 } } }
`),
    );
    expect(h.admission.snapshot().classes).toMatchObject({
      critical: { reserved: 0 },
      default: { reserved: 12 },
      sheddable: { reserved: 2 },
    });
  });
});
