/** One sample of the Prometheus text exposition format. */
export interface PromSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

/**
 * Parses Prometheus text exposition (comments skipped; timestamps ignored). With `only`, samples of other
 * metric names are skipped before any regex runs (the scraper reads a few gauges out of large pages).
 */
export function parsePromText(text: string, only?: ReadonlySet<string>): PromSample[] {
  const out: PromSample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    if (only !== undefined) {
      const end = line.search(/[{ ]/);
      if (!only.has(end < 0 ? line : line.slice(0, end))) continue;
    }
    const m = LINE.exec(line);
    if (m === null) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(LABEL)) labels[l[1] as string] = l[2] as string;
    const value = Number(m[3]);
    if (!Number.isNaN(value)) out.push({ name: m[1] as string, labels, value });
  }
  return out;
}

/** The value of the first sample named `name` whose labels include `labels`; undefined when absent. */
export function sampleValue(
  samples: readonly PromSample[],
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  for (const s of samples) {
    if (s.name !== name) continue;
    if (Object.entries(labels).every(([k, v]) => s.labels[k] === v)) return s.value;
  }
  return undefined;
}

/**
 * The p-th percentile (0-100) of a Prometheus histogram summed over several scrapes and over the label
 * values `keep` accepts, as the upper bound of the bucket it falls in (in the histogram's unit). With
 * `baseline` (earlier scrapes of the same processes), only what was observed since then counts.
 * Undefined when the histogram has no observations.
 */
export function histogramPercentile(
  texts: readonly string[],
  name: string,
  p: number,
  keep: (labels: Record<string, string>) => boolean,
  baseline: readonly string[] = [],
): number | undefined {
  const cum = new Map<number, number>();
  const add = (list: readonly string[], sign: number): void => {
    for (const text of list) {
      for (const s of parsePromText(text)) {
        if (s.name !== `${name}_bucket` || !keep(s.labels)) continue;
        const le = s.labels['le'] === '+Inf' ? Number.POSITIVE_INFINITY : Number(s.labels['le']);
        cum.set(le, (cum.get(le) ?? 0) + sign * s.value);
      }
    }
  };
  add(texts, 1);
  add(baseline, -1);
  const bounds = [...cum.keys()].sort((a, b) => a - b);
  const total = cum.get(Number.POSITIVE_INFINITY) ?? 0;
  if (total <= 0) return undefined;
  return bounds.find((le) => (cum.get(le) ?? 0) >= (total * p) / 100);
}
