import { faultResult } from '../src/fault.js';
import { ResultRecorder } from '../src/results.js';
import { parseLabArgs } from '../src/args.js';

/** 100 answers/s as 10 per 100 ms bin, a 3 s outage at 4-7 s with a third of them 503, full again at `backAtMs`. */
function recorder(backAtMs: number): ResultRecorder {
  const rec = new ResultRecorder();
  for (let ms = 0; ms < 12_000; ms += 10) {
    const down = ms >= 4000 && ms < backAtMs;
    const shed = down && ms % 30 === 0;
    rec.record(ms, 1, shed ? 503 : 200, 70, 35);
  }
  return rec;
}

describe('faultResult', () => {
  it('reports the answers during the outage, the level before it and when the arm was whole again', () => {
    const f = faultResult(recorder(7300).fineSeries(), 0, 4000, 7000);
    expect(f).toMatchObject({ replica: 0, killed_at_s: 4, returned_at_s: 7, goodput_before_rps: 100, unanswered: 0 });
    expect(f.answers_during['503']).toBe(100);
    expect(f.answers_during['200']).toBe(200);
    // Full again from 7.3 s: the 500 ms from 7.2 s already hold 90% of 100/s (one bin at 2/3, four full),
    // so the arm counts as whole 0.2 s after the model returned.
    expect(f.recovered_after_s).toBeCloseTo(0.2, 5);
  });

  it('says null when the arm never got back within the run, and counts requests left unanswered', () => {
    const rec = recorder(20_000);
    rec.record(5000, 10_000, 0, 0, 35, 'timeout');
    const f = faultResult(rec.fineSeries(), 0, 4000, 7000);
    expect(f.recovered_after_s).toBeNull();
    expect(f.unanswered).toBe(1);
    expect(faultResult(rec.fineSeries(), 0, 4000, null)).toMatchObject({
      returned_at_s: null,
      recovered_after_s: null,
    });
  });
});

describe('--fault', () => {
  it('takes a duration shorter than the attack and refuses it under a CPU limit', () => {
    expect(parseLabArgs(['--fault', '3s']).faultSeconds).toBe(3);
    expect(() => parseLabArgs(['--fault', '10s'])).toThrow(/--fault must be a duration shorter than the attack/);
    expect(() => parseLabArgs(['--fault', '3s', '--api-cpu', '0.1'])).toThrow(
      /--fault cannot restart a model under --api-cpu/,
    );
  });
});
