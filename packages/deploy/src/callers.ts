// N callers on a cluster: the Kubernetes form of the lab's caller-count experiment. The rendered overlay's
// `callers` Job is recreated with N pods (Indexed: pod i is caller i); once all N are ready, each gets 1/N of
// the rate through its own Envoy, all starting at the same instant; their results are copied out and merged
// into one report (vegeta's own `report` over every caller's results, or the k6 merge in merge.ts).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseAllDocuments } from 'yaml';
import { DeployError } from './errors.js';
import { mergeK6Csv, formatK6Report } from './merge.js';
import { firstLine, type Run } from './run.js';

/** The Job and container the callers run in (manifests/base/callers-job.yaml). */
export const CALLERS_JOB = 'callers';
/** The caller's container name. */
export const CALLER_CONTAINER = 'caller';
/** Most callers one run may start. */
export const MAX_CALLERS = 64;
/** Seconds between "all ready" and the common start, so every exec has reached its pod. */
const START_DELAY_S = 5;

/** The load tool and what it runs. */
export type Tool = 'vegeta' | 'k6';

/** One attack: the overlay it targets, how many callers, the total rate and how long. */
export interface AttackOptions {
  /** kustomization to render the callers Job from (the same one make deploy-* applied) */
  readonly kustomization: string;
  readonly namespace: string;
  readonly callers: number;
  /** total requests per second over all callers */
  readonly rate: number;
  /** e.g. 10s, 1m */
  readonly duration: string;
  readonly tool: Tool;
  /** vegeta targets file, relative to the pod's /client (vegeta/post-target) */
  readonly targets: string;
  /** k6 script, relative to /client (k6/reference.ts) */
  readonly script: string;
  /** where the callers' results and the merged report go */
  readonly reportDir: string;
  /** the local vegeta that merges the results (.tools/bin/vegeta) */
  readonly vegeta: string;
  /** how long to wait for the callers to be ready, ms */
  readonly readyTimeoutMs: number;
}

/** Every problem with the options, one line each. */
export function attackProblems(o: Pick<AttackOptions, 'callers' | 'rate' | 'duration'>): string[] {
  const problems: string[] = [];
  if (!Number.isInteger(o.callers) || o.callers < 1 || o.callers > MAX_CALLERS)
    problems.push(`CALLERS=${o.callers}: must be a whole number from 1 to ${MAX_CALLERS}`);
  if (!Number.isFinite(o.rate) || o.rate <= 0)
    problems.push(`RATE=${o.rate}: must be a positive number of requests per second`);
  if (!/^\d+(ms|s|m|h)$/.test(o.duration)) problems.push(`DURATION=${o.duration}: must be like 10s, 2m or 500ms`);
  return problems;
}

/**
 * The callers Job for `n` callers, taken from the rendered overlay so its images, labels and mesh settings are
 * exactly the deployed ones.
 */
export function callersJob(renderedYaml: string, n: number): Record<string, unknown> {
  const job = parseAllDocuments(renderedYaml)
    .map((d) => d.toJS() as { kind?: string; metadata?: { name?: string }; spec?: Record<string, unknown> })
    .find((o) => o.kind === 'Job' && o.metadata?.name === CALLERS_JOB);
  if (!job?.spec) throw new DeployError('DEPLOY_TOOL', [`the rendered overlay has no Job ${CALLERS_JOB}`]);
  return { ...job, spec: { ...job.spec, completions: n, parallelism: n } };
}

/**
 * The shell command caller `index` (0-based) of `n` runs in its pod: wait for the common start (a bounded
 * loop), then the attack with its share of the rate. vegeta takes `rate/Ns` (rate per N seconds = rate/N per
 * second, exactly); k6 takes its execution segment, k6's own way of splitting one test over instances.
 */
export function callerCommand(o: AttackOptions, index: number, startAtS: number): string {
  const wait = `i=0; while [ "$(date +%s)" -lt ${startAtS} ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done`;
  if (o.tool === 'vegeta')
    return `${wait}; exec vegeta attack -rate=${o.rate}/${o.callers}s -duration=${o.duration} -targets=${o.targets}`;
  const n = o.callers;
  const seg = (i: number): string => (i === 0 ? '0' : i === n ? '1' : `${i}/${n}`);
  const sequence = Array.from({ length: n + 1 }, (_, i) => seg(i)).join(',');
  return (
    `${wait}; RATE=${o.rate} DURATION=${o.duration} k6 run --quiet --execution-segment ${seg(index)}:${seg(index + 1)}` +
    ` --execution-segment-sequence ${sequence} --out csv=/tmp/k6-caller.csv ${o.script} >/tmp/k6-caller.txt 2>&1;` +
    ' echo "k6 exit $?" >>/tmp/k6-caller.txt'
  );
}

interface PodList {
  items?: {
    metadata?: { name?: string; labels?: Record<string, string> };
    status?: {
      phase?: string;
      conditions?: { type?: string; status?: string }[];
      containerStatuses?: { state?: { waiting?: { reason?: string; message?: string } } }[];
      initContainerStatuses?: { state?: { waiting?: { reason?: string; message?: string } } }[];
    };
  }[];
}

/** The callers' pods, by index, once all `n` are ready; rejects with what is wrong when they are not in time. */
export async function waitForCallers(
  run: Run,
  namespace: string,
  n: number,
  timeoutMs: number,
  say: (line: string) => void,
): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    const r = await run(
      'kubectl',
      ['-n', namespace, 'get', 'pods', '-l', `batch.kubernetes.io/job-name=${CALLERS_JOB}`, '-o', 'json'],
      { timeoutMs: 30_000 },
    );
    if (r.code !== 0) throw new DeployError('DEPLOY_TOOL', [`kubectl get pods: ${firstLine(r)}`]);
    const pods = (JSON.parse(r.stdout) as PodList).items ?? [];
    const ready = pods.filter((p) => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
    const stuck = pods
      .flatMap((p) => [...(p.status?.initContainerStatuses ?? []), ...(p.status?.containerStatuses ?? [])])
      .map((s) => s.state?.waiting)
      .find((w) => w?.reason && /ImagePull|ErrImage|CrashLoop|CreateContainerConfig/.test(w.reason));
    if (stuck)
      throw new DeployError('DEPLOY_TOOL', [
        `a caller cannot start: ${stuck.reason}${stuck.message ? ` (${stuck.message})` : ''}`,
      ]);
    const status = `${ready.length}/${n} callers ready`;
    if (status !== last) say(status);
    last = status;
    if (ready.length >= n) {
      const byIndex = ready
        .map((p) => ({
          name: p.metadata?.name ?? '',
          index: Number(p.metadata?.labels?.['batch.kubernetes.io/job-completion-index'] ?? -1),
        }))
        .sort((a, b) => a.index - b.index);
      return byIndex.slice(0, n).map((p) => p.name);
    }
    if (Date.now() > deadline)
      throw new DeployError('DEPLOY_TOOL', [
        `only ${ready.length} of ${n} callers were ready after ${timeoutMs / 1000} s`,
      ]);
    await sleep(2000);
  }
}

/** Runs the attack end to end; returns the merged report's text. */
export async function attack(run: Run, o: AttackOptions, say: (line: string) => void): Promise<string> {
  const problems = attackProblems(o);
  if (problems.length > 0) throw new DeployError('DEPLOY_USAGE', problems);
  const rendered = await run('kubectl', ['kustomize', o.kustomization], { timeoutMs: 60_000 });
  if (rendered.code !== 0)
    throw new DeployError('DEPLOY_TOOL', [`kubectl kustomize ${o.kustomization}: ${firstLine(rendered)}`]);
  const job = callersJob(rendered.stdout, o.callers);
  mkdirSync(o.reportDir, { recursive: true });

  say(`recreating Job ${CALLERS_JOB} in ${o.namespace} with ${o.callers} caller(s)`);
  await must(run, ['-n', o.namespace, 'delete', 'job', CALLERS_JOB, '--ignore-not-found', '--wait=true']);
  await must(run, ['-n', o.namespace, 'apply', '-f', '-'], JSON.stringify(job));
  const pods = await waitForCallers(run, o.namespace, o.callers, o.readyTimeoutMs, say);

  const startAtS = Math.ceil(Date.now() / 1000) + START_DELAY_S;
  say(`${o.callers} caller(s) x ${(o.rate / o.callers).toFixed(2)} req/s for ${o.duration}, starting together`);
  const exec = (pod: string, command: string, stdoutFile?: string): ReturnType<Run> =>
    run('kubectl', ['-n', o.namespace, 'exec', pod, '-c', CALLER_CONTAINER, '--', 'sh', '-c', command], {
      ...(stdoutFile ? { stdoutFile } : {}),
      timeoutMs: durationMs(o.duration) + 120_000,
    });
  const files = pods.map((_, i) => join(o.reportDir, `caller-${i}.${o.tool === 'vegeta' ? 'bin' : 'csv'}`));
  const results = await Promise.all(
    pods.map((pod, i) => exec(pod, callerCommand(o, i, startAtS), o.tool === 'vegeta' ? files[i] : undefined)),
  );
  const failed = results.flatMap((r, i) => (r.code === 0 ? [] : [`caller ${i} (${pods[i]}): ${firstLine(r)}`]));
  if (failed.length > 0) throw new DeployError('DEPLOY_TOOL', failed);

  if (o.tool === 'vegeta') {
    const text = await run(o.vegeta, ['report', '-type=text', ...files], { timeoutMs: 60_000 });
    const json = await run(o.vegeta, ['report', '-type=json', ...files], { timeoutMs: 60_000 });
    if (text.code !== 0 || json.code !== 0) throw new DeployError('DEPLOY_TOOL', [`vegeta report: ${firstLine(text)}`]);
    writeFileSync(join(o.reportDir, 'report.txt'), text.stdout);
    writeFileSync(join(o.reportDir, 'report.json'), json.stdout);
    return text.stdout;
  }
  for (const [i, pod] of pods.entries()) {
    const csv = await exec(pod, 'cat /tmp/k6-caller.csv', files[i]);
    const log = await exec(pod, 'cat /tmp/k6-caller.txt');
    writeFileSync(join(o.reportDir, `caller-${i}.txt`), log.stdout);
    if (csv.code !== 0) throw new DeployError('DEPLOY_TOOL', [`caller ${i}: no k6 output (${firstLine(csv)})`]);
  }
  const merged = mergeK6Csv(files.map((f) => readFileSync(f, 'utf8')));
  writeFileSync(join(o.reportDir, 'report.json'), `${JSON.stringify(merged, null, 2)}\n`);
  const text = formatK6Report(merged);
  writeFileSync(join(o.reportDir, 'report.txt'), text);
  return text;
}

async function must(run: Run, args: string[], input?: string): Promise<void> {
  const r = await run('kubectl', args, { ...(input !== undefined ? { input } : {}), timeoutMs: 180_000 });
  if (r.code !== 0) throw new DeployError('DEPLOY_TOOL', [`kubectl ${args.slice(2, 4).join(' ')}: ${firstLine(r)}`]);
}

/** `10s`, `2m`, `500ms`, `1h` in milliseconds. */
export function durationMs(text: string): number {
  const m = /^(\d+)(ms|s|m|h)$/.exec(text);
  if (!m) return NaN;
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'ms' | 's' | 'm' | 'h'];
  return Number(m[1]) * unit;
}
