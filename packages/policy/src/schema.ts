import { DURATION_PATTERN } from '@infer-cb/common';

/**
 * JSON schemas of the Istio documents a mesh policy is made of: the fields of istio.io/api
 * (networking/v1) that the translator reads, each with its type and range, and the other fields of the
 * same messages, accepted so real manifests validate but marked: `x-not-modelled` (the translator has no
 * equivalent, e.g. mTLS) or `x-ignored` (Istio itself ignores it). Unknown keys are errors with a hint.
 */
export type Schema = Record<string, unknown>;

const int = (minimum: number, maximum = 2 ** 31 - 1): Schema => ({ type: 'integer', minimum, maximum });
const duration: Schema = { type: 'string', pattern: DURATION_PATTERN };
const bool: Schema = { type: 'boolean' };
const str: Schema = { type: 'string', minLength: 1 };
const obj = (properties: Record<string, Schema>, required: string[] = []): Schema => ({
  type: 'object',
  additionalProperties: false,
  properties,
  required,
});
const notModelled = (why: string): Schema => ({ 'x-not-modelled': why });
const ignored = (why: string): Schema => ({ 'x-ignored': why });

/** `ConnectionPoolSettings`: the DestinationRule's, and the Sidecar's `inboundConnectionPool`. */
export const connectionPoolSchema: Schema = obj({
  tcp: obj({
    maxConnections: int(0),
    connectTimeout: duration,
    tcpKeepalive: obj({ probes: int(0), time: duration, interval: duration }),
    maxConnectionDuration: duration,
    idleTimeout: duration,
  }),
  http: obj({
    http1MaxPendingRequests: int(0),
    http2MaxRequests: int(0),
    maxRequestsPerConnection: int(0),
    maxRetries: int(0),
    idleTimeout: duration,
    h2UpgradePolicy: notModelled('the model speaks HTTP/1.1; no HTTP/2 upgrade is modelled'),
    useClientProtocol: notModelled('the model speaks HTTP/1.1; the upstream protocol is always HTTP/1.1'),
    maxConcurrentStreams: notModelled('HTTP/2 only'),
  }),
});

const outlierDetectionSchema: Schema = obj({
  consecutive5xxErrors: int(0),
  consecutiveGatewayErrors: int(0),
  consecutiveErrors: ignored('deprecated; Istio ignores it since 1.7, Envoy applies its default consecutive_5xx of 5'),
  interval: duration,
  baseEjectionTime: duration,
  maxEjectionPercent: int(0, 100),
  minHealthPercent: int(0, 100),
  splitExternalLocalOriginErrors: bool,
  consecutiveLocalOriginFailures: int(0),
  outlierDetectionHttpErrorCodes: notModelled('Istio master only (not in a released profile)'),
});

// PASSTHROUGH (an ORIGINAL_DST cluster, no load balancing) is left out: the endpoints are a static list.
const LB_SIMPLE = ['UNSPECIFIED', 'LEAST_CONN', 'RANDOM', 'ROUND_ROBIN', 'LEAST_REQUEST'];

/** `TrafficPolicy`. */
export const trafficPolicySchema: Schema = obj({
  connectionPool: connectionPoolSchema,
  outlierDetection: outlierDetectionSchema,
  loadBalancer: obj({
    simple: { enum: LB_SIMPLE },
    consistentHash: notModelled('consistent hashing'),
    localityLbSetting: notModelled('one locality'),
    warmupDurationSecs: notModelled('slow start'),
    warmup: notModelled('slow start'),
  }),
  tls: notModelled('mTLS: the lab runs plain HTTP between Envoys'),
  portLevelSettings: notModelled('one port: the top-level policy applies'),
  tunnel: notModelled('tunnels'),
  proxyProtocol: notModelled('PROXY protocol'),
  retryBudget: notModelled('retry budgets'),
});

const metadata: Schema = { type: 'object' };
const apiVersion: Schema = { type: 'string', pattern: '^networking\\.istio\\.io/' };

/** A `DestinationRule` manifest. */
export const destinationRuleSchema: Schema = obj(
  {
    apiVersion,
    kind: { const: 'DestinationRule' },
    metadata,
    spec: obj(
      {
        host: str,
        trafficPolicy: trafficPolicySchema,
        subsets: {
          type: 'array',
          items: obj({ name: str, labels: notModelled('one set of endpoints'), trafficPolicy: trafficPolicySchema }, [
            'name',
          ]),
        },
        exportTo: notModelled('one namespace'),
        workloadSelector: notModelled('one workload'),
      },
      ['host'],
    ),
  },
  ['kind', 'spec'],
);

/** `HTTPRetry`. */
export const retrySchema: Schema = obj({
  attempts: int(0),
  perTryTimeout: duration,
  retryOn: { type: 'string' },
  retryRemoteLocalities: bool,
  retryIgnorePreviousHosts: bool,
  backoff: duration,
});

const httpRoute: Schema = obj({
  name: { type: 'string' },
  route: {
    type: 'array',
    minItems: 1,
    items: obj(
      {
        destination: obj({ host: str, subset: { type: 'string' }, port: obj({ number: int(1, 65535) }) }, ['host']),
        weight: int(0),
        headers: notModelled('header manipulation'),
      },
      ['destination'],
    ),
  },
  retries: retrySchema,
  timeout: duration,
  match: notModelled('one route for every request'),
  redirect: notModelled('redirects'),
  delegate: notModelled('delegation'),
  directResponse: notModelled('direct responses'),
  rewrite: notModelled('rewrites'),
  fault: notModelled('fault injection'),
  mirror: notModelled('mirroring'),
  mirrors: notModelled('mirroring'),
  mirrorPercentage: notModelled('mirroring'),
  corsPolicy: notModelled('CORS'),
  headers: notModelled('header manipulation'),
});

/** A `VirtualService` manifest (its one HTTP route: destination subset, retries, timeout). */
export const virtualServiceSchema: Schema = obj(
  {
    apiVersion,
    kind: { const: 'VirtualService' },
    metadata,
    spec: obj(
      {
        hosts: { type: 'array', minItems: 1, items: str },
        http: { type: 'array', minItems: 1, items: httpRoute },
        gateways: notModelled('gateways'),
        tls: notModelled('TLS routes'),
        tcp: notModelled('TCP routes'),
        exportTo: notModelled('one namespace'),
      },
      ['hosts'],
    ),
  },
  ['kind', 'spec'],
);

/** A `Sidecar` manifest (its `inboundConnectionPool`). */
export const sidecarSchema: Schema = obj(
  {
    apiVersion,
    kind: { const: 'Sidecar' },
    metadata,
    spec: obj({
      inboundConnectionPool: connectionPoolSchema,
      workloadSelector: notModelled('one workload'),
      ingress: notModelled('per-port ingress listeners'),
      egress: notModelled('egress scoping'),
      outboundTrafficPolicy: notModelled('egress to unknown hosts'),
    }),
  },
  ['kind', 'spec'],
);

/** A bare `trafficPolicy` document, cb-sidecar's config format (its `sidecar` section is cb-sidecar's to check). */
export const bareTrafficPolicySchema: Schema = obj(
  { trafficPolicy: trafficPolicySchema, sidecar: { type: 'object' } },
  ['trafficPolicy'],
);
