// The reference load over gRPC: a constant arrival rate of the Open Inference Protocol's ModelInfer
// (inference.GRPCInferenceService, ../proto/grpc_predict_v2.proto) with the reference row, by k6's k6/net/grpc.
// Each VU keeps one h2c connection. Env: GRPC_TARGET (host:port), MODEL_NAME, RATE, DURATION, PRE_ALLOCATED_VUS,
// MAX_VUS, TIMEOUT, SUMMARY_JSON.
import grpc from 'k6/net/grpc';
import { Counter } from 'k6/metrics';
import type { Options } from 'k6/options';
import { referenceScenarios, rejectionReasons, summaryTrendStats } from './lib.ts';

const client = new grpc.Client();
// The proto the client image copies beside k6/ (docker/client.Dockerfile), the repository's own.
client.load(['../proto'], 'grpc_predict_v2.proto');

const target = __ENV.GRPC_TARGET ?? 'iris-svc:8001';
const rate = Number(__ENV.RATE ?? 1000);
const timeout = __ENV.TIMEOUT ?? '10s';

/** The reference row (vegeta/data.json) as one FP32 input of shape [1, 4]. */
const request = {
  model_name: __ENV.MODEL_NAME ?? 'iris',
  inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], contents: { fp32_contents: [1.0, 2.0, 3.0, 4.0] } }],
};

/** Counts non-OK calls by the sidecar's reason (its x-cb-reason header or trailer), else by gRPC status name. */
const rejected = new Counter('grpc_rejected_by_reason');

export const options: Options = {
  scenarios: referenceScenarios(rate),
  thresholds: {
    grpc_req_duration: ['p(99)<1500'],
    ...Object.fromEntries(rejectionReasons.map((r) => [`grpc_rejected_by_reason{reason:${r}}`, ['count>=0']])),
  },
  summaryTrendStats,
};

const STATUS_NAMES: Record<number, string> = {
  [grpc.StatusResourceExhausted]: 'RESOURCE_EXHAUSTED',
  [grpc.StatusUnavailable]: 'UNAVAILABLE',
  [grpc.StatusDeadlineExceeded]: 'DEADLINE_EXCEEDED',
  [grpc.StatusInvalidArgument]: 'INVALID_ARGUMENT',
  [grpc.StatusNotFound]: 'NOT_FOUND',
  [grpc.StatusInternal]: 'INTERNAL',
};

/** One ModelInfer; the first call of each VU opens its connection. */
export default function (): void {
  if (__ITER === 0) client.connect(target, { plaintext: true, timeout });
  const res = client.invoke('inference.GRPCInferenceService/ModelInfer', request, { timeout });
  if (res.status !== grpc.StatusOK) {
    const headers = res.headers as Record<string, string | string[] | undefined> | undefined;
    const trailers = res.trailers as Record<string, string | string[] | undefined> | undefined;
    const header = headers?.['x-cb-reason'] ?? trailers?.['x-cb-reason'];
    const reason = Array.isArray(header) ? header[0] : header;
    rejected.add(1, { reason: reason ?? STATUS_NAMES[res.status] ?? 'other' });
  }
}

/** The summary: JSON to $SUMMARY_JSON, and the few figures a person reads to stdout. */
export function handleSummary(data: {
  metrics: Record<string, { values: Record<string, number> } | undefined>;
}): Record<string, string> {
  const d = data.metrics['grpc_req_duration']?.values ?? {};
  const ms = (v: number | undefined): string => (v === undefined ? '-' : `${v.toFixed(2)}ms`);
  const reasons = Object.entries(data.metrics)
    .filter(([k, v]) => k.startsWith('grpc_rejected_by_reason{') && (v?.values['count'] ?? 0) > 0)
    .map(([k, v]) => `${k.slice('grpc_rejected_by_reason{reason:'.length, -1)}:${v?.values['count'] ?? 0}`)
    .join('  ');
  const text = [
    `Calls         [total]                        ${data.metrics['iterations']?.values['count'] ?? 0}`,
    `Latency       [p50, p90, p99, max]           ${ms(d['med'])}, ${ms(d['p(90)'])}, ${ms(d['p(99)'])}, ${ms(d['max'])}`,
    `Not OK        [reason:count]                 ${reasons || '-'}`,
    `Dropped iterations                           ${data.metrics['dropped_iterations']?.values['count'] ?? 0}`,
    '',
  ].join('\n');
  return { stdout: text, [__ENV.SUMMARY_JSON ?? 'k6-summary.json']: JSON.stringify(data, null, 2) };
}
