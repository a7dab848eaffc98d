import { histogram, ResultRecorder, summarize } from '../src/results.js';
import { apiInflight, sidecarPoint } from '../src/scraper.js';
import { armResult, machineVerdict } from '../src/arm-run.js';
import { goDuration } from '../src/report/format.js';
import { callersText, comparisonTable, comparisonText, vegetaText } from '../src/report/text.js';
import { modelInflight, reportCharts, runColors, runLabel } from '../src/report/charts.js';
import { envoyRejections, type ArmResult } from '../src/report/arm-result.js';
import { emptyEnvoyStats, type EnvoyStats } from '../src/envoy.js';
import type { ScrapePoint } from '../src/scraper.js';
import { acceptance } from '../src/report/acceptance.js';
import { rewriteTargets, recordVegetaLine } from '../src/drivers/vegeta.js';
import { recordK6Line } from '../src/drivers/k6.js';
import type { AttackSpec } from '../src/drivers/driver.js';
import { Supervisor } from '../src/processes.js';
import { histogramPercentile } from '../src/prom-text.js';
import type { ArmFigures } from '../src/arm-run.js';
import type { ArmName } from '../src/plan.js';

function figures(arm: ArmName, callers: number, servicePeak: number | null, capacity: number | null): ArmFigures {
  return {
    run: { arm, callers },
    driver: 'builtin',
    replicas: 1,
    offeredRate: 100,
    scrapes: [],
    servicePeak,
    capacity,
    configPath: null,
  };
}

function seedLikeRecorder(): ResultRecorder {
  const rec = new ResultRecorder();
  for (let i = 0; i < 100; i++)
    rec.record(i * 10, 5 + i, i % 4 === 0 ? 503 : 200, 74, 35, i % 4 === 0 ? '503 Service Unavailable' : undefined);
  rec.record(1000, 2, 0, 0, 35, 'connect ECONNREFUSED');
  return rec;
}

describe('vegeta-style report', () => {
  it('formats durations like Go (vegeta rounds to a thousandth of the unit)', () => {
    expect(goDuration(90.4381)).toBe('90.438ms');
    expect(goDuration(1419.2)).toBe('1.419s');
    expect(goDuration(10_000)).toBe('10s');
    expect(goDuration(0.362662)).toBe('362.662µs');
    expect(goDuration(61_500)).toBe('1m1.5s');
  });

  it('prints the exact vegeta text layout, listing answerless requests as code 0', () => {
    const r = armResult(seedLikeRecorder(), figures('sidecar', 1, null, 80));
    const lines = vegetaText(r).split('\n');
    expect(lines[0]).toMatch(/^Requests {6}\[total, rate, throughput\] {9}101, \d+\.\d\d, \d+\.\d\d$/);
    expect(lines[1]).toMatch(/^Duration {6}\[total, attack, wait\] {13}/);
    expect(lines[2]).toMatch(/^Latencies {5}\[min, mean, 50, 90, 95, 99, max\] {2}2ms, /);
    expect(lines[3]).toBe('Bytes In      [total, mean]                     7400, 73.27');
    expect(lines[4]).toBe('Bytes Out     [total, mean]                     3535, 35.00');
    expect(lines[5]).toBe('Success       [ratio]                           74.26%');
    expect(lines[6]).toBe('Status Codes  [code:count]                      0:1  200:75  503:25  ');
    expect(lines.slice(7)).toEqual(['Error Set:', '503 Service Unavailable', 'connect ECONNREFUSED']);
  });

  it('accounts for every request: requests = sum(status_codes) + errors', () => {
    const r = armResult(seedLikeRecorder(), figures('direct', 1, 7, 80));
    const answered = Object.values(r.status_codes).reduce((a, b) => a + b, 0);
    expect(r.requests).toBe(answered + r.errors);
    expect(r.status_codes).toEqual({ '200': 75, '503': 25 });
    expect(r.errors).toBe(1);
    expect(r.latency_ms.success.count).toBe(75);
    expect(r.latency_ms.rejection.count).toBe(25);
    expect(r.max_upstream_concurrency).toBe(7);
  });

  it('puts the arms side by side and judges the sidecar arms against direct', () => {
    const slow = new ResultRecorder();
    for (let i = 0; i < 50; i++) slow.record(i * 10, 2000, 200, 74, 35);
    const fast = new ResultRecorder();
    for (let i = 0; i < 50; i++) fast.record(i * 10, i % 2 === 0 ? 20 : 1, i % 2 === 0 ? 200 : 503, 74, 35);
    const arms = [armResult(slow, figures('direct', 1, 50, 50)), armResult(fast, figures('sidecar', 1, null, 1000))];
    expect(comparisonText(arms).split('\n')[0]).toMatch(/direct\s+sidecar$/);
    const verdict = acceptance(arms);
    const ok = (name: string): boolean | null | undefined =>
      verdict.arms['sidecar-c1']?.criteria.find((c) => c.name === name)?.ok;
    expect(ok('2xx p99 x lower than direct')).toBe(true);
    expect(ok('rejection p99 ms')).toBe(true);
    expect(ok('goodput / capacity')).toBe(false);
    expect(verdict.passed).toBe(false);
  });

  it('judges the sidecar arms against istio at the same callers: goodput >= 0.98x and 2xx p99 >= 3x lower', () => {
    const istio = new ResultRecorder();
    for (let i = 0; i < 300; i++) istio.record(i * 10, i % 2 === 0 ? 400 : 1, i % 2 === 0 ? 200 : 503, 74, 35);
    const sidecar = new ResultRecorder();
    for (let i = 0; i < 300; i++) sidecar.record(i * 10, i % 2 === 0 ? 100 : 2, i % 2 === 0 ? 200 : 503, 74, 35);
    const fewer = new ResultRecorder();
    for (let i = 0; i < 300; i++) fewer.record(i * 10, i % 3 === 0 ? 100 : 2, i % 3 === 0 ? 200 : 503, 74, 35);
    const verdict = acceptance([
      armResult(istio, figures('istio', 4, null, 100)),
      armResult(sidecar, figures('sidecar', 4, null, 100)),
      armResult(fewer, figures('sidecar-adaptive', 4, null, 100)),
      armResult(sidecar, figures('sidecar', 1, null, 100)),
    ]);
    const at = (key: string, name: string): boolean | null | undefined =>
      verdict.arms[key]?.criteria.find((c) => c.name === name)?.ok;
    expect(at('sidecar-c4', "goodput / istio's")).toBe(true);
    expect(at('sidecar-c4', '2xx p99 x lower than istio')).toBe(true);
    expect(at('sidecar-adaptive-c4', "goodput / istio's")).toBe(false);
    // No istio run at 1 caller: nothing to compare with.
    expect(at('sidecar-c1', "goodput / istio's")).toBeUndefined();
    expect(verdict.lines.some((l) => l.startsWith('acceptance istio (4 callers): reference'))).toBe(true);
  });

  it('counts as goodput the 2xx answered while the attack sent, not the backlog answered after it', () => {
    const rec = new ResultRecorder();
    // 10 s at 100/s; the first 5 s answered at once, the rest queued and answered 10 s late.
    for (let i = 0; i < 1000; i++) rec.record(i * 10, i < 500 ? 5 : 10_000, 200, 74, 35);
    const r = armResult(rec, figures('direct', 1, null, 100));
    expect(r.goodput_rps).toBeCloseTo(500 / 9.9, 0);
    expect(r.throughput).toBeLessThan(60);
  });

  it('marks a run void when the machine was saturated or its hypervisor stole CPU, and does not judge it', () => {
    expect(machineVerdict({ busy_pct: 95, steal_ms: 0 }, 10, 2)).toMatchObject({ void: true });
    expect(machineVerdict({ busy_pct: 40, steal_ms: 1000 }, 10, 2)).toMatchObject({ void: true }); // 5% of 20 s
    expect(machineVerdict({ busy_pct: 40, steal_ms: 999 }, 10, 2)).toEqual({ void: false, reason: null });
    expect(machineVerdict(null, 10, 2)).toEqual({ void: false, reason: null });
    const rec = new ResultRecorder();
    for (let i = 0; i < 50; i++) rec.record(i * 10, 500, 200, 74, 35);
    const r = armResult(rec, { ...figures('sidecar', 1, null, 1000), machine: { busy_pct: 99, steal_ms: 0 } });
    const verdict = acceptance([r]);
    expect(verdict.arms['sidecar-c1']).toMatchObject({ void: true, passed: null });
    expect(verdict.passed).toBe(true);
    expect(verdict.lines[0]).toMatch(/VOID, not counted: machine CPU 99% busy/);
  });
});

describe('tool output parsing', () => {
  const spec = (rec: ResultRecorder): AttackSpec => ({
    baseUrl: 'http://127.0.0.1:1',
    rate: 1,
    durationSeconds: 1,
    timeoutMs: 1000,
    maxInflight: 1,
    repoRoot: '/repo',
    workDir: '/tmp',
    recorder: rec,
    supervisor: new Supervisor(),
  });

  it('points the committed vegeta targets at the lab Service with an absolute body path', () => {
    const out = rewriteTargets(
      'POST http://iris-svc:8000/predict\nContent-Type: application/json\n@vegeta/data.json\n',
      'http://127.0.0.1:4000',
      '/repo',
    );
    expect(out).toBe('POST http://127.0.0.1:4000/predict\nContent-Type: application/json\n@/repo/vegeta/data.json\n');
  });

  it('reads vegeta JSON results into the recorder', () => {
    const rec = new ResultRecorder();
    const t0 = Date.parse('2026-01-01T00:00:00.000Z');
    recordVegetaLine(
      spec(rec),
      '{"code":503,"timestamp":"2026-01-01T00:00:00.500Z","latency":2000000,"bytes_out":35,"bytes_in":80,"error":"503 Service Unavailable"}',
      t0,
    );
    recordVegetaLine(
      spec(rec),
      '{"code":0,"timestamp":"2026-01-01T00:00:00.600Z","latency":1000000,"bytes_out":0,"bytes_in":0,"error":"dial tcp: connection refused"}',
      t0,
    );
    expect(rec.count(503)).toBe(1);
    expect(rec.errors).toBe(1);
    expect(rec.firstSendMs).toBe(500);
    expect([...rec.errorSet.keys()]).toEqual(['503 Service Unavailable', 'dial tcp: connection refused']);
  });

  it('reads k6 http_req_duration points as requests and data points as bytes', () => {
    const rec = new ResultRecorder();
    const t0 = Date.parse('2026-01-01T00:00:00.000Z');
    const s = spec(rec);
    recordK6Line(s, '{"type":"Metric","metric":"http_req_duration","data":{}}', t0);
    recordK6Line(
      s,
      '{"type":"Point","metric":"http_req_duration","data":{"time":"2026-01-01T00:00:01.000Z","value":10,"tags":{"status":"200"}}}',
      t0,
    );
    recordK6Line(
      s,
      '{"type":"Point","metric":"http_req_duration","data":{"time":"2026-01-01T00:00:01.000Z","value":3,"tags":{"status":"0","error":"request timeout"}}}',
      t0,
    );
    recordK6Line(
      s,
      '{"type":"Point","metric":"data_received","data":{"time":"2026-01-01T00:00:01.000Z","value":120,"tags":{}}}',
      t0,
    );
    expect(rec.requests).toBe(2);
    expect(rec.count(200)).toBe(1);
    expect(rec.errors).toBe(1);
    expect(rec.bytesIn).toBe(120);
    expect(rec.firstSendMs).toBe(990);
  });

  it('parses k6/grpc.ts output: gRPC statuses as the HTTP statuses the report counts, the sidecar reasons', () => {
    const rec = new ResultRecorder();
    const t0 = Date.parse('2026-01-01T00:00:00.000Z');
    const s = spec(rec);
    const call = (status: string, value: number): string =>
      `{"type":"Point","metric":"grpc_req_duration","data":{"time":"2026-01-01T00:00:01.000Z","value":${value},"tags":{"status":"${status}"}}}`;
    const shed = (reason: string): string =>
      `{"type":"Point","metric":"grpc_rejected_by_reason","data":{"time":"2026-01-01T00:00:01.000Z","value":1,"tags":{"reason":"${reason}"}}}`;
    for (const line of [
      call('0', 5),
      call('8', 1),
      call('14', 1),
      call('4', 9),
      shed('overload'),
      shed('UNAVAILABLE'),
    ]) {
      recordK6Line(s, line, t0);
    }
    expect(rec.requests).toBe(4);
    expect([rec.count(200), rec.count(503), rec.count(504)]).toEqual([1, 2, 1]);
    expect([...rec.errorSet.keys()].sort()).toEqual([
      'grpc DEADLINE_EXCEEDED',
      'grpc RESOURCE_EXHAUSTED',
      'grpc UNAVAILABLE',
    ]);
    // Only the sidecar's own reasons count as reasons; a gRPC status name is not one.
    expect(Object.fromEntries(rec.reasons)).toEqual({ overload: 1 });
  });
});

describe('sidecar histograms', () => {
  it('finds the p99 bucket of rejections summed over sidecars, ignoring forwarded answers', () => {
    const sidecar = (fast: number, slow: number, forwarded: number): string =>
      [
        '# TYPE cb_request_duration_seconds histogram',
        `cb_request_duration_seconds_bucket{le="0.001",outcome="overload"} ${fast}`,
        `cb_request_duration_seconds_bucket{le="0.01",outcome="overload"} ${fast + slow}`,
        `cb_request_duration_seconds_bucket{le="+Inf",outcome="overload"} ${fast + slow}`,
        `cb_request_duration_seconds_bucket{le="0.001",outcome="forwarded"} 0`,
        `cb_request_duration_seconds_bucket{le="1",outcome="forwarded"} ${forwarded}`,
        `cb_request_duration_seconds_bucket{le="+Inf",outcome="forwarded"} ${forwarded}`,
      ].join('\n');
    const keep = (l: Record<string, string>): boolean => l['outcome'] !== 'forwarded';
    expect(histogramPercentile([sidecar(99, 0, 5), sidecar(99, 2, 5)], 'cb_request_duration_seconds', 99, keep)).toBe(
      0.001,
    );
    expect(histogramPercentile([sidecar(50, 50, 5)], 'cb_request_duration_seconds', 99, keep)).toBe(0.01);
    expect(histogramPercentile([sidecar(0, 0, 5)], 'cb_request_duration_seconds', 99, keep)).toBeUndefined();
  });
});

describe('figures', () => {
  it('never shows a percentile above the max (HDR reports the top of a 0.1%-wide bucket)', () => {
    const h = histogram();
    for (let i = 0; i < 100; i++) h.recordValue(10_021_000); // 10.021 s in µs, the driver's timeout
    const s = summarize(h);
    expect(s.max).toBe(10_021); // ms
    expect(s.p99).toBeLessThanOrEqual(s.max);
    expect(s.p50).toBeLessThanOrEqual(s.max);
  });

  it("reads the API's requests in flight without the scrape that asked for them", () => {
    const text = '# TYPE iris_api_inflight_requests gauge\niris_api_inflight_requests 9\n';
    expect(apiInflight(text)).toBe(8);
    expect(apiInflight('iris_api_inflight_requests 1\n')).toBe(0);
    expect(apiInflight('other_metric 3\n')).toBeNull();
    expect(apiInflight(null)).toBeNull();
  });

  it("reads a sidecar's in flight, limit, queue and breaker from its /state document, and nothing from garbage", () => {
    const doc = {
      inflight: 7,
      concurrency: { mode: 'static', limit: 8 },
      queue: { depth: 1, size: 4 },
      breaker: { state: 'half-open' },
    };
    expect(sidecarPoint(JSON.stringify(doc))).toEqual({ inflight: 7, limit: 8, queue: 1, breaker: 'half-open' });
    const unknown = { inflight: null, limit: null, queue: null, breaker: 'unknown' };
    expect(sidecarPoint('not json')).toEqual(unknown);
    expect(sidecarPoint(null)).toEqual(unknown);
    expect(sidecarPoint('{"breaker":{"state":"melted"},"inflight":"3"}')).toEqual(unknown);
  });
});

describe('report charts and tables', () => {
  const scrape = (t: number, api: (number | null)[], service: number[] = [], sidecars: number[] = []): ScrapePoint => ({
    t,
    serviceInflight: service,
    apiInflight: api,
    sidecars: sidecars.map((n) => ({ inflight: n, limit: 8, queue: 0, breaker: 'closed' as const })),
  });
  const withScrapes = (arm: ArmName, callers: number, scrapes: ScrapePoint[], busy = 40): ArmResult =>
    armResult(seedLikeRecorder(), {
      ...figures(arm, callers, null, 80),
      scrapes,
      machine: { busy_pct: busy, steal_ms: 0 },
    });

  it("reads in flight at the busiest replica's model: the API's count, the Service's in direct, the sidecars' in sidecar arms", () => {
    const p = scrape(1, [3, null], [9, 2], [7, 8]);
    expect(modelInflight(withScrapes('direct', 1, []), p)).toBe(9);
    expect(modelInflight(withScrapes('istio', 1, []), p)).toBe(3);
    expect(modelInflight(withScrapes('sidecar', 1, []), p)).toBe(8); // not the Service's 9: it counts rejections too
    expect(modelInflight(withScrapes('istio', 1, []), scrape(1, [null]))).toBeNull();
  });

  it('puts runs scraped at different times on one x axis, with gaps where a run has no sample', () => {
    const a = withScrapes('istio', 1, [scrape(0.5, [4]), scrape(1.0, [6])]);
    const b = withScrapes('direct', 1, [scrape(0.75, [], [5])]);
    const inflight = reportCharts([a, b], null).find((c) => c.id === 'inflight');
    expect(inflight?.x).toEqual([0.5, 0.75, 1]);
    expect(inflight?.lines.map((l) => [l.label, l.values])).toEqual([
      ['istio', [4, null, 6]],
      ['direct', [null, 5, null]],
    ]);
  });

  it('colours each run by its arm, lighter for more callers, and names void runs so', () => {
    const runs = [withScrapes('istio', 1, []), withScrapes('istio', 8, [], 99), withScrapes('sidecar', 1, [])];
    const colors = runColors(runs);
    expect(colors.get(runs[0]!)).toBe('#1f77b4');
    expect(colors.get(runs[1]!)).toBe('#9ac2dd'); // 55% of the way to white
    expect(colors.get(runs[2]!)).toBe('#2ca02c');
    expect(runs.map(runLabel)).toEqual(['istio', 'istio@8 (void)', 'sidecar']);
  });

  it('plots against the callers only when an arm ran at several counts, void runs on dotted lines of their own', () => {
    const one = [withScrapes('istio', 1, []), withScrapes('sidecar', 1, [])];
    expect(reportCharts(one, null).map((c) => c.id)).toEqual([
      'latency',
      'goodput',
      'rejections',
      'inflight',
      'breakers',
    ]);
    const sweep = [...one, withScrapes('istio', 4, []), withScrapes('istio', 8, [], 99)];
    const goodput = reportCharts(sweep, null).find((c) => c.id === 'callers-goodput');
    expect(goodput?.x).toEqual([1, 4, 8]);
    const g = sweep[0]!.goodput_rps;
    expect(goodput?.lines.map((l) => [l.label, l.values, l.dash === null])).toEqual([
      ['istio', [g, g, null], true],
      ['istio (void)', [null, null, g], false],
      ['sidecar', [g, null, null], true],
    ]);
  });

  it("puts the book's run first under the seed preset, in the table and as reference lines on the latency chart", () => {
    const runs = [withScrapes('istio', 1, [])];
    const table = comparisonTable(runs, 'seed');
    expect(table[0]).toEqual(['', 'book (Istio)', 'istio']);
    expect(table.find((r) => r[0] === 'all p99')?.[1]).toBe('1.419s');
    const latency = reportCharts(runs, 'seed').find((c) => c.id === 'latency');
    expect(latency?.lines.map((l) => l.label)).toEqual(['istio p99', 'istio p50', 'book p99', 'book p50']);
    expect(comparisonTable(runs, null)[0]).toEqual(['', 'istio']);
  });

  it('lists the caller sweep arm by arm and by callers, void runs marked', () => {
    const runs = [withScrapes('sidecar', 4, []), withScrapes('istio', 4, [], 99), withScrapes('istio', 1, [])];
    const lines = callersText(runs).split('\n');
    expect(lines[0]).toMatch(/^arm +callers +goodput \(2xx\/s\) +2xx p50 +2xx p99 +rejections +peak in flight/);
    expect(lines.slice(1).map((l) => l.split(/ +/).slice(0, 2).join('@'))).toEqual(['istio@1', 'istio@4', 'sidecar@4']);
    expect(lines[2]).toMatch(/VOID$/);
  });
});

describe("a mesh run's 503s", () => {
  /** An istio run: 75 answers 200, 25 answers 503 of which `uo` carried x-envoy-overloaded. */
  function istio(driver: string, uo: number, inbound: Partial<EnvoyStats>): ArmResult {
    const rec = new ResultRecorder();
    for (let i = 0; i < 100; i++) {
      rec.record(i * 10, 50, i % 4 === 0 ? 503 : 200, 74, 35);
      if (i % 4 === 0 && i / 4 < uo) rec.reason('envoy-overloaded');
    }
    const callers = { ...emptyEnvoyStats(), upstream_rq_pending_overflow: 20 };
    return armResult(rec, {
      ...figures('istio', 1, null, 80),
      driver,
      envoy: { callers, inbound: { ...emptyEnvoyStats(), ...inbound } },
    });
  }

  it('splits them as the callers got them, and tells the app’s 503s from the inbound Envoys’ own overflows', () => {
    // Envoy counts its own overflow answers among upstream_rq_503 too: 5 overflows + 3 from the app.
    const r = istio('builtin', 25, { upstream_rq_pending_overflow: 5, upstream_rq_503: 8 });
    expect(envoyRejections(r)).toEqual({
      answeredOverflow: 25,
      answeredUpstream: 0,
      overflowCallers: 20,
      overflowInbound: 5,
      app503: 3,
    });
    expect(envoyRejections(istio('vegeta', 0, {}))).toMatchObject({ answeredOverflow: null, answeredUpstream: null });
    expect(envoyRejections(armResult(seedLikeRecorder(), figures('sidecar', 1, null, 80)))).toBeNull();
  });

  it("judges the seed's istio run on every 503 being Envoy's overflow: the header where seen, else Envoy's counters", () => {
    const verdict = (r: ArmResult): boolean | null | undefined =>
      acceptance([r], 'seed').arms['istio-c1']?.criteria.find((c) => c.name.startsWith('every 503'))?.ok;
    expect(verdict(istio('builtin', 25, { upstream_rq_pending_overflow: 5, upstream_rq_503: 5 }))).toBe(true);
    expect(verdict(istio('builtin', 24, { upstream_rq_pending_overflow: 5, upstream_rq_503: 5 }))).toBe(false);
    expect(verdict(istio('k6', 0, { upstream_rq_pending_overflow: 5, upstream_rq_503: 5 }))).toBe(true);
    expect(verdict(istio('k6', 0, { upstream_rq_pending_overflow: 5, upstream_rq_503: 6 }))).toBe(false); // 1 from the app
  });
});
