// The v2 gRPC service of the built iris-api (GRPC_PORT), driven by a real grpc-js client on the committed proto.
import * as grpc from '@grpc/grpc-js';
import {
  IRIS_ROW,
  modelInferRequest,
  oipClient,
  runToExit,
  startApi,
  API_BIN,
  stopAll,
  type ApiProcess,
  type OipClient,
} from '@infer-cb/testkit';
import { IRIS_V2_METADATA } from './helpers.js';

let api: ApiProcess;
let client: OipClient;

beforeAll(async () => {
  // One slot held 100 ms: REST and gRPC must queue for the same slot.
  api = await startApi({
    grpcPort: 0,
    env: { MAX_BATCH_ROWS: '16', BODY_LIMIT_BYTES: '4096', INFERENCE_CONCURRENCY: '1', INFERENCE_MIN_MS: '100' },
  });
  client = oipClient(api.grpcTarget!);
}, 30_000);
afterAll(async () => {
  client.close();
  await stopAll();
});

const VIRGINICA = [6.3, 3.3, 6.0, 2.5];

/** A ModelInfer request of one row whose input claims `shape`. */
function reshaped(shape: number[]): Record<string, unknown> {
  const request = modelInferRequest('iris', [IRIS_ROW]);
  (request.inputs as { shape: number[] }[])[0]!.shape = shape;
  return request;
}

interface InferResponse {
  model_name: string;
  model_version: string;
  id: string;
  outputs: {
    name: string;
    datatype: string;
    shape: number[];
    contents?: { fp32_contents?: number[]; bytes_contents?: Buffer[] };
  }[];
  raw_output_contents: Buffer[];
}

/** The status a failed call ended with: code, details and our error code from its trailers. */
async function failure(call: Promise<unknown>): Promise<{ code: number; details: string; errorCode: unknown }> {
  try {
    await call;
  } catch (err) {
    const e = err as grpc.ServiceError;
    return { code: e.code, details: e.details, errorCode: e.metadata.get('error-code')[0] };
  }
  throw new Error('the call succeeded');
}

describe('inference.GRPCInferenceService on GRPC_PORT', () => {
  it('reports its gRPC port on the ready line, beside the HTTP one', () => {
    expect(api.grpcPort).toBeGreaterThan(0);
    expect(api.grpcPort).not.toBe(api.port);
  });

  it('answers ServerLive, ServerReady, ModelReady and both metadata calls', async () => {
    expect((await client.call('ServerLive', {})).response).toEqual({ live: true });
    expect((await client.call('ServerReady', {})).response).toEqual({ ready: true });
    expect((await client.call('ModelReady', { name: 'iris' })).response).toEqual({ ready: true });
    expect((await client.call('ServerMetadata', {})).response).toEqual({
      name: 'iris-api',
      version: '0.1.0',
      extensions: [],
    });
    expect((await client.call('ModelMetadata', { name: 'iris', version: '1' })).response).toEqual(IRIS_V2_METADATA);
  });

  it('infers FP32 contents: the probabilities of REST /predict and the labels, id echoed', async () => {
    const rest = (await (
      await fetch(`${api.origin}/predict`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ data: [IRIS_ROW, VIRGINICA] }),
      })
    ).json()) as { prediction: number[][] };
    const { response } = await client.call<InferResponse>('ModelInfer', {
      ...modelInferRequest('iris', [IRIS_ROW, VIRGINICA]),
      id: 'call-1',
    });
    expect(response).toMatchObject({ model_name: 'iris', model_version: '1', id: 'call-1', raw_output_contents: [] });
    const [probabilities, label] = response.outputs;
    expect(probabilities).toMatchObject({ name: 'probabilities', datatype: 'FP32', shape: [2, 3] });
    probabilities!.contents!.fp32_contents!.forEach((p, i) => expect(p).toBeCloseTo(rest.prediction.flat()[i]!, 6));
    expect(label).toMatchObject({ name: 'label', datatype: 'BYTES', shape: [2] });
    expect(label!.contents!.bytes_contents!.map(String)).toEqual(['setosa', 'virginica']);
  });

  it('infers FP64 contents and answers only the outputs asked for', async () => {
    const request = modelInferRequest('iris', [VIRGINICA], ['label']);
    const inputs = request.inputs as { datatype: string; contents: Record<string, number[]> }[];
    inputs[0]!.datatype = 'FP64';
    inputs[0]!.contents = { fp64_contents: VIRGINICA };
    const { response } = await client.call<InferResponse>('ModelInfer', request);
    expect(response.outputs.map((o) => o.name)).toEqual(['label']);
    expect(response.outputs[0]!.contents!.bytes_contents!.map(String)).toEqual(['virginica']);
  });

  it('infers raw_input_contents and answers raw_output_contents (little-endian FP32; BYTES length-prefixed)', async () => {
    const raw = Buffer.from(Float32Array.from([...IRIS_ROW, ...VIRGINICA]).buffer);
    const { response } = await client.call<InferResponse>('ModelInfer', {
      model_name: 'iris',
      inputs: [{ name: 'input', datatype: 'FP32', shape: [2, 4] }],
      raw_input_contents: [raw],
    });
    expect(response.outputs.map((o) => [o.name, o.contents])).toEqual([
      ['probabilities', undefined],
      ['label', undefined],
    ]);
    const [probabilities, labels] = response.raw_output_contents;
    const p = new Float32Array(probabilities!.buffer.slice(probabilities!.byteOffset, probabilities!.byteOffset + 24));
    expect(p[0]).toBeGreaterThan(0.9);
    expect(p[5]).toBeGreaterThan(0.9);
    expect(labels!.readUInt32LE(0)).toBe(6);
    expect(labels!.subarray(4, 10).toString()).toBe('setosa');
  });

  it.each([
    ['an unknown model', { ...modelInferRequest('resnet') }, grpc.status.NOT_FOUND, 'UNKNOWN_MODEL'],
    [
      'an unknown version',
      { ...modelInferRequest('iris'), model_version: '7' },
      grpc.status.NOT_FOUND,
      'UNKNOWN_MODEL',
    ],
    ['a shape its contents do not fill', reshaped([2, 4]), grpc.status.INVALID_ARGUMENT, 'INVALID_TENSOR'],
    ['three features', modelInferRequest('iris', [[1, 2, 3]]), grpc.status.INVALID_ARGUMENT, 'WRONG_FEATURE_COUNT'],
    ['a NaN', modelInferRequest('iris', [[1, 2, Number.NaN, 4]]), grpc.status.INVALID_ARGUMENT, 'NON_FINITE_VALUE'],
    [
      '17 rows (MAX_BATCH_ROWS 16)',
      modelInferRequest('iris', Array(17).fill(IRIS_ROW)),
      grpc.status.RESOURCE_EXHAUSTED,
      'TOO_MANY_ROWS',
    ],
    [
      'an unknown output',
      modelInferRequest('iris', [IRIS_ROW], ['logits']),
      grpc.status.INVALID_ARGUMENT,
      'INVALID_TENSOR',
    ],
  ])('answers %s with its gRPC status and our code in the trailers', async (_what, request, code, errorCode) => {
    const got = await failure(client.call('ModelInfer', request));
    expect({ code: got.code, errorCode: got.errorCode }).toEqual({ code, errorCode });
    expect(got.details).not.toBe('');
  });

  it('answers RESOURCE_EXHAUSTED for a message larger than BODY_LIMIT_BYTES', async () => {
    const got = await failure(client.call('ModelInfer', { ...modelInferRequest('iris'), id: 'x'.repeat(5000) }));
    expect(got.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
  });

  it('answers NOT_FOUND for ModelReady and ModelMetadata of another model', async () => {
    expect((await failure(client.call('ModelReady', { name: 'resnet' }))).code).toBe(grpc.status.NOT_FOUND);
    expect((await failure(client.call('ModelMetadata', { name: 'resnet' }))).code).toBe(grpc.status.NOT_FOUND);
  });

  it('shares the inference slots with REST: one slot of 100 ms serves a REST and a gRPC request one after the other', async () => {
    const started = performance.now();
    await Promise.all([
      client.call('ModelInfer', modelInferRequest('iris')),
      fetch(`${api.origin}/predict/test`).then((r) => r.json()),
    ]);
    // Both held the one slot for 100 ms each: together at least 200 ms (a lower bound, never flaky with load).
    expect(performance.now() - started).toBeGreaterThanOrEqual(195);
  });

  it('counts gRPC calls in the request metrics by method and gRPC status', async () => {
    await failure(client.call('ModelInfer', modelInferRequest('resnet')));
    const text = await (await fetch(`${api.origin}/metrics`)).text();
    expect(text).toMatch(
      /iris_api_requests_total\{route="\/inference\.GRPCInferenceService\/ModelInfer",method="gRPC",status="OK"\} [1-9]/,
    );
    expect(text).toMatch(
      /iris_api_requests_total\{route="\/inference\.GRPCInferenceService\/ModelInfer",method="gRPC",status="NOT_FOUND"\} [1-9]/,
    );
  });
});

describe('a GRPC_PORT that is taken', () => {
  it('stops the API at startup with one line naming GRPC_PORT, exit 1', async () => {
    const run = await runToExit(process.execPath, [API_BIN], {
      PORT: '0',
      HOST: '127.0.0.1',
      GRPC_PORT: String(api.grpcPort),
    });
    expect(run.code).toBe(1);
    expect(run.stderr.trim().split('\n')).toEqual([
      expect.stringMatching(new RegExp(`^iris-api: GRPC_PORT_UNAVAILABLE: GRPC_PORT=${api.grpcPort}: `)),
    ]);
  });
});

describe('draining with gRPC', () => {
  it('lets a call in flight finish on SIGTERM and exits 0', async () => {
    const draining = await startApi({ grpcPort: 0, env: { INFERENCE_CONCURRENCY: '1', INFERENCE_MIN_MS: '400' } });
    const c = oipClient(draining.grpcTarget!);
    try {
      await c.call('ServerReady', {}); // connected
      const inFlight = c.call('ModelInfer', modelInferRequest('iris'));
      await new Promise((r) => setTimeout(r, 100));
      draining.proc.signal('SIGTERM');
      await expect(inFlight).resolves.toMatchObject({ response: { model_name: 'iris' } });
      expect(await draining.proc.exited).toEqual({ code: 0, signal: null });
    } finally {
      c.close();
    }
  });
});
