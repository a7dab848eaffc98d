import { performance } from 'node:perf_hooks';
import { BREAKER_STATES, type BreakerState as SidecarBreakerState, type StateDocument } from '@infer-cb/proxy/outcomes';
import { request } from 'undici';
import { parsePromText, sampleValue } from './prom-text.js';
import { fetchServiceStats, type ServiceStats } from './service.js';
import { hasSidecar } from './plan.js';
import type { Topology } from './topology.js';

/** Breaker state as the sidecar reports it on `/state` (its own type), or `unknown` when unreadable. */
export type BreakerState = SidecarBreakerState | 'unknown';

/** One sidecar at one scrape. */
export interface SidecarPoint {
  inflight: number | null;
  limit: number | null;
  queue: number | null;
  breaker: BreakerState;
}

/** One scrape of every process of an arm. */
export interface ScrapePoint {
  /** Seconds since the attack started. */
  t: number;
  /** Per replica: requests in flight from the Service to the replica. */
  serviceInflight: number[];
  /**
   * Per replica: the API's own in-flight gauge (`iris_api_inflight_requests`), null when unscrapable;
   * empty at the scrapes that skipped the APIs (see `apiEveryMs`).
   */
  apiInflight: (number | null)[];
  /** Per replica (sidecar arms): the sidecar's gauges. */
  sidecars: SidecarPoint[];
}

async function getText(url: string, timeoutMs: number): Promise<string | null> {
  try {
    // One deadline for the whole exchange: an API stopped by its CPU limit held a scrape round 1-1.5 s
    // with only undici's headers and body timeouts.
    const res = await request(url, { signal: AbortSignal.timeout(timeoutMs) });
    const text = await res.body.text();
    return res.statusCode === 200 ? text : null;
  } catch {
    return null;
  }
}

const API_GAUGES = new Set(['iris_api_inflight_requests']);

/**
 * The API's requests in flight from its `/metrics` text, less the scrape itself: the API counts every request
 * it is answering, the `GET /metrics` that reads the gauge included (which showed a limit of 8 as 9). A
 * Prometheus scrape (`--prometheus`) that overlaps this one still adds 1.
 */
export function apiInflight(text: string | null): number | null {
  if (text === null) return null;
  const value = sampleValue(parsePromText(text, API_GAUGES), 'iris_api_inflight_requests');
  return value === undefined ? null : Math.max(0, value - 1);
}

/**
 * Reads what the report charts from a sidecar's `GET /state` document: in flight, limit, queue depth and
 * breaker state. `/state` rather than `/metrics`: rendering the whole registry (default process metrics
 * included) blocked the sidecar's event loop 2-6 ms per scrape, and scraped every 500 ms that showed in the
 * rejections' end-to-end p99 (same machine, 2 runs each: static 7.7 / 7.9 ms against 3.2 / 4.2 ms with
 * scrapes every 5 s). Prometheus scrapes `/metrics` every 15-30 s in a cluster.
 */
export function sidecarPoint(text: string | null): SidecarPoint {
  const none: SidecarPoint = { inflight: null, limit: null, queue: null, breaker: 'unknown' };
  if (text === null) return none;
  // The sidecar's own /state type, every field optional: a document from another version is read as far as it goes.
  let doc: { [K in keyof StateDocument]?: Partial<StateDocument[K]> };
  try {
    doc = JSON.parse(text) as typeof doc;
  } catch {
    return none;
  }
  const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
  const state = doc.breaker?.state;
  return {
    inflight: num(doc.inflight),
    limit: num(doc.concurrency?.limit),
    queue: num(doc.queue?.depth),
    breaker: (BREAKER_STATES as readonly unknown[]).includes(state) ? (state as SidecarBreakerState) : 'unknown',
  };
}

/**
 * Scrapes an arm every `intervalMs` while an attack runs: the Service's per-replica in-flight counts
 * and, in sidecar arms, each sidecar's in-flight, limit, queue and breaker state (`/state`); each API's in-flight
 * gauge only every `apiEveryMs`. An API's `/metrics` costs it ~1.9 ms of CPU (measured); under a CPU
 * limit, scraped every 400 ms, that was ~16% of a 0.03-core replica's budget, which the attack paid and
 * the probe did not. In a cluster Prometheus scrapes every 15-30 s.
 *
 * The processes are read one after another, not at once: reading HAProxy and three sidecars together woke
 * four processes on the request path at the same moment, and on two CPUs a third of the rejections over 8 ms
 * fell in the 50 ms after a scrape (5 runs each way: 28 of 84 in the static arm → 1 of 18).
 */
export class ArmScraper {
  readonly points: ScrapePoint[] = [];
  private timer: NodeJS.Timeout | undefined;
  private busy = false;
  private t0 = performance.now();
  private lastApiMs = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly topo: Topology,
    private readonly intervalMs = 500,
    private readonly apiEveryMs = 2500,
  ) {}

  /** Starts scraping; `t` of the points counts from now. */
  start(): void {
    this.t0 = performance.now();
    this.lastApiMs = Number.NEGATIVE_INFINITY;
    this.timer = setInterval(() => void this.scrapeOnce(), this.intervalMs);
  }

  /** Stops scraping (an in-progress scrape still lands). */
  stop(): void {
    clearInterval(this.timer);
  }

  /** Each sidecar's `/metrics` text now (for the histograms at the end of an attack). */
  async sidecarMetrics(): Promise<string[]> {
    const texts = await Promise.all(
      this.topo.replicas.map((r) => (r.adminUrl === undefined ? null : getText(`${r.adminUrl}/metrics`, 2000))),
    );
    return texts.filter((t): t is string => t !== null);
  }

  /** The Service's counters now (per replica: requests, exact peak in flight); null in arms without a Service. */
  async serviceStats(timeoutMs = 2000): Promise<ServiceStats | null> {
    if (this.topo.serviceUrl === undefined) return null;
    return fetchServiceStats(
      this.topo.serviceUrl,
      this.topo.replicas.map((r) => r.sidecarUrl ?? r.apiUrl),
      timeoutMs,
    );
  }

  private async scrapeOnce(): Promise<void> {
    if (this.busy) return; // a slow scrape must not pile up
    this.busy = true;
    try {
      await this.collect();
    } catch {
      /* a scrape that fails is a gap in the charts, never a failed lab */
    } finally {
      this.busy = false;
    }
  }

  private async collect(): Promise<void> {
    const now = performance.now();
    const t = (now - this.t0) / 1000;
    const timeout = Math.max(100, this.intervalMs - 50);
    const apiDue = now - this.lastApiMs >= this.apiEveryMs - this.intervalMs / 2;
    if (apiDue) this.lastApiMs = now;
    // One process at a time (see the class comment); the point's `t` is when the round began.
    const stats = await this.serviceStats(timeout);
    const sidecars: (string | null)[] = [];
    for (const r of this.topo.replicas)
      sidecars.push(r.adminUrl === undefined ? null : await getText(`${r.adminUrl}/state`, timeout));
    const apis: (string | null)[] = [];
    if (apiDue) {
      for (const r of this.topo.replicas) apis.push(r.metrics ? await getText(`${r.apiUrl}/metrics`, timeout) : null);
    }
    this.points.push({
      t: Math.round(t * 1000) / 1000,
      serviceInflight: stats?.backends.map((b) => b.inflight) ?? [],
      apiInflight: apis.map((text) => apiInflight(text)),
      sidecars: hasSidecar(this.topo.arm) ? sidecars.map((text) => sidecarPoint(text)) : [],
    });
  }
}
