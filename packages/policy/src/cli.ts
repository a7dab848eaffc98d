import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { parse, stringify } from 'yaml';
import { durationToMs } from '@infer-cb/common';
import { resolveSettings } from '@infer-cb/proxy/settings';
import { callerBootstrap } from './caller.js';
import type { Address } from './envoy.js';
import { PolicyError, failOn } from './errors.js';
import { inboundBootstrap } from './inbound.js';
import { readMeshPolicy, type MeshPolicy } from './policy.js';
import { PROFILE_FACTS, PROFILES, type Profile } from './profiles.js';
import { deriveSidecarLimits, explainAsComments, sidecarConfig, type SidecarConfigOptions } from './sidecar-config.js';

/** The usage text of cb-policy. */
export const USAGE = `usage:
  cb-policy envoy caller  --policy FILE... --service NAME --endpoint HOST:PORT... [--profile book|current]
                          [--listen HOST:PORT] [--admin HOST:PORT] [--service-port N] [--access-log PATH]
  cb-policy envoy inbound --policy FILE... --app HOST:PORT [--profile book|current]
                          [--listen HOST:PORT] [--admin HOST:PORT] [--access-log PATH]
  cb-policy sidecar       --policy FILE... --replicas N [--callers N] [--capacity SLOTSxTIME] [--mode static|adaptive]
                          [--overrides FILE]  (a YAML file's sidecar: section, merged over what is derived)
  cb-policy limits        (the same flags as sidecar; prints the arithmetic above the config)
  cb-policy check         --policy FILE...
  A policy is a DestinationRule (or a bare trafficPolicy document), optionally a VirtualService and an Istio
  Sidecar, in one multi-document file or several --policy files. --capacity 8x200ms: 8 slots of 200 ms each.
  Defaults: --profile current, --callers 1, --mode static, caller --listen 127.0.0.1:15001,
  inbound --listen 127.0.0.1:15006, --admin 127.0.0.1:15000. Output is YAML on stdout; docs/istio-arm.md.
`;

/** What one run of the CLI produced. */
export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

const OPTIONS = {
  policy: { type: 'string', multiple: true },
  profile: { type: 'string' },
  service: { type: 'string' },
  'service-port': { type: 'string' },
  endpoint: { type: 'string', multiple: true },
  listen: { type: 'string' },
  admin: { type: 'string' },
  app: { type: 'string' },
  'access-log': { type: 'string' },
  replicas: { type: 'string' },
  callers: { type: 'string' },
  capacity: { type: 'string' },
  mode: { type: 'string' },
  overrides: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

type Flags = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>['values'];

/**
 * Runs cb-policy on `argv` (without node and the script): YAML on stdout and exit 0, or one line on
 * stderr and exit 2 for bad input. Never throws for bad input.
 */
export function runCli(argv: readonly string[]): CliResult {
  try {
    return { code: 0, ...run(argv) };
  } catch (err) {
    if (err instanceof PolicyError) return { code: 2, stdout: '', stderr: `cb-policy: ${err.message}\n` };
    throw err;
  }
}

function usage(message: string): PolicyError {
  return new PolicyError('POLICY_USAGE', [`${message} (cb-policy --help)`]);
}

function run(argv: readonly string[]): { stdout: string; stderr: string } {
  let parsed: { values: Flags; positionals: string[] };
  try {
    parsed = parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    throw usage((err as Error).message.split('\n')[0] ?? 'bad arguments');
  }
  const { values: f, positionals } = parsed;
  if (f.help === true) return { stdout: USAGE, stderr: '' };
  const command = positionals.join(' ');
  const allowed: Record<string, readonly (keyof Flags)[]> = {
    'envoy caller': ['policy', 'profile', 'service', 'service-port', 'endpoint', 'listen', 'admin', 'access-log'],
    'envoy inbound': ['policy', 'profile', 'app', 'listen', 'admin', 'access-log'],
    sidecar: ['policy', 'replicas', 'callers', 'capacity', 'mode', 'overrides'],
    limits: ['policy', 'replicas', 'callers', 'capacity', 'mode', 'overrides'],
    check: ['policy'],
  };
  const flags = allowed[command];
  if (flags === undefined) throw usage(command === '' ? 'a command is required' : `unknown command "${command}"`);
  const extra = (Object.keys(f) as (keyof Flags)[]).filter((k) => f[k] !== undefined && !flags.includes(k));
  if (extra.length > 0) throw usage(`${command}: --${extra.join(', --')} does not apply`);
  if (f.policy === undefined) throw usage(`${command}: --policy FILE is required`);
  const policy = readMeshPolicy(f.policy);
  const stderr = policy.notModelled.map((line) => `cb-policy: note: ${line}\n`).join('');
  switch (command) {
    case 'envoy caller':
      return { stdout: envoyCaller(policy, f), stderr };
    case 'envoy inbound':
      return { stdout: envoyInbound(policy, f), stderr };
    case 'check':
      return { stdout: `cb-policy: ${policy.source}: valid\n`, stderr };
    default: {
      const opts = sidecarOptions(f);
      const doc = stringify(sidecarConfig(policy, opts));
      const header = `# cb-sidecar config for one replica, derived by cb-policy from ${policy.source}\n`;
      if (command === 'sidecar') return { stdout: header + doc, stderr };
      return { stdout: `${header}${explainAsComments(deriveSidecarLimits(policy, opts))}\n${doc}`, stderr };
    }
  }
}

function profileOf(f: Flags): Profile {
  const p = f.profile ?? 'current';
  if (!(PROFILES as readonly string[]).includes(p)) throw usage(`--profile: must be one of ${PROFILES.join(', ')}`);
  return p as Profile;
}

function address(text: string | undefined, name: string, fallback?: string): Address {
  const t = text ?? fallback;
  if (t === undefined) throw usage(`--${name} HOST:PORT is required`);
  const m = /^(.+):(\d{1,5})$/.exec(t);
  if (m === null || Number(m[2]) > 65535) throw usage(`--${name}: "${t}" is not HOST:PORT`);
  return { address: (m[1] as string).replace(/^\[(.*)\]$/, '$1'), port: Number(m[2]) };
}

function integer(text: string | undefined, name: string, fallback?: number): number {
  if (text === undefined) {
    if (fallback === undefined) throw usage(`--${name} N is required`);
    return fallback;
  }
  if (!/^\d+$/.test(text) || Number(text) < 1) throw usage(`--${name}: "${text}" is not an integer >= 1`);
  return Number(text);
}

function header(policy: MeshPolicy, profile: Profile, what: string): string {
  return `# Envoy bootstrap written by cb-policy: ${what}, profile ${profile} (Istio ${PROFILE_FACTS[profile].istio}), from ${policy.source}\n`;
}

function envoyCaller(policy: MeshPolicy, f: Flags): string {
  const profile = profileOf(f);
  if (f.service === undefined) throw usage('--service NAME is required');
  if (f.endpoint === undefined) throw usage('--endpoint HOST:PORT is required (one per replica)');
  const bootstrap = callerBootstrap(policy, {
    profile,
    service: f.service,
    servicePort: f['service-port'] !== undefined ? integer(f['service-port'], 'service-port') : 8000,
    endpoints: f.endpoint.map((e) => address(e, 'endpoint')),
    listen: address(f.listen, 'listen', '127.0.0.1:15001'),
    admin: address(f.admin, 'admin', '127.0.0.1:15000'),
    ...(f['access-log'] !== undefined ? { accessLog: { path: f['access-log'] } } : {}),
  });
  return header(policy, profile, `the caller of ${f.service}`) + stringify(bootstrap);
}

function envoyInbound(policy: MeshPolicy, f: Flags): string {
  const profile = profileOf(f);
  const bootstrap = inboundBootstrap(policy, {
    profile,
    app: address(f.app, 'app'),
    listen: address(f.listen, 'listen', '127.0.0.1:15006'),
    admin: address(f.admin, 'admin', '127.0.0.1:15000'),
    ...(f['access-log'] !== undefined ? { accessLog: { path: f['access-log'] } } : {}),
  });
  return header(policy, profile, `a replica's inbound Envoy`) + stringify(bootstrap);
}

/**
 * The `sidecar:` section of an overrides file (priority rules, timeouts: what the DestinationRule cannot say),
 * checked with the sidecar's own settings table.
 * @throws PolicyError POLICY_UNREADABLE or POLICY_INVALID, every problem listed
 */
function readOverrides(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new PolicyError('POLICY_UNREADABLE', [`--overrides ${file}: ${(err as Error).message}`]);
  }
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (err) {
    throw new PolicyError('POLICY_INVALID', [`--overrides ${file}: YAML: ${(err as Error).message.split('\n')[0]}`]);
  }
  const keys = typeof doc === 'object' && doc !== null && !Array.isArray(doc) ? Object.keys(doc) : [];
  if (keys.length !== 1 || keys[0] !== 'sidecar')
    throw new PolicyError('POLICY_INVALID', [`--overrides ${file}: must be a mapping with one key, sidecar`]);
  const sidecar = (doc as { sidecar: unknown }).sidecar;
  failOn('POLICY_INVALID', resolveSettings({ sidecar }, `--overrides ${file}`).problems);
  return sidecar as Record<string, unknown>;
}

function sidecarOptions(f: Flags): SidecarConfigOptions {
  const mode = f.mode ?? 'static';
  if (mode !== 'static' && mode !== 'adaptive') throw usage(`--mode: must be static or adaptive, got "${mode}"`);
  const opts: SidecarConfigOptions = {
    replicas: integer(f.replicas, 'replicas'),
    callers: integer(f.callers, 'callers', 1),
    mode,
    ...(f.overrides !== undefined ? { overrides: readOverrides(f.overrides) } : {}),
  };
  if (f.capacity === undefined) return opts;
  const m = /^(\d+)x(.+)$/.exec(f.capacity);
  const serviceTimeMs = m === null ? Number.NaN : durationToMs(m[2] as string);
  if (m === null || !(serviceTimeMs > 0) || Number(m[1]) < 1)
    throw usage(`--capacity: "${f.capacity}" is not SLOTSxSERVICE_TIME (e.g. 8x200ms)`);
  return { ...opts, model: { concurrency: Number(m[1]), serviceTimeMs } };
}
