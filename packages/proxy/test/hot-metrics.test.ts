import { Counter, Histogram, Registry } from 'prom-client';
import { HotCounter, HotHistogram } from '../src/hot-metrics.js';

const BUCKETS = [0.001, 0.01, 0.1, 1];
// On a bound, below the first, between, above the last: the cases where a bucket search goes wrong.
const VALUES = [0.0005, 0.001, 0.002, 0.01, 0.05, 0.1, 0.7, 1, 3];

describe('the request path metrics', () => {
  it('write the text prom-client writes for the same histogram observations', async () => {
    const ours = new Registry();
    const theirs = new Registry();
    const hot = new HotHistogram('t_seconds', 'help text', BUCKETS, ours, 'outcome');
    const plain = new HotHistogram('u_seconds', 'unlabelled', BUCKETS, ours);
    const reference = new Histogram({
      name: 't_seconds',
      help: 'help text',
      buckets: BUCKETS,
      labelNames: ['outcome'],
      registers: [theirs],
    });
    const plainReference = new Histogram({
      name: 'u_seconds',
      help: 'unlabelled',
      buckets: BUCKETS,
      registers: [theirs],
    });
    for (const [i, v] of VALUES.entries()) {
      const outcome = i % 3 === 0 ? 'overload' : 'forwarded';
      hot.cell(outcome).observe(v);
      reference.labels(outcome).observe(v);
      plain.cell().observe(v);
      plainReference.observe(v);
    }
    expect(await ours.metrics()).toBe(await theirs.metrics());
  });

  it('write the text prom-client writes for the same counter increments', async () => {
    const ours = new Registry();
    const theirs = new Registry();
    const hot = new HotCounter('c_total', 'counted', ['outcome', 'code', 'class'], ours);
    const reference = new Counter({
      name: 'c_total',
      help: 'counted',
      labelNames: ['outcome', 'code', 'class'],
      registers: [theirs],
    });
    const calls: [string, number, string][] = [
      ['forwarded', 200, 'default'],
      ['forwarded', 200, 'default'],
      ['overload', 503, 'sheddable'],
      ['forwarded', 500, 'critical'],
      ['forwarded', 200, 'critical'],
    ];
    for (const [outcome, code, cls] of calls) {
      hot.inc(outcome, code, cls);
      reference.labels(outcome, String(code), cls).inc();
    }
    const lines = (text: string): string[] => text.split('\n').sort();
    expect(lines(await ours.metrics())).toEqual(lines(await theirs.metrics()));
  });
});
