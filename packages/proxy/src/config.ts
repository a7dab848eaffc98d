import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { closest } from '@infer-cb/common';
import { ConfigError } from './errors.js';
import { resolveSettings, type Settings } from './settings.js';

export { SETTINGS, type Settings } from './settings.js';

/** Log levels `CB_LOG_LEVEL` takes (pino's). */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** A log level. */
export type LogLevel = (typeof LOG_LEVELS)[number];

/** One process option: its flag and/or environment variable, default, and what the usage text says. */
interface ProcessOption {
  /** command-line flag, without the dashes */
  readonly flag?: string;
  /** environment variable */
  readonly env?: string;
  /** the flag's argument in the usage text; none for a switch */
  readonly arg?: string;
  readonly default?: string;
  readonly help: string;
}

/**
 * The command line and the environment, described once: the flags parser, the environment names, the usage
 * text and the problems' names all come from this table. Flags win over environment, environment over
 * defaults.
 */
export const PROCESS_OPTIONS = {
  listen: {
    flag: 'listen',
    env: 'CB_LISTEN',
    arg: '[host:]port',
    default: '8080',
    help: 'proxy listener; all interfaces without a host',
  },
  upstream: {
    flag: 'upstream',
    env: 'CB_UPSTREAM',
    arg: 'http://host:port',
    default: 'http://127.0.0.1:8000',
    help: 'origin of the one upstream',
  },
  adminPort: {
    flag: 'admin-port',
    env: 'CB_ADMIN_PORT',
    arg: 'port',
    default: '9901',
    help: 'admin server, on the host of --listen',
  },
  config: {
    flag: 'config',
    env: 'CB_CONFIG',
    arg: 'file.yaml',
    help: 'config file: a trafficPolicy + sidecar, or a DestinationRule',
  },
  checkConfig: { flag: 'check-config', help: 'validate flags, environment and file, then exit 0 or 2' },
  version: { flag: 'version', help: 'print the version and exit' },
  logLevel: { env: 'CB_LOG_LEVEL', default: 'info', help: `log level: ${LOG_LEVELS.join(', ')}` },
} as const satisfies Record<string, ProcessOption>;

type OptionName = keyof typeof PROCESS_OPTIONS;

/** Environment variable names, one per process option that has one. */
export const ENV = Object.fromEntries(
  Object.entries(PROCESS_OPTIONS).flatMap(([name, o]) => ('env' in o ? [[name, o.env]] : [])),
) as { readonly [K in OptionName as (typeof PROCESS_OPTIONS)[K] extends { env: string } ? K : never]: string };

/** `--flag/ENV`, how problems name an option. */
function optionName(name: OptionName): string {
  const o: ProcessOption = PROCESS_OPTIONS[name];
  return [o.flag === undefined ? undefined : `--${o.flag}`, o.env].filter((x) => x !== undefined).join('/');
}

/** The usage text, from {@link PROCESS_OPTIONS}. */
export const USAGE = (() => {
  const options = Object.values(PROCESS_OPTIONS) as ProcessOption[];
  const synopsis = options
    .filter((o) => o.flag !== undefined)
    .map((o) => `[--${o.flag}${o.arg === undefined ? '' : ` ${o.arg}`}]`)
    .join(' ');
  const rows = options.map((o) => {
    const left = [o.flag === undefined ? '' : `--${o.flag}${o.arg === undefined ? '' : ` ${o.arg}`}`, o.env ?? '']
      .filter((x) => x !== '')
      .join(', ');
    return `  ${left.padEnd(44)} ${o.help}${o.default === undefined ? '' : ` (default ${o.default})`}`;
  });
  return `usage: cb-sidecar ${synopsis}\n${rows.join('\n')}\n  reference: docs/sidecar.md\n`;
})();

/** The whole configuration: process options plus the settings from the file. */
export interface Config {
  readonly listen: { readonly host: string; readonly port: number };
  /** origin of the one upstream, e.g. `http://127.0.0.1:8000` */
  readonly upstream: string;
  readonly adminPort: number;
  readonly configPath: string | undefined;
  readonly checkOnly: boolean;
  readonly logLevel: LogLevel;
  readonly settings: Settings;
}

/** Defaults: the process options' and the settings' (from the table), for one inference pod and its model. */
export const DEFAULTS = {
  listen: PROCESS_OPTIONS.listen.default,
  upstream: PROCESS_OPTIONS.upstream.default,
  adminPort: Number(PROCESS_OPTIONS.adminPort.default),
  settings: resolveSettings({}, 'defaults').settings,
} as const;

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

/** True when a YAML value contains itself (`x: &a [*a]`): nothing could be read from it. */
function refersToItself(value: unknown, open: Set<object> = new Set()): boolean {
  if (typeof value !== 'object' || value === null) return false;
  if (open.has(value)) return true;
  open.add(value);
  const inner = value instanceof Map ? [...value.values()] : Object.values(value);
  const found = inner.some((v) => refersToItself(v, open));
  open.delete(value);
  return found;
}

/**
 * Parses config-file text into settings.
 * @throws ConfigError listing every problem at once: YAML, schema, ranges and relations between settings
 */
export function parseSettings(text: string, source = 'config'): Settings {
  const docs = parseAllDocuments(text);
  const yamlProblems = docs.flatMap((d) => d.errors.map((e) => `${source}: YAML: ${e.message.split('\n')[0]}`));
  if (yamlProblems.length > 0) throw new ConfigError(yamlProblems);
  let values: unknown[] = docs.map((d) => d.toJS() as unknown).filter((v) => v != null);
  if (values.some((v) => refersToItself(v)))
    throw new ConfigError([`${source}: YAML: an alias refers to its own anchor`]);
  if (values.length > 1) {
    // A policy file as cb-policy and cb-lab take it (DestinationRule + VirtualService / Sidecar): the pod's
    // numbers are the DestinationRule's; the other kinds configure the callers' proxies.
    const rules = values.filter((v) => (v as { kind?: unknown }).kind === 'DestinationRule');
    if (rules.length !== 1) {
      throw new ConfigError([
        `${source}: expected one trafficPolicy document, or one DestinationRule among several documents; found ${values.length} documents, ${rules.length} DestinationRules`,
      ]);
    }
    values = rules;
  }
  const doc = values[0] ?? {};
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new ConfigError([`${source}: must be a mapping`]);
  const { settings, problems } = resolveSettings(doc, source);
  if (problems.length > 0) throw new ConfigError(problems);
  return settings;
}

/**
 * Builds the configuration from command-line flags, then environment, then defaults.
 * @throws ConfigError listing every problem in flags, environment and the config file
 */
export function loadConfig(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): Config {
  const problems: string[] = [];
  const options = Object.values(PROCESS_OPTIONS) as ProcessOption[];
  const flagNames = options.flatMap((o) => (o.flag === undefined ? [] : [o.flag]));
  let flags: Record<string, string | boolean | undefined> = {};
  try {
    flags = parseArgs({
      args: [...argv],
      options: Object.fromEntries(
        options.flatMap((o) =>
          o.flag === undefined ? [] : [[o.flag, { type: o.arg === undefined ? 'boolean' : 'string' }]],
        ),
      ) as Record<string, { type: 'string' | 'boolean' }>,
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (err) {
    const line = (err as Error).message.split('\n')[0] ?? 'bad arguments';
    const unknown = /Unknown option '--([^']+)'/.exec(line)?.[1];
    const hint = unknown === undefined ? undefined : closest(unknown, flagNames);
    problems.push(hint === undefined ? line : `${line}; did you mean --${hint}?`);
  }
  /** The option's text: its flag, else its environment variable, else its default. */
  const pick = (name: OptionName): string | undefined => {
    const o: ProcessOption = PROCESS_OPTIONS[name];
    const fromFlag = o.flag === undefined ? undefined : flags[o.flag];
    if (typeof fromFlag === 'string') return fromFlag;
    return (o.env === undefined ? undefined : env[o.env]) || o.default;
  };
  const listen = parseListen(pick('listen') as string, problems);
  const upstream = parseUpstream(pick('upstream') as string, problems);
  const adminPort = parsePort(pick('adminPort') as string, optionName('adminPort'), problems);
  const logLevel = parseLogLevel(pick('logLevel') as string, problems);
  if (adminPort !== 0 && adminPort === listen.port)
    problems.push(
      `${optionName('adminPort')} ${adminPort} is the proxy listener's port too; give them different ports`,
    );
  const configPath = pick('config');
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
    checkOnly: flags[PROCESS_OPTIONS.checkConfig.flag] === true,
    logLevel,
    settings,
  });
}

function parsePort(text: string, name: string, problems: string[]): number {
  const port = /^\d+$/.test(text) ? Number(text) : Number.NaN;
  if (!(port >= 0 && port <= 65535)) problems.push(`${name}: "${text}" is not a port (0-65535)`);
  return port;
}

function parseListen(text: string, problems: string[]): { host: string; port: number } {
  const name = optionName('listen');
  const colon = text.lastIndexOf(':');
  const host = colon < 0 ? '0.0.0.0' : text.slice(0, colon).replace(/^\[(.*)\]$/, '$1');
  const port = parsePort(colon < 0 ? text : text.slice(colon + 1), name, problems);
  if (host === '') problems.push(`${name}: "${text}" has an empty host`);
  return { host, port };
}

function parseUpstream(text: string, problems: string[]): string {
  const name = optionName('upstream');
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    problems.push(`${name}: "${text}" is not a URL (e.g. http://127.0.0.1:8000)`);
    return text;
  }
  if (url.protocol !== 'http:') problems.push(`${name}: only http:// upstreams are supported, got ${url.protocol}`);
  if (url.pathname !== '/' || url.search !== '')
    problems.push(`${name}: must be an origin without path or query, got "${text}"`);
  return url.origin;
}

function parseLogLevel(text: string, problems: string[]): LogLevel {
  if ((LOG_LEVELS as readonly string[]).includes(text)) return text as LogLevel;
  const hint = closest(text, LOG_LEVELS);
  problems.push(
    `${optionName('logLevel')}: "${text}" is not a log level (${LOG_LEVELS.join(', ')})` +
      (hint === undefined ? '' : `; did you mean "${hint}"?`),
  );
  return 'info';
}
