// The Open Inference Protocol v2 over REST (KServe's, MLServer's and Triton's /v2 endpoints), beside the
// book's endpoints and on the same inference path. Error answers under /v2 take the protocol's shape
// (respond.ts decides it by path).
import type { Express, NextFunction, Request, RequestHandler, Response } from 'express';
import type { InferenceEngine } from '../engine.js';
import { ApiError } from '../errors.js';
import { sendError } from '../respond.js';
import {
  MODEL_VERSION,
  batchFromJson,
  checkInput,
  checkModelName,
  labels,
  requestedOutputs,
  tensorMetadata,
  type OutputName,
} from './tensor.js';

/** The server's name and version in v2 server metadata. */
export const SERVER_METADATA = { name: 'iris-api', version: '0.1.0', extensions: [] as string[] } as const;

/** The v2 routes (OpenAPI path syntax) and their methods, for ROUTES (405 answers, /openapi.json). */
export const V2_ROUTES: Readonly<Record<string, readonly ('GET' | 'POST')[]>> = {
  '/v2': ['GET'],
  '/v2/health/live': ['GET'],
  '/v2/health/ready': ['GET'],
  '/v2/models/{name}': ['GET'],
  '/v2/models/{name}/ready': ['GET'],
  '/v2/models/{name}/infer': ['POST'],
};

/** What the v2 routes need from the app that mounts them. */
export interface V2Deps {
  readonly engine: InferenceEngine;
  readonly modelName: string;
  readonly maxBatchRows: number;
  readonly draining: () => boolean;
  readonly requireJson: RequestHandler;
  readonly json: RequestHandler;
  readonly reply: (res: Response, body: unknown) => void;
}

interface V2Output {
  name: OutputName;
  datatype: string;
  shape: number[];
  data: number[] | string[];
}

/** True for a JSON object or nothing (the protocol's optional `parameters`). */
function isObjectOrAbsent(value: unknown): boolean {
  return value === undefined || (typeof value === 'object' && value !== null && !Array.isArray(value));
}

/** Reads a v2 inference request body: its one input as a Batch, the outputs it asks for and its id. */
function parseInferRequest(
  body: unknown,
  featureCount: number,
  maxBatchRows: number,
): { rows: number; features: Float32Array; outputs: readonly OutputName[]; id: string | undefined } {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new ApiError('INVALID_BODY', 'expected a JSON object {"inputs": [{"name", "datatype", "shape", "data"}]}');
  }
  const { inputs, outputs, id, parameters } = body as Record<string, unknown>;
  if (!isObjectOrAbsent(parameters)) throw new ApiError('INVALID_BODY', '"parameters" must be an object');
  if (!Array.isArray(inputs) || inputs.length !== 1) {
    throw new ApiError('INVALID_TENSOR', `"inputs" must be a list of exactly one tensor (the model has one input)`);
  }
  const input: unknown = inputs[0];
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new ApiError('INVALID_TENSOR', 'inputs[0] must be an object {"name", "datatype", "shape", "data"}');
  }
  const tensor = input as Record<string, unknown>;
  if (typeof tensor.name !== 'string') throw new ApiError('INVALID_TENSOR', 'inputs[0].name must be a string');
  if (!isObjectOrAbsent(tensor.parameters))
    throw new ApiError('INVALID_TENSOR', 'inputs[0].parameters must be an object');
  const { rows } = checkInput(tensor, featureCount, maxBatchRows);
  const batch = batchFromJson(tensor.data, rows, featureCount);
  if (outputs !== undefined && !Array.isArray(outputs)) {
    throw new ApiError('INVALID_TENSOR', '"outputs" must be a list of {"name"}');
  }
  const names = outputs?.map((o: unknown) =>
    typeof o === 'object' && o !== null ? (o as Record<string, unknown>).name : o,
  );
  if (id !== undefined && typeof id !== 'string') throw new ApiError('INVALID_BODY', '"id" must be a string');
  return { ...batch, outputs: requestedOutputs(names), id };
}

/** Mounts the v2 REST endpoints on `app`. */
export function mountV2(app: Express, deps: V2Deps): void {
  const { engine, modelName, maxBatchRows, draining, reply } = deps;
  const { model } = engine;
  const { featureCount, classCount } = model.info;
  const metadata = { name: modelName, versions: [MODEL_VERSION], platform: 'onnxruntime', ...tensorMetadata(model) };

  /** 404 in the protocol's shape unless the path names the served model. */
  const servedModel = (req: Request, _res: Response, next: NextFunction): void => {
    checkModelName(String(req.params.name), modelName);
    next();
  };

  app.get('/v2', (_req, res) => {
    res.json(SERVER_METADATA);
  });
  app.get('/v2/health/live', (_req, res) => {
    res.json({ live: true });
  });
  app.get('/v2/health/ready', (_req, res) => {
    if (draining()) return sendError(res, new ApiError('NOT_READY', 'the server is draining'));
    res.json({ ready: true });
  });
  app.get('/v2/models/:name', servedModel, (_req, res) => {
    res.json(metadata);
  });
  app.get('/v2/models/:name/ready', servedModel, (_req, res) => {
    if (draining()) return sendError(res, new ApiError('NOT_READY', 'the server is draining'));
    res.json({ name: modelName, ready: true });
  });
  app.post('/v2/models/:name/infer', servedModel, deps.requireJson, deps.json, async (req, res) => {
    const request = parseInferRequest(req.body, featureCount, maxBatchRows);
    const { rows } = request;
    const probabilities = await engine.run(request);
    const outputs: V2Output[] = request.outputs.map((name) =>
      name === 'probabilities'
        ? { name, datatype: 'FP32', shape: [rows, classCount], data: Array.from(probabilities) }
        : { name, datatype: 'BYTES', shape: [rows], data: labels(model, probabilities, rows) },
    );
    reply(res, {
      model_name: modelName,
      model_version: MODEL_VERSION,
      ...(request.id === undefined ? {} : { id: request.id }),
      outputs,
    });
  });
}
