import { circuitBreakers, connectTimeout, poolClusterFields } from './cluster.js';
import {
  bootstrap,
  checkAddress,
  failOnOptions,
  httpListener,
  loadAssignment,
  checkEnvoyOptions,
  type EnvoyOptions,
  type Address,
  type EnvoyBootstrap,
} from './envoy.js';
import { routeTo } from './route.js';
import type { MeshPolicy } from './policy.js';
import { PROFILE_FACTS } from './profiles.js';

/** Options of {@link inboundBootstrap}. */
export interface InboundOptions extends EnvoyOptions {
  /** The model (or cb-sidecar in front of it) inside the pod. */
  readonly app: Address;
}

/**
 * The bootstrap of a model pod's own (inbound) Envoy, as Istio builds the inbound cluster
 * (buildInboundCluster): the connection pool of `policy.inbound` (Sidecar.inboundConnectionPool, else the
 * DestinationRule's) as circuit breakers, shared by every caller; no outlier detection, no load-balancing
 * policy, no timeout; the inbound retry policy only in the `current` profile (reset before request).
 * @throws PolicyError POLICY_BAD_OPTIONS listing every problem in `opts`
 */
export function inboundBootstrap(policy: MeshPolicy, opts: InboundOptions): EnvoyBootstrap {
  const problems = checkEnvoyOptions(opts);
  checkAddress(opts.app, 'app', problems);
  failOnOptions(problems);
  const facts = PROFILE_FACTS[opts.profile];
  const name = `inbound|${opts.app.port}||`;
  const pool = policy.inbound.connectionPool;
  const cluster: Record<string, unknown> = {
    name,
    type: 'STATIC',
    connect_timeout: connectTimeout(pool),
    circuit_breakers: circuitBreakers(pool, facts),
    ...poolClusterFields(pool, facts),
    load_assignment: loadAssignment(name, [opts.app]),
  };
  const retry = facts.inboundRetry;
  const listener = httpListener({
    name: `inbound_${opts.app.port}`,
    listen: opts.listen,
    statPrefix: `inbound_0.0.0.0_${opts.app.port}`,
    virtualHost: `inbound|http|${opts.app.port}`,
    routes: [
      routeTo(name, retry !== undefined ? { retry_on: retry.retryOn, num_retries: retry.numRetries } : undefined),
    ],
    accessLog: opts.accessLog,
  });
  return bootstrap({ node: `inbound~${opts.app.port}`, admin: opts.admin, listener, cluster });
}
