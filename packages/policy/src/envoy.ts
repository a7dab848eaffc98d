import { durationToMs } from '@infer-cb/common';
import { PolicyError } from './errors.js';
import { PROFILES, type Profile } from './profiles.js';

/**
 * The frame both bootstraps share (listener, HTTP connection manager, admin, access log) and how to run
 * Envoy. Output is Envoy's v3 API as plain JSON-able objects (proto field names in snake_case, durations
 * as "10s", wrapped integers as numbers); cluster.ts and route.ts build the parts Istio's policy decides.
 */

/** An Envoy v3 bootstrap as a plain object, ready for YAML or JSON. */
export type EnvoyBootstrap = Record<string, unknown>;

/** A TCP address. Port 0 lets the OS choose (read it back from the admin's /listeners). */
export interface Address {
  readonly address: string;
  readonly port: number;
}

/**
 * Where Envoy writes one JSON line per request: a file, or `-` / `/dev/stdout` for Envoy's stdout logger
 * (which also works when stdout is a socket, as a Node child's piped stdout is; a file logger cannot open it).
 */
export interface AccessLog {
  readonly path: string;
}

/** What one access-log line holds: Istio's JSON access-log fields plus the attempt count. */
export const ACCESS_LOG_FORMAT: Readonly<Record<string, string>> = Object.freeze({
  start_time: '%START_TIME%',
  method: '%REQ(:METHOD)%',
  path: '%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%',
  response_code: '%RESPONSE_CODE%',
  response_flags: '%RESPONSE_FLAGS%',
  response_code_details: '%RESPONSE_CODE_DETAILS%',
  bytes_received: '%BYTES_RECEIVED%',
  bytes_sent: '%BYTES_SENT%',
  duration: '%DURATION%',
  upstream_service_time: '%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%',
  upstream_host: '%UPSTREAM_HOST%',
  upstream_cluster: '%UPSTREAM_CLUSTER%',
  upstream_request_attempt_count: '%UPSTREAM_REQUEST_ATTEMPT_COUNT%',
  request_id: '%REQ(X-REQUEST-ID)%',
});

/** Envoy's duration JSON: `"10s"`, `"0.001s"`. */
export function envoyDuration(ms: number): string {
  return `${Number((ms / 1000).toFixed(9))}s`;
}

/** An Istio duration string as Envoy's duration JSON. */
export const seconds = (text: string): string => envoyDuration(durationToMs(text));

/** `{ socket_address: ... }` for an address. */
export function socketAddress(a: Address): Record<string, unknown> {
  return { socket_address: { address: a.address, port_value: a.port } };
}

/** Checks an address option; pushes a problem naming `name` when it is not one. */
export function checkAddress(a: Address | undefined, name: string, problems: string[]): void {
  if (a === undefined || typeof a.address !== 'string' || a.address === '') {
    problems.push(`${name}: an address is required`);
    return;
  }
  if (!Number.isInteger(a.port) || a.port < 0 || a.port > 65535)
    problems.push(`${name}: port ${String(a.port)} is not a port (0-65535)`);
}

/** Throws the options' problems, if any. */
export function failOnOptions(problems: readonly string[]): void {
  if (problems.length > 0) throw new PolicyError('POLICY_BAD_OPTIONS', problems);
}

/** What every bootstrap needs: the Istio generation, the listener, the admin server, the access log. */
export interface EnvoyOptions {
  /** Which Istio generation to imitate. */
  readonly profile: Profile;
  /** The listener: where the caller's application sends (outbound), or where callers reach a replica (inbound). */
  readonly listen: Address;
  /** The admin server (GET /stats/prometheus, /stats, /clusters, /ready). */
  readonly admin: Address;
  /** One JSON line per request (status, %RESPONSE_FLAGS%, attempts); none by default. */
  readonly accessLog?: AccessLog;
}

/** The problems of the options every bootstrap shares, as lines. */
export function checkEnvoyOptions(opts: EnvoyOptions): string[] {
  const problems: string[] = [];
  if (!PROFILES.includes(opts.profile)) problems.push(`profile: must be one of ${PROFILES.join(', ')}`);
  checkAddress(opts.listen, 'listen', problems);
  checkAddress(opts.admin, 'admin', problems);
  return problems;
}

/** A listener whose one filter is an HTTP connection manager with `routes` on a catch-all virtual host. */
export function httpListener(opts: {
  name: string;
  listen: Address;
  statPrefix: string;
  virtualHost: string;
  routes: Record<string, unknown>[];
  accessLog: AccessLog | undefined;
}): Record<string, unknown> {
  return {
    name: opts.name,
    address: socketAddress(opts.listen),
    filter_chains: [
      {
        filters: [
          {
            name: 'envoy.filters.network.http_connection_manager',
            typed_config: {
              '@type':
                'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
              stat_prefix: opts.statPrefix,
              route_config: {
                name: opts.name,
                virtual_hosts: [
                  {
                    name: opts.virtualHost,
                    domains: ['*'],
                    // Istio's default (ProxyHeaders): upstreams see x-envoy-attempt-count.
                    include_request_attempt_count: true,
                    routes: opts.routes,
                  },
                ],
              },
              http_filters: [
                {
                  name: 'envoy.filters.http.router',
                  typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' },
                },
              ],
              ...(opts.accessLog !== undefined ? { access_log: [fileAccessLog(opts.accessLog)] } : {}),
            },
          },
        ],
      },
    ],
  };
}

function fileAccessLog(log: AccessLog): Record<string, unknown> {
  const log_format = { json_format: { ...ACCESS_LOG_FORMAT } };
  if (log.path === '-' || log.path === '/dev/stdout')
    return {
      name: 'envoy.access_loggers.stdout',
      typed_config: {
        '@type': 'type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog',
        log_format,
      },
    };
  return {
    name: 'envoy.access_loggers.file',
    typed_config: {
      '@type': 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog',
      path: log.path,
      log_format,
    },
  };
}

/** A STATIC cluster's `load_assignment` over `endpoints`. */
export function loadAssignment(cluster: string, endpoints: readonly Address[]): Record<string, unknown> {
  return {
    cluster_name: cluster,
    endpoints: [{ lb_endpoints: endpoints.map((e) => ({ endpoint: { address: socketAddress(e) } })) }],
  };
}

/** The bootstrap around one listener and one cluster, with the admin server (GET /stats/prometheus). */
export function bootstrap(opts: {
  node: string;
  admin: Address;
  listener: Record<string, unknown>;
  cluster: Record<string, unknown>;
}): EnvoyBootstrap {
  return {
    node: { id: opts.node, cluster: opts.node },
    admin: { address: socketAddress(opts.admin) },
    static_resources: { listeners: [opts.listener], clusters: [opts.cluster] },
  };
}

/** How to run Envoy on a bootstrap file. */
export interface EnvoyRunOptions {
  /** Worker threads (`--concurrency`); Istio's sidecar default is 2. */
  readonly workers?: number;
  /** Where Envoy writes its admin address once listening (useful with admin port 0). */
  readonly adminAddressPath?: string;
  /** How often access logs are flushed to their files (ms; Envoy's default is 10 s). */
  readonly accessLogFlushMs?: number;
  /** Envoy's log level (default `warn`). */
  readonly logLevel?: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'critical' | 'off';
}

/**
 * The command-line arguments to run Envoy on `configPath`. Hot restart is off, so any number of Envoys
 * run side by side without sharing memory or a base id.
 */
export function envoyArgs(configPath: string, opts: EnvoyRunOptions = {}): string[] {
  return [
    '-c',
    configPath,
    '--concurrency',
    String(opts.workers ?? 2),
    '--disable-hot-restart',
    '--log-level',
    opts.logLevel ?? 'warn',
    ...(opts.adminAddressPath !== undefined ? ['--admin-address-path', opts.adminAddressPath] : []),
    ...(opts.accessLogFlushMs !== undefined ? ['--file-flush-interval-msec', String(opts.accessLogFlushMs)] : []),
  ];
}
