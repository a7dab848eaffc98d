// The Open Inference Protocol v2 endpoints in /openapi.json: the protocol's shapes for this model, its error
// body `{"error": "<message>", "code"}` (errors.ts, V2ErrorBody).
import { FLOAT32_MAX } from '../batch.js';
import { ERRORS } from '../errors.js';
import { INPUT_DATATYPES, OUTPUTS } from './tensor.js';

type Json = Record<string, unknown>;

/** Facts the v2 part of the document states about the served model. */
export interface V2OpenApiFacts {
  readonly modelName: string;
  readonly featureCount: number;
  readonly classNames: readonly string[];
  readonly maxBatchRows: number;
  readonly sample: readonly number[];
}

const ref = (name: string): Json => ({ $ref: `#/components/schemas/${name}` });
const ok = (description: string, schema: Json, example?: unknown): Json => ({
  description,
  content: { 'application/json': example === undefined ? { schema } : { schema, example } },
});
const v2Error = (description: string): Json => ({
  description,
  content: { 'application/json': { schema: ref('V2Error') } },
});
const notAllowed = { 405: v2Error('METHOD_NOT_ALLOWED') };
const nameParameter = (modelName: string): Json => ({
  name: 'name',
  in: 'path',
  required: true,
  description: `the model's name; this server serves "${modelName}" (others: 404 UNKNOWN_MODEL)`,
  schema: { type: 'string', enum: [modelName] },
});
const TensorMetadata: Json = {
  type: 'object',
  required: ['name', 'datatype', 'shape'],
  properties: {
    name: { type: 'string' },
    datatype: { type: 'string' },
    shape: { type: 'array', items: { type: 'integer' } },
  },
};

/** The /v2 paths of the OpenAPI document. */
export function v2Paths(facts: V2OpenApiFacts): Json {
  const { modelName, featureCount, maxBatchRows, sample } = facts;
  const parameters = [nameParameter(modelName)];
  // A path Express cannot decode (%E0) is a 400; a name other than the served one a 404.
  const modelErrors = { 400: v2Error('INVALID_BODY: the path cannot be decoded'), 404: v2Error('UNKNOWN_MODEL') };
  const draining = { 503: v2Error('NOT_READY: the server is draining') };
  return {
    '/v2': {
      get: {
        summary: 'Open Inference Protocol v2: server metadata',
        responses: { 200: ok('Server metadata', ref('V2ServerMetadata')), ...notAllowed },
      },
    },
    '/v2/health/live': {
      get: {
        summary: 'v2 liveness',
        responses: {
          200: ok('Alive', { type: 'object', required: ['live'], properties: { live: { const: true } } }),
          ...notAllowed,
        },
      },
    },
    '/v2/health/ready': {
      get: {
        summary: 'v2 readiness: 503 while draining',
        responses: {
          200: ok('Ready', { type: 'object', required: ['ready'], properties: { ready: { const: true } } }),
          ...draining,
          ...notAllowed,
        },
      },
    },
    '/v2/models/{name}': {
      get: {
        parameters,
        summary: "v2 model metadata: the model's input and output tensors",
        responses: { 200: ok('Model metadata', ref('V2ModelMetadata')), ...modelErrors, ...notAllowed },
      },
    },
    '/v2/models/{name}/ready': {
      get: {
        parameters,
        summary: 'v2 model readiness: 503 while draining',
        responses: {
          200: ok('Ready', {
            type: 'object',
            required: ['name', 'ready'],
            properties: { name: { type: 'string' }, ready: { const: true } },
          }),
          ...modelErrors,
          ...draining,
          ...notAllowed,
        },
      },
    },
    '/v2/models/{name}/infer': {
      post: {
        parameters,
        summary: `v2 inference: one input [rows, ${featureCount}] (FP32 or FP64, data flat or nested); outputs ${OUTPUTS.join(' and ')}`,
        requestBody: {
          required: true,
          content: {
            'application/json': {
              schema: ref('V2InferenceRequest'),
              example: { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, featureCount], data: sample }] },
            },
          },
        },
        responses: {
          200: ok('Inference answer', ref('V2InferenceResponse')),
          400: v2Error(
            `Invalid input: ${['INVALID_TENSOR', 'INVALID_JSON', 'INVALID_BODY', 'EMPTY_BATCH', 'WRONG_FEATURE_COUNT', 'NON_FINITE_VALUE'].join(', ')}`,
          ),
          404: v2Error('UNKNOWN_MODEL'),
          ...notAllowed,
          413: v2Error(`Too large: TOO_MANY_ROWS (at most ${maxBatchRows} rows), BODY_TOO_LARGE`),
          415: v2Error('UNSUPPORTED_MEDIA_TYPE: the body is not application/json'),
          500: v2Error('INFERENCE_FAILED, INTERNAL'),
        },
      },
    },
  };
}

/** The schemas the /v2 paths refer to. */
export function v2Schemas(facts: V2OpenApiFacts): Json {
  const { featureCount, classNames, maxBatchRows } = facts;
  const value = { type: 'number', minimum: -FLOAT32_MAX, maximum: FLOAT32_MAX };
  return {
    V2Error: {
      type: 'object',
      required: ['error', 'code'],
      properties: {
        error: { type: 'string', description: "the protocol's error message" },
        code: {
          type: 'string',
          description: 'our stable error code (errors.ts)',
          enum: Object.entries(ERRORS)
            .filter(([, e]) => e.status > 0)
            .map(([c]) => c),
        },
      },
    },
    V2ServerMetadata: {
      type: 'object',
      required: ['name', 'version', 'extensions'],
      properties: {
        name: { type: 'string' },
        version: { type: 'string' },
        extensions: { type: 'array', items: { type: 'string' } },
      },
    },
    V2ModelMetadata: {
      type: 'object',
      required: ['name', 'versions', 'platform', 'inputs', 'outputs'],
      properties: {
        name: { type: 'string' },
        versions: { type: 'array', items: { type: 'string' } },
        platform: { type: 'string' },
        inputs: { type: 'array', items: TensorMetadata },
        outputs: { type: 'array', items: TensorMetadata },
      },
    },
    V2InferenceRequest: {
      type: 'object',
      required: ['inputs'],
      properties: {
        id: { type: 'string' },
        parameters: { type: 'object' },
        inputs: {
          type: 'array',
          minItems: 1,
          maxItems: 1,
          items: {
            type: 'object',
            required: ['name', 'datatype', 'shape', 'data'],
            properties: {
              name: { type: 'string' },
              datatype: { type: 'string', enum: [...INPUT_DATATYPES] },
              shape: {
                type: 'array',
                prefixItems: [{ type: 'integer', minimum: 1, maximum: maxBatchRows }, { const: featureCount }],
                minItems: 2,
                maxItems: 2,
              },
              data: {
                description: 'rows x features values, row-major: flat, or one list per row',
                type: 'array',
                minItems: 1,
                items: {
                  oneOf: [value, { type: 'array', items: value, minItems: featureCount, maxItems: featureCount }],
                },
              },
            },
          },
        },
        outputs: {
          type: 'array',
          items: { type: 'object', required: ['name'], properties: { name: { type: 'string', enum: [...OUTPUTS] } } },
        },
      },
    },
    V2InferenceResponse: {
      type: 'object',
      required: ['model_name', 'outputs'],
      properties: {
        model_name: { type: 'string' },
        model_version: { type: 'string' },
        id: { type: 'string' },
        outputs: {
          type: 'array',
          items: {
            type: 'object',
            required: ['name', 'datatype', 'shape', 'data'],
            properties: {
              name: { type: 'string', enum: [...OUTPUTS] },
              datatype: { type: 'string' },
              shape: { type: 'array', items: { type: 'integer' } },
              data: {
                oneOf: [
                  { type: 'array', items: { type: 'number', minimum: 0, maximum: 1 } },
                  { type: 'array', items: { type: 'string', enum: classNames } },
                ],
              },
            },
          },
        },
      },
    },
  };
}
