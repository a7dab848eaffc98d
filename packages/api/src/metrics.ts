import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ModelInfo } from './model.js';

/** Request latency buckets in seconds: inference is sub-millisecond, so they start at 50 µs. */
export const REQUEST_BUCKETS_SECONDS = [
  0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
];
/** Inference latency buckets in seconds, from 10 µs. */
export const INFERENCE_BUCKETS_SECONDS = [
  0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1,
];

/** The API's Prometheus metrics, in their own registry (one per app, so tests can build several). */
export interface ApiMetrics {
  readonly registry: Registry;
  readonly requests: Counter<'route' | 'method' | 'status'>;
  readonly requestDuration: Histogram<'route'>;
  readonly inferenceDuration: Histogram;
  readonly batchRows: Histogram;
  readonly inflight: Gauge;
}

/** Creates the registry with request, inference, model-info and default process metrics. */
export function createMetrics(model: ModelInfo): ApiMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const requests = new Counter({
    name: 'iris_api_requests_total',
    help: 'HTTP requests answered, by route template, method and status code',
    labelNames: ['route', 'method', 'status'] as const,
    registers: [registry],
  });
  const requestDuration = new Histogram({
    name: 'iris_api_request_duration_seconds',
    help: 'Time from request to the end of the answer, by route template',
    labelNames: ['route'] as const,
    buckets: REQUEST_BUCKETS_SECONDS,
    registers: [registry],
  });
  const inferenceDuration = new Histogram({
    name: 'iris_api_inference_duration_seconds',
    help: 'Time onnxruntime takes to run one batch',
    buckets: INFERENCE_BUCKETS_SECONDS,
    registers: [registry],
  });
  const batchRows = new Histogram({
    name: 'iris_api_batch_rows',
    help: 'Rows per inference batch',
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024],
    registers: [registry],
  });
  const inflight = new Gauge({
    name: 'iris_api_inflight_requests',
    help: 'Requests being handled now',
    registers: [registry],
  });
  const info = new Gauge({
    name: 'iris_api_model_info',
    help: 'The served model (value 1)',
    labelNames: ['sha256', 'input', 'features', 'classes', 'zipmap_removed', 'producer'] as const,
    registers: [registry],
    aggregator: 'first', // every worker serves the same model; do not sum to WORKERS
  });
  info.set(
    {
      sha256: model.sha256,
      input: model.inputName,
      features: String(model.featureCount),
      classes: String(model.classCount),
      zipmap_removed: String(model.zipMapRemoved),
      producer: model.producer,
    },
    1,
  );
  return { registry, requests, requestDuration, inferenceDuration, batchRows, inflight };
}
