import { parseLabArgs } from '../src/args.js';

describe('cb-lab flags', () => {
  it('defaults to three replicas, all three arms, 10 s, the builtin driver and a probed rate', () => {
    const f = parseLabArgs([]);
    expect(f).toMatchObject({
      replicas: 3,
      arms: ['direct', 'sidecar', 'sidecar-adaptive'],
      durationSeconds: 10,
      driver: 'builtin',
      rate: undefined,
    });
    // Replicas are model servers of 8 slots x 200 ms (40 req/s each), no CPU limit.
    expect(f).toMatchObject({ inferenceConcurrency: 8, inferenceMs: 200, apiCpu: 0 });
  });

  it('--preset seed is the reference experiment: 1000 req/s, 10 s, 3 replicas', () => {
    expect(parseLabArgs(['--preset', 'seed'])).toMatchObject({ rate: 1000, durationSeconds: 10, replicas: 3 });
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

  it('rejects unknown flags', () => {
    expect(() => parseLabArgs(['--bogus'])).toThrow(/Unknown option '--bogus'/);
  });
});
