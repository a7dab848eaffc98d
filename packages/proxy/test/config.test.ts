import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { closest } from '@infer-cb/common';
import { DEFAULTS, ENV, loadConfig, parseSettings, PROCESS_OPTIONS, SETTINGS, USAGE } from '../src/config.js';
import { ConfigError } from '../src/errors.js';

/** The problems a config text is rejected with. */
function problems(yaml: string): string[] {
  try {
    parseSettings(yaml, 'cfg');
  } catch (err) {
    if (err instanceof ConfigError) return [...err.problems];
    throw err;
  }
  throw new Error('expected the config to be rejected');
}

describe('config file', () => {
  it('uses the documented defaults without a file', () => {
    expect(parseSettings('')).toEqual(DEFAULTS.settings);
    expect(DEFAULTS.settings.concurrency.limit).toBe(64);
    expect(DEFAULTS.settings.queue).toEqual({ size: 256, timeoutMs: 1000, codelTargetMs: 5, codelIntervalMs: 100 });
    expect(DEFAULTS.settings.breaker.resetTimeoutMs).toBe(2000);
    expect(DEFAULTS.settings.breaker.maxResetTimeoutMs).toBe(30_000);
  });

  it('maps an Istio trafficPolicy with its server-side meaning', () => {
    const s = parseSettings(`
trafficPolicy:
  connectionPool:
    tcp: { maxConnections: 100, connectTimeout: 250ms }
    http: { http1MaxPendingRequests: 50, http2MaxRequests: 80, maxRequestsPerConnection: 100, idleTimeout: 60s, maxConcurrentStreams: 32 }
  outlierDetection: { consecutive5xxErrors: 7, consecutiveGatewayErrors: 3, interval: 10s, baseEjectionTime: 3s, maxEjectionPercent: 100 }
`);
    expect(s.concurrency.limit).toBe(80); // min(maxConnections, http2MaxRequests)
    expect(s.queue.size).toBe(50);
    expect(s.upstream).toEqual({
      timeoutMs: 10_000,
      streamIdleTimeoutMs: 30_000,
      protocol: 'auto',
      maxConcurrentStreams: 32,
      connectTimeoutMs: 250,
      maxRequestsPerConnection: 100,
      idleTimeoutMs: 60_000,
    });
    // baseEjectionTime (3s) ejects a host from one caller's pool; the sidecar's breaker keeps its own interval.
    expect(s.breaker).toMatchObject({ consecutive5xxErrors: 7, consecutiveGatewayErrors: 3, resetTimeoutMs: 2000 });
  });

  it('accepts an Istio DestinationRule manifest and uses its spec.trafficPolicy', () => {
    const s = parseSettings(`
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: iris, namespace: circuit-breaker }
spec:
  host: iris-svc
  trafficPolicy:
    loadBalancer: { simple: ROUND_ROBIN }
    connectionPool:
      tcp: { maxConnections: 100 }
      http: { http1MaxPendingRequests: 100, maxRequestsPerConnection: 100 }
    outlierDetection: { consecutive5xxErrors: 5, interval: 1s, baseEjectionTime: 3m, maxEjectionPercent: 100 }
  subsets: [{ name: v1, labels: { version: v1 } }]
`);
    expect(s.concurrency.limit).toBe(100);
    expect(s.queue.size).toBe(100);
    // The book's 3 min (10 min in its fixture) would close the pod to every caller for that long.
    expect(s.breaker.resetTimeoutMs).toBe(2000);
    expect(s.breaker.maxResetTimeoutMs).toBe(30_000);
  });

  it('reads the sidecar extensions', () => {
    const s = parseSettings(`
sidecar:
  concurrency: { mode: adaptive, min: 2, max: 128 }
  queue: { timeout: 500ms, codelTarget: 10ms, codelInterval: 200ms }
  deadline: { header: X-Deadline-Ms }
  breaker: { errorThresholdPercentage: 25, volumeThreshold: 5, rollingWindow: 5s, resetTimeout: 1s, maxResetTimeout: 1m }
  upstream: { timeout: 1.5s }
  readiness: { failWhenOpen: true }
  drain: { delay: 0s, grace: 10s }
`);
    expect(s.concurrency).toEqual({ mode: 'adaptive', limit: 64, min: 2, max: 128 });
    expect(s.queue).toEqual({ size: 256, timeoutMs: 500, codelTargetMs: 10, codelIntervalMs: 200 });
    expect(s.deadline.header).toBe('x-deadline-ms');
    expect(s.breaker).toMatchObject({
      errorThresholdPercentage: 25,
      volumeThreshold: 5,
      rollingWindowMs: 5000,
      resetTimeoutMs: 1000,
      maxResetTimeoutMs: 60_000,
    });
    expect(s.upstream.timeoutMs).toBe(1500);
    expect(s.readiness.failWhenOpen).toBe(true);
    expect(s.drain).toEqual({ delayMs: 0, graceMs: 10_000 });
  });

  it('rejects an unknown key with a did-you-mean hint', () => {
    expect(problems('sidecar: { queue: { timout: 1s } }')).toEqual([
      'cfg: sidecar.queue.timout: unknown key; did you mean "timeout"?',
    ]);
    expect(problems('trafficPolicy: { connectionPool: { tcp: { maxConnection: 3 } } }')).toEqual([
      'cfg: trafficPolicy.connectionPool.tcp.maxConnection: unknown key; did you mean "maxConnections"?',
    ]);
    expect(problems('sidecars: {}')[0]).toBe('cfg: sidecars: unknown key; did you mean "sidecar"?');
  });

  it('lists the known keys when an unknown key is not close to any', () => {
    expect(problems('sidecar: { zzzzzzzz: 1 }')[0]).toMatch(
      /sidecar\.zzzzzzzz: unknown key \(known: concurrency, queue, deadline/,
    );
  });

  it('rejects a wrong type', () => {
    expect(problems('trafficPolicy: { connectionPool: { tcp: { maxConnections: "many" } } }')).toEqual([
      'cfg: trafficPolicy.connectionPool.tcp.maxConnections: must be integer, got "many"',
    ]);
    expect(problems('sidecar: { readiness: { failWhenOpen: "yes" } }')[0]).toMatch(/failWhenOpen: must be boolean/);
  });

  it('rejects a bad duration', () => {
    expect(problems('sidecar: { queue: { timeout: 5 } }')[0]).toMatch(/sidecar\.queue\.timeout: must be string/);
    expect(problems('sidecar: { queue: { timeout: 5 seconds } }')).toEqual([
      'cfg: sidecar.queue.timeout: "5 seconds" is not a duration (use e.g. "100ms", "1s", "1m")',
    ]);
  });

  it('rejects values out of range', () => {
    expect(problems('trafficPolicy: { connectionPool: { tcp: { maxConnections: 0 } } }')[0]).toMatch(
      /maxConnections: 0 is out of range \(must be >= 1\)/,
    );
    expect(problems('trafficPolicy: { outlierDetection: { maxEjectionPercent: 150 } }')[0]).toMatch(
      /maxEjectionPercent: 150 is out of range/,
    );
    expect(problems('sidecar: { queue: { timeout: 0s } }')[0]).toMatch(/sidecar\.queue\.timeout: 0s is out of range/);
    expect(problems('sidecar: { concurrency: { mode: fast } }')[0]).toMatch(
      /mode: must be one of static, adaptive, got "fast"/,
    );
    expect(problems('sidecar: { concurrency: { min: 10, max: 5 } }')[0]).toMatch(/min \(10\) must be <= max \(5\)/);
    expect(problems('sidecar: { drain: { delay: 30s, grace: 10s } }')[0]).toMatch(/drain\.delay must be shorter/);
  });

  it('lists every problem at once', () => {
    const list = problems(`
trafficPolicy:
  connectionPool: { tcp: { maxConections: 3, connectTimeout: soon } }
sidecar:
  breaker: { errorThresholdPercentage: 500, resetTimout: 1s }
  queue: { timeout: "1 s" }
`);
    expect(list).toHaveLength(5);
    expect(list.join('\n')).toMatch(/maxConections: unknown key; did you mean "maxConnections"/);
    expect(list.join('\n')).toMatch(/connectTimeout: "soon" is not a duration/);
    expect(list.join('\n')).toMatch(/errorThresholdPercentage: 500 is out of range/);
    expect(list.join('\n')).toMatch(/resetTimout: unknown key; did you mean "resetTimeout"/);
    expect(list.join('\n')).toMatch(/queue\.timeout: "1 s" is not a duration/);
  });

  it('lists schema problems, range problems and broken relations together', () => {
    const list = problems(`
sidecar:
  queue: { timout: 1s, codelTarget: 0s }
  concurrency: { min: 10, max: 5 }
  breaker: { volumeThreshold: -1 }
`);
    expect(list).toEqual([
      'cfg: sidecar.queue.timout: unknown key; did you mean "timeout"?',
      expect.stringMatching(/^cfg: sidecar\.breaker\.volumeThreshold: -1 is out of range/),
      'cfg: sidecar.queue.codelTarget: 0s is out of range [1ms, 3600s]',
      'cfg: sidecar.concurrency.min (10) must be <= max (5)',
    ]);
  });

  it('takes its defaults, types and file keys from the one settings table', () => {
    for (const [section, rows] of Object.entries(SETTINGS)) {
      for (const [name, row] of Object.entries(rows)) {
        const value = (DEFAULTS.settings as unknown as Record<string, Record<string, unknown>>)[section]?.[name];
        expect({ setting: `${section}.${name}`, value }).toEqual({
          setting: `${section}.${name}`,
          value: expect.anything(),
        });
        if (row.kind === 'duration') expect(typeof value).toBe('number');
      }
    }
    expect(Object.keys(DEFAULTS.settings)).toEqual(Object.keys(SETTINGS));
  });

  it('rejects YAML syntax errors and non-mapping documents with a clear line', () => {
    expect(problems('sidecar: { queue: [')[0]).toMatch(/^cfg: YAML: /);
    expect(problems('- a\n- b')).toEqual(['cfg: must be a mapping']);
  });

  it('rejects an alias that refers to its own anchor with one line, not a crash', () => {
    expect(problems('x: &a [*a]\n')).toEqual(['cfg: YAML: an alias refers to its own anchor']);
    expect(problems('sidecar: &s { queue: *s }\n')).toEqual(['cfg: YAML: an alias refers to its own anchor']);
  });

  it('takes the DestinationRule of a policy file with several documents, as cb-policy does', () => {
    const s = parseSettings(`
apiVersion: networking.istio.io/v1
kind: DestinationRule
spec:
  host: iris
  trafficPolicy: { connectionPool: { tcp: { maxConnections: 12 }, http: { http1MaxPendingRequests: 3 } } }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
spec: { hosts: [iris], http: [{ route: [{ destination: { host: iris } }], retries: { attempts: 0 } }] }
`);
    expect(s.concurrency.limit).toBe(12);
    expect(s.queue.size).toBe(3);
    expect(problems('a: 1\n---\nb: 2\n')[0]).toMatch(
      /^cfg: expected one trafficPolicy document, or one DestinationRule/,
    );
  });
});

describe('flags and environment', () => {
  it('uses defaults, then environment, then flags', () => {
    expect(loadConfig([], {})).toMatchObject({
      listen: { host: '0.0.0.0', port: 8080 },
      upstream: 'http://127.0.0.1:8000',
      adminPort: 9901,
    });
    const env = { CB_LISTEN: '127.0.0.1:9000', CB_UPSTREAM: 'http://localhost:7000', CB_ADMIN_PORT: '9902' };
    expect(loadConfig([], env)).toMatchObject({
      listen: { host: '127.0.0.1', port: 9000 },
      upstream: 'http://localhost:7000',
      adminPort: 9902,
    });
    expect(loadConfig(['--listen', '9100', '--admin-port=0'], env)).toMatchObject({
      listen: { host: '0.0.0.0', port: 9100 },
      adminPort: 0,
    });
  });

  it('reads the config file named by --config or CB_CONFIG', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cb-config-'));
    const file = join(dir, 'cb.yaml');
    writeFileSync(file, 'trafficPolicy: { connectionPool: { tcp: { maxConnections: 9 } } }\n');
    expect(loadConfig(['--config', file], {}).settings.concurrency.limit).toBe(9);
    expect(loadConfig([], { CB_CONFIG: file }).settings.concurrency.limit).toBe(9);
  });

  it('lists every problem in flags, environment and file together', () => {
    try {
      loadConfig(['--listen', 'nope', '--upstream', 'https://x/y', '--config', '/does/not/exist.yaml'], {
        CB_ADMIN_PORT: '70000',
      });
      throw new Error('expected a ConfigError');
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      const list = (err as ConfigError).problems.join('\n');
      expect(list).toMatch(/--listen\/CB_LISTEN: "nope" is not a port/);
      expect(list).toMatch(/only http:\/\/ upstreams are supported/);
      expect(list).toMatch(/must be an origin without path/);
      expect(list).toMatch(/--admin-port\/CB_ADMIN_PORT: "70000" is not a port/);
      expect(list).toMatch(/config file \/does\/not\/exist\.yaml: ENOENT/);
    }
  });

  it('validates CB_LOG_LEVEL with the other options', () => {
    expect(loadConfig([], { CB_LOG_LEVEL: 'debug' }).logLevel).toBe('debug');
    expect(loadConfig([], {}).logLevel).toBe('info');
    expect(() => loadConfig(['--admin-port', 'x'], { CB_LOG_LEVEL: 'loud' })).toThrow(
      /--admin-port\/CB_ADMIN_PORT: "x" is not a port[\s\S]*CB_LOG_LEVEL: "loud" is not a log level \(fatal, error, warn, info, debug, trace, silent\)/,
    );
    expect(() => loadConfig([], { CB_LOG_LEVEL: 'wran' })).toThrow(/did you mean "warn"\?/);
  });

  it('names in its usage text every flag and environment variable it reads', () => {
    for (const option of Object.values(PROCESS_OPTIONS)) {
      if ('flag' in option) expect(USAGE).toContain(`--${option.flag}`);
      if ('env' in option) expect(USAGE).toContain(option.env);
    }
    expect(Object.values(ENV)).toEqual(['CB_LISTEN', 'CB_UPSTREAM', 'CB_ADMIN_PORT', 'CB_CONFIG', 'CB_LOG_LEVEL']);
  });

  it('rejects an unknown flag', () => {
    expect(() => loadConfig(['--lisen', '1'], {})).toThrow(/Unknown option '--lisen'.*; did you mean --listen\?/);
  });
});

describe('closest', () => {
  it('suggests only near misses', () => {
    expect(closest('timout', ['timeout', 'codelTarget'])).toBe('timeout');
    expect(closest('banana', ['timeout', 'codelTarget'])).toBeUndefined();
  });
});
