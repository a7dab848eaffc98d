/**
 * The config file, described once. {@link SETTINGS} has one row per setting: the file key(s) it is read
 * from, its kind, range, default and unit. The JSON schema the file is validated with, the
 * {@link Settings} type, the defaults and the resolution of a file into settings all come from it.
 *
 * Why a table rather than a schema library that infers types: the settings are not the file's shape. The
 * file is an Istio `trafficPolicy` read with its server-side meaning (the limit is the smaller of two Istio
 * fields, durations become milliseconds, client-side fields are accepted and ignored), so a
 * schema of the file would still need a second description of the settings. One row per setting names its
 * file keys and says both at once.
 */
import { Ajv, type ValidateFunction } from 'ajv';
import { DURATION_PATTERN, durationToMs, formatSchemaProblems } from '@infer-cb/common';
import { PRIORITY_CLASSES, type PriorityClass } from './outcomes.js';

/** A path-prefix rule of `sidecar.priority.rules`: requests whose path starts with `pathPrefix` get `class`. */
export interface PriorityRule {
  readonly pathPrefix: string;
  readonly class: PriorityClass;
}

/** How a setting's value is written in the file. */
type Kind =
  | { readonly kind: 'int'; readonly min: number; readonly max: number }
  | { readonly kind: 'number'; readonly exclusiveMin: number; readonly max: number }
  | { readonly kind: 'duration'; readonly minMs: number; readonly maxMs: number }
  | { readonly kind: 'fraction' }
  | { readonly kind: 'rules' }
  | { readonly kind: 'boolean' }
  | { readonly kind: 'enum'; readonly values: readonly string[] }
  | { readonly kind: 'header' };

/** One row of the table. */
type Row = Kind & {
  /** file keys, dotted; with several, the first present wins, or the smallest with `pick: 'min'` */
  readonly from: readonly string[];
  readonly pick?: 'min';
  /** used when no file key is present (milliseconds for durations) */
  readonly default: number | boolean | string | readonly PriorityRule[];
  /** a sibling setting the default is raised to (a maximum never below its starting value) */
  readonly atLeast?: string;
};

const keys = (from: string | readonly string[]): readonly string[] => (typeof from === 'string' ? [from] : from);
const int = (
  from: string | readonly string[],
  dflt: number,
  o: { min: number; max?: number; pick?: 'min'; atLeast?: string },
) =>
  ({
    kind: 'int',
    from: keys(from),
    default: dflt,
    min: o.min,
    max: o.max ?? 2 ** 31 - 1,
    pick: o.pick,
    atLeast: o.atLeast,
  }) as const;
const percent = (from: string, dflt: number) =>
  ({ kind: 'number', from: keys(from), default: dflt, exclusiveMin: 0, max: 100 }) as const;
/** Durations: Istio strings in the file, milliseconds in the settings; between 1 ms and 1 h unless said. */
const duration = (from: string | readonly string[], dfltMs: number, o: { minMs?: number; atLeast?: string } = {}) =>
  ({
    kind: 'duration',
    from: keys(from),
    default: dfltMs,
    minMs: o.minMs ?? 1,
    maxMs: 3_600_000,
    atLeast: o.atLeast,
  }) as const;
/** A share of the limit, in [0, 1]. */
const fraction = (from: string, dflt: number) => ({ kind: 'fraction', from: keys(from), default: dflt }) as const;
/** The path-prefix rules of the priority classes: a list, first match wins; none by default. */
const rules = (from: string) => ({ kind: 'rules', from: keys(from), default: [] as readonly PriorityRule[] }) as const;
/** At most this many path rules: each request is matched against them in order. */
const MAX_PRIORITY_RULES = 64;
const flag = (from: string, dflt: boolean) => ({ kind: 'boolean', from: keys(from), default: dflt }) as const;
const oneOf = <const V extends readonly string[]>(from: string, values: V, dflt: V[number]) =>
  ({ kind: 'enum', from: keys(from), values, default: dflt }) as const;
const headerName = (from: string, dflt: string) => ({ kind: 'header', from: keys(from), default: dflt }) as const;

const POOL = 'trafficPolicy.connectionPool';
const OUTLIER = 'trafficPolicy.outlierDetection';

/** Every setting the config file controls (reloaded on SIGHUP), with its file keys, range and default. */
// prettier-ignore
export const SETTINGS = {
  concurrency: {
    /** `static`, or `adaptive`: learns the limit from latency in [min, max], starting at `min` (docs/adaptive.md) */
    mode: oneOf('sidecar.concurrency.mode', ['static', 'adaptive'], 'static'),
    /** the static limit: requests in flight to the upstream (Envoy `max_requests`; HTTP/1.1: `max_connections`) */
    limit: int([`${POOL}.tcp.maxConnections`, `${POOL}.http.http2MaxRequests`], 64, { min: 1, pick: 'min' }),
    /** the adaptive limit's floor, and where it starts */
    min: int('sidecar.concurrency.min', 1, { min: 1, max: 100_000 }),
    /** the adaptive limit's ceiling (never below the static limit by default) */
    max: int('sidecar.concurrency.max', 256, { min: 1, max: 100_000, atLeast: 'limit' }),
  },
  queue: {
    /** requests waiting beyond the limit (Envoy `max_pending_requests`) */
    size: int(`${POOL}.http.http1MaxPendingRequests`, 256, { min: 1 }),
    /** longest wait while the queue keeps emptying, ms */
    timeoutMs: duration('sidecar.queue.timeout', 1000),
    /** longest wait once the queue is a standing queue (Facebook's controlled delay), ms */
    codelTargetMs: duration('sidecar.queue.codelTarget', 5),
    /** how long the queue must stay non-empty to count as standing, ms */
    codelIntervalMs: duration('sidecar.queue.codelInterval', 100),
  },
  deadline: {
    /** the client's budget in ms from arrival (lower case) */
    header: headerName('sidecar.deadline.header', 'x-request-timeout-ms'),
  },
  breaker: {
    /** % of calls in the window that must fail to open */
    errorThresholdPercentage: percent('sidecar.breaker.errorThresholdPercentage', 50),
    /** calls in the window before the rate counts */
    volumeThreshold: int('sidecar.breaker.volumeThreshold', 20, { min: 0 }),
    /** the error-rate window (10 buckets), ms */
    rollingWindowMs: duration('sidecar.breaker.rollingWindow', 10_000, { minMs: 100 }),
    /** first open interval; doubles while probes fail, ms */
    resetTimeoutMs: duration('sidecar.breaker.resetTimeout', 2000),
    /** cap of the doubling open interval, ms */
    maxResetTimeoutMs: duration('sidecar.breaker.maxResetTimeout', 30_000, { atLeast: 'resetTimeoutMs' }),
    /**
     * open interval while the upstream cannot be reached at all (connection refused, connect timeout):
     * such a probe costs the model nothing, so it is tried this often instead of backing off, ms
     */
    unreachableResetTimeoutMs: duration('sidecar.breaker.unreachableResetTimeout', 250, { minMs: 10 }),
    /** upstream failures in a row that open the breaker (Istio's default 5); 0 disables */
    consecutive5xxErrors: int(`${OUTLIER}.consecutive5xxErrors`, 5, { min: 0 }),
    /** 502/503/504 or connection failures in a row that open the breaker; 0 disables */
    consecutiveGatewayErrors: int(`${OUTLIER}.consecutiveGatewayErrors`, 0, { min: 0 }),
  },
  upstream: {
    /** time the upstream has to start its answer (the response head); a stream that is producing is not cut, ms */
    timeoutMs: duration('sidecar.upstream.timeout', 10_000),
    /** after the head, the longest gap between two pieces of the answer (SSE, chunked, gRPC streams), ms */
    streamIdleTimeoutMs: duration('sidecar.upstream.streamIdleTimeout', 30_000),
    /**
     * the protocol spoken to the upstream: `http1`, `h2c` (HTTP/2 with prior knowledge), or `auto` (the
     * client's: HTTP/2 requests go h2c, HTTP/1.1 ones HTTP/1.1; like Istio's `useClientProtocol`)
     */
    protocol: oneOf('sidecar.upstream.protocol', ['auto', 'http1', 'h2c'], 'auto'),
    /** streams per HTTP/2 upstream connection before another is opened (Envoy `max_concurrent_streams`) */
    maxConcurrentStreams: int(`${POOL}.http.maxConcurrentStreams`, 2 ** 31 - 1, { min: 1 }),
    /** connect timeout to the upstream, ms */
    connectTimeoutMs: duration(`${POOL}.tcp.connectTimeout`, 1000),
    /** requests per upstream connection before it is recycled; 0 = unlimited */
    maxRequestsPerConnection: int(`${POOL}.http.maxRequestsPerConnection`, 0, { min: 0 }),
    /** idle upstream keep-alive connections close after this, ms */
    idleTimeoutMs: duration(`${POOL}.http.idleTimeout`, 4000),
  },
  readiness: {
    /** /readyz fails while the breaker is open */
    failWhenOpen: flag('sidecar.readiness.failWhenOpen', false),
  },
  drain: {
    /** after SIGTERM, keep serving this long before refusing connections, ms */
    delayMs: duration('sidecar.drain.delay', 5000, { minMs: 0 }),
    /** exit 1 if requests are still in flight this long after SIGTERM, ms */
    graceMs: duration('sidecar.drain.grace', 25_000),
  },
  priority: {
    /**
     * the request header naming the class: `critical`, `default` or `sheddable` (case-insensitive); it wins over
     * the path rules; any other value is served as `default` and counted (lower case)
     */
    header: headerName('sidecar.priority.header', 'x-request-priority'),
    /**
     * whether the header is read at all: false where callers cannot be trusted with it (a public ingress that
     * does not strip it); the path rules alone classify then
     */
    trustHeader: flag('sidecar.priority.trustHeader', true),
    /** share of the limit reserved for `default` (served before `sheddable` below its share) */
    defaultShare: fraction('sidecar.priority.shares.default', 0.5),
    /** share of the limit reserved for `sheddable` (served before `default` above its share) */
    sheddableShare: fraction('sidecar.priority.shares.sheddable', 0.3),
    /** critical's longest wait while its own queue is not standing (at least `queue.timeout`), ms */
    criticalQueueTimeoutMs: duration('sidecar.priority.criticalQueueTimeout', 1000),
    /** `[{ pathPrefix, class }]` for requests without the header; first match wins, else `default` */
    rules: rules('sidecar.priority.rules'),
  },
} as const;

/**
 * Istio fields a server-side proxy cannot apply: accepted so a real DestinationRule validates, and ignored.
 * Those with a shape Istio checks are checked here too (`null`: anything goes).
 */
// prettier-ignore
const ISTIO_IGNORED: Readonly<Record<string, Kind | null>> = {
  [`${POOL}.tcp.tcpKeepalive`]: null,
  [`${POOL}.tcp.maxConnectionDuration`]: null,
  [`${POOL}.tcp.idleTimeout`]: null,
  [`${POOL}.http.maxRetries`]: null,
  [`${POOL}.http.h2UpgradePolicy`]: null,
  [`${POOL}.http.useClientProtocol`]: null,
  [`${OUTLIER}.interval`]: { kind: 'duration', minMs: 0, maxMs: Infinity },
  // Envoy ejects one host from one caller's pool for it while the other hosts serve; the sidecar's breaker
  // closes the whole pod to every caller, so it keeps its own short, doubling interval (breaker.resetTimeout).
  [`${OUTLIER}.baseEjectionTime`]: { kind: 'duration', minMs: 0, maxMs: Infinity },
  [`${OUTLIER}.maxEjectionPercent`]: { kind: 'int', min: 0, max: 100 },
  [`${OUTLIER}.minHealthPercent`]: null,
  [`${OUTLIER}.splitExternalLocalOriginErrors`]: null,
  [`${OUTLIER}.consecutiveLocalOriginFailures`]: null,
  [`${OUTLIER}.consecutiveErrors`]: null,
  'trafficPolicy.loadBalancer': null,
  'trafficPolicy.tls': null,
  'trafficPolicy.portLevelSettings': null,
  'trafficPolicy.tunnel': null,
  'trafficPolicy.proxyProtocol': null,
  'trafficPolicy.retryBudget': null,
};

type Table = typeof SETTINGS;
type ValueOf<R> = R extends { kind: 'enum'; values: readonly (infer V)[] }
  ? V
  : R extends { kind: 'rules' }
    ? readonly PriorityRule[]
    : R extends { kind: 'boolean' }
      ? boolean
      : R extends { kind: 'header' }
        ? string
        : number;

/** Everything the config file controls, resolved; durations in milliseconds. */
export type Settings = {
  readonly [S in keyof Table]: { readonly [K in keyof Table[S]]: ValueOf<Table[S][K]> };
};

// --- the JSON schema, from the table ------------------------------------------------------------------

type Schema = Record<string, unknown>;

const HEADER_TOKEN = "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$";

function schemaOf(kind: Kind): Schema {
  switch (kind.kind) {
    case 'int':
      return { type: 'integer', minimum: kind.min, maximum: kind.max };
    case 'number':
      return { type: 'number', exclusiveMinimum: kind.exclusiveMin, maximum: kind.max };
    case 'duration':
      return { type: 'string', pattern: DURATION_PATTERN };
    case 'fraction':
      return { type: 'number', minimum: 0, maximum: 1 };
    case 'rules':
      return {
        type: 'array',
        maxItems: MAX_PRIORITY_RULES,
        items: {
          type: 'object',
          additionalProperties: false,
          required: ['pathPrefix', 'class'],
          properties: {
            pathPrefix: { type: 'string', pattern: '^/' },
            class: { enum: PRIORITY_CLASSES },
          },
        },
      };
    case 'boolean':
      return { type: 'boolean' };
    case 'enum':
      return { enum: kind.values };
    case 'header':
      return { type: 'string', pattern: HEADER_TOKEN };
  }
}

/** Every row of the table with its section and name, in table order. */
const ROWS: readonly { section: string; name: string; row: Row }[] = Object.entries(SETTINGS).flatMap(
  ([section, rows]) => Object.entries(rows as Record<string, Row>).map(([name, row]) => ({ section, name, row })),
);

/** A closed object schema (unknown keys are errors) holding `leaves` at their dotted paths. */
function objectSchema(leaves: readonly [path: string, schema: Schema][]): Schema {
  const root: Schema = { type: 'object', additionalProperties: false, properties: {} };
  for (const [path, leaf] of leaves) {
    const parts = path.split('.');
    let node = root;
    for (const part of parts.slice(0, -1)) {
      const properties = node.properties as Record<string, Schema>;
      node = properties[part] ??= { type: 'object', additionalProperties: false, properties: {} };
    }
    (node.properties as Record<string, Schema>)[parts.at(-1) as string] = leaf;
  }
  return root;
}

const FILE_SCHEMA = objectSchema([
  ...ROWS.flatMap(({ row }) => row.from.map((path): [string, Schema] => [path, schemaOf(row)])),
  ...Object.entries(ISTIO_IGNORED).map(([path, kind]): [string, Schema] => [path, kind === null ? {} : schemaOf(kind)]),
]);
const TRAFFIC_POLICY = (FILE_SCHEMA.properties as Record<string, Schema>).trafficPolicy as Schema;

/** A file that is an Istio DestinationRule manifest; its `spec.trafficPolicy` is used. */
const DESTINATION_RULE_SCHEMA: Schema = {
  type: 'object',
  required: ['spec'],
  properties: {
    apiVersion: { type: 'string', pattern: '^networking\\.istio\\.io/' },
    kind: { const: 'DestinationRule' },
    metadata: { type: 'object' },
    spec: { type: 'object', properties: { trafficPolicy: TRAFFIC_POLICY } },
  },
};

const ajv = new Ajv({ allErrors: true, verbose: true, strict: false });
const validateFile = ajv.compile(FILE_SCHEMA);
const validateRule = ajv.compile(DESTINATION_RULE_SCHEMA);
const validateRules = ajv.compile(schemaOf({ kind: 'rules' }));

// --- resolution ---------------------------------------------------------------------------------------

function read(doc: unknown, path: string): unknown {
  let node = doc;
  for (const part of path.split('.')) {
    if (typeof node !== 'object' || node === null || Array.isArray(node)) return undefined;
    node = (node as Record<string, unknown>)[part];
  }
  return node;
}

/** A file value the schema accepts for this row (others were reported by the schema and are skipped). */
function valid(row: Row, value: unknown): boolean {
  switch (row.kind) {
    case 'int':
      return Number.isInteger(value) && (value as number) >= row.min && (value as number) <= row.max;
    case 'number':
      return typeof value === 'number' && value > row.exclusiveMin && value <= row.max;
    case 'duration':
      return typeof value === 'string' && !Number.isNaN(durationToMs(value));
    case 'fraction':
      return typeof value === 'number' && value >= 0 && value <= 1;
    case 'rules':
      return validateRules(value);
    case 'boolean':
      return typeof value === 'boolean';
    case 'enum':
      return row.values.includes(value as string);
    case 'header':
      return typeof value === 'string' && new RegExp(HEADER_TOKEN).test(value);
  }
}

/** Relations between settings, checked once each side is valid: [left, right, holds, the problem]. */
const RELATIONS: readonly [string, string, (a: number, b: number) => boolean, (a: string, b: string) => string][] = [
  [
    'concurrency.min',
    'concurrency.max',
    (a, b) => a <= b,
    (a, b) => `sidecar.concurrency.min (${a}) must be <= max (${b})`,
  ],
  [
    'breaker.resetTimeoutMs',
    'breaker.maxResetTimeoutMs',
    (a, b) => a <= b,
    () => 'sidecar.breaker.resetTimeout must be <= maxResetTimeout',
  ],
  [
    'priority.defaultShare',
    'priority.sheddableShare',
    (a, b) => a + b <= 1 + 1e-9,
    (a, b) => `sidecar.priority.shares: default (${a}) + sheddable (${b}) must be <= 1`,
  ],
  [
    'drain.delayMs',
    'drain.graceMs',
    (a, b) => a < b,
    () => 'sidecar.drain.delay must be shorter than sidecar.drain.grace',
  ],
];

/**
 * The settings a parsed file document holds, and every problem with it at once: the schema's (unknown keys
 * with a did-you-mean hint, types, ranges) and the table's (duration ranges, relations between settings).
 */
export function resolveSettings(doc: unknown, source: string): { settings: Settings; problems: string[] } {
  const rule = typeof doc === 'object' && doc !== null && (doc as { kind?: unknown }).kind === 'DestinationRule';
  const validate: ValidateFunction = rule ? validateRule : validateFile;
  const problems = validate(doc) ? [] : formatSchemaProblems(validate.errors ?? [], source);
  const file = rule ? { trafficPolicy: read(doc, 'spec.trafficPolicy') } : doc;
  const values: Record<string, Record<string, unknown>> = {};
  const texts = new Map<string, string>(); // `section.name` -> the file's text, for relation problems
  const failed = new Set<string>();
  for (const { section, name, row } of ROWS) {
    const present = row.from.map((path) => [path, read(file, path)] as const).filter(([, v]) => v !== undefined);
    const usable = present.filter(([, v]) => valid(row, v));
    if (usable.length < present.length) failed.add(`${section}.${name}`);
    let value: unknown;
    if (usable.length > 0) {
      const [path, raw] = usable[0] as readonly [string, unknown];
      if (row.kind === 'duration') {
        value = durationToMs(raw as string);
        if (!((value as number) >= row.minMs && (value as number) <= row.maxMs)) {
          problems.push(`${source}: ${path}: ${String(raw)} is out of range [${row.minMs}ms, ${row.maxMs / 1000}s]`);
          failed.add(`${section}.${name}`);
        }
        texts.set(`${section}.${name}`, String(raw));
      } else if (row.pick === 'min') value = Math.min(...usable.map(([, v]) => v as number));
      else if (row.kind === 'rules')
        value = Object.freeze(
          (raw as PriorityRule[]).map((r) => Object.freeze({ pathPrefix: r.pathPrefix, class: r.class })),
        );
      else value = row.kind === 'header' ? (raw as string).toLowerCase() : raw;
    } else {
      const floor = row.atLeast === undefined ? undefined : values[section]?.[row.atLeast];
      value = typeof floor === 'number' ? Math.max(row.default as number, floor) : row.default;
    }
    (values[section] ??= {})[name] = value;
    if (!texts.has(`${section}.${name}`)) texts.set(`${section}.${name}`, String(value));
  }
  for (const [left, right, holds, problem] of RELATIONS) {
    if (failed.has(left) || failed.has(right)) continue;
    const [a, b] = [left, right].map((key) => read(values, key) as number) as [number, number];
    if (!holds(a, b)) problems.push(`${source}: ${problem(texts.get(left) ?? '', texts.get(right) ?? '')}`);
  }
  const settings = Object.freeze(
    Object.fromEntries(Object.entries(values).map(([section, v]) => [section, Object.freeze(v)])),
  ) as unknown as Settings;
  return { settings, problems };
}
