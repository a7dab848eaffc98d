// MLServer 1.7.1 (`make mlserver`) as a real Open Inference Protocol v2 peer: REST and gRPC directly (grpc-js,
// and grpcio from the venv), the committed proto against MLServer's own, and REST v2 and gRPC through cb-sidecar.
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
  startSidecar,
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

describe('MLServer shaped like a heavier model (mlserver/shaped.py)', () => {
  it('runs at most `concurrency` predictions at once, each held `minMs`: two on one 200 ms slot take 400 ms', async () => {
    const shaped = await startMlserver({ inference: { concurrency: 1, minMs: 200 } });
    const started = performance.now();
    const answers = await Promise.all([sendV2(shaped.origin), sendV2(shaped.origin)]);
    // a lower bound (one after the other), never flaky on a loaded machine
    expect(performance.now() - started).toBeGreaterThanOrEqual(395);
    expect(answers.map((a) => a.json.outputs[0].data)).toEqual([[0], [0]]);
    await shaped.proc.stop();
  }, 90_000);
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

/** One POST of the iris row through `origin`: status, x-cb-reason, Retry-After and the JSON body. */
async function sendV2(
  origin: string,
): Promise<{ status: number; reason: string | null; retryAfter: string | null; json: Json }> {
  const res = await fetch(`${origin}/v2/models/iris/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: v2RestBody(),
  });
  return {
    status: res.status,
    reason: res.headers.get('x-cb-reason'),
    retryAfter: res.headers.get('retry-after'),
    json: await res.json(),
  };
}

const count = (xs: readonly { status: number; reason: string | null }[]): Record<string, number> => {
  const out: Record<string, number> = {};
  for (const x of xs) {
    const key = x.reason === null ? String(x.status) : `${x.status} ${x.reason}`;
    out[key] = (out[key] ?? 0) + 1;
  }
  return out;
};

describe('MLServer over REST v2 through cb-sidecar', () => {
  // Every prediction held 300 ms inside MLServer (mlserver/shaped.py, no slot limit): requests overlap at the model,
  // so what the sidecar admits is exactly what is in flight there.
  let slow: MlserverProcess;
  beforeAll(async () => {
    slow = await startMlserver({ inference: { concurrency: 0, minMs: 300 } });
  }, 90_000);

  it("passes answers through unchanged: the inference, and MLServer's own 404", async () => {
    const sidecar = await startSidecar({ upstream: mlserver.origin });
    const direct = await postV2(mlserver.origin, v2RestBody([VIRGINICA], ['predict_proba']));
    const through = await postV2(sidecar.url, v2RestBody([VIRGINICA], ['predict_proba']));
    expect(through.status).toBe(200);
    expect(through.json.outputs).toEqual(direct.json.outputs);
    const missing = await postV2(sidecar.url, v2RestBody(), 'resnet');
    expect(missing).toEqual({ status: 404, json: { error: 'Model resnet not found' } });
    await sidecar.proc.stop();
  });

  it('admits its limit, queues its pending requests and sheds the rest with 503 overload and Retry-After', async () => {
    const sidecar = await startSidecar({
      upstream: slow.origin,
      yaml: `
trafficPolicy:
  connectionPool: { tcp: { maxConnections: 2 }, http: { http1MaxPendingRequests: 2 } }
sidecar:
  queue: { timeout: 5s, codelTarget: 5s, codelInterval: 10s }
`,
    });
    const answers = await Promise.all(Array.from({ length: 8 }, () => sendV2(sidecar.url)));
    // 2 in flight at MLServer, 2 queued behind them (served 300 ms later), 4 shed at once.
    expect(count(answers)).toEqual({ 200: 4, '503 overload': 4 });
    for (const a of answers.filter((x) => x.status === 503)) {
      expect(a.retryAfter).not.toBeNull();
      expect(a.json.error.code).toBe('CB_OVERLOAD');
    }
    await sidecar.proc.stop();
  });

  it('sheds a queued request with 503 queue-timeout when MLServer holds the slot past the queue timeout', async () => {
    const sidecar = await startSidecar({
      upstream: slow.origin,
      yaml: `
trafficPolicy:
  connectionPool: { tcp: { maxConnections: 1 }, http: { http1MaxPendingRequests: 4 } }
sidecar:
  queue: { timeout: 100ms, codelTarget: 100ms }
`,
    });
    const answers = await Promise.all(Array.from({ length: 3 }, () => sendV2(sidecar.url)));
    expect(count(answers)).toEqual({ 200: 1, '503 queue-timeout': 2 });
    await sidecar.proc.stop();
  });

  it('answers 503 upstream-unavailable once MLServer is gone, then opens the circuit', async () => {
    const sidecar = await startSidecar({
      upstream: slow.origin,
      yaml: 'sidecar: { breaker: { resetTimeout: 30s, unreachableResetTimeout: 30s } }\n',
    });
    expect((await sendV2(sidecar.url)).status).toBe(200);
    await slow.proc.stop();
    const answers = [];
    for (let i = 0; i < 7; i++) answers.push(await sendV2(sidecar.url));
    // Istio's consecutive5xxErrors (5 by default): five failures reach the dead upstream, then the circuit is open.
    expect(answers.map((a) => a.reason)).toEqual([
      ...Array<string>(5).fill('upstream-unavailable'),
      'circuit-open',
      'circuit-open',
    ]);
    await sidecar.proc.stop();
  });
});

describe('MLServer over gRPC v2 through cb-sidecar (h2c both ways)', () => {
  let slow: MlserverProcess;
  beforeAll(async () => {
    slow = await startMlserver({ inference: { concurrency: 0, minMs: 300 } });
  }, 90_000);

  /** One unary ModelInfer through `target`: the answer, or the error's code, message and trailers. */
  const infer = async (c: OipClient): Promise<{ code: number; reason?: unknown; pushback?: unknown; json?: Json }> => {
    try {
      const { response } = await c.call<Json>('ModelInfer', modelInferRequest('iris'));
      return { code: grpc.status.OK, json: response };
    } catch (err) {
      const e = err as grpc.ServiceError;
      const trailers = e.metadata.getMap();
      return { code: e.code, reason: trailers['x-cb-reason'], pushback: trailers['grpc-retry-pushback-ms'] };
    }
  };

  it('passes ModelInfer through unchanged, to grpc-js and to grpcio from the venv', async () => {
    const sidecar = await startSidecar({ upstream: `http://${mlserver.grpcTarget}` });
    const through = oipClient(`127.0.0.1:${sidecar.port}`);
    try {
      const direct = await infer(client);
      expect(await infer(through)).toEqual(direct);
      expect(await grpcio('infer', `127.0.0.1:${sidecar.port}`, 'iris')).toEqual(
        await grpcio('infer', mlserver.grpcTarget, 'iris'),
      );
    } finally {
      through.close();
      await sidecar.proc.stop();
    }
  }, 60_000);

  it('sheds with RESOURCE_EXHAUSTED and grpc-retry-pushback-ms beyond its limit and queue', async () => {
    const sidecar = await startSidecar({
      upstream: `http://${slow.grpcTarget}`,
      yaml: `
trafficPolicy:
  connectionPool: { tcp: { maxConnections: 2 }, http: { http1MaxPendingRequests: 2 } }
sidecar:
  queue: { timeout: 5s, codelTarget: 5s, codelInterval: 10s }
`,
    });
    const through = oipClient(`127.0.0.1:${sidecar.port}`);
    try {
      const answers = await Promise.all(Array.from({ length: 8 }, () => infer(through)));
      const shed = answers.filter((a) => a.code === grpc.status.RESOURCE_EXHAUSTED);
      // 2 in flight at MLServer, 2 queued behind them, 4 shed at once: streams, on one connection, counted.
      expect(answers.filter((a) => a.code === grpc.status.OK)).toHaveLength(4);
      expect(shed).toHaveLength(4);
      for (const a of shed) expect(a).toMatchObject({ reason: 'overload', pushback: '1000' });
    } finally {
      through.close();
      await sidecar.proc.stop();
    }
  }, 60_000);

  it('answers UNAVAILABLE once MLServer is gone, then opens the circuit (UNAVAILABLE, circuit-open)', async () => {
    const sidecar = await startSidecar({
      upstream: `http://${slow.grpcTarget}`,
      yaml: 'sidecar: { breaker: { resetTimeout: 30s, unreachableResetTimeout: 30s } }\n',
    });
    const through = oipClient(`127.0.0.1:${sidecar.port}`);
    try {
      expect((await infer(through)).code).toBe(grpc.status.OK);
      await slow.proc.stop();
      const answers = [];
      for (let i = 0; i < 7; i++) answers.push(await infer(through));
      expect(answers.map((a) => a.code)).toEqual(Array<number>(7).fill(grpc.status.UNAVAILABLE));
      expect(answers.map((a) => a.reason)).toEqual([
        ...Array<string>(5).fill('upstream-unavailable'),
        'circuit-open',
        'circuit-open',
      ]);
    } finally {
      through.close();
      await sidecar.proc.stop();
    }
  }, 60_000);
});
