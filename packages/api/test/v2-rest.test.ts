import { Ajv } from 'ajv';
import { call, IRIS_V2_METADATA, postJson, serveReference } from './helpers.js';

let base: string;
let close: () => Promise<void>;
let draining = false;

beforeAll(async () => {
  ({ base, close } = await serveReference(() => draining));
});
afterAll(() => close());
afterEach(() => {
  draining = false;
});

const SETOSA = [5.1, 3.5, 1.4, 0.2];
const VIRGINICA = [6.3, 3.3, 6.0, 2.5];
const infer = (body: unknown, name = 'iris') => postJson(base, `/v2/models/${name}/infer`, body);
const input = (data: unknown, shape: unknown = [1, 4], datatype = 'FP32') => ({
  inputs: [{ name: 'input', datatype, shape, data }],
});

describe('Open Inference Protocol v2 over REST: health and metadata', () => {
  it('answers server metadata, liveness and readiness', async () => {
    expect((await call(base, 'GET', '/v2')).json).toEqual({ name: 'iris-api', version: '0.1.0', extensions: [] });
    expect((await call(base, 'GET', '/v2/health/live')).json).toEqual({ live: true });
    expect((await call(base, 'GET', '/v2/health/ready')).json).toEqual({ ready: true });
    expect((await call(base, 'GET', '/v2/models/iris/ready')).json).toEqual({ name: 'iris', ready: true });
  });

  it('answers 503 in the protocol shape on readiness while draining, and stays live', async () => {
    draining = true;
    const ready = await call(base, 'GET', '/v2/health/ready');
    expect(ready.status).toBe(503);
    expect(ready.json).toEqual({ error: 'the server is draining', code: 'NOT_READY' });
    expect((await call(base, 'GET', '/v2/models/iris/ready')).status).toBe(503);
    expect((await call(base, 'GET', '/v2/health/live')).status).toBe(200);
  });

  it("describes the model's input and outputs", async () => {
    expect((await call(base, 'GET', '/v2/models/iris')).json).toEqual(IRIS_V2_METADATA);
  });

  it('answers 404 UNKNOWN_MODEL in the protocol shape for a model it does not serve', async () => {
    for (const path of ['/v2/models/resnet', '/v2/models/resnet/ready']) {
      const answer = await call(base, 'GET', path);
      expect(answer.status).toBe(404);
      expect(answer.json).toEqual({ error: expect.stringContaining('"resnet" is not served'), code: 'UNKNOWN_MODEL' });
    }
    expect((await infer(input(SETOSA), 'resnet')).status).toBe(404);
  });
});

describe('Open Inference Protocol v2 over REST: inference', () => {
  it('answers the probabilities of /predict and the labels of /predict/label for the same rows', async () => {
    const rows = [SETOSA, VIRGINICA];
    const v2 = await infer({ id: 'req-1', ...input(rows.flat(), [2, 4]) });
    const book = await postJson(base, '/predict', { data: rows });
    expect(v2.status).toBe(200);
    expect(v2.json).toEqual({
      model_name: 'iris',
      model_version: '1',
      id: 'req-1',
      outputs: [
        { name: 'probabilities', datatype: 'FP32', shape: [2, 3], data: book.json.prediction.flat() },
        { name: 'label', datatype: 'BYTES', shape: [2], data: ['setosa', 'virginica'] },
      ],
    });
  });

  it('takes nested row-major data and FP64, and answers only the outputs asked for', async () => {
    const answer = await infer({ ...input([SETOSA, VIRGINICA], [2, 4], 'FP64'), outputs: [{ name: 'label' }] });
    expect(answer.status).toBe(200);
    expect(answer.json.outputs).toEqual([
      { name: 'label', datatype: 'BYTES', shape: [2], data: ['setosa', 'virginica'] },
    ]);
  });

  it.each([
    [
      'a data length that is not the shape',
      input(SETOSA, [2, 4]),
      'INVALID_TENSOR',
      /4 values; its shape \[2, 4\] needs 8/,
    ],
    [
      'a datatype the model does not take',
      input(SETOSA, [1, 4], 'INT32'),
      'INVALID_TENSOR',
      /"INT32" is not supported/,
    ],
    ['a shape that is not [rows, features]', input(SETOSA, [4]), 'INVALID_TENSOR', /must be \[rows, 4\]/],
    ['the wrong number of features', input([1, 2, 3], [1, 3]), 'WRONG_FEATURE_COUNT', /takes 4 features/],
    ['a value that is not a number', input([1, 2, 'x', 4]), 'INVALID_TENSOR', /row 0, feature 2 is not a number/],
    ['two inputs', { inputs: [input(SETOSA).inputs[0], input(SETOSA).inputs[0]] }, 'INVALID_TENSOR', /exactly one/],
    ['no inputs', {}, 'INVALID_TENSOR', /exactly one/],
    ['an output the model lacks', { ...input(SETOSA), outputs: [{ name: 'logits' }] }, 'INVALID_TENSOR', /"logits"/],
    ['an id that is not a string', { ...input(SETOSA), id: 7 }, 'INVALID_BODY', /"id"/],
    ['a body that is a list', [1], 'INVALID_BODY', /JSON object/],
    ['parameters that are not an object', { ...input(SETOSA), parameters: [null] }, 'INVALID_BODY', /"parameters"/],
    [
      'an input without a name',
      { inputs: [{ datatype: 'FP32', shape: [1, 4], data: SETOSA }] },
      'INVALID_TENSOR',
      /name/,
    ],
  ])('answers 400 in the protocol shape for %s', async (_what, body, code, message) => {
    const answer = await infer(body);
    expect(answer.status).toBe(400);
    expect(answer.json.code).toBe(code);
    expect(answer.json.error).toMatch(message);
  });

  it('answers 413 TOO_MANY_ROWS above MAX_BATCH_ROWS and BODY_TOO_LARGE above the body limit', async () => {
    const rows = Array.from({ length: 17 }, () => SETOSA);
    const tooMany = await infer(input(rows.flat(), [17, 4]));
    expect([tooMany.status, tooMany.json.code]).toEqual([413, 'TOO_MANY_ROWS']);
    const large = await infer({ ...input(SETOSA), id: 'x'.repeat(5000) });
    expect([large.status, large.json.code]).toEqual([413, 'BODY_TOO_LARGE']);
  });

  it('answers 400 INVALID_JSON and 415 in the protocol shape', async () => {
    const json = await call(base, 'POST', '/v2/models/iris/infer', {
      body: '{"inputs": [',
      headers: { 'content-type': 'application/json' },
    });
    expect([json.status, json.json.code, typeof json.json.error]).toEqual([400, 'INVALID_JSON', 'string']);
    const type = await call(base, 'POST', '/v2/models/iris/infer', {
      body: 'x',
      headers: { 'content-type': 'text/plain' },
    });
    expect([type.status, type.json.code]).toEqual([415, 'UNSUPPORTED_MEDIA_TYPE']);
  });

  it('answers 405 with Allow and 404 for an unknown /v2 path, both in the protocol shape', async () => {
    const get = await call(base, 'GET', '/v2/models/iris/infer');
    expect(get.status).toBe(405);
    expect(get.headers.allow).toBe('POST');
    expect(get.json).toEqual({
      error: 'GET is not allowed on /v2/models/{name}/infer; use POST',
      code: 'METHOD_NOT_ALLOWED',
    });
    const none = await call(base, 'GET', '/v2/repository/index');
    expect([none.status, none.json.code, typeof none.json.error]).toEqual([404, 'NOT_FOUND', 'string']);
    // the book's endpoints keep their own shape
    expect((await call(base, 'GET', '/nothing')).json.error).toEqual({
      code: 'NOT_FOUND',
      message: 'no route GET /nothing',
    });
  });

  it('counts v2 inference in the same metrics as the book endpoints', async () => {
    await infer(input(SETOSA));
    const text = (await call(base, 'GET', '/metrics')).text;
    expect(text).toMatch(
      /iris_api_requests_total\{route="\/v2\/models\/:name\/infer",method="POST",status="200"\} \d+/,
    );
    expect(text).toMatch(/iris_api_inference_duration_seconds_count \d+/);
  });
});

describe('/openapi.json for v2', () => {
  it('describes the v2 answers the API really gives', async () => {
    const doc = (await call(base, 'GET', '/openapi.json')).json;
    const ajv = new Ajv({ strict: false, formats: { float: true } });
    ajv.addSchema({ $id: 'api', components: doc.components });
    const schema = (name: string) => ajv.getSchema(`api#/components/schemas/${name}`)!;
    const body = input([SETOSA, VIRGINICA], [2, 4]);
    expect(schema('V2InferenceRequest')(body)).toBe(true);
    expect(schema('V2InferenceResponse')((await infer(body)).json)).toBe(true);
    expect(schema('V2ModelMetadata')((await call(base, 'GET', '/v2/models/iris')).json)).toBe(true);
    expect(schema('V2ServerMetadata')((await call(base, 'GET', '/v2')).json)).toBe(true);
    expect(schema('V2Error')((await infer(input(SETOSA, [2, 4]))).json)).toBe(true);
    expect(doc.paths['/v2/models/{name}/infer'].post.parameters[0].schema).toEqual({ type: 'string', enum: ['iris'] });
  });
});
