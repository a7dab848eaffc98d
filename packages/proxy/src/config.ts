import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Ajv } from 'ajv';
import { parseAllDocuments } from 'yaml';
import { closest, formatAjv } from './config-problems.js';
import { CONFIG_FILE_SCHEMA, DESTINATION_RULE_SCHEMA } from './config-schema.js';
import { durationToMs } from '@infer-cb/common';
import { ConfigError } from './errors.js';

/** Environment variable names, one per flag. */
export const ENV = {
  listen: 'CB_LISTEN',
  upstream: 'CB_UPSTREAM',
  adminPort: 'CB_ADMIN_PORT',
  config: 'CB_CONFIG',
  logLevel: 'CB_LOG_LEVEL',
} as const;

/** Everything the config file controls; reloaded on SIGHUP. Durations in milliseconds. */
export interface Settings {
  readonly concurrency: {
    readonly mode: 'static' | 'adaptive';
    /** the static limit, and the adaptive limit's starting point */
    readonly limit: number;
    readonly min: number;
    readonly max: number;
  };
  readonly queue: {
    readonly size: number;
    readonly timeoutMs: number;
    readonly codelTargetMs: number;
    readonly codelIntervalMs: number;
  };
  readonly deadline: { readonly header: string };
  readonly breaker: {
    readonly errorThresholdPercentage: number;
    readonly volumeThreshold: number;
    readonly rollingWindowMs: number;
    readonly resetTimeoutMs: number;
    readonly maxResetTimeoutMs: number;
    /** 0 disables */
    readonly consecutive5xxErrors: number;
    /** 0 disables */
    readonly consecutiveGatewayErrors: number;
  };
  readonly upstream: {
    readonly timeoutMs: number;
    readonly connectTimeoutMs: number;
    /** 0 = unlimited */
    readonly maxRequestsPerConnection: number;
    readonly idleTimeoutMs: number;
  };
  readonly readiness: { readonly failWhenOpen: boolean };
  readonly drain: { readonly delayMs: number; readonly graceMs: number };
}

/** The whole configuration: process flags plus the settings from the file. */
export interface Config {
  readonly listen: { readonly host: string; readonly port: number };
  /** origin of the one upstream, e.g. `http://127.0.0.1:8000` */
  readonly upstream: string;
  readonly adminPort: number;
  readonly configPath: string | undefined;
  readonly checkOnly: boolean;
  readonly settings: Settings;
}

/** Defaults, chosen for one inference pod talking to its model container over loopback. */
export const DEFAULTS = {
  listen: '8080',
  upstream: 'http://127.0.0.1:8000',
  adminPort: 9901,
  settings: {
    concurrency: { mode: 'static', limit: 64, min: 1, max: 256 },
    queue: { size: 256, timeoutMs: 1000, codelTargetMs: 5, codelIntervalMs: 100 },
    deadline: { header: 'x-request-timeout-ms' },
    breaker: {
      errorThresholdPercentage: 50, // % of calls in the window
      volumeThreshold: 20, // calls in the window before the rate counts
      rollingWindowMs: 10_000,
      resetTimeoutMs: 2000, // first open interval; doubles while probes fail
      maxResetTimeoutMs: 30_000,
      consecutive5xxErrors: 5, // Istio's default
      consecutiveGatewayErrors: 0,
    },
    upstream: { timeoutMs: 10_000, connectTimeoutMs: 1000, maxRequestsPerConnection: 0, idleTimeoutMs: 4000 },
    readiness: { failWhenOpen: false },
    drain: { delayMs: 5000, graceMs: 25_000 },
  } satisfies Settings as Settings,
} as const;

const ajv = new Ajv({ allErrors: true, verbose: true, strict: false });
const validateFile = ajv.compile(CONFIG_FILE_SCHEMA);
const validateRule = ajv.compile(DESTINATION_RULE_SCHEMA);

/**
 * Reads and validates a config file (our shape, or an Istio DestinationRule manifest).
 * @throws ConfigError listing every problem in the file
 */
export function loadSettings(path: string): Settings {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError([`config file ${path}: ${(err as Error).message}`]);
  }
  return parseSettings(text, path);
}

/**
 * Parses config-file text into settings.
 * @throws ConfigError listing every problem
 */
export function parseSettings(text: string, source = 'config'): Settings {
  const docs = parseAllDocuments(text);
  const yamlProblems = docs.flatMap((d) => d.errors.map((e) => `${source}: YAML: ${e.message.split('\n')[0]}`));
  if (yamlProblems.length > 0) throw new ConfigError(yamlProblems);
  const values: unknown[] = docs.map((d) => d.toJS() as unknown).filter((v) => v != null);
  if (values.length > 1) throw new ConfigError([`${source}: expected one YAML document, found ${values.length}`]);
  const doc = values[0] ?? {};
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new ConfigError([`${source}: must be a mapping`]);
  const record = doc as Record<string, unknown>;
  let file: FileShape;
  if (record.kind === 'DestinationRule') {
    if (!validateRule(doc)) throw new ConfigError(formatAjv(validateRule.errors ?? [], source));
    const spec = record.spec as { trafficPolicy?: FileShape['trafficPolicy'] };
    file = { trafficPolicy: spec.trafficPolicy };
  } else {
    if (!validateFile(doc)) throw new ConfigError(formatAjv(validateFile.errors ?? [], source));
    file = doc as FileShape;
  }
  return resolveSettings(file, source);
}

interface FileShape {
  trafficPolicy?: {
    connectionPool?: {
      tcp?: { maxConnections?: number; connectTimeout?: string };
      http?: {
        http1MaxPendingRequests?: number;
        http2MaxRequests?: number;
        maxRequestsPerConnection?: number;
        idleTimeout?: string;
      };
    };
    outlierDetection?: { consecutive5xxErrors?: number; consecutiveGatewayErrors?: number; baseEjectionTime?: string };
  };
  sidecar?: {
    concurrency?: { mode?: 'static' | 'adaptive'; min?: number; max?: number };
    queue?: { timeout?: string; codelTarget?: string; codelInterval?: string };
    deadline?: { header?: string };
    breaker?: {
      errorThresholdPercentage?: number;
      volumeThreshold?: number;
      rollingWindow?: string;
      resetTimeout?: string;
      maxResetTimeout?: string;
    };
    upstream?: { timeout?: string };
    readiness?: { failWhenOpen?: boolean };
    drain?: { delay?: string; grace?: string };
  };
}

function resolveSettings(file: FileShape, source: string): Settings {
  const problems: string[] = [];
  const d = DEFAULTS.settings;
  const pool = file.trafficPolicy?.connectionPool;
  const od = file.trafficPolicy?.outlierDetection;
  const sc = file.sidecar ?? {};
  const ms = (text: string | undefined, key: string, fallback: number, min = 1, max = 3_600_000): number => {
    if (text === undefined) return fallback;
    const v = durationToMs(text);
    if (!(v >= min && v <= max)) problems.push(`${source}: ${key}: ${text} is out of range [${min}ms, ${max / 1000}s]`);
    return v;
  };
  // Envoy meaning: max_requests bounds requests in flight; for HTTP/1.1, maxConnections bounds them too.
  const bounds = [pool?.tcp?.maxConnections, pool?.http?.http2MaxRequests].filter((v): v is number => v !== undefined);
  const limit = bounds.length > 0 ? Math.min(...bounds) : d.concurrency.limit;
  const concurrency = {
    mode: sc.concurrency?.mode ?? d.concurrency.mode,
    limit,
    min: sc.concurrency?.min ?? d.concurrency.min,
    max: sc.concurrency?.max ?? Math.max(d.concurrency.max, limit),
  };
  if (concurrency.min > concurrency.max)
    problems.push(`${source}: sidecar.concurrency.min (${concurrency.min}) must be <= max (${concurrency.max})`);
  const queue = {
    size: pool?.http?.http1MaxPendingRequests ?? d.queue.size,
    timeoutMs: ms(sc.queue?.timeout, 'sidecar.queue.timeout', d.queue.timeoutMs),
    codelTargetMs: ms(sc.queue?.codelTarget, 'sidecar.queue.codelTarget', d.queue.codelTargetMs),
    codelIntervalMs: ms(sc.queue?.codelInterval, 'sidecar.queue.codelInterval', d.queue.codelIntervalMs),
  };
  const resetTimeoutMs = ms(
    sc.breaker?.resetTimeout ?? od?.baseEjectionTime,
    sc.breaker?.resetTimeout ? 'sidecar.breaker.resetTimeout' : 'trafficPolicy.outlierDetection.baseEjectionTime',
    d.breaker.resetTimeoutMs,
  );
  const breaker = {
    errorThresholdPercentage: sc.breaker?.errorThresholdPercentage ?? d.breaker.errorThresholdPercentage,
    volumeThreshold: sc.breaker?.volumeThreshold ?? d.breaker.volumeThreshold,
    rollingWindowMs: ms(sc.breaker?.rollingWindow, 'sidecar.breaker.rollingWindow', d.breaker.rollingWindowMs, 100),
    resetTimeoutMs,
    maxResetTimeoutMs: ms(
      sc.breaker?.maxResetTimeout,
      'sidecar.breaker.maxResetTimeout',
      Math.max(d.breaker.maxResetTimeoutMs, resetTimeoutMs),
    ),
    consecutive5xxErrors: od?.consecutive5xxErrors ?? d.breaker.consecutive5xxErrors,
    consecutiveGatewayErrors: od?.consecutiveGatewayErrors ?? d.breaker.consecutiveGatewayErrors,
  };
  if (breaker.resetTimeoutMs > breaker.maxResetTimeoutMs)
    problems.push(`${source}: sidecar.breaker.resetTimeout must be <= maxResetTimeout`);
  const upstream = {
    timeoutMs: ms(sc.upstream?.timeout, 'sidecar.upstream.timeout', d.upstream.timeoutMs),
    connectTimeoutMs: ms(
      pool?.tcp?.connectTimeout,
      'trafficPolicy.connectionPool.tcp.connectTimeout',
      d.upstream.connectTimeoutMs,
    ),
    maxRequestsPerConnection: pool?.http?.maxRequestsPerConnection ?? d.upstream.maxRequestsPerConnection,
    idleTimeoutMs: ms(
      pool?.http?.idleTimeout,
      'trafficPolicy.connectionPool.http.idleTimeout',
      d.upstream.idleTimeoutMs,
    ),
  };
  const drain = {
    delayMs: ms(sc.drain?.delay, 'sidecar.drain.delay', d.drain.delayMs, 0),
    graceMs: ms(sc.drain?.grace, 'sidecar.drain.grace', d.drain.graceMs),
  };
  if (drain.delayMs >= drain.graceMs)
    problems.push(`${source}: sidecar.drain.delay must be shorter than sidecar.drain.grace`);
  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze({
    concurrency,
    queue,
    deadline: { header: (sc.deadline?.header ?? d.deadline.header).toLowerCase() },
    breaker,
    upstream,
    readiness: { failWhenOpen: sc.readiness?.failWhenOpen ?? d.readiness.failWhenOpen },
    drain,
  });
}

const FLAGS = ['listen', 'upstream', 'admin-port', 'config', 'check-config'];

/**
 * Builds the configuration from command-line flags, then environment, then defaults.
 * @throws ConfigError listing every problem in flags, environment and the config file
 */
export function loadConfig(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): Config {
  const problems: string[] = [];
  let flags: Record<string, string | boolean | undefined> = {};
  try {
    flags = parseArgs({
      args: [...argv],
      options: {
        listen: { type: 'string' },
        upstream: { type: 'string' },
        'admin-port': { type: 'string' },
        config: { type: 'string' },
        'check-config': { type: 'boolean' },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (err) {
    const line = (err as Error).message.split('\n')[0] ?? 'bad arguments';
    const unknown = /Unknown option '--([^']+)'/.exec(line)?.[1];
    const hint = unknown === undefined ? undefined : closest(unknown, FLAGS);
    problems.push(hint === undefined ? line : `${line}; did you mean --${hint}?`);
  }
  const pick = (flag: string, envName: string): string | undefined => {
    const v = flags[flag];
    return typeof v === 'string' ? v : env[envName] || undefined;
  };
  const listen = parseListen(pick('listen', ENV.listen) ?? DEFAULTS.listen, problems);
  const upstream = parseUpstream(pick('upstream', ENV.upstream) ?? DEFAULTS.upstream, problems);
  const adminText = pick('admin-port', ENV.adminPort);
  const adminPort =
    adminText === undefined ? DEFAULTS.adminPort : parsePort(adminText, `--admin-port/${ENV.adminPort}`, problems);
  const configPath = pick('config', ENV.config);
  let settings: Settings = DEFAULTS.settings;
  if (configPath !== undefined) {
    try {
      settings = loadSettings(configPath);
    } catch (err) {
      if (err instanceof ConfigError) problems.push(...err.problems);
      else throw err;
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze({
    listen,
    upstream,
    adminPort,
    configPath,
    checkOnly: flags['check-config'] === true,
    settings,
  });
}

function parsePort(text: string, name: string, problems: string[]): number {
  const port = /^\d+$/.test(text) ? Number(text) : Number.NaN;
  if (!(port >= 0 && port <= 65535)) problems.push(`${name}: "${text}" is not a port (0-65535)`);
  return port;
}

function parseListen(text: string, problems: string[]): { host: string; port: number } {
  const colon = text.lastIndexOf(':');
  const host = colon < 0 ? '0.0.0.0' : text.slice(0, colon).replace(/^\[(.*)\]$/, '$1');
  const port = parsePort(colon < 0 ? text : text.slice(colon + 1), `--listen/${ENV.listen}`, problems);
  if (host === '') problems.push(`--listen/${ENV.listen}: "${text}" has an empty host`);
  return { host, port };
}

function parseUpstream(text: string, problems: string[]): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    problems.push(`--upstream/${ENV.upstream}: "${text}" is not a URL (e.g. http://127.0.0.1:8000)`);
    return text;
  }
  if (url.protocol !== 'http:')
    problems.push(`--upstream/${ENV.upstream}: only http:// upstreams are supported, got ${url.protocol}`);
  if (url.pathname !== '/' || url.search !== '')
    problems.push(`--upstream/${ENV.upstream}: must be an origin without path or query, got "${text}"`);
  return url.origin;
}
