import { parseArgs } from 'node:util';
import { LoaderError } from './errors.js';
import { durationToMs } from '@infer-cb/common';

/** URI schemes the loader can fetch from. */
export const SCHEMES = ['file:', 'http:', 'https:', 'gs:'] as const;

/** Validated, frozen loader settings. */
export interface LoaderConfig {
  /** Where the model comes from (file://, http(s)://, gs://bucket/object). */
  readonly source: URL;
  /** Where the model is installed; written atomically. */
  readonly modelFilepath: string;
  /** Expected sha256 of the model, lower-case hex, when given. */
  readonly sha256: string | undefined;
  /** Limit for one whole attempt (connect, headers and body), in milliseconds. */
  readonly timeoutMs: number;
  /** Attempts after the first one for retryable failures. */
  readonly retries: number;
  /** Base of the exponential backoff, in milliseconds (attempt n waits up to base * 2^n). */
  readonly backoffMs: number;
  /** Cap on any wait between attempts, including a server's Retry-After, in milliseconds. */
  readonly maxBackoffMs: number;
}

/** Defaults, with units. */
export const DEFAULTS = {
  timeout: '30s', // per attempt
  retries: 3, // 4 attempts in all
  backoff: '1s', // first retry waits up to 1 s, then 2 s, 4 s ...
  maxBackoff: '30s', // also caps Retry-After
} as const;

/** The flags, as node:util parseArgs options. */
const OPTIONS = {
  source: { type: 'string' },
  'model-filepath': { type: 'string' },
  sha256: { type: 'string' },
  timeout: { type: 'string' },
  retries: { type: 'string' },
  backoff: { type: 'string' },
  'max-backoff': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** The `--help` text. */
export const USAGE = `Usage: model-loader --source URI --model-filepath PATH [options]

Fetch an ONNX model, verify it and install it atomically at PATH.

  --source URI            file:///path, http(s)://host/path or gs://bucket/object (public, anonymous;
                          STORAGE_EMULATOR_HOST=http://host:port redirects gs:// to an emulator)
  --model-filepath PATH   where to install the model (its directory is created if missing)
  --sha256 HEX            expected sha256; when PATH already has it, exit 0 without downloading
  --timeout DURATION      limit per attempt, connect to last byte (default ${DEFAULTS.timeout})
  --retries N             retries after network errors, HTTP 5xx/429, timeouts (default ${DEFAULTS.retries})
  --backoff DURATION      backoff base: retry n waits random(0, base * 2^n) (default ${DEFAULTS.backoff})
  --max-backoff DURATION  cap on one wait, Retry-After included (default ${DEFAULTS.maxBackoff})
  -h, --help              print this help

Durations: 500ms, 30s, 1.5s, 2m, 1m30s. Exit codes: see docs/loader.md (0 = installed or already present).`;

/** What the command line asks for: run with a config, or print help. */
export type Command = { readonly kind: 'help' } | { readonly kind: 'run'; readonly config: LoaderConfig };

/**
 * Parses and validates the command line, reporting every problem at once.
 * @throws LoaderError LOADER_USAGE listing every problem, separated by "; "
 */
export function parseCommand(argv: readonly string[]): Command {
  const problems: string[] = [];
  const { values, tokens } = parseArgs({
    args: [...argv],
    options: OPTIONS,
    strict: false,
    allowPositionals: true,
    tokens: true,
  });

  for (const token of tokens) {
    if (token.kind === 'positional') {
      problems.push(`unexpected argument "${token.value}"`);
    } else if (token.kind === 'option') {
      const spec = (OPTIONS as Record<string, { type: 'string' | 'boolean' }>)[token.name];
      if (spec === undefined) problems.push(`unknown flag ${token.rawName}`);
      else if (spec.type === 'string' && token.value === undefined) problems.push(`${token.rawName} needs a value`);
      else if (spec.type === 'boolean' && token.value !== undefined) problems.push(`${token.rawName} takes no value`);
    }
  }
  if (values.help === true && problems.length === 0) return { kind: 'help' };

  const text = (name: keyof typeof OPTIONS): string | undefined => {
    const value = values[name];
    return typeof value === 'string' ? value : undefined;
  };

  const source = parseSource(text('source'), problems);
  const modelFilepath = text('model-filepath');
  if (modelFilepath === undefined) problems.push('--model-filepath is required');
  else if (modelFilepath.trim() === '' || modelFilepath.endsWith('/'))
    problems.push(`--model-filepath "${modelFilepath}" must name a file`);

  let sha256 = text('sha256');
  if (sha256 !== undefined) {
    sha256 = sha256.toLowerCase();
    if (!/^[0-9a-f]{64}$/.test(sha256)) problems.push(`--sha256 "${text('sha256')}" must be 64 hexadecimal characters`);
  }

  const timeoutMs = duration('--timeout', text('timeout') ?? DEFAULTS.timeout, problems, 1);
  const backoffMs = duration('--backoff', text('backoff') ?? DEFAULTS.backoff, problems, 0);
  const maxBackoffMs = duration('--max-backoff', text('max-backoff') ?? DEFAULTS.maxBackoff, problems, 0);
  if (backoffMs !== undefined && maxBackoffMs !== undefined && maxBackoffMs < backoffMs) {
    problems.push(`--max-backoff (${maxBackoffMs}ms) must not be below --backoff (${backoffMs}ms)`);
  }

  const retriesText = text('retries') ?? String(DEFAULTS.retries);
  const retries = /^\d+$/.test(retriesText) ? Number(retriesText) : NaN;
  if (!(retries <= 100)) problems.push(`--retries "${retriesText}" must be a whole number from 0 to 100`);

  if (
    problems.length > 0 ||
    source === undefined ||
    modelFilepath === undefined ||
    timeoutMs === undefined ||
    backoffMs === undefined ||
    maxBackoffMs === undefined
  ) {
    throw new LoaderError('LOADER_USAGE', `${problems.join('; ')} (see --help)`);
  }
  const config: LoaderConfig = { source, modelFilepath, sha256, timeoutMs, retries, backoffMs, maxBackoffMs };
  return { kind: 'run', config: Object.freeze(config) };
}

function parseSource(text: string | undefined, problems: string[]): URL | undefined {
  if (text === undefined) {
    problems.push('--source is required');
    return undefined;
  }
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    problems.push(`--source "${text}" is not a URI (expected file://, http(s):// or gs://)`);
    return undefined;
  }
  if (!(SCHEMES as readonly string[]).includes(url.protocol)) {
    problems.push(`--source scheme "${url.protocol}" is not supported (expected file://, http(s):// or gs://)`);
    return undefined;
  }
  if (url.protocol === 'gs:' && (url.hostname === '' || url.pathname.length <= 1)) {
    problems.push(`--source "${text}" must be gs://bucket/object`);
    return undefined;
  }
  if (url.protocol === 'file:' && url.pathname.endsWith('/')) {
    problems.push(`--source "${text}" must name a file`);
    return undefined;
  }
  return url;
}

function duration(flag: string, text: string, problems: string[], minMs: number): number | undefined {
  // The Istio duration syntax the sidecar takes too ("500ms", "30s", "1m30s"), rounded to whole ms.
  const ms = Math.round(durationToMs(text));
  if (Number.isNaN(ms)) {
    problems.push(`${flag} "${text}" is not a duration (e.g. 500ms, 30s, 2m)`);
    return undefined;
  }
  if (ms < minMs) {
    problems.push(`${flag} "${text}" must be at least ${minMs}ms`);
    return undefined;
  }
  return ms;
}
