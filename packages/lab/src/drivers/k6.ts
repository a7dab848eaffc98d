import { existsSync, writeFileSync } from 'node:fs';
import { REASONS } from '@infer-cb/proxy/outcomes';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { LabError } from '../errors.js';
import type { AttackSpec, Driver } from './driver.js';
import { statusText } from './builtin.js';
import { FileFollower, LineSink } from './lines.js';

/** One line of `k6 run --out json=FILE`. */
interface K6Line {
  type: 'Point' | 'Metric';
  metric: string;
  data: { time?: string; value?: number; tags?: Record<string, string> | null };
}

/**
 * A gRPC call's status as the HTTP status the lab's report counts by (gRPC's own HTTP mapping, reversed): OK 200;
 * RESOURCE_EXHAUSTED and UNAVAILABLE 503 (the sidecar's sheds and open circuit); DEADLINE_EXCEEDED 504;
 * CANCELLED 499; INVALID_ARGUMENT 400; NOT_FOUND 404; the rest 500.
 */
export function grpcAsHttpStatus(code: number): number {
  const map: Record<number, number> = { 0: 200, 1: 499, 3: 400, 4: 504, 5: 404, 8: 503, 14: 503 };
  return map[code] ?? 500;
}

/** gRPC status names for the error column (`grpc UNAVAILABLE`). */
const GRPC_NAMES = [
  'OK',
  'CANCELLED',
  'UNKNOWN',
  'INVALID_ARGUMENT',
  'DEADLINE_EXCEEDED',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION',
  'ABORTED',
  'OUT_OF_RANGE',
  'UNIMPLEMENTED',
  'INTERNAL',
  'UNAVAILABLE',
  'DATA_LOSS',
  'UNAUTHENTICATED',
];

/**
 * Records one k6 JSON output line: `http_req_duration` points are requests (`grpc_req_duration` points calls,
 * their gRPC status counted as {@link grpcAsHttpStatus}); data_* points are bytes.
 */
export function recordK6Line(spec: AttackSpec, line: string, t0Ms: number): void {
  if (line.trim() === '') return;
  const p = JSON.parse(line) as K6Line;
  if (p.type !== 'Point') return;
  const value = p.data.value ?? 0;
  const rec = spec.recorder;
  if (p.metric === 'data_received') rec.bytesIn += value;
  else if (p.metric === 'data_sent') rec.bytesOut += value;
  // k6/grpc.ts counts each call the sidecar refused by its x-cb-reason (other statuses by name: not ours to count).
  if (p.metric === 'grpc_rejected_by_reason') {
    const reason = p.data.tags?.['reason'];
    if (reason !== undefined && (REASONS as readonly string[]).includes(reason)) rec.reason(reason);
    return;
  }
  const grpcCall = p.metric === 'grpc_req_duration';
  if (p.metric !== 'http_req_duration' && !grpcCall) return;
  const tags = p.data.tags ?? {};
  if (grpcCall) {
    const code = Number(tags['status'] ?? 2);
    const sendMs = Math.max(0, Date.parse(p.data.time ?? '') - value - t0Ms);
    rec.record(
      sendMs,
      value,
      grpcAsHttpStatus(code),
      0,
      0,
      code === 0 ? undefined : `grpc ${GRPC_NAMES[code] ?? code}`,
    );
    rec.scheduled = rec.requests;
    return;
  }
  const status = Number(tags['status'] ?? 0);
  // k6 stamps the sample when the request ends; its send time is that minus the duration.
  const sendMs = Math.max(0, Date.parse(p.data.time ?? '') - value - t0Ms);
  const error =
    status === 0
      ? (tags['error'] ?? tags['error_code'] ?? 'request failed')
      : status >= 200 && status < 300
        ? undefined
        : statusText(status);
  rec.record(sendMs, value, status, 0, 0, error);
  rec.scheduled = rec.requests;
}

/**
 * Runs the real `k6 run k6/reference.ts` (the cluster's script; k6/grpc.ts with --protocol grpc) with BASE_URL
 * (GRPC_TARGET), RATE and DURATION set to the lab's, and reads its `--out json` file live into the recorder
 * (per-request status and duration).
 */
export class K6Driver implements Driver {
  readonly name = 'k6';
  constructor(private readonly bin: string) {}

  async attack(spec: AttackSpec): Promise<string[]> {
    const grpc = spec.protocol === 'grpc';
    const script = join(spec.repoRoot, 'k6', grpc ? 'grpc.ts' : 'reference.ts');
    if (!existsSync(script)) throw new LabError('LAB_FILE_MISSING', `k6 script not found at ${script}`);
    const stamp = `${Date.now()}-${Math.round(Math.random() * 1e6)}`;
    const out = join(spec.workDir, `k6-${stamp}.ndjson`);
    const request: Record<string, string> = {};
    if (grpc) {
      request['GRPC_TARGET'] = new URL(spec.baseUrl).host;
      request['TIMEOUT'] = `${spec.timeoutMs}ms`;
    } else if (spec.request !== undefined && spec.request.path !== '/predict') {
      const bodyFile = join(spec.workDir, `k6-${stamp}.body.json`);
      writeFileSync(bodyFile, spec.request.body);
      request['BODY_FILE'] = bodyFile;
      request['PREDICT_PATH'] = spec.request.path;
    }
    const summary = join(spec.workDir, `k6-${stamp}.summary.json`);
    const rate = Math.max(1, Math.round(spec.rate));
    const t0 = Date.now();
    spec.onStart?.();
    const child = await spec.supervisor.spawn({
      name: 'k6',
      command: this.bin,
      args: ['run', '--quiet', '--no-usage-report', '--out', `json=${out}`, script],
      cwd: spec.repoRoot,
      env: {
        BASE_URL: spec.baseUrl,
        RATE: String(rate),
        DURATION: `${spec.durationSeconds}s`,
        PRE_ALLOCATED_VUS: String(Math.min(200, Math.max(10, Math.ceil(rate / 20)))),
        MAX_VUS: String(Math.min(1000, Math.max(50, rate))),
        SUMMARY_JSON: summary,
        ...request,
        K6_NO_USAGE_REPORT: 'true',
        K6_NO_COLOR: 'true',
      },
      stdout: 'buffer',
    });
    const onAbort = (): void => child.signal('SIGINT');
    spec.signal?.addEventListener('abort', onAbort, { once: true });
    const follow = new FileFollower(out);
    const sink = new LineSink((l) => recordK6Line(spec, l, t0));
    const eat = (lines: string[]): void => sink.eat(lines);
    let done = false;
    void child.exited.then(() => (done = true));
    while (!done) {
      eat(follow.read());
      await sleep(250);
    }
    const status = await child.exited;
    eat(follow.finish());
    spec.signal?.removeEventListener('abort', onAbort);
    await spec.supervisor.stop(child, 500);
    // 99: thresholds crossed, which an overloaded arm is expected to do; the run itself is fine.
    if (status.code !== 0 && status.code !== 99 && spec.signal?.aborted !== true) {
      throw new LabError(
        'LAB_TOOL_FAILED',
        `k6 exited ${status.code ?? status.signal}: ${child.stderrTail() || 'no stderr'}`,
      );
    }
    if (sink.error !== undefined) throw new LabError('LAB_TOOL_FAILED', `k6 output unreadable: ${String(sink.error)}`);
    return [out, summary];
  }
}
