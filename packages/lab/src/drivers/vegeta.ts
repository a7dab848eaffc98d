import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LabError } from '../errors.js';
import type { AttackSpec, Driver } from './driver.js';
import { LineSink, LineSplitter } from './lines.js';

/** One line of `vegeta encode --to json`. */
interface VegetaResult {
  code: number;
  timestamp: string;
  /** Nanoseconds. */
  latency: number;
  bytes_out: number;
  bytes_in: number;
  error: string;
}

/**
 * The committed `vegeta/post-target` pointed at the lab: the Service URL becomes the lab Service's and the
 * `@vegeta/data.json` body reference becomes an absolute path (vegeta resolves it from its cwd).
 */
export function rewriteTargets(targets: string, baseUrl: string, repoRoot: string): string {
  return targets
    .split('\n')
    .map((line) => {
      const url = /^([A-Z]+)\s+(https?:\/\/[^/\s]+)(\S*)$/.exec(line.trim());
      if (url !== null) return `${url[1]} ${baseUrl.replace(/\/+$/, '')}${url[3]}`;
      if (line.startsWith('@') && !line.startsWith('@/')) return `@${join(repoRoot, line.slice(1).trim())}`;
      return line;
    })
    .join('\n');
}

/** Records one vegeta result line; `t0Ms` is the wall clock when the attack started. */
export function recordVegetaLine(spec: AttackSpec, line: string, t0Ms: number): void {
  if (line.trim() === '') return;
  const r = JSON.parse(line) as VegetaResult;
  const latencyMs = r.latency / 1e6;
  const sendMs = Math.max(0, Date.parse(r.timestamp) - t0Ms);
  spec.recorder.record(sendMs, latencyMs, r.code, r.bytes_in, r.bytes_out, r.error === '' ? undefined : r.error);
  spec.recorder.scheduled = spec.recorder.requests;
}

/**
 * Runs the real `vegeta attack` with the committed targets file rewritten to the lab's Service, piped
 * through `vegeta encode --to json`; each result line is parsed live into the recorder.
 */
export class VegetaDriver implements Driver {
  readonly name = 'vegeta';
  constructor(private readonly bin: string) {}

  async attack(spec: AttackSpec): Promise<string[]> {
    const stamp = `${Date.now()}-${Math.round(Math.random() * 1e6)}`;
    const targetsFile = join(spec.workDir, `vegeta-${stamp}.targets`);
    const rawFile = join(spec.workDir, `vegeta-${stamp}.bin`);
    const committed = readFileSync(join(spec.repoRoot, 'vegeta', 'post-target'), 'utf8');
    const request = spec.request;
    if (request === undefined || request.path === '/predict') {
      writeFileSync(targetsFile, rewriteTargets(committed, spec.baseUrl, spec.repoRoot));
    } else {
      // Another request than the seed's (MLServer's v2 inference): the committed file's form, its path and body.
      const bodyFile = join(spec.workDir, `vegeta-${stamp}.body.json`);
      writeFileSync(bodyFile, request.body);
      const base = spec.baseUrl.replace(/\/+$/, '');
      writeFileSync(targetsFile, `POST ${base}${request.path}\nContent-Type: application/json\n@${bodyFile}\n`);
    }
    const sup = spec.supervisor;
    const script =
      'set -o pipefail; "$0" attack -targets="$1" -rate="$2" -duration="$3" -timeout="$4" | tee "$5" | "$0" encode --to json';
    const t0 = Date.now();
    spec.onStart?.();
    const child = await sup.spawn({
      name: 'vegeta',
      command: 'bash',
      args: [
        '-c',
        script,
        this.bin,
        targetsFile,
        String(Math.max(1, Math.round(spec.rate))),
        `${spec.durationSeconds}s`,
        `${spec.timeoutMs}ms`,
        rawFile,
      ],
      cwd: spec.repoRoot,
      stdout: 'stream',
    });
    const onAbort = (): void => child.signal('SIGINT'); // vegeta stops attacking and flushes what it has
    spec.signal?.addEventListener('abort', onAbort, { once: true });
    const split = new LineSplitter();
    const sink = new LineSink((l) => recordVegetaLine(spec, l, t0));
    const eat = (lines: string[]): void => sink.eat(lines);
    child.proc.stdout?.setEncoding('utf8');
    child.proc.stdout?.on('data', (chunk: string) => eat(split.push(chunk)));
    const ended = new Promise<void>((resolve) => child.proc.stdout?.once('end', () => resolve()));
    const status = await child.exited;
    await ended;
    eat(split.flush());
    spec.signal?.removeEventListener('abort', onAbort);
    await sup.stop(child, 500);
    if (status.code !== 0 && spec.signal?.aborted !== true) {
      throw new LabError(
        'LAB_TOOL_FAILED',
        `vegeta exited ${status.code ?? status.signal}: ${child.stderrTail() || 'no stderr'}`,
      );
    }
    if (sink.error !== undefined)
      throw new LabError('LAB_TOOL_FAILED', `vegeta output unreadable: ${String(sink.error)}`);
    return [targetsFile, rawFile];
  }
}
