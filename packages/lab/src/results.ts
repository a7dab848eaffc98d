import { build, type Histogram } from 'hdr-histogram-js';
import { PRIORITY_CLASSES } from '@infer-cb/proxy/outcomes';
import type { RuntimeStats } from './runtime-stats.js';

/** Latency figures in milliseconds (vegeta's columns). */
export interface LatencySummary {
  count: number;
  min: number;
  mean: number;
  p50: number;
  p90: number;
  p95: number;
  p99: number;
  max: number;
}

/** One second of an attack: answers by the second they completed, latency by the second they were sent. */
export interface SecondPoint {
  /** Seconds since the attack started. */
  t: number;
  /** Requests scheduled in this second. */
  sent: number;
  /** Answers that completed in this second, by status (`"200"`, `"503"`). */
  codes: Record<string, number>;
  /** Errors (no HTTP answer) that completed in this second. */
  errors: number;
  /** Latency of every request sent in this second (ms). */
  latency: LatencySummary;
}

/** The answers of one priority class (`--mix`). */
export interface ClassFigures {
  requests: number;
  /** 2xx answers */
  success: number;
  success_ratio: number;
  /** 5xx and 429 answers */
  rejections: number;
  /** requests without an answer */
  errors: number;
  /** latency of the 2xx answers (ms) */
  success_p50_ms: number;
  success_p99_ms: number;
}

/** An HDR histogram of microseconds (the unit every latency histogram of the lab records in). */
export function histogram(): Histogram {
  // Microseconds, 3 significant digits, grows as needed: 1 µs .. hours at 0.1% precision.
  return build({
    bitBucketSize: 'packed',
    numberOfSignificantValueDigits: 3,
    autoResize: true,
    lowestDiscernibleValue: 1,
  });
}

/** A microsecond histogram's figures in ms. */
export function summarize(h: Histogram): LatencySummary {
  const n = h.totalCount;
  if (n === 0) return { count: 0, min: 0, mean: 0, p50: 0, p90: 0, p95: 0, p99: 0, max: 0 };
  const ms = (us: number): number => Math.round(us) / 1000;
  // HDR reports a percentile as the top of its bucket (0.1% wide), which can lie above the largest value
  // recorded; no percentile is shown above the max.
  const max = h.maxValue;
  const at = (p: number): number => ms(Math.min(h.getValueAtPercentile(p), max));
  return {
    count: n,
    min: ms(h.minNonZeroValue),
    mean: ms(h.mean),
    p50: at(50),
    p90: at(90),
    p95: at(95),
    p99: at(99),
    max: ms(max),
  };
}

/** Width of the fine completion bins (ms). */
export const FINE_BIN_MS = 100;

/** Completions in one {@link FINE_BIN_MS} bin. */
export interface FineBin {
  /** 2xx answers. */
  ok: number;
  /** Requests that got no answer. */
  errors: number;
  /** Answers by status. */
  codes: Map<number, number>;
}

/** True for answers the report counts as successes (vegeta: 2xx). */
function isSuccess(status: number): boolean {
  return status >= 200 && status < 300;
}

/** True for answers the report counts as rejections (the stack said no: 5xx, 429). */
function isRejection(status: number): boolean {
  return status >= 500 || status === 429;
}

/**
 * The result model every driver fills: one `record` per request. Keeps HDR histograms (all answers,
 * successes, rejections), status and error counts, bytes, and a per-second series.
 */
export class ResultRecorder {
  /** Requests recorded. */
  requests = 0;
  /** Requests the driver has sent so far (the live progress line; >= `requests` while in flight). */
  scheduled = 0;
  /** Answers by status code (errors are not here: they have no status). */
  readonly statusCodes = new Map<number, number>();
  /** Requests without an HTTP answer (connect error, timeout, reset). */
  errors = 0;
  /** Distinct error texts in vegeta's style (`503 Service Unavailable`, `connect ECONNREFUSED`). */
  readonly errorSet = new Map<string, number>();
  /** Rejections by the sidecar's `x-cb-reason` header (drivers that can see headers). */
  readonly reasons = new Map<string, number>();
  bytesIn = 0;
  bytesOut = 0;
  /** Earliest scheduled send (ms since attack start). */
  firstSendMs = Number.POSITIVE_INFINITY;
  /** Latest scheduled send (ms since attack start). */
  lastSendMs = 0;
  /** Latest completion (ms since attack start). */
  lastDoneMs = 0;
  /** The builtin driver's own event loop delay and GC pauses (its worker thread); null for the tools. */
  driverRuntime: RuntimeStats | null = null;
  private readonly lag = histogram();
  private lagged = false;
  private readonly all = histogram();
  private readonly ok = histogram();
  private readonly rejected = histogram();
  private readonly perSecond: { sent: number; codes: Map<number, number>; errors: number; h: Histogram | undefined }[] =
    [];
  /** Completions per 100 ms by status (the fault run's recovery is read from these). */
  private readonly fine: FineBin[] = [];
  /** Answers by priority class (`--mix`), with the latency of each class's successes. */
  private readonly byClass = new Map<
    string,
    { requests: number; success: number; rejections: number; errors: number; ok: Histogram }
  >();

  /**
   * Records one request.
   * @param sendMs scheduled send time in ms since the attack started (open model: latency counts from here)
   * @param latencyMs time from `sendMs` to the answer or error
   * @param status HTTP status, or 0 when there was no answer (`error` then says why)
   */
  record(sendMs: number, latencyMs: number, status: number, bytesIn: number, bytesOut: number, error?: string): void {
    this.requests++;
    this.bytesIn += bytesIn;
    this.bytesOut += bytesOut;
    if (sendMs < this.firstSendMs) this.firstSendMs = sendMs;
    if (sendMs > this.lastSendMs) this.lastSendMs = sendMs;
    const doneMs = sendMs + latencyMs;
    if (doneMs > this.lastDoneMs) this.lastDoneMs = doneMs;
    const us = Math.max(1, Math.round(latencyMs * 1000));
    this.all.recordValue(us);
    const sent = this.second(sendMs);
    sent.sent++;
    sent.h ??= histogram();
    sent.h.recordValue(us);
    const done = this.second(doneMs);
    const bin = Math.max(0, Math.floor(doneMs / FINE_BIN_MS));
    while (this.fine.length <= bin) this.fine.push({ ok: 0, errors: 0, codes: new Map() });
    const f = this.fine[bin] as FineBin;
    if (status === 0) f.errors++;
    else f.codes.set(status, (f.codes.get(status) ?? 0) + 1);
    if (isSuccess(status)) f.ok++;
    if (status === 0) {
      this.errors++;
      done.errors++;
    } else {
      this.statusCodes.set(status, (this.statusCodes.get(status) ?? 0) + 1);
      done.codes.set(status, (done.codes.get(status) ?? 0) + 1);
      if (isSuccess(status)) this.ok.recordValue(us);
      else if (isRejection(status)) this.rejected.recordValue(us);
    }
    if (error !== undefined && error !== '') this.errorSet.set(error, (this.errorSet.get(error) ?? 0) + 1);
  }

  private second(ms: number): { sent: number; codes: Map<number, number>; errors: number; h: Histogram | undefined } {
    const i = Math.max(0, Math.floor(ms / 1000));
    while (this.perSecond.length <= i) this.perSecond.push({ sent: 0, codes: new Map(), errors: 0, h: undefined });
    return this.perSecond[i] as { sent: number; codes: Map<number, number>; errors: number; h: Histogram | undefined };
  }

  /** Counts one request of a priority class (`--mix`) by its answer; `record` has counted it already. */
  classAnswer(cls: string, status: number, latencyMs: number): void {
    let c = this.byClass.get(cls);
    if (c === undefined)
      this.byClass.set(cls, (c = { requests: 0, success: 0, rejections: 0, errors: 0, ok: histogram() }));
    c.requests++;
    if (status === 0) c.errors++;
    else if (isSuccess(status)) {
      c.success++;
      c.ok.recordValue(Math.max(1, Math.round(latencyMs * 1000)));
    } else if (isRejection(status)) c.rejections++;
  }

  /** The answers by priority class, highest class first; null without a mix. */
  classes(): Record<string, ClassFigures> | null {
    if (this.byClass.size === 0) return null;
    const rank = (cls: string): number => (PRIORITY_CLASSES as readonly string[]).indexOf(cls);
    return Object.fromEntries(
      [...this.byClass]
        .sort(([a], [b]) => rank(a) - rank(b))
        .map(([cls, c]) => {
          const ok = summarize(c.ok);
          return [
            cls,
            {
              requests: c.requests,
              success: c.success,
              success_ratio: c.requests === 0 ? 0 : Math.round((c.success / c.requests) * 10_000) / 10_000,
              rejections: c.rejections,
              errors: c.errors,
              success_p50_ms: ok.p50,
              success_p99_ms: ok.p99,
            },
          ];
        }),
    );
  }

  /** Records how late the driver actually sent a request after its scheduled time (builtin driver). */
  sendLag(ms: number): void {
    this.lagged = true;
    this.lag.recordValue(Math.max(1, Math.round(ms * 1000)));
  }

  /** The driver's send lag (ms), or null when the driver does not report it (vegeta, k6). */
  sendLagSummary(): LatencySummary | null {
    return this.lagged ? summarize(this.lag) : null;
  }

  /** Counts one rejection cause (`overload`, `queue-timeout`, ...). */
  reason(reason: string): void {
    this.reasons.set(reason, (this.reasons.get(reason) ?? 0) + 1);
  }

  /** Answers with this status so far. */
  count(status: number): number {
    return this.statusCodes.get(status) ?? 0;
  }

  /** Successful (2xx) answers so far. */
  get successes(): number {
    let n = 0;
    for (const [code, c] of this.statusCodes) if (isSuccess(code)) n += c;
    return n;
  }

  /** Latency of all requests, of successes and of rejections. */
  latency(): { all: LatencySummary; success: LatencySummary; rejection: LatencySummary } {
    return { all: summarize(this.all), success: summarize(this.ok), rejection: summarize(this.rejected) };
  }

  /** Completions per {@link FINE_BIN_MS} by completion time: 2xx, answers by status, no answer. */
  fineSeries(): readonly FineBin[] {
    return this.fine;
  }

  /** The per-second series. */
  series(): SecondPoint[] {
    return this.perSecond.map((s, t) => ({
      t,
      sent: s.sent,
      codes: Object.fromEntries([...s.codes].map(([k, v]) => [String(k), v])),
      errors: s.errors,
      latency: s.h === undefined ? summarize(histogram()) : summarize(s.h),
    }));
  }
}
