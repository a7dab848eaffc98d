import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import type { Logger } from 'pino';
import { parseBatch, type Batch } from './batch.js';
import { DEFAULTS } from './config.js';
import { ApiError } from './errors.js';
import { createMetrics, type ApiMetrics } from './metrics.js';
import type { Classifier } from './model.js';
import { buildOpenApi } from './openapi.js';
import { sendError, toApiError } from './respond.js';
import { argmax, createEngine, type InferenceEngine } from './engine.js';
import type { InferenceSlotsOptions } from './inference-slots.js';
import { mountV2, V2_ROUTES } from './v2/rest.js';

/** What {@link createApp} serves and how. */
export interface AppOptions {
  readonly model: Classifier;
  /** Most rows per request (413 above). Default 1024. */
  readonly maxBatchRows?: number;
  /** Largest request body in bytes (413 above). Default 1 MiB. */
  readonly bodyLimitBytes?: number;
  readonly logger?: Logger;
  /** Metrics to record into; created for the model when absent. */
  readonly metrics?: ApiMetrics;
  /** Metrics exposition; defaults to this process's registry (the cluster primary aggregates otherwise). */
  readonly metricsText?: () => Promise<string>;
  /** True while the server drains on SIGTERM: /ready answers 503 and connections are closed after each answer. */
  readonly draining?: () => boolean;
  /** Execution slots and minimum service time of the model (INFERENCE_CONCURRENCY, INFERENCE_MIN_MS); none by default. */
  readonly inference?: InferenceSlotsOptions;
  /** The process's inference path, shared with its gRPC server; built from `inference` when absent. */
  readonly engine?: InferenceEngine;
  /** The model's name in the Open Inference Protocol v2 (/v2/models/{name}). Default `iris`. */
  readonly modelName?: string;
}

/** Every route and its methods; /openapi.json and the 405 answers are built from the same table. */
export const ROUTES: Readonly<Record<string, readonly ('GET' | 'POST')[]>> = {
  '/health': ['GET'],
  '/ready': ['GET'],
  '/metadata': ['GET'],
  '/label': ['GET'],
  '/predict/test': ['GET'],
  '/predict/test/label': ['GET'],
  '/predict': ['POST'],
  '/predict/label': ['POST'],
  '/metrics': ['GET'],
  '/openapi.json': ['GET'],
  ...V2_ROUTES,
};

const STARTED_AT = Symbol('startedAt');
const JSON_CONTENT_TYPE = 'application/json; charset=utf-8';
type TimedResponse = Response & { [STARTED_AT]: number };

/**
 * Builds the Express app of the inference API around a loaded classifier.
 * One row answers a flat list (seed-compatible); N rows answer a list of N lists.
 */
export function createApp(options: AppOptions): Express {
  const { model, logger } = options;
  const { featureCount, classCount, classNames } = model.info;
  const maxBatchRows = options.maxBatchRows ?? DEFAULTS.maxBatchRows;
  const metrics = options.metrics ?? createMetrics(model.info);
  const metricsText = options.metricsText ?? (() => metrics.registry.metrics());
  const draining = options.draining ?? (() => false);
  const debug = logger?.isLevelEnabled('debug') === true;
  const modelName = options.modelName ?? DEFAULTS.modelName;
  const openapi = JSON.stringify(
    buildOpenApi({ featureCount, classNames, maxBatchRows, sample: model.sample, modelName }),
  );
  const labelMap = Object.fromEntries(classNames.map((name, i) => [String(i), name]));
  const sampleBatch: Batch = { features: Float32Array.from(model.sample), rows: 1 };

  // Labelled children, resolved once per label set: prom-client would hash the label object on every call.
  const counters = new Map<string, { inc(): void }>();
  const durations = new Map<string, { observe(value: number): void }>();
  function requestCounter(route: string, method: string, status: string): { inc(): void } {
    const key = `${route} ${method} ${status}`;
    let child = counters.get(key);
    if (!child) counters.set(key, (child = metrics.requests.labels({ route, method, status })));
    return child;
  }
  function durationHistogram(route: string): { observe(value: number): void } {
    let child = durations.get(route);
    if (!child) durations.set(route, (child = metrics.requestDuration.labels({ route })));
    return child;
  }

  // Hoisted so the hot path allocates no closure per request.
  function onClose(this: TimedResponse): void {
    const req = this.req;
    const route = (req.route as { path?: string } | undefined)?.path ?? 'unmatched';
    const status = this.writableFinished ? String(this.statusCode) : '499';
    const seconds = (performance.now() - this[STARTED_AT]) / 1000;
    metrics.inflight.dec();
    requestCounter(route, req.method, status).inc();
    durationHistogram(route).observe(seconds);
    if (debug) logger?.debug({ method: req.method, url: req.originalUrl, status, seconds }, 'request');
  }

  const engine = options.engine ?? createEngine(model, metrics, options.inference);
  /** One batch through the model; with slots, inside a slot (the histogram times the model alone). */
  const infer = (batch: Batch): Promise<Float32Array> => engine.run(batch);

  function probabilitiesOf(p: Float32Array, rows: number): number[] | number[][] {
    if (rows === 1) return Array.from(p);
    const out = new Array<number[]>(rows);
    for (let r = 0; r < rows; r++) out[r] = Array.from(p.subarray(r * classCount, (r + 1) * classCount));
    return out;
  }

  function labelsOf(p: Float32Array, rows: number): string | string[] {
    if (rows === 1) return classNames[argmax(p, 0, classCount)]!;
    const out = new Array<string>(rows);
    for (let r = 0; r < rows; r++) out[r] = classNames[argmax(p, r * classCount, classCount)]!;
    return out;
  }

  /**
   * Answers 200 JSON on the hot path, skipping res.json's freshness and type negotiation; a request that
   * straddled the start of draining closes its connection after the answer.
   */
  function reply(res: Response, body: unknown): void {
    const text = JSON.stringify(body);
    if (draining()) res.setHeader('Connection', 'close');
    res.setHeader('Content-Type', JSON_CONTENT_TYPE);
    res.setHeader('Content-Length', Buffer.byteLength(text));
    res.end(text);
  }

  /** 415 unless the body is JSON; a POST without any body is a 400 (nothing to predict). */
  function requireJson(req: Request, _res: Response, next: NextFunction): void {
    if (req.is('application/json')) return next();
    const { 'content-type': type, 'content-length': length, 'transfer-encoding': chunked } = req.headers;
    if (type === undefined && chunked === undefined && (length === undefined || length === '0')) {
      return next(new ApiError('INVALID_BODY', 'the body is empty; expected {"data": [[...features], ...]}'));
    }
    next(
      new ApiError(
        'UNSUPPORTED_MEDIA_TYPE',
        `Content-Type ${type ?? '(none)'} is not supported; send application/json`,
      ),
    );
  }

  const app = express();
  app.disable('x-powered-by');
  app.disable('etag'); // hashing every prediction costs more than it saves
  app.set('json spaces', 0);

  app.use((req: Request, res: Response, next: NextFunction) => {
    (res as TimedResponse)[STARTED_AT] = performance.now();
    metrics.inflight.inc();
    res.once('close', onClose);
    if (draining()) res.setHeader('Connection', 'close');
    next();
  });

  const json = express.json({
    limit: options.bodyLimitBytes ?? DEFAULTS.bodyLimitBytes,
    strict: true,
    type: 'application/json',
  });

  app.get('/health', (_req, res) => {
    res.json({ health: 'ok' });
  });
  app.get('/ready', (_req, res) => {
    if (draining()) return sendError(res, new ApiError('NOT_READY', 'the server is draining'));
    res.json({ ready: true });
  });
  app.get('/metadata', (_req, res) => {
    const info = model.info;
    res.json({
      data_type: 'float32',
      data_structure: `(1,${featureCount})`,
      data_sample: [model.sample],
      prediction_type: 'float32',
      prediction_structure: `(1,${classCount})`,
      prediction_sample: model.sampleProbabilities,
      batch: {
        max_rows: maxBatchRows,
        prediction_structure: `(N,${classCount}) for N>1 rows; (${classCount}) for 1 row`,
      },
      model: {
        filepath: info.filepath,
        shipped: info.shipped,
        sha256: info.sha256,
        size_bytes: info.sizeBytes,
        input_name: info.inputName,
        output_name: info.outputName,
        feature_count: featureCount,
        class_count: classCount,
        class_labels: info.classLabels,
        class_names: classNames,
        class_names_source: info.classNamesSource,
        zipmap_removed: info.zipMapRemoved,
        producer: info.producer,
        opset_version: info.opsetVersion,
      },
    });
  });
  app.get('/label', (_req, res) => {
    res.json(labelMap);
  });
  app.get('/predict/test', async (_req, res) => {
    reply(res, { prediction: probabilitiesOf(await infer(sampleBatch), 1) });
  });
  app.get('/predict/test/label', async (_req, res) => {
    reply(res, { prediction: labelsOf(await infer(sampleBatch), 1) });
  });
  app.post('/predict', requireJson, json, async (req, res) => {
    const batch = parseBatch(req.body, featureCount, maxBatchRows);
    reply(res, { prediction: probabilitiesOf(await infer(batch), batch.rows) });
  });
  app.post('/predict/label', requireJson, json, async (req, res) => {
    const batch = parseBatch(req.body, featureCount, maxBatchRows);
    reply(res, { prediction: labelsOf(await infer(batch), batch.rows) });
  });
  app.get('/metrics', async (_req, res) => {
    const text = await metricsText();
    res.type(metrics.registry.contentType).send(text);
  });
  app.get('/openapi.json', (_req, res) => {
    res.type('application/json').send(openapi);
  });
  mountV2(app, { engine, modelName, maxBatchRows, draining, requireJson, json, reply });

  for (const [path, methods] of Object.entries(ROUTES)) {
    const allow = [...methods, ...(methods.includes('GET') ? ['HEAD'] : [])].join(', ');
    app.all(path.replace(/\{(\w+)\}/g, ':$1'), (req, res) => {
      res.setHeader('Allow', allow);
      sendError(
        res,
        new ApiError('METHOD_NOT_ALLOWED', `${req.method} is not allowed on ${path}; use ${methods.join(' or ')}`),
      );
    });
  }
  app.use((req, res) => {
    sendError(res, new ApiError('NOT_FOUND', `no route ${req.method} ${req.path}`));
  });
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const apiError = toApiError(err);
    if (apiError.status >= 500) logger?.error({ err, method: req.method, url: req.originalUrl }, apiError.message);
    if (res.headersSent) {
      res.destroy();
      return;
    }
    sendError(res, apiError);
  });
  return app;
}
