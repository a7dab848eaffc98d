// MLServer 1.7.1 (`make mlserver`) as a real Open Inference Protocol v2 peer: REST and gRPC directly (grpc-js,
// and grpcio from the venv), the committed proto against MLServer's own, and REST v2 through cb-sidecar.
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import {
  REPO_ROOT,
  VENV_PYTHON,
  modelInferRequest,
  oipClient,
  oipProtoFields,
  runToExit,
  startApi,
  startMlserver,
  stopAll,
  v2RestBody,
  type MlserverProcess,
  type OipClient,
} from '@infer-cb/testkit';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- assertions read the servers' arbitrary JSON
type Json = any;

const GRPCIO = join(REPO_ROOT, 'test', 'fixtures', 'oip_grpcio.py');
const VIRGINICA = [6.3, 3.3, 6.0, 2.5];

let mlserver: MlserverProcess;
let client: OipClient;

beforeAll(async () => {
  mlserver = await startMlserver();
  client = oipClient(mlserver.grpcTarget);
}, 90_000);
afterAll(async () => {
  client.close();
  await stopAll();
});

async function postV2(origin: string, body: string, model = 'iris'): Promise<{ status: number; json: Json }> {
  const res = await fetch(`${origin}/v2/models/${model}/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
  });
  return { status: res.status, json: await res.json() };
}

/** grpcio from the venv (MLServer's generated stubs): `args` of test/fixtures/oip_grpcio.py, its JSON answer. */
async function grpcio(...args: string[]): Promise<Json> {
  const { code, stdout, stderr } = await runToExit(VENV_PYTHON, [GRPCIO, ...args], {}, 60_000);
  if (code !== 0) throw new Error(`oip_grpcio.py ${args.join(' ')} exited ${code}: ${stderr}`);
  return JSON.parse(stdout);
}

describe('MLServer over REST v2, directly', () => {
  it('is live and ready, and serves the iris model', async () => {
    expect((await fetch(`${mlserver.origin}/v2/health/live`)).status).toBe(200);
    expect((await fetch(`${mlserver.origin}/v2/health/ready`)).status).toBe(200);
    const ready = await fetch(`${mlserver.origin}/v2/models/iris/ready`);
    expect(ready.status).toBe(200);
  });

  it('answers the class and the probabilities of the iris rows', async () => {
    const classes = await postV2(mlserver.origin, v2RestBody([[5.1, 3.5, 1.4, 0.2], VIRGINICA]));
    expect(classes.status).toBe(200);
    expect(classes.json.outputs[0]).toMatchObject({ name: 'predict', shape: [2, 1], data: [0, 2] });
    const proba = await postV2(mlserver.origin, v2RestBody([[5.1, 3.5, 1.4, 0.2]], ['predict_proba']));
    expect(proba.json.outputs[0]).toMatchObject({ name: 'predict_proba', shape: [1, 3] });
    expect(proba.json.outputs[0].data[0]).toBeGreaterThan(0.9);
  });

  it('answers a model it does not serve with 404 and the protocol\'s {"error": string}, as iris-api does', async () => {
    const api = await startApi();
    const theirs = await postV2(mlserver.origin, v2RestBody(), 'resnet');
    const ours = await postV2(api.origin, v2RestBody(), 'resnet');
    expect([theirs.status, typeof theirs.json.error]).toEqual([404, 'string']);
    expect([ours.status, typeof ours.json.error]).toEqual([404, 'string']);
    await api.proc.stop();
  });
});

describe('MLServer over gRPC v2, directly', () => {
  it('answers ServerReady and ModelReady (grpc-js on the committed proto)', async () => {
    expect((await client.call('ServerReady', {})).response).toEqual({ ready: true });
    expect((await client.call('ModelReady', { name: 'iris' })).response).toEqual({ ready: true });
  });

  it('answers ModelInfer with FP32 contents (grpc-js)', async () => {
    const { response } = await client.call<{ outputs: { name: string; contents: { int64_contents: number[] } }[] }>(
      'ModelInfer',
      modelInferRequest('iris', [[5.1, 3.5, 1.4, 0.2], VIRGINICA]),
    );
    expect(response.outputs[0]).toMatchObject({ name: 'predict', contents: { int64_contents: [0, 2] } });
  });

  it('answers NOT_FOUND for a model it does not serve (grpc-js)', async () => {
    await expect(client.call('ModelInfer', modelInferRequest('resnet'))).rejects.toMatchObject({
      code: grpc.status.NOT_FOUND,
    });
  });

  it('answers grpcio from the venv, as iris-api does', async () => {
    const api = await startApi({ grpcPort: 0 });
    const theirs = await grpcio('infer', mlserver.grpcTarget, 'iris');
    const ours = await grpcio('infer', api.grpcTarget!, 'iris');
    expect(theirs).toMatchObject({ model_name: 'iris', outputs: [{ name: 'predict', int64: [0] }] });
    expect(ours).toMatchObject({
      model_name: 'iris',
      outputs: [{ name: 'probabilities' }, { name: 'label', bytes: ['setosa'] }],
    });
    expect(ours.outputs[0].fp32[0]).toBeGreaterThan(0.9);
    await api.proc.stop();
  }, 60_000);

  it("numbers every field of the committed proto as MLServer's dataplane.proto does", async () => {
    const theirs = (await grpcio('fields')) as Record<string, Record<string, [number, string]>>;
    const ours = oipProtoFields();
    // Newer than MLServer 1.7.1's copy of the protocol: InferParameter's double and uint64 (KServe added them).
    const newer = new Set(['InferParameter.double_param', 'InferParameter.uint64_param']);
    for (const [message, fields] of Object.entries(ours)) {
      expect([message, theirs[message] === undefined]).toEqual([message, false]);
      for (const [field, numberAndType] of Object.entries(fields)) {
        if (newer.has(`${message}.${field}`)) continue;
        expect([`${message}.${field}`, theirs[message]![field]]).toEqual([`${message}.${field}`, numberAndType]);
      }
    }
  }, 60_000);

  it('refuses to start on a gRPC port another MLServer holds (no SO_REUSEPORT sharing)', async () => {
    await expect(startMlserver({ grpcPort: mlserver.grpcPort, httpPort: mlserver.httpPort + 2 })).rejects.toThrow(
      /failed to bind to address|address already in use/i,
    );
  }, 90_000);
});
