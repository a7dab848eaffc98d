#!/usr/bin/env node
// cb-deploy: the tooling behind the Makefile's Kubernetes targets. Progress on stdout; on failure one line per
// problem on stderr (`cb-deploy: CODE: problem`) and a non-zero exit.
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ARMS, ARM_NAMES, isArm, type Arm } from './arms.js';
import { attack, durationMs, type Tool } from './callers.js';
import { DeployError } from './errors.js';
import { IMAGE_NAMES, parseLabels, writeOverlay, type ImageName } from './overlay.js';
import { preflight, type ImageCheck } from './preflight.js';
import { run } from './run.js';

const USAGE = `usage:
  cb-deploy overlay   --arm ARM --out DIR --default-registry REG [--image NAME=REF]... [--monitoring]
                      [--monitoring-labels k=v,...] [--monitoring-namespace NS] [--model-source URI]
                      [--model-sha256 HEX] [--model-required true|false] [--istio-revision REV] [--mtls PERMISSIVE|STRICT]
  cb-deploy preflight --image REF... [--image-check auto|registry|minikube|kind|none] [--istio-revision REV]
                      [--build-hint TEXT]
  cb-deploy attack    --arm ARM --kustomization DIR [--callers N] [--rate R] [--duration 10s] [--tool vegeta|k6]
                      [--targets vegeta/post-target] [--script k6/reference.ts] [--report-dir DIR] [--vegeta PATH]
  ARM: ${ARM_NAMES.join(', ')}`;

const PREFIX = 'cb-deploy:';

function usage(problems: string[]): never {
  throw new DeployError('DEPLOY_USAGE', problems);
}

function arm(value: string | undefined): Arm {
  if (value === undefined) usage(['--arm is required']);
  if (!isArm(value)) usage([`ARM=${value}: must be one of ${ARM_NAMES.join(', ')}`]);
  return value;
}

function oneOf<T extends string>(name: string, value: string | undefined, allowed: readonly T[], fallback: T): T {
  if (value === undefined || value === '') return fallback;
  if (!(allowed as readonly string[]).includes(value))
    usage([`${name}=${value}: must be one of ${allowed.join(', ')}`]);
  return value as T;
}

async function overlay(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      arm: { type: 'string' },
      out: { type: 'string' },
      'default-registry': { type: 'string' },
      image: { type: 'string', multiple: true },
      monitoring: { type: 'boolean' },
      'monitoring-labels': { type: 'string' },
      'monitoring-namespace': { type: 'string' },
      'model-source': { type: 'string' },
      'model-sha256': { type: 'string' },
      'model-required': { type: 'string' },
      'istio-revision': { type: 'string' },
      mtls: { type: 'string' },
    },
  });
  const problems: string[] = [];
  if (!values.out) problems.push('--out is required');
  if (!values['default-registry']) problems.push('--default-registry is required');
  const images: Partial<Record<ImageName, string>> = {};
  for (const pair of values.image ?? []) {
    const [name, ref] = [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)];
    if (!(IMAGE_NAMES as readonly string[]).includes(name))
      problems.push(`--image ${pair}: NAME must be one of ${IMAGE_NAMES.join(', ')}`);
    else images[name as ImageName] = ref;
  }
  const required = values['model-required'];
  if (required !== undefined && required !== '' && required !== 'true' && required !== 'false')
    problems.push(`MODEL_REQUIRED=${required}: must be true or false`);
  if (problems.length > 0) usage(problems);
  const path = writeOverlay(
    {
      arm: arm(values.arm),
      defaultRegistry: values['default-registry']!,
      images,
      monitoring: values.monitoring ?? false,
      monitoringLabels: parseLabels(values['monitoring-labels'] ?? ''),
      ...(values['monitoring-namespace'] ? { monitoringNamespace: values['monitoring-namespace'] } : {}),
      ...(values['model-source'] !== undefined ? { modelSource: values['model-source'] } : {}),
      ...(values['model-sha256'] !== undefined ? { modelSha256: values['model-sha256'] } : {}),
      ...(required ? { modelRequired: required === 'true' } : {}),
      ...(values['istio-revision'] ? { istioRevision: values['istio-revision'] } : {}),
      ...(values.mtls
        ? { mtlsMode: oneOf('MTLS_MODE', values.mtls, ['PERMISSIVE', 'STRICT'] as const, 'PERMISSIVE') }
        : {}),
    },
    process.cwd(),
    resolve(values.out!),
  );
  say(`wrote ${path}`);
}

async function preflightCommand(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      image: { type: 'string', multiple: true },
      'image-check': { type: 'string' },
      'istio-revision': { type: 'string' },
      'build-hint': { type: 'string' },
    },
  });
  const imageCheck = oneOf<ImageCheck>(
    'IMAGE_CHECK',
    values['image-check'],
    ['auto', 'registry', 'minikube', 'kind', 'none'],
    'auto',
  );
  const ok = await preflight(run, {
    images: values.image ?? [],
    imageCheck,
    ...(values['istio-revision'] ? { istioRevision: values['istio-revision'] } : {}),
    buildHint: values['build-hint'] ?? 'make build_all push_all',
  });
  for (const line of ok) say(`ok: ${line}`);
}

async function attackCommand(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      arm: { type: 'string' },
      kustomization: { type: 'string' },
      callers: { type: 'string', default: '1' },
      rate: { type: 'string', default: '1000' },
      duration: { type: 'string', default: '10s' },
      tool: { type: 'string', default: 'vegeta' },
      targets: { type: 'string', default: 'vegeta/post-target' },
      script: { type: 'string', default: 'k6/reference.ts' },
      'report-dir': { type: 'string' },
      vegeta: { type: 'string', default: 'vegeta' },
      'ready-timeout': { type: 'string', default: '180s' },
    },
  });
  const a = arm(values.arm);
  if (!values.kustomization) usage(['--kustomization is required']);
  const tool = oneOf<Tool>('tool', values.tool, ['vegeta', 'k6'], 'vegeta');
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const reportDir = values['report-dir'] ?? `reports/k8s/${a}-${values.callers}-callers-${tool}-${stamp}`;
  const text = await attack(
    run,
    {
      kustomization: values.kustomization,
      namespace: ARMS[a].namespace,
      callers: Number(values.callers),
      rate: Number(values.rate),
      duration: values.duration,
      tool,
      targets: values.targets,
      script: values.script,
      reportDir,
      vegeta: values.vegeta,
      readyTimeoutMs: durationMs(values['ready-timeout']) || 180_000,
    },
    say,
  );
  process.stdout.write(text);
  say(`results and report.{txt,json} in ${reportDir}`);
}

function say(line: string): void {
  process.stdout.write(`${PREFIX} ${line}\n`);
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'overlay':
        await overlay(rest);
        return 0;
      case 'preflight':
        await preflightCommand(rest);
        return 0;
      case 'attack':
        await attackCommand(rest);
        return 0;
      case '-h':
      case '--help':
        process.stdout.write(`${USAGE}\n`);
        return 0;
      default:
        return usage([command ? `unknown command ${command}` : 'a command is required (overlay, preflight, attack)']);
    }
  } catch (err) {
    const error =
      err instanceof DeployError
        ? err
        : // parseArgs' own errors (unknown option, missing value) are usage errors too
          new DeployError(
            (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS') ? 'DEPLOY_USAGE' : 'DEPLOY_TOOL',
            [(err as Error).message],
          );
    for (const p of error.problems) process.stderr.write(`${PREFIX} ${error.code}: ${p}\n`);
    if (error.code === 'DEPLOY_USAGE') process.stderr.write(`${PREFIX} see cb-deploy --help\n`);
    return error.exitCode;
  }
}

process.exitCode = await main(process.argv.slice(2));
