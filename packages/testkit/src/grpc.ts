// The test upstream's gRPC side (TestUpstream with `grpc: true`): the Open Inference Protocol v2 service from
// proto/grpc_predict_v2.proto, whose ModelInfer follows the upstream's fault mode, and a server-streaming
// test service (testkit.Tokens/Stream) for streams, trailers and cancellation, and its client.
import * as grpc from '@grpc/grpc-js';
import { oipServiceClient } from './oip.js';

/** What the test upstream's gRPC side reads from the upstream and reports to it. */
export interface GrpcHost {
  mode: string;
  serviceMs: number;
  /** the grpc-status of `5xx` mode (default UNAVAILABLE) */
  grpcFailStatus: number;
  /** a call arrived (counted with the HTTP requests); returns the function to call when it ends */
  arrived(path: string): () => void;
  /** calls the client (or a proxy) cancelled before they ended */
  cancelled: number;
  /** the metadata of the last call, as the upstream saw it */
  lastMetadata: Record<string, unknown>;
  /** the time the last call had left by its deadline (grpc-timeout) when it arrived, ms; Infinity without one */
  lastDeadlineMs: number;
  timers: Set<NodeJS.Timeout>;
}

const json = {
  serialize: (value: unknown): Buffer => Buffer.from(JSON.stringify(value)),
  deserialize: (bytes: Buffer): unknown => JSON.parse(bytes.toString() || '{}'),
};

/** The server-streaming test service: `Stream({count, gapMs})` sends `{token: i}` every gapMs, then trailers. */
export const TOKENS_SERVICE: grpc.ServiceDefinition = {
  Stream: {
    path: '/testkit.Tokens/Stream',
    requestStream: false,
    responseStream: true,
    requestSerialize: json.serialize,
    requestDeserialize: json.deserialize,
    responseSerialize: json.serialize,
    responseDeserialize: json.deserialize,
  },
};

/** The answer of ModelInfer in `ok` mode: the iris classes' probabilities, as the API's /predict answers. */
export const INFER_ANSWER = {
  model_name: 'iris',
  outputs: [{ name: 'predict', datatype: 'FP32', shape: [1, 3], contents: { fp32_contents: [0.97, 0.02, 0.01] } }],
};

/** Starts the gRPC side on 127.0.0.1 and a free port (or `port`); resolves with the server and its port. */
export async function startGrpc(host: GrpcHost, port = 0): Promise<{ server: grpc.Server; port: number }> {
  const server = new grpc.Server();
  const track = (call: grpc.ServerUnaryCall<unknown, unknown> | grpc.ServerWritableStream<unknown, unknown>) => {
    const ended = host.arrived(call.getPath());
    host.lastMetadata = call.metadata.getMap();
    const deadline = call.getDeadline();
    const at = deadline instanceof Date ? deadline.getTime() : deadline; // grpc-js: epoch ms, Infinity for none
    host.lastDeadlineMs = at - Date.now();
    let done = false;
    const end = (): void => {
      if (done) return;
      done = true;
      ended();
    };
    call.once('cancelled', () => {
      if (!done) host.cancelled++;
      end();
    });
    return end;
  };
  const later = (ms: number, fn: () => void): void => {
    if (ms <= 0) return fn();
    const timer = setTimeout(() => {
      host.timers.delete(timer);
      fn();
    }, ms);
    host.timers.add(timer);
  };
  server.addService(oipServiceClient().service, {
    ServerLive: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => cb(null, { live: true }),
    ServerReady: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => cb(null, { ready: true }),
    ModelReady: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => cb(null, { ready: true }),
    ModelInfer: (call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      const end = track(call);
      const answer = (): void => {
        if (call.cancelled) return end();
        end();
        if (host.mode === '5xx')
          cb({ code: host.grpcFailStatus, details: 'injected fault' } as grpc.ServiceError, null);
        else cb(null, INFER_ANSWER);
      };
      if (host.mode === 'hang') return;
      later(host.mode === 'slow' ? host.serviceMs * 10 : host.serviceMs, answer);
    },
  });
  server.addService(TOKENS_SERVICE, {
    Stream: (call: grpc.ServerWritableStream<{ count?: number; gapMs?: number }, unknown>) => {
      const end = track(call);
      const count = call.request.count ?? 3;
      const gapMs = call.request.gapMs ?? 0;
      let i = 0;
      const next = (): void => {
        if (call.cancelled) return end();
        if (i >= count) {
          const trailers = new grpc.Metadata();
          trailers.set('x-upstream-trailer', 'tokens-done');
          end();
          call.end(trailers);
          return;
        }
        call.write({ token: i++ });
        later(gapMs, next);
      };
      next();
    },
  });
  const bound = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err, p) =>
      err === null ? resolve(p) : reject(err),
    ),
  );
  return { server, port: bound };
}

/** A client of the server-streaming test service at 127.0.0.1:`port`. */
export function tokensClient(port: number): grpc.Client & GrpcMethods {
  const Client = grpc.makeGenericClientConstructor(TOKENS_SERVICE, 'Tokens');
  return new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as grpc.Client & GrpcMethods;
}

/** The generated methods of a grpc-js client, loosely typed (the tests check what comes back). */
export type GrpcMethods = Record<
  string,
  (...args: unknown[]) => grpc.ClientUnaryCall & grpc.ClientReadableStream<unknown>
>;

export { grpc };
