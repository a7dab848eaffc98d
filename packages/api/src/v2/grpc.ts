// The Open Inference Protocol v2 over gRPC (inference.GRPCInferenceService, proto/grpc_predict_v2.proto) on
// its own port, as MLServer (8081) and Triton (8001) serve it: grpc-js owns its HTTP/2 listener, and a separate
// port lets the sidecar's gRPC upstream be this port while HTTP/1.1 goes to the REST one. Same inference path
// (engine.ts) as REST; errors map to gRPC status codes through the registry (errors.ts).
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { Logger } from 'pino';
import type { Batch } from '../batch.js';
import type { InferenceEngine } from '../engine.js';
import { ApiError } from '../errors.js';
import type { ApiMetrics } from '../metrics.js';
import { toApiError } from '../respond.js';
import { SERVER_METADATA } from './rest.js';
import {
  MODEL_VERSION,
  checkInput,
  checkModelName,
  checkModelVersion,
  labels,
  packFeatures,
  requestedOutputs,
  tensorMetadata,
} from './tensor.js';

/** The committed proto of the protocol (repository root; the api image copies it to the same place). */
export const OIP_PROTO_PATH = fileURLToPath(new URL('../../../../proto/grpc_predict_v2.proto', import.meta.url));
/** The service's full name. */
export const OIP_SERVICE = 'inference.GRPCInferenceService';

/** How proto-loader maps messages: the proto's field names, int64 as numbers, empty repeated fields as []. */
export const PROTO_LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: Number,
  enums: String,
  defaults: false,
  arrays: true,
  oneofs: true,
};

interface InferTensorContents {
  fp32_contents?: number[];
  fp64_contents?: number[];
}
interface ModelInferRequest {
  model_name?: string;
  model_version?: string;
  id?: string;
  inputs?: { name?: string; datatype?: string; shape?: number[]; contents?: InferTensorContents }[];
  outputs?: { name?: string }[];
  raw_input_contents?: Buffer[];
}

/** What {@link startGrpcServer} serves and where. */
export interface GrpcServerOptions {
  readonly engine: InferenceEngine;
  readonly metrics: ApiMetrics;
  readonly modelName: string;
  readonly maxBatchRows: number;
  /** Largest message in bytes (the REST body limit): larger ones are RESOURCE_EXHAUSTED. */
  readonly maxMessageBytes: number;
  readonly draining: () => boolean;
  readonly host: string;
  /** 0 = any free port. */
  readonly port: number;
  /** Where grpc-js's own messages go (otherwise it writes them to stderr). */
  readonly logger?: Logger;
}

/** A listening gRPC server. */
export interface GrpcServer {
  readonly port: number;
  /** Refuses new calls, lets calls in flight finish; cuts them after `timeoutMs`. Resolves true when clean. */
  close(timeoutMs: number): Promise<boolean>;
}

/** The service definition of the committed proto. */
export function loadOipService(): grpc.ServiceDefinition {
  const definition = protoLoader.loadSync(OIP_PROTO_PATH, PROTO_LOADER_OPTIONS);
  const root = grpc.loadPackageDefinition(definition) as unknown as {
    inference: { GRPCInferenceService: grpc.ServiceClientConstructor };
  };
  return root.inference.GRPCInferenceService.service;
}

/** The input of a ModelInfer request as a Batch: its contents, or its raw little-endian bytes. */
function batchOf(request: ModelInferRequest, featureCount: number, maxBatchRows: number): Batch {
  const inputs = request.inputs ?? [];
  if (inputs.length !== 1) {
    throw new ApiError('INVALID_TENSOR', `"inputs" has ${inputs.length} tensors; the model has exactly one input`);
  }
  const input = inputs[0]!;
  const { rows, datatype } = checkInput(input, featureCount, maxBatchRows);
  const count = rows * featureCount;
  const raw = request.raw_input_contents ?? [];
  if (raw.length > 0) {
    if (raw.length !== 1)
      throw new ApiError('INVALID_TENSOR', `raw_input_contents has ${raw.length} entries, expected 1`);
    const bytes = raw[0]!;
    const width = datatype === 'FP32' ? 4 : 8;
    if (bytes.length !== count * width) {
      throw new ApiError(
        'INVALID_TENSOR',
        `raw_input_contents[0] has ${bytes.length} bytes; [${rows}, ${featureCount}] ${datatype} needs ${count * width}`,
      );
    }
    const read =
      datatype === 'FP32' ? (i: number) => bytes.readFloatLE(i * 4) : (i: number) => bytes.readDoubleLE(i * 8);
    return { rows, features: packFeatures(count, read, featureCount) };
  }
  const values = datatype === 'FP32' ? input.contents?.fp32_contents : input.contents?.fp64_contents;
  if (values === undefined || values.length !== count) {
    throw new ApiError(
      'INVALID_TENSOR',
      `contents.${datatype.toLowerCase()}_contents has ${values?.length ?? 0} values; [${rows}, ${featureCount}] needs ${count}`,
    );
  }
  return { rows, features: packFeatures(count, (i) => values[i], featureCount) };
}

/** BYTES elements in the raw layout: each a 4-byte little-endian length, then its bytes. */
function rawBytes(items: readonly string[]): Buffer {
  return Buffer.concat(
    items.flatMap((item) => {
      const bytes = Buffer.from(item, 'utf8');
      const length = Buffer.alloc(4);
      length.writeUInt32LE(bytes.length);
      return [length, bytes];
    }),
  );
}

/** A host for a `host:port` target: an IPv6 address in brackets. */
function hostPart(host: string): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}

/** The error a call answers with: the registry's gRPC status, its message, and our code as metadata. */
function toServiceError(err: unknown): Partial<grpc.ServiceError> {
  const apiError = toApiError(err);
  const metadata = new grpc.Metadata();
  metadata.set('error-code', apiError.code);
  return { code: grpc.status[apiError.grpc], details: apiError.message, metadata };
}

/**
 * Serves inference.GRPCInferenceService on `host:port` with the process's inference engine.
 * @throws Error when the port cannot be bound
 */
export async function startGrpcServer(options: GrpcServerOptions): Promise<GrpcServer> {
  const { engine, metrics, modelName, maxBatchRows, draining } = options;
  const { model } = engine;
  const { featureCount, classCount } = model.info;
  const metadata = { name: modelName, versions: [MODEL_VERSION], platform: 'onnxruntime', ...tensorMetadata(model) };

  /** One unary method: counted in the request metrics under its gRPC path, errors mapped by the registry. */
  function unary<Req, Res>(name: string, handle: (request: Req) => Res | Promise<Res>): grpc.handleUnaryCall<Req, Res> {
    const route = `/${OIP_SERVICE}/${name}`;
    const duration = metrics.requestDuration.labels({ route });
    return (call, callback) => {
      const started = performance.now();
      metrics.inflight.inc();
      const done = (code: grpc.status): void => {
        metrics.inflight.dec();
        metrics.requests.labels({ route, method: 'gRPC', status: grpc.status[code] }).inc();
        duration.observe((performance.now() - started) / 1000);
      };
      Promise.resolve()
        .then(() => handle(call.request))
        .then(
          (response) => {
            done(grpc.status.OK);
            callback(null, response);
          },
          (err: unknown) => {
            const error = toServiceError(err);
            done(error.code ?? grpc.status.INTERNAL);
            callback(error);
          },
        );
    };
  }

  const servedModel = (request: { name?: string; version?: string }): void => {
    checkModelName(request.name ?? '', modelName);
    checkModelVersion(request.version);
  };

  const { logger } = options;
  if (logger !== undefined) {
    // grpc-js logs through a console-like object of its own; ours is pino (JSON lines on stdout).
    const log =
      (level: 'debug' | 'info' | 'warn') =>
      (...parts: unknown[]) =>
        logger[level]({ component: 'grpc-js' }, parts.join(' '));
    grpc.setLogger({ debug: log('debug'), info: log('info'), error: log('warn') });
  }
  const server = new grpc.Server({
    'grpc.max_receive_message_length': options.maxMessageBytes,
  });
  server.addService(loadOipService(), {
    ServerLive: unary('ServerLive', () => ({ live: true })),
    ServerReady: unary('ServerReady', () => ({ ready: !draining() })),
    ModelReady: unary('ModelReady', (request: { name?: string; version?: string }) => {
      servedModel(request);
      return { ready: !draining() };
    }),
    ServerMetadata: unary('ServerMetadata', () => SERVER_METADATA),
    ModelMetadata: unary('ModelMetadata', (request: { name?: string; version?: string }) => {
      servedModel(request);
      return metadata;
    }),
    ModelInfer: unary('ModelInfer', async (request: ModelInferRequest) => {
      checkModelName(request.model_name ?? '', modelName);
      checkModelVersion(request.model_version);
      const batch = batchOf(request, featureCount, maxBatchRows);
      const outputs = requestedOutputs(request.outputs?.map((o) => o.name));
      const probabilities = await engine.run(batch);
      const { rows } = batch;
      const names = outputs.includes('label') ? labels(model, probabilities, rows) : [];
      const raw = (request.raw_input_contents?.length ?? 0) > 0;
      const tensors = outputs.map((name) =>
        name === 'probabilities'
          ? {
              name,
              datatype: 'FP32',
              shape: [rows, classCount],
              ...(raw ? {} : { contents: { fp32_contents: Array.from(probabilities) } }),
            }
          : {
              name,
              datatype: 'BYTES',
              shape: [rows],
              ...(raw ? {} : { contents: { bytes_contents: names.map((n) => Buffer.from(n, 'utf8')) } }),
            },
      );
      return {
        model_name: modelName,
        model_version: MODEL_VERSION,
        id: request.id ?? '',
        outputs: tensors,
        // With raw inputs the outputs come raw too, in the order of `outputs` (as Triton answers).
        raw_output_contents: raw
          ? outputs.map((name) =>
              name === 'probabilities'
                ? Buffer.from(probabilities.buffer, probabilities.byteOffset, probabilities.byteLength)
                : rawBytes(names),
            )
          : [],
      };
    }),
  });
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(
      `${hostPart(options.host)}:${options.port}`,
      grpc.ServerCredentials.createInsecure(),
      (err, bound) => (err === null ? resolve(bound) : reject(err)),
    );
  });
  return {
    port,
    close: (timeoutMs) =>
      new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve(false);
        }, timeoutMs);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve(true);
        });
      }),
  };
}
