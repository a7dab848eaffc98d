import { parseLabArgs } from '../src/args.js';
import { armResult, type ArmFigures } from '../src/arm-run.js';
import { mixCycle, mixText, parseMix, type Mix } from '../src/mix.js';
import { runOpenLoop, type OpenLoopSink } from '../src/drivers/open-loop.js';
import { ResultRecorder } from '../src/results.js';
import { comparisonText } from '../src/report/text.js';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

const MIX = 'critical:20,default:50,sheddable:30';

describe('--mix', () => {
  it('parses class:percent pairs that sum to 100', () => {
    const parsed = parseMix(MIX);
    expect(parsed).toEqual({
      mix: [
        { cls: 'critical', percent: 20 },
        { cls: 'default', percent: 50 },
        { cls: 'sheddable', percent: 30 },
      ],
    });
    expect(mixText((parsed as { mix: Mix }).mix)).toBe(MIX);
    expect(parseLabArgs(['--mix', MIX]).mix).toHaveLength(3);
    expect(parseLabArgs([]).mix).toBeUndefined();
  });

  it('refuses a bad mix in one line with every problem, and a driver that cannot send the header', () => {
    expect(parseMix('critical:20,default:50')).toEqual({ problem: '--mix: the percents must sum to 100, got 70' });
    expect(parseMix('urgent:100')).toEqual({
      problem: '--mix: unknown class "urgent" (classes: critical, default, sheddable)',
    });
    expect(parseMix('critical:50,critical:50')).toEqual({ problem: '--mix: class "critical" given twice' });
    expect(parseMix('critical=20')).toMatchObject({ problem: expect.stringContaining('class:percent pairs') });
    expect(() => parseLabArgs(['--mix', MIX, '--driver', 'vegeta'])).toThrow(/--mix needs --driver builtin/);
  });

  it('spreads each class evenly over a cycle with its exact share', () => {
    const cycle = mixCycle((parseMix(MIX) as { mix: Mix }).mix);
    expect(cycle).toHaveLength(10);
    expect(cycle.filter((c) => c === 'critical')).toHaveLength(2);
    expect(cycle.filter((c) => c === 'default')).toHaveLength(5);
    expect(cycle.filter((c) => c === 'sheddable')).toHaveLength(3);
    for (let i = 0; i < cycle.length; i++)
      expect([cycle[i], cycle[(i + 1) % 10]]).not.toEqual(['critical', 'critical']);
    expect(mixCycle((parseMix('critical:100') as { mix: Mix }).mix)).toEqual(['critical']);
  });

  it('sends each request with its class header in the mix’s shares and records the class', async () => {
    const seen: string[] = [];
    const server = createServer((req, res) => {
      seen.push(String(req.headers['x-request-priority']));
      req.resume();
      req.on('end', () => res.writeHead(req.headers['x-request-priority'] === 'sheddable' ? 503 : 200).end('{}'));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const classes: number[] = [];
    const sink: OpenLoopSink = {
      scheduled: () => {},
      sendLag: () => {},
      record: (_s, _l, _st, _bi, _bo, _e, _r, cls) => classes.push(cls ?? -1),
    };
    try {
      await runOpenLoop(
        {
          baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
          rate: 200,
          durationSeconds: 0.5,
          timeoutMs: 5000,
          maxInflight: 100,
          body: '{}',
          mix: mixCycle((parseMix(MIX) as { mix: Mix }).mix),
        },
        sink,
        () => false,
      );
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
    expect(seen).toHaveLength(100);
    expect(seen.filter((c) => c === 'critical')).toHaveLength(20);
    expect(seen.filter((c) => c === 'default')).toHaveLength(50);
    expect(seen.filter((c) => c === 'sheddable')).toHaveLength(30);
    expect(classes.filter((c) => c === 0)).toHaveLength(20); // critical's index in PRIORITY_CLASSES
    expect(classes.filter((c) => c === 2)).toHaveLength(30);
  });

  it('reports success and the 2xx p99 by class for each arm', () => {
    const figures = (arm: 'istio' | 'sidecar'): ArmFigures => ({
      run: { arm, callers: 1 },
      driver: 'builtin',
      replicas: 1,
      offeredRate: 100,
      scrapes: [],
      servicePeak: null,
      capacity: 100,
      configPath: null,
    });
    const sidecar = new ResultRecorder();
    const istio = new ResultRecorder();
    for (let i = 0; i < 100; i++) {
      const cls = i % 10 < 2 ? 'critical' : i % 10 < 7 ? 'default' : 'sheddable';
      const sidecarStatus = cls === 'sheddable' || (cls === 'default' && i % 2 === 0) ? 503 : 200;
      const istioStatus = i % 3 === 0 ? 503 : 200;
      sidecar.record(i * 10, 20, sidecarStatus, 10, 10);
      sidecar.classAnswer(cls, sidecarStatus, 20);
      istio.record(i * 10, 30, istioStatus, 10, 10);
      istio.classAnswer(cls, istioStatus, 30);
    }
    const arms = [armResult(istio, figures('istio')), armResult(sidecar, figures('sidecar'))];
    expect(arms[1]?.classes).toMatchObject({
      critical: { requests: 20, success: 20, success_ratio: 1, success_p99_ms: 20 },
      sheddable: { requests: 30, success: 0, rejections: 30 },
    });
    const seenFirst = new ResultRecorder();
    seenFirst.classAnswer('sheddable', 200, 1);
    seenFirst.classAnswer('critical', 503, 1);
    expect(Object.keys(seenFirst.classes() ?? {})).toEqual(['critical', 'sheddable']); // highest class first
    const text = comparisonText(arms);
    expect(text).toMatch(/success \/ 2xx p99: critical\s+\S+ \/ 30ms\s+100\.0% \/ 20ms/);
    expect(text).toMatch(/success \/ 2xx p99: sheddable\s+\S+ \/ 30ms\s+0\.0% \/ -/);
    expect(armResult(new ResultRecorder(), figures('istio')).classes).toBeNull();
  });
});
