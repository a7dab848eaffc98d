import { readFileSync } from 'node:fs';
import { Ajv, type ValidateFunction } from 'ajv';
import { parseAllDocuments } from 'yaml';
import { durationToMs, formatSchemaProblems } from '@infer-cb/common';
import { resolveSettings } from '@infer-cb/proxy/settings';
import { PolicyError, failOn } from './errors.js';
import { markedFields } from './problems.js';
import {
  bareTrafficPolicySchema,
  destinationRuleSchema,
  sidecarSchema,
  virtualServiceSchema,
  type Schema,
} from './schema.js';

/** Istio's `ConnectionPoolSettings` (durations as Istio strings, e.g. `"1s"`). */
export interface ConnectionPoolSettings {
  readonly tcp?: {
    readonly maxConnections?: number;
    readonly connectTimeout?: string;
    readonly tcpKeepalive?: { readonly probes?: number; readonly time?: string; readonly interval?: string };
    readonly maxConnectionDuration?: string;
    readonly idleTimeout?: string;
  };
  readonly http?: {
    readonly http1MaxPendingRequests?: number;
    readonly http2MaxRequests?: number;
    readonly maxRequestsPerConnection?: number;
    readonly maxRetries?: number;
    readonly idleTimeout?: string;
  };
}

/** Istio's `OutlierDetection`. */
export interface OutlierDetection {
  readonly consecutive5xxErrors?: number;
  readonly consecutiveGatewayErrors?: number;
  /** Deprecated, ignored by Istio since 1.7 (kept so a warning can name it). */
  readonly consecutiveErrors?: unknown;
  readonly interval?: string;
  readonly baseEjectionTime?: string;
  readonly maxEjectionPercent?: number;
  readonly minHealthPercent?: number;
  readonly splitExternalLocalOriginErrors?: boolean;
  readonly consecutiveLocalOriginFailures?: number;
}

/** Istio's `LoadBalancerSettings.simple`. */
export type SimpleLb = 'UNSPECIFIED' | 'LEAST_CONN' | 'RANDOM' | 'ROUND_ROBIN' | 'LEAST_REQUEST';

/** Istio's `TrafficPolicy` (the fields the translator reads; others are listed in `notModelled`). */
export interface TrafficPolicy {
  readonly connectionPool?: ConnectionPoolSettings;
  readonly outlierDetection?: OutlierDetection;
  readonly loadBalancer?: { readonly simple?: SimpleLb };
}

/** Istio's `HTTPRetry`. */
export interface HttpRetry {
  readonly attempts?: number;
  readonly perTryTimeout?: string;
  readonly retryOn?: string;
  readonly retryRemoteLocalities?: boolean;
  readonly retryIgnorePreviousHosts?: boolean;
  readonly backoff?: string;
}

/**
 * One mesh policy, validated: what the DestinationRule (or a bare trafficPolicy document), an optional
 * VirtualService and an optional Istio Sidecar say about one service. Frozen.
 */
export interface MeshPolicy {
  /** Where it was read from (file names, or the name given to {@link parseMeshPolicy}). */
  readonly source: string;
  /** The DestinationRule's `spec.host` (absent for a bare trafficPolicy document). */
  readonly host: string | undefined;
  /** The subset the VirtualService routes to, whose trafficPolicy is merged in. */
  readonly subset: string | undefined;
  /** The effective trafficPolicy: the top level with the routed subset's blocks over it, as Istio merges. */
  readonly trafficPolicy: TrafficPolicy;
  /** The VirtualService's HTTP route; undefined without a VirtualService (the mesh's default route). */
  readonly route: { readonly retries?: HttpRetry; readonly timeout?: string } | undefined;
  /**
   * The pool of each replica's inbound cluster: `Sidecar.spec.inboundConnectionPool` when set, else the
   * DestinationRule's top-level `connectionPool` (not the subset's: buildInboundCluster reads the rule's
   * trafficPolicy only).
   */
  readonly inbound: {
    readonly connectionPool: ConnectionPoolSettings | undefined;
    readonly from: 'Sidecar.inboundConnectionPool' | 'DestinationRule' | 'none';
  };
  /** The `sidecar` section of a cb-sidecar config given as the policy (kept for {@link sidecarConfig}). */
  readonly sidecarExtensions: Readonly<Record<string, unknown>> | undefined;
  /** Fields present that the translator does not model or Istio ignores, as `path: why`. */
  readonly notModelled: readonly string[];
}

const ajv = new Ajv({ allErrors: true, verbose: true, strict: false });
const validators: Record<string, { schema: Schema; validate: ValidateFunction }> = Object.fromEntries(
  (
    [
      ['DestinationRule', destinationRuleSchema],
      ['VirtualService', virtualServiceSchema],
      ['Sidecar', sidecarSchema],
      ['trafficPolicy', bareTrafficPolicySchema],
    ] as const
  ).map(([kind, schema]) => [kind, { schema, validate: ajv.compile(schema) }]),
);

/** Envoy's retry conditions (`retry_on`) an Istio `retryOn` may name, besides HTTP status codes. */
const RETRY_ON = new Set([
  '5xx',
  'gateway-error',
  'reset',
  'reset-before-request',
  'connect-failure',
  'envoy-ratelimited',
  'retriable-4xx',
  'refused-stream',
  'retriable-status-codes',
  'retriable-headers',
  'http3-post-connect-failure',
  'cancelled',
  'deadline-exceeded',
  'internal',
  'resource-exhausted',
  'unavailable',
]);

/**
 * Reads a mesh policy from one or more YAML files (documents may be spread over them, or all in one
 * multi-document file).
 * @throws PolicyError POLICY_UNREADABLE when a file cannot be read, POLICY_INVALID listing every problem
 */
export function readMeshPolicy(paths: string | readonly string[]): MeshPolicy {
  const files = typeof paths === 'string' ? [paths] : paths;
  const problems: string[] = [];
  const texts = files.map((file) => {
    try {
      return readFileSync(file, 'utf8');
    } catch (err) {
      problems.push(`${file}: ${(err as Error).message}`);
      return '';
    }
  });
  failOn('POLICY_UNREADABLE', problems);
  if (files.length === 0) throw new PolicyError('POLICY_UNREADABLE', ['no policy file given']);
  return parseDocuments(
    files.map((file, i) => ({ text: texts[i] as string, name: file })),
    files.join(', '),
  );
}

/**
 * Parses a mesh policy from YAML text (one or more documents).
 * @throws PolicyError POLICY_INVALID listing every problem
 */
export function parseMeshPolicy(text: string, source = 'policy'): MeshPolicy {
  return parseDocuments([{ text, name: source }], source);
}

interface Doc {
  kind: 'DestinationRule' | 'VirtualService' | 'Sidecar' | 'trafficPolicy';
  where: string;
  value: Record<string, unknown>;
}

function parseDocuments(inputs: readonly { text: string; name: string }[], source: string): MeshPolicy {
  const problems: string[] = [];
  const docs: Doc[] = [];
  const notModelled: string[] = [];
  for (const { text, name } of inputs) {
    const parsed = parseAllDocuments(text);
    parsed.forEach((d, i) => {
      const where = parsed.length > 1 ? `${name} (document ${i + 1})` : name;
      if (d.errors.length > 0) {
        problems.push(...d.errors.map((e) => `${where}: YAML: ${e.message.split('\n')[0]}`));
        return;
      }
      const value = d.toJS() as unknown;
      if (value == null) return;
      if (typeof value !== 'object' || Array.isArray(value)) {
        problems.push(`${where}: must be a mapping (a DestinationRule, VirtualService, Sidecar or trafficPolicy)`);
        return;
      }
      const record = value as Record<string, unknown>;
      const kind = classify(record);
      if (kind === undefined) {
        problems.push(
          `${where}: kind ${JSON.stringify(record['kind'] ?? null)} is not a DestinationRule, VirtualService or Sidecar, and there is no top-level trafficPolicy`,
        );
        return;
      }
      const label = kind === 'trafficPolicy' ? where : `${where}: ${kind}${nameOf(record)}`;
      const v = validators[kind] as { schema: Schema; validate: ValidateFunction };
      if (!v.validate(record)) {
        problems.push(...formatSchemaProblems(v.validate.errors ?? [], label));
        return;
      }
      if (kind === 'trafficPolicy' && record['sidecar'] !== undefined) {
        // The sidecar's own section, checked by the sidecar's settings table: cb-sidecar would refuse what
        // cb-policy let through into the configs it writes.
        const sidecar = resolveSettings({ sidecar: record['sidecar'] }, label).problems;
        if (sidecar.length > 0) {
          problems.push(...sidecar);
          return;
        }
      }
      notModelled.push(...markedFields(record, v.schema).map((line) => `${label}: ${line}`));
      docs.push({ kind, where: label, value: record });
    });
  }
  failOn('POLICY_INVALID', problems);
  const policy = assemble(docs, source, problems);
  failOn('POLICY_INVALID', problems);
  return deepFreeze({ ...(policy as MeshPolicy), notModelled });
}

function classify(record: Record<string, unknown>): Doc['kind'] | undefined {
  const kind = record['kind'];
  if (kind === 'DestinationRule' || kind === 'VirtualService' || kind === 'Sidecar') return kind;
  if (kind === undefined && 'trafficPolicy' in record) return 'trafficPolicy';
  return undefined;
}

function nameOf(record: Record<string, unknown>): string {
  const name = (record['metadata'] as { name?: unknown } | undefined)?.name;
  return typeof name === 'string' ? ` ${name}` : '';
}

interface Spec {
  host?: string;
  trafficPolicy?: TrafficPolicy;
  subsets?: { name: string; trafficPolicy?: TrafficPolicy }[];
  hosts?: string[];
  http?: { route?: { destination: { host: string; subset?: string } }[]; retries?: HttpRetry; timeout?: string }[];
  inboundConnectionPool?: ConnectionPoolSettings;
}

/** Combines the validated documents into one policy, adding the problems that span documents. */
function assemble(docs: readonly Doc[], source: string, problems: string[]): Omit<MeshPolicy, 'notModelled'> {
  const of = (kind: Doc['kind']): Doc[] => docs.filter((d) => d.kind === kind);
  const rules = [...of('DestinationRule'), ...of('trafficPolicy')];
  const services = of('VirtualService');
  const sidecars = of('Sidecar');
  if (rules.length === 0) problems.push(`${source}: no DestinationRule and no trafficPolicy document`);
  if (rules.length > 1) problems.push(`${source}: ${rules.length} DestinationRule/trafficPolicy documents; give one`);
  if (services.length > 1) problems.push(`${source}: ${services.length} VirtualServices; give at most one`);
  if (sidecars.length > 1) problems.push(`${source}: ${sidecars.length} Sidecars; give at most one`);
  const rule = rules[0];
  const spec: Spec =
    rule === undefined
      ? {}
      : rule.kind === 'trafficPolicy'
        ? { trafficPolicy: rule.value['trafficPolicy'] as TrafficPolicy }
        : (rule.value['spec'] as Spec);
  const vs = services[0];
  let route: MeshPolicy['route'];
  let subset: string | undefined;
  if (vs !== undefined) {
    const vsSpec = vs.value['spec'] as Spec;
    const http = vsSpec.http ?? [];
    if (http.length > 1) problems.push(`${vs.where}: spec.http has ${http.length} routes; one route is modelled`);
    const first = http[0];
    const destinations = first?.route ?? [];
    const subsets = new Set(destinations.map((r) => r.destination.subset ?? ''));
    if (subsets.size > 1) problems.push(`${vs.where}: spec.http[0].route splits traffic over subsets; not modelled`);
    subset = [...subsets][0] || undefined;
    if (spec.host !== undefined) {
      const foreign = [...(vsSpec.hosts ?? []), ...destinations.map((r) => r.destination.host)].filter(
        (h) => !sameHost(h, spec.host as string),
      );
      if (foreign.length > 0)
        problems.push(`${vs.where}: host ${foreign.join(', ')} is not the DestinationRule's host ${spec.host}`);
    }
    route = {
      ...(first?.retries !== undefined ? { retries: first.retries } : {}),
      ...(first?.timeout !== undefined ? { timeout: first.timeout } : {}),
    };
    checkRetries(first?.retries, `${vs.where}: spec.http[0].retries`, problems);
    if (first?.timeout !== undefined && !(durationToMs(first.timeout) >= 0))
      problems.push(`${vs.where}: spec.http[0].timeout: must not be negative`);
  }
  let trafficPolicy: TrafficPolicy = spec.trafficPolicy ?? {};
  if (subset !== undefined) {
    const found = spec.subsets?.find((s) => s.name === subset);
    if (found === undefined && rule?.kind === 'DestinationRule')
      problems.push(`${vs?.where}: subset "${subset}" is not defined in the DestinationRule's subsets`);
    // Istio's MergeSubsetTrafficPolicy: a block the subset sets replaces the top-level block whole.
    if (found?.trafficPolicy !== undefined) trafficPolicy = { ...trafficPolicy, ...found.trafficPolicy };
  }
  const where = rule?.where ?? source;
  checkDurations(trafficPolicy, where, problems);
  const sidecarPool = (sidecars[0]?.value['spec'] as Spec | undefined)?.inboundConnectionPool;
  if (sidecarPool !== undefined)
    checkDurations({ connectionPool: sidecarPool }, sidecars[0]?.where ?? source, problems);
  const rulePool = spec.trafficPolicy?.connectionPool;
  const inbound: MeshPolicy['inbound'] =
    sidecarPool !== undefined
      ? { connectionPool: sidecarPool, from: 'Sidecar.inboundConnectionPool' }
      : { connectionPool: rulePool, from: rulePool !== undefined ? 'DestinationRule' : 'none' };
  return {
    source,
    host: spec.host,
    subset,
    trafficPolicy,
    route,
    inbound,
    sidecarExtensions:
      rule?.kind === 'trafficPolicy' ? (rule.value['sidecar'] as Record<string, unknown> | undefined) : undefined,
  };
}

/** `iris-svc` and `iris-svc.circuit-breaker.svc.cluster.local` name the same Service. */
function sameHost(a: string, b: string): boolean {
  return a === b || a.split('.')[0] === b.split('.')[0];
}

/** Durations Istio's validation requires to be at least 1 ms. */
function checkDurations(tp: TrafficPolicy, where: string, problems: string[]): void {
  const fields: [string, string | undefined][] = [
    ['connectionPool.tcp.connectTimeout', tp.connectionPool?.tcp?.connectTimeout],
    ['outlierDetection.interval', tp.outlierDetection?.interval],
    ['outlierDetection.baseEjectionTime', tp.outlierDetection?.baseEjectionTime],
  ];
  for (const [path, text] of fields)
    if (text !== undefined && durationToMs(text) < 1) problems.push(`${where}: ${path}: ${text} is below 1ms`);
}

function checkRetries(retries: HttpRetry | undefined, where: string, problems: string[]): void {
  if (retries === undefined) return;
  if (retries.perTryTimeout !== undefined && durationToMs(retries.perTryTimeout) < 1)
    problems.push(`${where}.perTryTimeout: ${retries.perTryTimeout} is below 1ms`);
  for (const part of (retries.retryOn ?? '').split(',').map((p) => p.trim())) {
    if (part === '' || RETRY_ON.has(part)) continue;
    if (/^[1-5]\d\d$/.test(part)) continue;
    problems.push(`${where}.retryOn: "${part}" is not a retry condition or an HTTP status code`);
  }
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
