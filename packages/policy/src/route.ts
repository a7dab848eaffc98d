import { seconds } from './envoy.js';
import type { HttpRetry } from './policy.js';
import type { ProfileFacts } from './profiles.js';

// The route and its retry policy, as istio/istio pilot/pkg/networking/core/route (route.go, retry/retry.go)
// builds them.

const DEFAULT_RETRY_ON = 'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes';
const PREVIOUS_HOSTS = {
  name: 'envoy.retry_host_predicates.previous_hosts',
  typed_config: {
    '@type': 'type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate',
  },
};
const PREVIOUS_PRIORITIES = {
  name: 'envoy.retry_priorities.previous_priorities',
  typed_config: {
    '@type': 'type.googleapis.com/envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig',
    update_frequency: 2,
  },
};

/**
 * The outbound route's `retry_policy` (route/retry/retry.go ConvertPolicy): the mesh default without a
 * VirtualService `retries`; none when `attempts` is 0; else the default with the VirtualService's fields over it.
 */
export function retryPolicy(retries: HttpRetry | undefined, facts: ProfileFacts): Record<string, unknown> | undefined {
  const codes = facts.defaultRetriableStatusCodes;
  const out: Record<string, unknown> = {
    retry_on: DEFAULT_RETRY_ON,
    num_retries: 2,
    retry_host_predicate: [PREVIOUS_HOSTS],
    host_selection_retry_max_attempts: 5,
    ...(codes.length > 0 ? { retriable_status_codes: [...codes] } : {}),
  };
  if (retries === undefined) return out;
  if ((retries.attempts ?? 0) <= 0) return undefined;
  out['num_retries'] = retries.attempts;
  if (retries.retryOn !== undefined && retries.retryOn !== '') {
    // Any integer in retryOn is a status code (parseRetryOn); naming one implies retriable-status-codes.
    const parts = retries.retryOn
      .split(',')
      .map((p) => p.trim())
      .filter((p) => p !== '');
    const statuses = parts.filter((p) => /^\d+$/.test(p)).map(Number);
    const conditions = parts.filter((p) => !/^\d+$/.test(p));
    if (statuses.length > 0 && !conditions.includes('retriable-status-codes'))
      conditions.push('retriable-status-codes');
    out['retry_on'] = conditions.join(',');
    if (statuses.length > 0) out['retriable_status_codes'] = statuses;
    else delete out['retriable_status_codes'];
  }
  if (retries.perTryTimeout !== undefined) out['per_try_timeout'] = seconds(retries.perTryTimeout);
  if (retries.retryRemoteLocalities === true) out['retry_priority'] = PREVIOUS_PRIORITIES;
  if (facts.newRetryFields && retries.retryIgnorePreviousHosts !== undefined) {
    if (retries.retryIgnorePreviousHosts) out['retry_host_predicate'] = [PREVIOUS_HOSTS];
    else delete out['retry_host_predicate'];
  }
  if (facts.newRetryFields && retries.backoff !== undefined)
    out['retry_back_off'] = { base_interval: seconds(retries.backoff) };
  return out;
}

/** A route to `cluster` for every path, with no timeout unless `timeout` (setTimeout: 0 = none). */
export function routeTo(
  cluster: string,
  retry: Record<string, unknown> | undefined,
  timeout?: string,
): Record<string, unknown> {
  return {
    name: 'default',
    match: { prefix: '/' },
    route: {
      cluster,
      timeout: timeout !== undefined ? seconds(timeout) : '0s',
      // grpc-timeout headers are not honoured either (Istio's MaxGrpcTimeout 0 / GrpcTimeoutHeaderMax 0).
      max_stream_duration: { grpc_timeout_header_max: '0s' },
      ...(retry !== undefined ? { retry_policy: retry } : {}),
    },
  };
}
