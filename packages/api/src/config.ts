import { fileURLToPath } from 'node:url';
import { ApiError } from './errors.js';

/** Environment variable names the API reads (seed-compatible names first). */
export const ENV = {
  port: 'PORT',
  host: 'HOST',
  modelFilepath: 'MODEL_FILEPATH',
  labelFilepath: 'LABEL_FILEPATH',
  workers: 'WORKERS',
  logLevel: 'LOG_LEVEL',
  logFormat: 'LOG_FORMAT',
  maxBatchRows: 'MAX_BATCH_ROWS',
  bodyLimitBytes: 'BODY_LIMIT_BYTES',
  shutdownTimeoutMs: 'SHUTDOWN_TIMEOUT_MS',
  inferenceConcurrency: 'INFERENCE_CONCURRENCY',
  inferenceMinMs: 'INFERENCE_MIN_MS',
  modelName: 'MODEL_NAME',
  grpcPort: 'GRPC_PORT',
} as const;

/** The model and labels shipped with the package (a copy of the reference deployment's). */
export const SHIPPED_MODEL_FILEPATH = fileURLToPath(new URL('../models/iris_svc.onnx', import.meta.url));
/** The label file shipped with the package. */
export const SHIPPED_LABEL_FILEPATH = fileURLToPath(new URL('../models/label.json', import.meta.url));

/** Log levels pino knows. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
/** Log output formats. */
export const LOG_FORMATS = ['json', 'text'] as const;

/** Validated, frozen settings of one API process. */
export interface ApiConfig {
  readonly port: number;
  readonly host: string;
  /** Model to serve; when the file is missing the shipped model is served instead. */
  readonly modelFilepath: string;
  /** Class -> name file; when missing the shipped label.json is used. */
  readonly labelFilepath: string;
  /** node:cluster worker processes; 1 = serve from this process. */
  readonly workers: number;
  readonly logLevel: (typeof LOG_LEVELS)[number];
  readonly logFormat: (typeof LOG_FORMATS)[number];
  /** Most rows one request may carry; more is answered 413. */
  readonly maxBatchRows: number;
  /** Largest request body; more is answered 413. */
  readonly bodyLimitBytes: number;
  /** How long SIGTERM waits for in-flight requests before closing connections. */
  readonly shutdownTimeoutMs: number;
  /** Most inferences at once per process, the rest wait in FIFO order; 0 = no limit (inference-slots.ts). */
  readonly inferenceConcurrency: number;
  /** Each inference holds its slot at least this long, ms: a heavier model's service time; 0 = off. */
  readonly inferenceMinMs: number;
  /** The model's name in the Open Inference Protocol v2 (`/v2/models/{name}`, ModelInfer's model_name). */
  readonly modelName: string;
  /** Port of the v2 gRPC service (inference.GRPCInferenceService), 0 = any free port; undefined = not served. */
  readonly grpcPort: number | undefined;
}

/** Defaults, with units. */
export const DEFAULTS: ApiConfig = Object.freeze({
  port: 8000,
  host: '0.0.0.0',
  modelFilepath: SHIPPED_MODEL_FILEPATH,
  labelFilepath: SHIPPED_LABEL_FILEPATH,
  workers: 1,
  logLevel: 'info',
  logFormat: 'json',
  maxBatchRows: 1024, // rows
  bodyLimitBytes: 1024 * 1024, // 1 MiB
  shutdownTimeoutMs: 10_000, // 10 s, inside Kubernetes' default 30 s grace period
  inferenceConcurrency: 0, // no limit: the model runs as fast as the CPU allows
  inferenceMinMs: 0,
  modelName: 'iris',
  grpcPort: undefined, // gRPC off unless GRPC_PORT is set
});

/** Thrown by {@link loadConfig}; `problems` lists every invalid setting. */
export class ConfigError extends ApiError {
  /** @param problems one line per invalid setting */
  constructor(readonly problems: readonly string[]) {
    super('CONFIG_INVALID', `invalid configuration: ${problems.join('; ')}`);
  }
}

function integer(
  env: NodeJS.ProcessEnv,
  name: string,
  fallback: number,
  min: number,
  max: number,
  problems: string[],
): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const value = Number(raw.trim());
  if (!/^\d+$/.test(raw.trim()) || value < min || value > max) {
    problems.push(`${name}=${JSON.stringify(raw)}: expected an integer from ${min} to ${max}`);
    return fallback;
  }
  return value;
}

function oneOf<T extends string>(
  env: NodeJS.ProcessEnv,
  name: string,
  fallback: T,
  allowed: readonly T[],
  problems: string[],
): T {
  const raw = env[name]?.trim().toLowerCase();
  if (raw === undefined || raw === '') return fallback;
  if (!(allowed as readonly string[]).includes(raw)) {
    problems.push(`${name}=${JSON.stringify(env[name])}: expected one of ${allowed.join(', ')}`);
    return fallback;
  }
  return raw as T;
}

function text(env: NodeJS.ProcessEnv, name: string, fallback: string): string {
  const raw = env[name]?.trim();
  return raw === undefined || raw === '' ? fallback : raw;
}

/** MODEL_NAME: one URL path segment (it appears in /v2/models/{name}). */
function modelName(env: NodeJS.ProcessEnv, problems: string[]): string {
  const name = text(env, ENV.modelName, DEFAULTS.modelName);
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(name)) {
    problems.push(`${ENV.modelName}=${JSON.stringify(env[ENV.modelName])}: expected letters, digits, '.', '_' or '-'`);
  }
  return name;
}

/**
 * Reads and validates the API settings from the environment, once.
 * @throws {ConfigError} listing every invalid setting, not only the first
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): ApiConfig {
  const problems: string[] = [];
  const config: ApiConfig = {
    port: integer(env, ENV.port, DEFAULTS.port, 0, 65_535, problems),
    host: text(env, ENV.host, DEFAULTS.host),
    modelFilepath: text(env, ENV.modelFilepath, DEFAULTS.modelFilepath),
    labelFilepath: text(env, ENV.labelFilepath, DEFAULTS.labelFilepath),
    workers: integer(env, ENV.workers, DEFAULTS.workers, 1, 64, problems),
    logLevel: oneOf(env, ENV.logLevel, DEFAULTS.logLevel, LOG_LEVELS, problems),
    logFormat: oneOf(env, ENV.logFormat, DEFAULTS.logFormat, LOG_FORMATS, problems),
    maxBatchRows: integer(env, ENV.maxBatchRows, DEFAULTS.maxBatchRows, 1, 1_000_000, problems),
    bodyLimitBytes: integer(env, ENV.bodyLimitBytes, DEFAULTS.bodyLimitBytes, 64, 1024 ** 3, problems),
    shutdownTimeoutMs: integer(env, ENV.shutdownTimeoutMs, DEFAULTS.shutdownTimeoutMs, 0, 3_600_000, problems),
    inferenceConcurrency: integer(env, ENV.inferenceConcurrency, DEFAULTS.inferenceConcurrency, 0, 10_000, problems),
    inferenceMinMs: integer(env, ENV.inferenceMinMs, DEFAULTS.inferenceMinMs, 0, 600_000, problems),
    modelName: modelName(env, problems),
    grpcPort: (env[ENV.grpcPort]?.trim() ?? '') === '' ? undefined : integer(env, ENV.grpcPort, 0, 0, 65_535, problems),
  };
  if (config.grpcPort !== undefined && config.grpcPort !== 0 && config.grpcPort === config.port) {
    problems.push(`${ENV.grpcPort}=${config.grpcPort}: the HTTP server listens on that port (${ENV.port})`);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze(config);
}
