import { circuitBreakers, connectTimeout, lbPolicy, outlierDetection, poolClusterFields } from './cluster.js';
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
import { retryPolicy, routeTo } from './route.js';
import type { MeshPolicy } from './policy.js';
import { PROFILE_FACTS } from './profiles.js';

/** Options of {@link callerBootstrap}. */
export interface CallerOptions extends EnvoyOptions {
  /** The destination Service's name (the cluster is `outbound|<servicePort>|<subset>|<service>`). */
  readonly service: string;
  /** The Service's port, for names only (default 8000, the model's). */
  readonly servicePort?: number;
  /** The replicas' inbound Envoys (or the models themselves): the mesh's endpoints, without kube-proxy. */
  readonly endpoints: readonly Address[];
}

/**
 * The bootstrap of the caller's (client pod's) Envoy: an outbound listener, a route with the mesh's
 * retry policy and no timeout, and the outbound cluster with everything Istio pushes for the
 * DestinationRule (circuit breakers, outlier detection, load balancing, connection pool).
 * @throws PolicyError POLICY_BAD_OPTIONS listing every problem in `opts`
 */
export function callerBootstrap(policy: MeshPolicy, opts: CallerOptions): EnvoyBootstrap {
  const problems = checkEnvoyOptions(opts);
  if (typeof opts.service !== 'string' || !/^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/.test(opts.service))
    problems.push(`service: ${JSON.stringify(opts.service)} is not a DNS name`);
  if (!Array.isArray(opts.endpoints) || opts.endpoints.length === 0)
    problems.push('endpoints: at least one is required');
  else opts.endpoints.forEach((e, i) => checkAddress(e, `endpoints[${i}]`, problems));
  failOnOptions(problems);
  const facts = PROFILE_FACTS[opts.profile];
  const port = opts.servicePort ?? 8000;
  const name = `outbound|${port}|${policy.subset ?? ''}|${opts.service}`;
  const pool = policy.trafficPolicy.connectionPool;
  const od = outlierDetection(policy.trafficPolicy.outlierDetection, facts);
  const cluster: Record<string, unknown> = {
    name,
    type: 'STATIC',
    connect_timeout: connectTimeout(pool),
    lb_policy: lbPolicy(policy, facts),
    circuit_breakers: circuitBreakers(pool, facts),
    ...poolClusterFields(pool, facts),
    ...(od !== undefined
      ? {
          outlier_detection: od.outlier_detection,
          common_lb_config: { healthy_panic_threshold: od.healthy_panic_threshold },
        }
      : {}),
    load_assignment: loadAssignment(name, opts.endpoints),
  };
  const listener = httpListener({
    name: `outbound_${port}`,
    listen: opts.listen,
    statPrefix: `outbound_0.0.0.0_${port}`,
    virtualHost: `${opts.service}:${port}`,
    routes: [routeTo(name, retryPolicy(policy.route?.retries, facts), policy.route?.timeout)],
    accessLog: opts.accessLog,
  });
  return bootstrap({ node: `caller~${opts.service}`, admin: opts.admin, listener, cluster });
}
