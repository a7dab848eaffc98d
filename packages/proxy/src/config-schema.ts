import { DURATION_PATTERN } from '@infer-cb/common';

/**
 * The JSON schema of the config file. `trafficPolicy` has exactly the shape of an Istio DestinationRule
 * `trafficPolicy`; fields Istio has but a server-side sidecar cannot apply (load balancing, TLS, ...) are
 * accepted and ignored so a real DestinationRule validates. `sidecar` holds our extensions.
 */
type Schema = Record<string, unknown>;

const duration: Schema = { type: 'string', pattern: DURATION_PATTERN };
const int = (minimum: number, maximum = 2 ** 31 - 1): Schema => ({ type: 'integer', minimum, maximum });
const obj = (properties: Record<string, Schema>): Schema => ({
  type: 'object',
  additionalProperties: false,
  properties,
});
/** An Istio field we accept for compatibility and ignore (documented in docs/sidecar.md). */
const ignored: Schema = {};

const trafficPolicy = obj({
  connectionPool: obj({
    tcp: obj({
      maxConnections: int(1),
      connectTimeout: duration,
      tcpKeepalive: ignored,
      maxConnectionDuration: ignored,
      idleTimeout: ignored,
    }),
    http: obj({
      http1MaxPendingRequests: int(1),
      http2MaxRequests: int(1),
      maxRequestsPerConnection: int(0),
      maxRetries: ignored,
      idleTimeout: duration,
      h2UpgradePolicy: ignored,
      useClientProtocol: ignored,
      maxConcurrentStreams: ignored,
    }),
  }),
  outlierDetection: obj({
    consecutive5xxErrors: int(0),
    consecutiveGatewayErrors: int(0),
    interval: duration,
    baseEjectionTime: duration,
    maxEjectionPercent: int(0, 100),
    minHealthPercent: ignored,
    splitExternalLocalOriginErrors: ignored,
    consecutiveLocalOriginFailures: ignored,
    consecutiveErrors: ignored,
  }),
  loadBalancer: ignored,
  tls: ignored,
  portLevelSettings: ignored,
  tunnel: ignored,
  proxyProtocol: ignored,
  retryBudget: ignored,
});

const sidecar = obj({
  concurrency: obj({ mode: { enum: ['static', 'adaptive'] }, min: int(1, 100_000), max: int(1, 100_000) }),
  queue: obj({ timeout: duration, codelTarget: duration, codelInterval: duration }),
  deadline: obj({ header: { type: 'string', pattern: "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$" } }),
  breaker: obj({
    errorThresholdPercentage: { type: 'number', exclusiveMinimum: 0, maximum: 100 },
    volumeThreshold: int(0),
    rollingWindow: duration,
    resetTimeout: duration,
    maxResetTimeout: duration,
  }),
  upstream: obj({ timeout: duration }),
  readiness: obj({ failWhenOpen: { type: 'boolean' } }),
  drain: obj({ delay: duration, grace: duration }),
});

/** Schema of a config file in our own shape. */
export const CONFIG_FILE_SCHEMA: Schema = obj({ trafficPolicy, sidecar });

/** Schema of a file that is an Istio DestinationRule manifest; its `spec.trafficPolicy` is used. */
export const DESTINATION_RULE_SCHEMA: Schema = {
  type: 'object',
  required: ['spec'],
  properties: {
    apiVersion: { type: 'string', pattern: '^networking\\.istio\\.io/' },
    kind: { const: 'DestinationRule' },
    metadata: { type: 'object' },
    spec: { type: 'object', properties: { trafficPolicy } },
  },
};
