import { Ajv } from 'ajv';
import { connect } from 'node:net';
import { join } from 'node:path';
import { createApp, ROUTES } from '../src/app.js';
import { ERRORS } from '../src/errors.js';
import { loadModel } from '../src/model.js';
import { call, FIXTURES, postJson, serve, serveReference } from './helpers.js';

let base: string;
let close: () => Promise<void>;
let draining = false;

beforeAll(async () => {
  ({ base, close } = await serveReference(() => draining));
});
afterAll(() => close());

const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);
const argmax = (xs: number[]): number => xs.indexOf(Math.max(...xs));

describe('seed endpoints', () => {
  it('GET /health answers {"health":"ok"}', async () => {
    const answer = await call(base, 'GET', '/health');
    expect(answer.status).toBe(200);
    expect(answer.json).toEqual({ health: 'ok' });
  });

  it('GET /label maps class index to name', async () => {
    expect((await call(base, 'GET', '/label')).json).toEqual({ 0: 'setosa', 1: 'versicolor', 2: 'virginica' });
  });

  it('GET /metadata answers the seed fields with the computed prediction sample and model facts', async () => {
    const { json } = await call(base, 'GET', '/metadata');
    expect(json).toMatchObject({
      data_type: 'float32',
      data_structure: '(1,4)',
      data_sample: [[5.1, 3.5, 1.4, 0.2]],
      prediction_type: 'float32',
      prediction_structure: '(1,3)',
      model: { input_name: 'float_input', feature_count: 4, class_count: 3, zipmap_removed: true },
    });
    [0.97093159, 0.01558308, 0.01348537].forEach((p, i) => expect(json.prediction_sample[i]).toBeCloseTo(p, 6));
  });

  it('GET /predict/test answers the sample probabilities as a flat list', async () => {
    const { status, json } = await call(base, 'GET', '/predict/test');
    expect(status).toBe(200);
    expect(json.prediction).toHaveLength(3);
    expect(json.prediction[0]).toBeCloseTo(0.97093159, 6);
  });

  it('GET /predict/test/label answers setosa', async () => {
    expect((await call(base, 'GET', '/predict/test/label')).json).toEqual({ prediction: 'setosa' });
  });
});

describe('POST /predict and /predict/label (acceptance with the reference model)', () => {
  it('answers three probabilities summing to 1 with setosa highest for [5.1,3.5,1.4,0.2]', async () => {
    const { status, json } = await postJson(base, '/predict', { data: [[5.1, 3.5, 1.4, 0.2]] });
    expect(status).toBe(200);
    expect(json.prediction).toHaveLength(3);
    expect(sum(json.prediction)).toBeCloseTo(1, 5);
    expect(argmax(json.prediction)).toBe(0);
  });

  it.each([
    [[5.1, 3.5, 1.4, 0.2], 'setosa'],
    [[6.4, 3.2, 4.5, 1.5], 'versicolor'],
    [[6.3, 3.3, 6.0, 2.5], 'virginica'],
  ])('labels %j as %s', async (row, label) => {
    expect((await postJson(base, '/predict/label', { data: [row] })).json).toEqual({ prediction: label });
  });

  it('answers the seed load-test body (vegeta data.json)', async () => {
    const { status, json } = await postJson(base, '/predict', { data: [[1.0, 2.0, 3.0, 4.0]] });
    expect(status).toBe(200);
    expect(sum(json.prediction)).toBeCloseTo(1, 5);
  });
});

describe('batches', () => {
  const rows = [
    [5.1, 3.5, 1.4, 0.2],
    [6.4, 3.2, 4.5, 1.5],
    [6.3, 3.3, 6.0, 2.5],
  ];

  it('answers N rows with a list of N probability lists in request order', async () => {
    const { json } = await postJson(base, '/predict', { data: rows });
    expect(json.prediction).toHaveLength(3);
    expect(json.prediction.map(argmax)).toEqual([0, 1, 2]);
    for (const p of json.prediction) expect(sum(p)).toBeCloseTo(1, 5);
    const single = await postJson(base, '/predict', { data: [rows[1]] });
    json.prediction[1].forEach((p: number, i: number) => expect(p).toBeCloseTo(single.json.prediction[i], 6));
  });

  it('answers N rows with a list of N labels', async () => {
    expect((await postJson(base, '/predict/label', { data: rows })).json).toEqual({
      prediction: ['setosa', 'versicolor', 'virginica'],
    });
  });

  it('accepts exactly MAX_BATCH_ROWS rows', async () => {
    const { status, json } = await postJson(base, '/predict', { data: Array.from({ length: 16 }, () => rows[0]) });
    expect(status).toBe(200);
    expect(json.prediction).toHaveLength(16);
  });
});

describe('bad input gets a clear 4xx, never a 500', () => {
  const json = { 'content-type': 'application/json' };
  it.each([
    ['malformed JSON', 400, 'INVALID_JSON', { body: '{"data": [[1,2,3,4]', headers: json }],
    ['a JSON string', 400, 'INVALID_JSON', { body: '"data"', headers: json }],
    ['an empty JSON body', 400, 'INVALID_BODY', { body: '', headers: json }],
    ['no body at all', 400, 'INVALID_BODY', {}],
    ['missing data', 400, 'INVALID_BODY', { body: '{"rows":[[1,2,3,4]]}', headers: json }],
    ['ill-typed data', 400, 'INVALID_DATA', { body: '{"data":"1,2,3,4"}', headers: json }],
    ['a string feature', 400, 'INVALID_DATA', { body: '{"data":[[1,2,"3",4]]}', headers: json }],
    ['wrong feature count', 400, 'WRONG_FEATURE_COUNT', { body: '{"data":[[1,2,3]]}', headers: json }],
    ['a non-finite number', 400, 'NON_FINITE_VALUE', { body: '{"data":[[1e999,2,3,4]]}', headers: json }],
    ['an empty batch', 400, 'EMPTY_BATCH', { body: '{"data":[]}', headers: json }],
    [
      'more rows than MAX_BATCH_ROWS',
      413,
      'TOO_MANY_ROWS',
      { body: JSON.stringify({ data: Array(17).fill([1, 2, 3, 4]) }), headers: json },
    ],
    [
      'a body over the size limit',
      413,
      'BODY_TOO_LARGE',
      { body: JSON.stringify({ data: [[1, 2, 3, 4]], pad: 'x'.repeat(5000) }), headers: json },
    ],
    [
      'text/plain',
      415,
      'UNSUPPORTED_MEDIA_TYPE',
      { body: '{"data":[[1,2,3,4]]}', headers: { 'content-type': 'text/plain' } },
    ],
    [
      'a form body',
      415,
      'UNSUPPORTED_MEDIA_TYPE',
      { body: 'data=1', headers: { 'content-type': 'application/x-www-form-urlencoded' } },
    ],
    [
      'JSON in latin1',
      415,
      'UNSUPPORTED_MEDIA_TYPE',
      { body: '{"data":[[1,2,3,4]]}', headers: { 'content-type': 'application/json; charset=latin1' } },
    ],
    [
      'an unknown content encoding',
      415,
      'UNSUPPORTED_MEDIA_TYPE',
      { body: '{"data":[[1,2,3,4]]}', headers: { ...json, 'content-encoding': 'br-unknown' } },
    ],
  ])('POST with %s answers %i %s', async (_name, status, code, options) => {
    for (const path of ['/predict', '/predict/label']) {
      const answer = await call(base, 'POST', path, options);
      expect(answer.status).toBe(status);
      expect(answer.json.error.code).toBe(code);
      expect(typeof answer.json.error.message).toBe('string');
      expect(answer.headers['content-type']).toMatch(/^application\/json/);
    }
  });

  it('names the offending value in the message', async () => {
    const { json } = await postJson(base, '/predict', {
      data: [
        [1, 2, 3, 4],
        [1, 2, 3],
      ],
    });
    expect(json.error).toEqual({
      code: 'WRONG_FEATURE_COUNT',
      message: 'data[1] has 3 values; the model takes 4 features',
    });
  });

  it('answers an unknown route with 404 NOT_FOUND', async () => {
    const { status, json } = await call(base, 'GET', '/predictions');
    expect(status).toBe(404);
    expect(json.error.code).toBe('NOT_FOUND');
  });

  it('answers a known route with the wrong method with 405 and Allow', async () => {
    const answer = await call(base, 'GET', '/predict');
    expect(answer.status).toBe(405);
    expect(answer.headers.allow).toBe('POST');
    expect(answer.json.error.code).toBe('METHOD_NOT_ALLOWED');
    expect((await call(base, 'DELETE', '/health')).headers.allow).toBe('GET, HEAD');
  });
});

describe('operations endpoints', () => {
  it('GET /ready answers 200 when serving and 503 NOT_READY while draining', async () => {
    expect((await call(base, 'GET', '/ready')).json).toEqual({ ready: true });
    draining = true;
    try {
      const answer = await call(base, 'GET', '/ready');
      expect(answer.status).toBe(503);
      expect(answer.json.error.code).toBe('NOT_READY');
      expect(answer.headers.connection).toBe('close');
    } finally {
      draining = false;
    }
  });

  it('GET /metrics counts requests by route and status and times inference', async () => {
    await postJson(base, '/predict', {
      data: [
        [5.1, 3.5, 1.4, 0.2],
        [6.4, 3.2, 4.5, 1.5],
      ],
    });
    await postJson(base, '/predict', { data: [] });
    const { status, text, headers } = await call(base, 'GET', '/metrics');
    expect(status).toBe(200);
    expect(headers['content-type']).toMatch(/^text\/plain/);
    expect(text).toMatch(/iris_api_requests_total\{route="\/predict",method="POST",status="200"\} [1-9]/);
    expect(text).toMatch(/iris_api_requests_total\{route="\/predict",method="POST",status="400"\} [1-9]/);
    expect(text).toMatch(/iris_api_requests_total\{route="unmatched",method="GET",status="404"\} [1-9]/);
    expect(text).toContain('iris_api_request_duration_seconds_bucket{le="0.0001",route="/predict"}');
    expect(text).toContain('iris_api_inference_duration_seconds_bucket{le="0.00005"}');
    expect(text).toMatch(/iris_api_batch_rows_sum [1-9]/);
    expect(text).toMatch(
      /iris_api_model_info\{sha256="53856dda[0-9a-f]+",input="float_input",features="4",classes="3",zipmap_removed="true",producer="skl2onnx 1.7.0"\} 1/,
    );
    expect(text).toContain('process_cpu_user_seconds_total');
  });

  it('counts the GET /metrics being answered in iris_api_inflight_requests (the lab subtracts it)', async () => {
    const { text } = await call(base, 'GET', '/metrics');
    expect(text).toMatch(/^iris_api_inflight_requests 1$/m);
  });
});

describe('a client that leaves before the answer', () => {
  it('is counted with status 499', async () => {
    const { port } = new URL(base);
    const socket = connect(Number(port), '127.0.0.1');
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    socket.write(
      'POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n{"data"',
    );
    await new Promise((r) => setTimeout(r, 100));
    socket.destroy();
    const deadline = Date.now() + 5000;
    let text = '';
    while (!/status="499"/.test(text) && Date.now() < deadline) {
      text = (await call(base, 'GET', '/metrics')).text;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(text).toMatch(/iris_api_requests_total\{route="\/predict",method="POST",status="499"\} 1/);
  });
});

describe('GET /openapi.json', () => {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the document is arbitrary JSON
  let doc: any;
  let ajv: Ajv;
  beforeAll(async () => {
    doc = (await call(base, 'GET', '/openapi.json')).json;
    ajv = new Ajv({ strict: false, formats: { float: true } }); // OpenAPI's float format: the range is in minimum/maximum
    ajv.addSchema({ $id: 'api', components: doc.components });
  });
  const schema = (name: string) => ajv.getSchema(`api#/components/schemas/${name}`)!;

  it('documents every route with its methods, and nothing else', () => {
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.paths).sort()).toEqual(Object.keys(ROUTES).sort());
    for (const [path, methods] of Object.entries(ROUTES)) {
      expect(Object.keys(doc.paths[path]).sort()).toEqual(methods.map((m) => m.toLowerCase()).sort());
    }
  });

  it('lists every HTTP error code of the registry', () => {
    const httpCodes = Object.entries(ERRORS)
      .filter(([, e]) => e.status > 0)
      .map(([c]) => c);
    expect(doc.components.schemas.Error.properties.error.properties.code.enum).toEqual(httpCodes);
  });

  it('describes the answers the API really gives', async () => {
    const one = await postJson(base, '/predict', { data: [[5.1, 3.5, 1.4, 0.2]] });
    const many = await postJson(base, '/predict/label', {
      data: [
        [5.1, 3.5, 1.4, 0.2],
        [6.3, 3.3, 6.0, 2.5],
      ],
    });
    const bad = await postJson(base, '/predict', { data: [[1]] });
    const metadata = await call(base, 'GET', '/metadata');
    expect(schema('Prediction')(one.json)).toBe(true);
    expect(schema('LabelPrediction')(many.json)).toBe(true);
    expect(schema('Error')(bad.json)).toBe(true);
    expect(schema('Metadata')(metadata.json)).toBe(true);
    expect(schema('PredictRequest')({ data: [[1, 2, 3]] })).toBe(false);
  });
});

describe('other classifiers over HTTP', () => {
  it('serves string class labels from /predict/label and /label', async () => {
    const strings = await loadModel({ modelFilepath: join(FIXTURES, 'logistic_regression_strings.onnx') });
    const server = await serve(createApp({ model: strings }));
    try {
      expect((await postJson(server.base, '/predict/label', { data: [[6.3, 3.3, 6.0, 2.5]] })).json).toEqual({
        prediction: 'virginica',
      });
      expect((await call(server.base, 'GET', '/label')).json).toEqual({ 0: 'setosa', 1: 'versicolor', 2: 'virginica' });
    } finally {
      await server.close();
      await strings.close();
    }
  });

  it('serves a binary tree ensemble with two probabilities per row', async () => {
    const binary = await loadModel({ modelFilepath: join(FIXTURES, 'gradient_boosting_binary.onnx') });
    const server = await serve(createApp({ model: binary }));
    try {
      const { json } = await postJson(server.base, '/predict', {
        data: [
          [6.4, 3.2, 4.5, 1.5],
          [6.3, 3.3, 6.0, 2.5],
        ],
      });
      expect(json.prediction.map((p: number[]) => p.length)).toEqual([2, 2]);
      expect(json.prediction.map(argmax)).toEqual([0, 1]);
      expect((await call(server.base, 'GET', '/metadata')).json).toMatchObject({
        prediction_structure: '(1,2)',
        model: { class_names_source: 'model' },
      });
    } finally {
      await server.close();
      await binary.close();
    }
  });
});
