import cluster from 'node:cluster';
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { writeRawAnswer } from '@infer-cb/common';
import type { Logger } from 'pino';
import { createApp } from './app.js';
import { clusterMetricsText, serveClusterMetrics } from './cluster-metrics.js';
import type { ApiConfig } from './config.js';
import { ApiError, ERRORS } from './errors.js';
import { createLogger } from './logger.js';
import { createEngine } from './engine.js';
import { createMetrics } from './metrics.js';
import { loadModel, type Classifier } from './model.js';
import { InferenceSlots } from './inference-slots.js';
import { startGrpcServer, type GrpcServer } from './v2/grpc.js';

/** A listening API process. */
export interface ApiServer {
  readonly server: Server;
  /** `http://host:port` the server listens on (the real port when PORT=0). */
  readonly url: string;
  readonly model: Classifier;
  /** Port of the v2 gRPC service; undefined when GRPC_PORT is not set. */
  readonly grpcPort: number | undefined;
  /**
   * Drains: /ready turns 503, the listener closes, in-flight requests finish, idle connections close.
   * Resolves true when everything finished within the timeout, false when connections were cut.
   */
  close(): Promise<boolean>;
}

/** Idle keep-alive connections stay open longer than the proxies in front of us keep theirs (avoids reset races). */
const KEEP_ALIVE_TIMEOUT_MS = 65_000;
/** While draining, how often idle keep-alive connections are closed. */
const IDLE_SWEEP_MS = 50;

/** Answers a CONNECT (this is not a forward proxy) with 405 and the registry's error body, then closes. */
function refuseConnect(socket: Socket): void {
  const body = JSON.stringify({
    error: { code: 'METHOD_NOT_ALLOWED', message: `CONNECT: ${ERRORS.METHOD_NOT_ALLOWED.summary}` },
  });
  const headers = { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) };
  writeRawAnswer(socket, ERRORS.METHOD_NOT_ALLOWED.status, headers, body);
}

/**
 * Loads the model, warms it up and listens; the port opens only once the model can answer.
 * @throws {ApiError} from {@link loadModel}
 */
export async function startServer(config: ApiConfig, logger: Logger): Promise<ApiServer> {
  const model = await loadModel({ modelFilepath: config.modelFilepath, labelFilepath: config.labelFilepath });
  const inference = { concurrency: config.inferenceConcurrency, minMs: config.inferenceMinMs };
  if (model.info.filepath !== config.modelFilepath) {
    logger.warn(
      { configured: config.modelFilepath, serving: model.info.filepath },
      'MODEL_FILEPATH not found; serving the shipped model',
    );
  }
  if (model.info.classNamesSource === 'model') {
    logger.warn(
      { labelFilepath: model.info.labelFilepath },
      'the label file does not name the model classes; using the model class labels',
    );
  }
  if (InferenceSlots.enabled(inference)) {
    logger.info(
      { inferenceConcurrency: config.inferenceConcurrency, inferenceMinMs: config.inferenceMinMs },
      'inference shaped: limited slots and/or a minimum service time',
    );
  }
  const metrics = createMetrics(model.info);
  let draining = false;
  const engine = createEngine(model, metrics, inference);
  const app = createApp({
    model,
    logger,
    metrics,
    engine,
    modelName: config.modelName,
    maxBatchRows: config.maxBatchRows,
    bodyLimitBytes: config.bodyLimitBytes,
    draining: () => draining,
    ...(cluster.isWorker ? { metricsText: clusterMetricsText(metrics.registry) } : {}),
  });
  const server = createServer({ keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS }, app);
  server.headersTimeout = KEEP_ALIVE_TIMEOUT_MS + 1000;
  // Node would drop a CONNECT without a word; every request gets a clear answer, so refuse it in HTTP.
  server.on('connect', (_req: unknown, socket: Socket) => refuseConnect(socket));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  let grpcServer: GrpcServer | undefined;
  if (config.grpcPort !== undefined) {
    try {
      grpcServer = await startGrpcServer({
        engine,
        metrics,
        modelName: config.modelName,
        maxBatchRows: config.maxBatchRows,
        maxMessageBytes: config.bodyLimitBytes,
        draining: () => draining,
        host: config.host,
        port: config.grpcPort,
        logger,
      });
    } catch (err) {
      server.close();
      await model.close();
      throw new ApiError('GRPC_PORT_UNAVAILABLE', `GRPC_PORT=${config.grpcPort}: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }

  let closing: Promise<boolean> | undefined;
  const close = (): Promise<boolean> => {
    if (closing !== undefined) return closing;
    draining = true;
    // gRPC drains beside HTTP: new calls are refused (GOAWAY), calls in flight finish.
    const grpcClosed = grpcServer?.close(config.shutdownTimeoutMs) ?? Promise.resolve(true);
    closing = new Promise<boolean>((resolve) => {
      // Keep-alive connections turn idle as their last answer ends; close them as soon as they do.
      const sweep = setInterval(() => server.closeIdleConnections(), IDLE_SWEEP_MS);
      const timer = setTimeout(() => {
        clearInterval(sweep);
        server.closeAllConnections();
        resolve(false);
      }, config.shutdownTimeoutMs);
      server.close(() => {
        clearInterval(sweep);
        clearTimeout(timer);
        resolve(true);
      });
      server.closeIdleConnections();
    }).then(async (clean) => {
      const grpcClean = await grpcClosed;
      await model.close();
      return clean && grpcClean;
    });
    return closing;
  };
  return { server, url: `http://${host}:${address.port}`, model, grpcPort: grpcServer?.port, close };
}

function onTerminate(handler: (signal: NodeJS.Signals) => void): void {
  let received = false;
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.on(signal, () => {
      if (received) return;
      received = true;
      handler(signal);
    });
  }
}

/** Serves from this process; on SIGTERM/SIGINT drains and exits 0 (1 if the timeout cut connections). */
async function runSingle(config: ApiConfig, logger: Logger): Promise<void> {
  const api = await startServer(config, logger);
  const { info } = api.model;
  logger.info(
    {
      url: api.url,
      ...(api.grpcPort === undefined ? {} : { grpcPort: api.grpcPort }),
      model: info.filepath,
      sha256: info.sha256,
      features: info.featureCount,
      classes: info.classNames,
      zipMapRemoved: info.zipMapRemoved,
    },
    'iris-api ready',
  );
  onTerminate((signal) => {
    logger.info({ signal, timeoutMs: config.shutdownTimeoutMs }, 'draining');
    void api.close().then((clean) => {
      logger.info({ clean }, 'stopped');
      process.exit(clean ? 0 : 1);
    });
  });
}

/** The cluster primary: forks WORKERS workers, restarts crashed ones, forwards SIGTERM and waits for them. */
function runPrimary(config: ApiConfig, logger: Logger): void {
  serveClusterMetrics();
  const listened = new Set<number>();
  let alive = 0;
  let exitCode = 0;
  let shuttingDown = false;

  const fork = (): void => {
    const worker = cluster.fork();
    alive++;
    worker.once('listening', () => {
      listened.add(worker.id);
      if (listened.size === config.workers)
        logger.info({ workers: config.workers, port: config.port }, 'iris-api cluster ready');
    });
  };
  const shutdown = (code: number): void => {
    if (shuttingDown) return;
    shuttingDown = true;
    exitCode = code;
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGTERM');
    if (alive === 0) process.exit(exitCode);
    // Workers drain within shutdownTimeoutMs; this only catches a worker that hangs beyond it.
    setTimeout(() => {
      for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGKILL');
      process.exit(1);
    }, config.shutdownTimeoutMs + 5000).unref();
  };

  cluster.on('exit', (worker, code, signal) => {
    alive--;
    if (shuttingDown) {
      if (code !== 0) exitCode = 1;
      if (alive === 0) process.exit(exitCode);
      return;
    }
    if (!listened.has(worker.id)) {
      logger.fatal({ worker: worker.id, code, signal }, 'a worker failed to start; stopping');
      shutdown(1);
      return;
    }
    logger.error({ worker: worker.id, code, signal }, 'a worker died; starting another');
    listened.delete(worker.id);
    fork();
  });
  onTerminate((signal) => {
    logger.info({ signal }, 'stopping workers');
    shutdown(0);
  });
  for (let i = 0; i < config.workers; i++) fork();
}

/**
 * Runs the API as configured: one process, or a node:cluster primary with WORKERS workers.
 * @throws {ApiError} when the model cannot be served (single-process mode)
 */
export async function runApi(config: ApiConfig): Promise<void> {
  const logger = createLogger(config);
  if (config.workers > 1 && cluster.isPrimary) return runPrimary(config, logger);
  await runSingle(config, logger);
}
