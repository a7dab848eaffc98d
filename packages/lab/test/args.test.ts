import { resolve } from 'node:path';
import { parseLabArgs } from '../src/args.js';

describe('cb-lab flags', () => {
  it('resolves a --policy file against the directory it was started in, as --model and --out', () => {
    const f = parseLabArgs(['--policy', 'packages/policy/fixtures/book-destinationrule.yaml']);
    expect(f.policy).toBe(resolve('packages/policy/fixtures/book-destinationrule.yaml'));
    expect(() => parseLabArgs(['--policy', 'no/such/dr.yaml'])).toThrow(/--policy file not found: no\/such\/dr\.yaml/);
  });

  it('defaults to three replicas, every arm at 1 caller then istio and sidecar at 4, 10 s, builtin, a probed rate', () => {
    const f = parseLabArgs([]);
    expect(f).toMatchObject({
      replicas: 3,
      runs: [
        { arm: 'direct', callers: 1 },
        { arm: 'istio', callers: 1 },
        { arm: 'sidecar', callers: 1 },
        { arm: 'sidecar-adaptive', callers: 1 },
        { arm: 'istio', callers: 4 },
        { arm: 'sidecar', callers: 4 },
      ],
      istioProfile: 'current',
      policy: undefined,
      durationSeconds: 10,
      driver: 'builtin',
      rate: undefined,
    });
    // Replicas are model servers of 8 slots x 200 ms (40 req/s each), no CPU limit.
    expect(f).toMatchObject({ inferenceConcurrency: 8, inferenceMs: 200, apiCpu: 0 });
  });

  it("--preset seed is the book's experiment: 1000 req/s, 10 s, 3 replicas, its DestinationRule and Istio", () => {
    expect(parseLabArgs(['--preset', 'seed'])).toMatchObject({
      rate: 1000,
      durationSeconds: 10,
      replicas: 3,
      inferenceConcurrency: 8,
      inferenceMs: 31,
      istioProfile: 'book',
      policy: 'packages/policy/fixtures/book-destinationrule.yaml',
      runs: ['istio', 'sidecar', 'sidecar-adaptive', 'istio-sidecar'].map((arm) => ({ arm, callers: 1 })),
    });
    // Explicit flags win.
    expect(parseLabArgs(['--preset', 'seed', '--inference-ms', '40', '--istio-profile', 'current'])).toMatchObject({
      inferenceMs: 40,
      istioProfile: 'current',
    });
  });

  it('runs each plain arm at every caller count, count by count, then the arms pinned with @N', () => {
    const f = parseLabArgs(['--arms', 'istio,sidecar,direct@3', '--callers', '1,2']);
    expect(f.runs).toEqual([
      { arm: 'istio', callers: 1 },
      { arm: 'sidecar', callers: 1 },
      { arm: 'istio', callers: 2 },
      { arm: 'sidecar', callers: 2 },
      { arm: 'direct', callers: 3 },
    ]);
    expect(parseLabArgs(['--callers', '8']).runs.map((r) => `${r.arm}@${r.callers}`)).toEqual([
      'direct@8',
      'istio@8',
      'sidecar@8',
      'sidecar-adaptive@8',
    ]);
  });

  it('refuses a caller count out of range and a run listed twice, naming each', () => {
    expect(() => parseLabArgs(['--callers', '0,2'])).toThrow(/--callers must list integers 1-64, got "0,2"/);
    expect(() => parseLabArgs(['--arms', 'istio,istio@1'])).toThrow(/run istio at 1 caller\(s\) twice/);
    expect(() => parseLabArgs(['--arms', 'envoy@2'])).toThrow(/"envoy@2" is not one of/);
    expect(() => parseLabArgs(['--istio-profile', '1.9'])).toThrow(/--istio-profile must be one of book, current/);
  });

  it('accepts durations as seconds or Istio-style strings', () => {
    expect(parseLabArgs(['--duration', '2']).durationSeconds).toBe(2);
    expect(parseLabArgs(['--duration', '1m']).durationSeconds).toBe(60);
  });

  it('reports every bad flag together in one LAB_BAD_FLAGS error (exit 2)', () => {
    let err: unknown;
    try {
      parseLabArgs([
        '--replicas',
        '0',
        '--arms',
        'direct,bogus',
        '--driver',
        'wrk',
        '--rate',
        'fast',
        '--inference-ms',
        '1.5',
        '--inference-concurrency',
        'x',
      ]);
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: 'LAB_BAD_FLAGS', exitCode: 2 });
    const message = (err as Error).message;
    for (const flag of ['--replicas', '--arms', '--driver', '--rate', '--inference-ms', '--inference-concurrency'])
      expect(message).toContain(flag);
    expect(message).not.toContain('\n');
  });

  it('serves the model with iris-api over REST unless told otherwise', () => {
    expect(parseLabArgs([])).toMatchObject({ modelServer: 'api', protocol: 'rest' });
  });

  it('--protocol grpc drives k6 over the arms without the mesh Envoys by default', () => {
    expect(parseLabArgs(['--protocol', 'grpc', '--model-server', 'mlserver'])).toMatchObject({
      modelServer: 'mlserver',
      protocol: 'grpc',
      driver: 'k6',
      runs: [
        { arm: 'direct', callers: 1 },
        { arm: 'sidecar', callers: 1 },
        { arm: 'sidecar-adaptive', callers: 1 },
      ],
    });
  });

  it('refuses gRPC with another driver or a mesh arm, and the API-only flags with MLServer, in one line', () => {
    let message = '';
    try {
      parseLabArgs([
        '--protocol',
        'grpc',
        '--driver',
        'vegeta',
        '--arms',
        'direct,istio',
        '--model-server',
        'mlserver',
        '--workers',
        '2',
        '--model',
        'package.json',
      ]);
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toContain('--protocol grpc is driven by k6 (k6/net/grpc): use --driver k6, not vegeta');
    expect(message).toContain('--protocol grpc cannot run the arm(s) istio');
    expect(message).toContain('--workers does not apply to --model-server mlserver');
    expect(message).toContain("--model is the API's ONNX model");
    expect(message).not.toContain('\n');
    expect(() => parseLabArgs(['--model-server', 'triton'])).toThrow(/--model-server must be one of api, mlserver/);
    expect(() => parseLabArgs(['--protocol', 'http3'])).toThrow(/--protocol must be one of rest, grpc/);
  });

  it('rejects unknown flags', () => {
    expect(() => parseLabArgs(['--bogus'])).toThrow(/Unknown option '--bogus'/);
  });
});
