import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  callerBootstrap,
  inboundBootstrap,
  parseMeshPolicy,
  POLICY_ERROR_CODES,
  PolicyError,
  readMeshPolicy,
} from '../src/index.js';

const BOOK = fileURLToPath(new URL('../fixtures/book-destinationrule.yaml', import.meta.url));
const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'cb-policy-'));
let n = 0;
function file(text: string): string {
  const f = join(dir, `p-${n++}.yaml`);
  writeFileSync(f, text);
  return f;
}

/** The PolicyError `fn` throws. */
function failure(fn: () => unknown): PolicyError {
  try {
    fn();
  } catch (err) {
    if (err instanceof PolicyError) return err;
    throw err;
  }
  throw new Error('expected a PolicyError');
}

const DR = (trafficPolicy: string, extra = ''): string =>
  `apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: { name: iris-svc }\nspec:\n  host: iris-svc\n  trafficPolicy: ${trafficPolicy}\n${extra}`;

describe('readMeshPolicy', () => {
  it("reads the book's DestinationRule and VirtualService: host, subset, no retries set", () => {
    const p = readMeshPolicy(BOOK);
    expect(p.host).toBe('iris-svc');
    expect(p.subset).toBe('svc');
    expect(p.route).toEqual({});
    expect(p.trafficPolicy.connectionPool?.tcp?.maxConnections).toBe(100);
    expect(p.inbound).toEqual({ connectionPool: p.trafficPolicy.connectionPool, from: 'DestinationRule' });
    expect(p.notModelled.join('\n')).toMatch(/consecutiveErrors: ignored \(deprecated; Istio ignores it since 1\.7/);
  });

  it('reads the committed manifests: the DestinationRule, the no-retries VirtualService and the Sidecar', () => {
    const p = readMeshPolicy([
      join(REPO, 'manifests/components/istio-circuit-breaker/destinationrule.yaml'),
      join(REPO, 'manifests/components/mesh-no-retries/virtualservice.yaml'),
      join(REPO, 'manifests/components/istio-circuit-breaker/sidecar.yaml'),
    ]);
    expect(p.route?.retries).toEqual({ attempts: 0 });
    expect(p.inbound.from).toBe('Sidecar.inboundConnectionPool');
    expect(p.notModelled.some((l) => /workloadSelector/.test(l))).toBe(true);
  });

  it('reads a bare trafficPolicy document (cb-sidecar config) and keeps its sidecar section', () => {
    const p = parseMeshPolicy(
      'trafficPolicy: { connectionPool: { tcp: { maxConnections: 3 } } }\nsidecar: { drain: { delay: 0s } }\n',
    );
    expect(p.host).toBeUndefined();
    expect(p.sidecarExtensions).toEqual({ drain: { delay: '0s' } });
  });

  it("checks the sidecar section with the sidecar's own settings table, every problem at once", () => {
    const err = failure(() =>
      parseMeshPolicy('trafficPolicy: {}\nsidecar: { foo: 1, concurrency: { mode: adaptiv } }\n', 'sc.yaml'),
    );
    expect(err.code).toBe('POLICY_INVALID');
    const text = err.problems.join('\n');
    expect(text).toMatch(/sc\.yaml: sidecar\.foo: unknown key/);
    expect(text).toMatch(/sidecar\.concurrency\.mode: must be one of static, adaptive, got "adaptiv"/);
  });

  it('is frozen', () => {
    const p = readMeshPolicy(BOOK);
    expect(Object.isFrozen(p)).toBe(true);
    expect(Object.isFrozen(p.trafficPolicy.connectionPool?.tcp)).toBe(true);
  });

  it("merges the routed subset's trafficPolicy over the top level block by block, as Istio does", () => {
    const p = parseMeshPolicy(
      `${DR(
        '{ connectionPool: { tcp: { maxConnections: 100 }, http: { http1MaxPendingRequests: 7 } }, outlierDetection: { consecutive5xxErrors: 3 } }',
        '  subsets: [{ name: v1, trafficPolicy: { connectionPool: { tcp: { maxConnections: 5 } } } }]',
      )}\n---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nspec: { hosts: [iris-svc], http: [{ route: [{ destination: { host: iris-svc, subset: v1 } }] }] }\n`,
    );
    // connectionPool replaced whole (pending back to unset), outlierDetection kept from the top level
    expect(p.trafficPolicy.connectionPool).toEqual({ tcp: { maxConnections: 5 } });
    expect(p.trafficPolicy.outlierDetection).toEqual({ consecutive5xxErrors: 3 });
    // the inbound cluster reads the rule's top level, not the subset
    expect(p.inbound.connectionPool?.tcp?.maxConnections).toBe(100);
  });

  it('reads documents spread over several files', () => {
    const p = readMeshPolicy([
      file(DR('{}')),
      file(
        'apiVersion: networking.istio.io/v1\nkind: VirtualService\nspec: { hosts: [iris-svc], http: [{ route: [{ destination: { host: iris-svc } }], retries: { attempts: 5 } }] }\n',
      ),
    ]);
    expect(p.route?.retries).toEqual({ attempts: 5 });
    expect(p.source).toContain(', ');
  });

  it('lists every problem of a file at once, with a stable code and hints for typos', () => {
    const err = failure(() =>
      parseMeshPolicy(
        DR(
          '{ connectionPool: { tcp: { maxConections: 4, connectTimeout: fast }, http: { http1MaxPendingRequests: -1 } }, outlierDetection: { maxEjectionPercent: 101 }, loadBalancer: { simple: PASSTHROUGH } }',
        ),
      ),
    );
    expect(err.code).toBe('POLICY_INVALID');
    const text = err.problems.join('\n');
    expect(text).toMatch(/connectionPool\.tcp\.maxConections: unknown key; did you mean "maxConnections"\?/);
    expect(text).toMatch(/connectTimeout: "fast" is not a duration/);
    expect(text).toMatch(/http1MaxPendingRequests: -1 is out of range/);
    expect(text).toMatch(/maxEjectionPercent: 101 is out of range/);
    expect(text).toMatch(/simple: must be one of UNSPECIFIED, LEAST_CONN, RANDOM, ROUND_ROBIN, LEAST_REQUEST/);
    expect(err.problems).toHaveLength(5);
  });

  it.each([
    ['YAML errors', 'trafficPolicy: [\n', /YAML:/],
    ['a document that is not a mapping', '- a\n- b\n', /must be a mapping/],
    ['an unknown kind', 'kind: Gateway\nspec: {}\n', /kind "Gateway" is not a DestinationRule/],
    [
      'no DestinationRule',
      'apiVersion: networking.istio.io/v1\nkind: Sidecar\nspec: {}\n',
      /no DestinationRule and no trafficPolicy/,
    ],
    ['two rules', `${DR('{}')}---\n${DR('{}')}`, /2 DestinationRule\/trafficPolicy documents/],
    [
      'a rule without host',
      'apiVersion: networking.istio.io/v1\nkind: DestinationRule\nspec: {}\n',
      /spec\.host: is required/,
    ],
    [
      'a duration below 1ms',
      DR('{ outlierDetection: { interval: 0s } }'),
      /outlierDetection\.interval: 0s is below 1ms/,
    ],
  ])('rejects %s', (_what, text, message) => {
    const err = failure(() => parseMeshPolicy(text));
    expect(err.code).toBe('POLICY_INVALID');
    expect(err.problems.join('\n')).toMatch(message);
  });

  it.each([
    [
      'a route to another host',
      '[{ route: [{ destination: { host: other } }] }]',
      /host other is not the DestinationRule's host/,
    ],
    [
      'two routes',
      '[{ route: [{ destination: { host: iris-svc } }] }, { route: [{ destination: { host: iris-svc } }] }]',
      /2 routes; one route is modelled/,
    ],
    [
      'a split over subsets',
      '[{ route: [{ destination: { host: iris-svc, subset: a } }, { destination: { host: iris-svc, subset: b } }] }]',
      /splits traffic over subsets/,
    ],
    [
      'an undefined subset',
      '[{ route: [{ destination: { host: iris-svc, subset: nope } }] }]',
      /subset "nope" is not defined/,
    ],
    [
      'a bad retryOn',
      '[{ route: [{ destination: { host: iris-svc } }], retries: { attempts: 1, retryOn: "5xx,sometimes" } }]',
      /retryOn: "sometimes" is not a retry condition/,
    ],
  ])('rejects a VirtualService with %s', (_what, http, message) => {
    const vs = `apiVersion: networking.istio.io/v1\nkind: VirtualService\nspec: { hosts: [iris-svc], http: ${http} }\n`;
    const err = failure(() => parseMeshPolicy(`${DR('{}')}---\n${vs}`));
    expect(err.problems.join('\n')).toMatch(message);
  });

  it('says POLICY_UNREADABLE for a file it cannot read', () => {
    const err = failure(() => readMeshPolicy(join(dir, 'missing.yaml')));
    expect(err.code).toBe('POLICY_UNREADABLE');
    expect(err.message).toMatch(/missing\.yaml: ENOENT/);
  });

  it('pins its error codes', () => {
    expect(POLICY_ERROR_CODES).toEqual(['POLICY_INVALID', 'POLICY_UNREADABLE', 'POLICY_BAD_OPTIONS', 'POLICY_USAGE']);
  });
});

describe('bootstrap options', () => {
  const policy = parseMeshPolicy('trafficPolicy: {}');
  it('lists every problem of the caller options at once', () => {
    const err = failure(() =>
      callerBootstrap(policy, {
        profile: 'istio-1.5' as never,
        service: 'Not A Name',
        endpoints: [],
        listen: { address: '127.0.0.1', port: 70000 },
        admin: { address: '', port: 1 },
      }),
    );
    expect(err.code).toBe('POLICY_BAD_OPTIONS');
    expect(err.problems).toEqual([
      'profile: must be one of book, current',
      'listen: port 70000 is not a port (0-65535)',
      'admin: an address is required',
      'service: "Not A Name" is not a DNS name',
      'endpoints: at least one is required',
    ]);
  });

  it('checks the inbound options', () => {
    const err = failure(() =>
      inboundBootstrap(policy, {
        profile: 'current',
        listen: { address: '127.0.0.1', port: 0 },
        admin: { address: '127.0.0.1', port: 0 },
        app: { address: '127.0.0.1', port: -1 },
      }),
    );
    expect(err.problems).toEqual(['app: port -1 is not a port (0-65535)']);
  });
});
