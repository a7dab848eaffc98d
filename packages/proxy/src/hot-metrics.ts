import type { Metric, Registry } from 'prom-client';

// The request path's counter and histograms. prom-client's own inc/observe build a label-hash string (and
// observe a closure) on every call, cached children included: ~0.5 KB of garbage per request for the three
// metrics a request records. These keep one cell per label set, found through Maps once per set, and let
// prom-client's registry format them (the text is the one prom-client writes for its Counter and Histogram).

/** What prom-client's registry reads from a metric at scrape time. */
interface MetricValue {
  readonly labels: Record<string, string | number>;
  readonly sharedLabels?: Record<string, string>;
  readonly value: number;
  readonly metricName?: string;
}

/** The counts of one label set of a {@link HotHistogram}. */
export class HistogramCell {
  /** per bucket (not cumulative); the last one is +Inf */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(
    private readonly bounds: readonly number[],
    readonly labels: Record<string, string>,
  ) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  /** Records one value (in the histogram's unit). */
  observe(value: number): void {
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > (bounds[i] as number)) i++;
    (this.counts[i] as number)++;
    this.sum += value;
    this.count++;
  }
}

/** A Prometheus histogram with at most one label, registered on a prom-client registry. */
export class HotHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly cells = new Map<string, HistogramCell>();

  /** @param label the one label's name; without it the histogram has one series */
  constructor(
    readonly name: string,
    readonly help: string,
    private readonly bounds: readonly number[],
    registry: Registry,
    private readonly label?: string,
  ) {
    registry.registerMetric(this as unknown as Metric);
  }

  /** The series of one label value (the only one without a label). */
  cell(value = ''): HistogramCell {
    let cell = this.cells.get(value);
    if (cell === undefined) {
      cell = new HistogramCell(this.bounds, this.label === undefined ? {} : { [this.label]: value });
      this.cells.set(value, cell);
    }
    return cell;
  }

  /** Scrape: cumulative buckets, +Inf, sum and count per series, as prom-client's Histogram exports them. */
  async get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: MetricValue[] }> {
    const values: MetricValue[] = [];
    const bucket = `${this.name}_bucket`;
    for (const cell of this.cells.values()) {
      let cumulative = 0;
      this.bounds.forEach((le, i) => {
        cumulative += cell.counts[i] as number;
        values.push({ labels: { le }, sharedLabels: cell.labels, value: cumulative, metricName: bucket });
      });
      values.push({ labels: { le: '+Inf' }, sharedLabels: cell.labels, value: cell.count, metricName: bucket });
      values.push({ labels: {}, sharedLabels: cell.labels, value: cell.sum, metricName: `${this.name}_sum` });
      values.push({ labels: {}, sharedLabels: cell.labels, value: cell.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  /** Forgets every series. */
  reset(): void {
    this.cells.clear();
  }
}

/** One series of a {@link HotCounter}. */
interface CounterCell {
  readonly labels: Record<string, string>;
  value: number;
}

/** A Prometheus counter by three labels, registered on a prom-client registry. */
export class HotCounter {
  readonly type = 'counter';
  readonly aggregator = 'sum';
  private readonly cells = new Map<string, Map<string | number, Map<string, CounterCell>>>();

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly labelNames: readonly [string, string, string],
    registry: Registry,
  ) {
    registry.registerMetric(this as unknown as Metric);
  }

  /** Adds one to the series of (`first`, `second`, `third`). */
  inc(first: string, second: string | number, third: string): void {
    let bySecond = this.cells.get(first);
    if (bySecond === undefined) this.cells.set(first, (bySecond = new Map()));
    let byThird = bySecond.get(second);
    if (byThird === undefined) bySecond.set(second, (byThird = new Map()));
    let cell = byThird.get(third);
    if (cell === undefined) {
      const [a, b, c] = this.labelNames;
      byThird.set(third, (cell = { labels: { [a]: first, [b]: String(second), [c]: third }, value: 0 }));
    }
    cell.value++;
  }

  /** Scrape: one value per label set. */
  async get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: MetricValue[] }> {
    const values: MetricValue[] = [];
    for (const bySecond of this.cells.values())
      for (const byThird of bySecond.values()) for (const cell of byThird.values()) values.push(cell);
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  /** Forgets every series. */
  reset(): void {
    this.cells.clear();
  }
}
