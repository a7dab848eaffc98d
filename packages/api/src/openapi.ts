import { FLOAT32_MAX } from './batch.js';
import { ERRORS } from './errors.js';
import { v2Paths, v2Schemas, type V2OpenApiFacts } from './v2/openapi.js';

/** Facts the document states about the served model. */
export type OpenApiFacts = V2OpenApiFacts;

type Json = Record<string, unknown>;

const ref = (name: string): Json => ({ $ref: `#/components/schemas/${name}` });
const jsonContent = (schema: Json, example?: unknown): Json => ({
  'application/json': example === undefined ? { schema } : { schema, example },
});
const ok = (description: string, schema: Json, example?: unknown): Json => ({
  description,
  content: jsonContent(schema, example),
});
const error = (description: string): Json => ({ description, content: jsonContent(ref('Error')) });
const codesOf = (status: number): string =>
  Object.entries(ERRORS)
    .filter(([, e]) => e.status === status)
    .map(([code]) => code)
    .join(', ');

/** Builds the OpenAPI 3.1 document of every endpoint and error answer. */
export function buildOpenApi(facts: OpenApiFacts): Json {
  const { featureCount, classNames, maxBatchRows, sample } = facts;
  const classes = classNames.length;
  const predictErrors: Json = {
    400: error(`Invalid input: ${codesOf(400)}`),
    405: error('METHOD_NOT_ALLOWED'),
    413: error(`Too large: ${codesOf(413)} (at most ${maxBatchRows} rows)`),
    415: error('UNSUPPORTED_MEDIA_TYPE: the body is not application/json'),
    500: error(`${codesOf(500)}`),
  };
  const predictBody = { required: true, content: jsonContent(ref('PredictRequest'), { data: [sample] }) };
  const get = (summary: string, responses: Json): Json => ({
    get: { summary, responses: { ...responses, 405: error('METHOD_NOT_ALLOWED') } },
  });
  return {
    openapi: '3.1.0',
    info: {
      title: 'iris-api',
      version: '0.1.0',
      description:
        'Inference API for a scikit-learn classifier exported to ONNX; endpoint-compatible with the reference FastAPI service. ' +
        'One row answers a flat list (or one label); N rows answer a list of N lists (or N labels), in request order.',
    },
    paths: {
      '/health': get('Liveness', { 200: ok('Alive', ref('Health'), { health: 'ok' }) }),
      '/ready': get('Readiness: the model is loaded and warmed and the server is not draining', {
        200: ok('Ready', { type: 'object', properties: { ready: { const: true } }, required: ['ready'] }),
        503: error('NOT_READY: draining'),
      }),
      '/metadata': get('Input and output shapes, a sample, and facts about the model', {
        200: ok('Metadata', ref('Metadata')),
      }),
      '/label': get('Class index -> class name', {
        200: ok(
          'Labels',
          { type: 'object', additionalProperties: { type: 'string' } },
          Object.fromEntries(classNames.map((n, i) => [String(i), n])),
        ),
      }),
      '/predict/test': get('Probabilities of the sample row', {
        200: ok('Probabilities', ref('Prediction')),
        500: error(codesOf(500)),
      }),
      '/predict/test/label': get('Class name of the sample row', {
        200: ok('Label', ref('LabelPrediction')),
        500: error(codesOf(500)),
      }),
      '/predict': {
        post: {
          summary: 'Class probabilities of each row',
          requestBody: predictBody,
          responses: {
            200: ok('Probabilities: a flat list for one row, a list of lists for N rows', ref('Prediction')),
            ...predictErrors,
          },
        },
      },
      '/predict/label': {
        post: {
          summary: 'Most probable class name of each row',
          requestBody: predictBody,
          responses: {
            200: ok('Class name for one row, a list of names for N rows', ref('LabelPrediction')),
            ...predictErrors,
          },
        },
      },
      '/metrics': get('Prometheus metrics (aggregated over workers)', {
        200: { description: 'Prometheus text exposition', content: { 'text/plain': { schema: { type: 'string' } } } },
      }),
      '/openapi.json': get('This document', { 200: ok('OpenAPI document', { type: 'object' }) }),
      ...v2Paths(facts),
    },
    components: {
      schemas: {
        // The model takes float32: a finite double beyond float32's range is rejected (NON_FINITE_VALUE), so say so.
        Row: {
          type: 'array',
          items: { type: 'number', format: 'float', minimum: -FLOAT32_MAX, maximum: FLOAT32_MAX },
          minItems: featureCount,
          maxItems: featureCount,
        },
        PredictRequest: {
          type: 'object',
          required: ['data'],
          properties: { data: { type: 'array', items: ref('Row'), minItems: 1, maxItems: maxBatchRows } },
        },
        Probabilities: {
          type: 'array',
          items: { type: 'number', minimum: 0, maximum: 1 },
          minItems: classes,
          maxItems: classes,
        },
        Prediction: {
          type: 'object',
          required: ['prediction'],
          properties: { prediction: { oneOf: [ref('Probabilities'), { type: 'array', items: ref('Probabilities') }] } },
        },
        LabelPrediction: {
          type: 'object',
          required: ['prediction'],
          properties: {
            prediction: {
              oneOf: [
                { type: 'string', enum: classNames },
                { type: 'array', items: { type: 'string', enum: classNames } },
              ],
            },
          },
        },
        Health: { type: 'object', properties: { health: { const: 'ok' } }, required: ['health'] },
        Metadata: {
          type: 'object',
          required: [
            'data_type',
            'data_structure',
            'data_sample',
            'prediction_type',
            'prediction_structure',
            'prediction_sample',
            'model',
          ],
          properties: {
            data_type: { const: 'float32' },
            data_structure: { type: 'string' },
            data_sample: { type: 'array', items: ref('Row') },
            prediction_type: { const: 'float32' },
            prediction_structure: { type: 'string' },
            prediction_sample: ref('Probabilities'),
            batch: { type: 'object' },
            model: { type: 'object' },
          },
        },
        Error: {
          type: 'object',
          required: ['error'],
          properties: {
            error: {
              type: 'object',
              required: ['code', 'message'],
              properties: {
                code: {
                  type: 'string',
                  enum: Object.entries(ERRORS)
                    .filter(([, e]) => e.status > 0)
                    .map(([c]) => c),
                },
                message: { type: 'string' },
              },
            },
          },
        },
        ...v2Schemas(facts),
      },
    },
  };
}
