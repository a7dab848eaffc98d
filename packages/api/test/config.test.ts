import { ConfigError, DEFAULTS, loadConfig } from '../src/config.js';

describe('loadConfig', () => {
  it('uses the documented defaults for an empty environment', () => {
    const config = loadConfig({});
    expect(config).toEqual(DEFAULTS);
    expect(config).toMatchObject({
      port: 8000,
      host: '0.0.0.0',
      workers: 1,
      maxBatchRows: 1024,
      bodyLimitBytes: 1048576,
    });
    expect(config.modelFilepath).toMatch(/packages\/api\/models\/iris_svc\.onnx$/);
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('reads the seed-compatible variables', () => {
    const config = loadConfig({
      PORT: '9000',
      HOST: '127.0.0.1',
      MODEL_FILEPATH: '/workdir/m.onnx',
      LABEL_FILEPATH: '/workdir/l.json',
      WORKERS: '2',
      LOG_LEVEL: 'DEBUG',
      LOG_FORMAT: 'text',
      MAX_BATCH_ROWS: '8',
    });
    expect(config).toMatchObject({
      port: 9000,
      host: '127.0.0.1',
      modelFilepath: '/workdir/m.onnx',
      labelFilepath: '/workdir/l.json',
      workers: 2,
      logLevel: 'debug',
      logFormat: 'text',
      maxBatchRows: 8,
    });
  });

  it('reads the inference shaping variables (off by default)', () => {
    expect(loadConfig({})).toMatchObject({ inferenceConcurrency: 0, inferenceMinMs: 0 });
    expect(loadConfig({ INFERENCE_CONCURRENCY: '8', INFERENCE_MIN_MS: '200' })).toMatchObject({
      inferenceConcurrency: 8,
      inferenceMinMs: 200,
    });
  });

  it('serves gRPC only when GRPC_PORT is set, and names the v2 model MODEL_NAME', () => {
    expect(loadConfig({})).toMatchObject({ grpcPort: undefined, modelName: 'iris' });
    expect(loadConfig({ GRPC_PORT: '8001', MODEL_NAME: 'iris-v2' })).toMatchObject({
      grpcPort: 8001,
      modelName: 'iris-v2',
    });
    expect(loadConfig({ GRPC_PORT: '0' }).grpcPort).toBe(0);
  });

  it('rejects a GRPC_PORT that is not a port or is the HTTP port, and a MODEL_NAME that is not one path segment', () => {
    let error: unknown;
    try {
      loadConfig({ PORT: '9000', GRPC_PORT: '9000', MODEL_NAME: 'a/b' });
    } catch (err) {
      error = err;
    }
    expect((error as ConfigError).problems).toEqual([
      expect.stringMatching(/^MODEL_NAME="a\/b": expected letters/),
      'GRPC_PORT=9000: the HTTP server listens on that port (PORT)',
    ]);
    expect(() => loadConfig({ GRPC_PORT: '70000' })).toThrow(/GRPC_PORT="70000": expected an integer from 0 to 65535/);
  });

  it('rejects invalid settings listing every problem, not only the first', () => {
    let error: unknown;
    try {
      loadConfig({
        PORT: 'eighty',
        WORKERS: '0',
        LOG_LEVEL: 'loud',
        LOG_FORMAT: 'xml',
        MAX_BATCH_ROWS: '-1',
        BODY_LIMIT_BYTES: '1.5',
        INFERENCE_CONCURRENCY: 'many',
        INFERENCE_MIN_MS: '-5',
      });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems;
    expect(problems).toHaveLength(8);
    for (const name of [
      'PORT',
      'WORKERS',
      'LOG_LEVEL',
      'LOG_FORMAT',
      'MAX_BATCH_ROWS',
      'BODY_LIMIT_BYTES',
      'INFERENCE_CONCURRENCY',
      'INFERENCE_MIN_MS',
    ]) {
      expect(problems.some((p) => p.startsWith(`${name}=`))).toBe(true);
    }
    expect((error as ConfigError).code).toBe('CONFIG_INVALID');
  });
});
