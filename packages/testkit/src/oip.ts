// The Open Inference Protocol v2 for tests: a grpc-js client of inference.GRPCInferenceService on the committed
// proto, and MLServer (the shared venv's, `make mlserver`) as a real peer on kit ports.
import { accessSync, constants, mkdtempSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { connect } from 'node:net';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { mlserverPaths, writeMlserverRepository } from '@infer-cb/lab';
import { REPO_ROOT } from './bench.js';
import { onFreePort } from './ports.js';
import { startProcess, type TestProcess } from './processes.js';

/** The committed proto of the protocol. */
export const OIP_PROTO = join(REPO_ROOT, 'proto', 'grpc_predict_v2.proto');
/** The lab's MLServer paths: the model repository, the shared venv's Python, serve.py and the trained model. */
const MLSERVER = mlserverPaths(REPO_ROOT);
/** The project's MLServer model repository (settings.json, iris/model-settings.json, the trained model). */
export const MLSERVER_DIR = MLSERVER.dir;
/** The shared venv's Python (`make mlserver` installs MLServer and grpcio into it). */
export const VENV_PYTHON = MLSERVER.python;
/** The iris sample row the book's endpoints use. */
export const IRIS_ROW: readonly number[] = [5.1, 3.5, 1.4, 0.2];

/** A v2 REST inference body for `rows` (one FP32 input of shape [rows, 4]); `outputs` names what to answer. */
export function v2RestBody(rows: readonly (readonly number[])[] = [IRIS_ROW], outputs?: readonly string[]): string {
  return JSON.stringify({
    inputs: [{ name: 'input', datatype: 'FP32', shape: [rows.length, rows[0]?.length ?? 0], data: rows.flat() }],
    ...(outputs === undefined ? {} : { outputs: outputs.map((name) => ({ name })) }),
  });
}

/** A ModelInfer request for `rows` in FP32 contents (proto-loader's keepCase field names). */
export function modelInferRequest(
  modelName: string,
  rows: readonly (readonly number[])[] = [IRIS_ROW],
  outputs?: readonly string[],
): Record<string, unknown> {
  return {
    model_name: modelName,
    inputs: [
      {
        name: 'input',
        datatype: 'FP32',
        shape: [rows.length, rows[0]?.length ?? 0],
        contents: { fp32_contents: rows.flat() },
      },
    ],
    ...(outputs === undefined ? {} : { outputs: outputs.map((name) => ({ name })) }),
  };
}

/** One unary call's answer: the response message, and the headers and trailers it came with. */
export interface OipAnswer<T> {
  response: T;
  metadata: grpc.Metadata | undefined;
  trailers: grpc.StatusObject | undefined;
}

/** A grpc-js client of inference.GRPCInferenceService. */
export interface OipClient {
  /**
   * One unary call (`ModelInfer`, `ServerReady`, ...).
   * @throws grpc.ServiceError with the call's status code, details and trailing metadata
   */
  call<T = Record<string, unknown>>(
    method: string,
    request: Record<string, unknown>,
    options?: { deadlineMs?: number; metadata?: Record<string, string> },
  ): Promise<OipAnswer<T>>;
  /** The underlying client (streams, cancellation). */
  readonly client: grpc.Client;
  close(): void;
}

let serviceClient: grpc.ServiceClientConstructor | undefined;

/** The client constructor of the committed proto (loaded once). */
export function oipServiceClient(): grpc.ServiceClientConstructor {
  serviceClient ??= (
    grpc.loadPackageDefinition(
      protoLoader.loadSync(OIP_PROTO, { keepCase: true, longs: Number, enums: String, defaults: false, arrays: true }),
    ) as unknown as { inference: { GRPCInferenceService: grpc.ServiceClientConstructor } }
  ).inference.GRPCInferenceService;
  return serviceClient;
}

/** A client of `target` (`127.0.0.1:port`) over h2c; `options` are grpc-js channel options. */
export function oipClient(target: string, options: grpc.ChannelOptions = {}): OipClient {
  const Client = oipServiceClient();
  const client = new Client(target, grpc.credentials.createInsecure(), options);
  return {
    client,
    close: () => client.close(),
    call: <T>(
      method: string,
      request: Record<string, unknown>,
      { deadlineMs = 10_000, metadata = {} }: { deadlineMs?: number; metadata?: Record<string, string> } = {},
    ) =>
      new Promise<OipAnswer<T>>((resolve, reject) => {
        const md = new grpc.Metadata();
        for (const [k, v] of Object.entries(metadata)) md.set(k, v);
        let headers: grpc.Metadata | undefined;
        let trailers: grpc.StatusObject | undefined;
        const fn = (client as unknown as Record<string, grpc.requestCallback<T> | undefined>)[method];
        if (typeof fn !== 'function') throw new Error(`no method ${method} in ${Client.serviceName}`);
        const call = (
          fn as unknown as (
            req: unknown,
            md: grpc.Metadata,
            opts: grpc.CallOptions,
            cb: (err: grpc.ServiceError | null, res?: T) => void,
          ) => grpc.ClientUnaryCall
        ).call(client, request, md, { deadline: Date.now() + deadlineMs }, (err, response) => {
          if (err !== null) reject(err);
          else resolve({ response: response as T, metadata: headers, trailers });
        });
        call.on('metadata', (m: grpc.Metadata) => (headers = m));
        call.on('status', (s: grpc.StatusObject) => (trailers = s));
      }),
  };
}

/** A running MLServer. */
export interface MlserverProcess {
  proc: TestProcess;
  httpPort: number;
  grpcPort: number;
  /** `http://127.0.0.1:<httpPort>` */
  origin: string;
  /** `127.0.0.1:<grpcPort>` */
  grpcTarget: string;
  /** The model's name (`iris`). */
  model: string;
}

/** How to start MLServer. */
export interface MlserverSpec {
  /** REST port; a kit port (tried again on another when taken) unless given. */
  httpPort?: number;
  /** gRPC port; a kit port unless given. */
  grpcPort?: number;
  /** The model repository (default mlserver/). */
  dir?: string;
  /**
   * Serve the iris model like a heavier one (mlserver/shaped.py, the analogue of iris-api's INFERENCE_*): at most
   * `concurrency` predictions at once (0 = no limit), each holding its slot `minMs`. Writes a model repository of
   * its own into a temporary directory.
   */
  inference?: { concurrency: number; minMs: number };
  cpu?: number;
  /** More environment (MLSERVER_* settings). */
  env?: Readonly<Record<string, string>>;
  readyTimeoutMs?: number;
}

/**
 * The command that starts the shared venv's MLServer: mlserver/serve.py (MLServer's CLI with its gRPC port bound
 * exclusively, so a taken port fails the start instead of being shared through SO_REUSEPORT).
 * @throws Error naming `make mlserver` when MLServer or the trained model is missing
 */
export function mlserverCommand(): { command: string; args: string[] } {
  const bin = join(REPO_ROOT, '.tools', 'venv', 'bin', 'mlserver');
  for (const file of [bin, MLSERVER.model]) {
    try {
      accessSync(file, constants.R_OK);
    } catch {
      throw new Error(`${file} is missing: run \`make mlserver\` (MLServer 1.7.1 into .tools/venv, the iris model)`);
    }
  }
  return { command: MLSERVER.python, args: [MLSERVER.serve, 'start'] };
}

/** True when process `pid` holds a listening TCP socket on `port` (Linux: /proc/net/tcp{,6} and its fds). */
export function listensOn(pid: number, port: number): boolean {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  const inodes = new Set<string>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      // local_address is HEXIP:HEXPORT, st 0A is LISTEN, the inode is the tenth column
      if (cols[1]?.endsWith(`:${hexPort}`) === true && cols[3] === '0A' && cols[9] !== undefined) inodes.add(cols[9]);
    }
  }
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return false;
  }
  return fds.some((fd) => {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      return m !== null && inodes.has(m[1]!);
    } catch {
      return false;
    }
  });
}

function tcpOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });
}

/**
 * Starts MLServer (mlserver/ by default: the iris model, `parallel_workers: 0`, no metrics port) on 127.0.0.1 and
 * resolves once the model answers ready over REST and the gRPC port accepts. Ports not given are kit ports, tried
 * again on others while MLServer reports them taken (nothing binds a port to find it free).
 */
export async function startMlserver(spec: MlserverSpec = {}): Promise<MlserverProcess> {
  const { command, args } = mlserverCommand();
  const dir =
    spec.inference === undefined
      ? (spec.dir ?? MLSERVER_DIR)
      : writeMlserverRepository(mkdtempSync(join(tmpdir(), 'cb-mlserver-')), REPO_ROOT, spec.inference);
  const start = async (httpPort: number, grpcPort: number): Promise<MlserverProcess> => {
    const proc = await startProcess({
      name: 'mlserver',
      command,
      args: [...args, dir],
      env: {
        PYTHONPATH: MLSERVER_DIR,
        MLSERVER_HOST: '127.0.0.1',
        MLSERVER_HTTP_PORT: String(httpPort),
        MLSERVER_GRPC_PORT: String(grpcPort),
        ...spec.env,
      },
      cpu: spec.cpu,
      readyTimeoutMs: spec.readyTimeoutMs ?? 60_000,
      readyCheck: async () => {
        const res = await fetch(`http://127.0.0.1:${httpPort}/v2/models/iris/ready`, {
          signal: AbortSignal.timeout(1000),
        });
        await res.arrayBuffer();
        return res.ok && (await tcpOpen(grpcPort));
      },
    });
    // Ready can be seen for a moment before a start whose gRPC port was taken exits: make sure the port is its own.
    if (!listensOn(proc.pid, grpcPort) || !listensOn(proc.pid, httpPort)) {
      await proc.stop(1000);
      throw new Error(`mlserver: address already in use: ${grpcPort} or ${httpPort} is held by another process`);
    }
    return {
      proc,
      httpPort,
      grpcPort,
      origin: `http://127.0.0.1:${httpPort}`,
      grpcTarget: `127.0.0.1:${grpcPort}`,
      model: 'iris',
    };
  };
  // Both ports given: one try (the caller chose them); otherwise other kit ports while they are taken.
  if (spec.httpPort !== undefined && spec.grpcPort !== undefined) return start(spec.httpPort, spec.grpcPort);
  return onFreePort((port) => start(spec.httpPort ?? port, spec.grpcPort ?? port + 1));
}

interface DescriptorProto {
  name: string;
  field: { name: string; number: number; type: string }[];
  nestedType: DescriptorProto[];
  options: { mapEntry?: boolean } | null;
}

/** The committed proto's messages (nested ones as `Outer.Inner`, map entries left out): field -> [number, TYPE_*]. */
export function oipProtoFields(): Record<string, Record<string, [number, string]>> {
  const definition = protoLoader.loadSync(OIP_PROTO, { keepCase: true });
  const out: Record<string, Record<string, [number, string]>> = {};
  const add = (name: string, message: DescriptorProto): void => {
    out[name] = Object.fromEntries(message.field.map((f) => [f.name, [f.number, f.type]]));
    for (const nested of message.nestedType) {
      if (nested.options?.mapEntry !== true) add(`${name}.${nested.name}`, nested);
    }
  };
  for (const [name, entry] of Object.entries(definition)) {
    if ('format' in entry && entry.format === 'Protocol Buffer 3 DescriptorProto') {
      add(name.replace(/^inference\./, ''), entry.type as DescriptorProto);
    }
  }
  return out;
}
