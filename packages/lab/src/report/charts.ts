// What report.html plots, as data: every chart overlays the runs (an arm at a number of callers) on one axis.
// The page draws these with uPlot (chart-page.ts); nothing here knows how.
import { ARM_NAMES, hasSidecar, type ArmName } from '../plan.js';
import type { ScrapePoint } from '../scraper.js';
import { BOOK } from './acceptance.js';
import type { ArmResult } from './arm-result.js';
import { columnName } from './text.js';

/** One line of a chart: a value per x of the chart (null: no figure there; the line spans the gap). */
export interface ChartLine {
  label: string;
  color: string;
  /** Dash pattern in px (null: solid). */
  dash: number[] | null;
  values: (number | null)[];
}

/** One chart: a shared x axis and the lines drawn on it. */
export interface Chart {
  /** The element id in the page (`latency`, `callers-goodput`). */
  id: string;
  title: string;
  xLabel: string;
  yLabel: string;
  /** Ascending x values shared by every line. */
  x: number[];
  lines: ChartLine[];
  /** `log2` for caller counts, `log10` for latencies. */
  xScale: 'linear' | 'log2';
  yScale: 'linear' | 'log10';
  /** A fixed y range (counts that may all be 0); null: from the data. */
  yRange: [number, number] | null;
  /** `step` for scraped gauges (the value holds until the next scrape), `points` for a few x values. */
  style: 'line' | 'step' | 'points';
  /** What to know when reading it (shown under the chart). */
  note: string;
  /** Spans of x to shade (the fault run's outages). */
  bands: { from: number; to: number }[];
}

/** One hue per arm, so a run's colour says its arm; a lighter shade of it for more callers. */
const ARM_COLORS: Record<ArmName, string> = {
  direct: '#7f7f7f',
  istio: '#1f77b4',
  sidecar: '#2ca02c',
  'sidecar-adaptive': '#ff7f0e',
  'istio-sidecar': '#9467bd',
};

/** The book's figures, drawn as flat reference lines under `--preset seed`. */
const BOOK_COLOR = '#222222';

const P50_DASH = [6, 4];
const LIMIT_DASH = [2, 3];
const VOID_DASH = [1, 5];

function mix(hex: string, white: number): string {
  const c = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
  return `#${c
    .map((v) =>
      Math.round(v + (255 - v) * white)
        .toString(16)
        .padStart(2, '0'),
    )
    .join('')}`;
}

/** The colour of each run: its arm's hue, lighter (up to 55% towards white) the more callers it had among its arm's runs. */
export function runColors(results: readonly ArmResult[]): Map<ArmResult, string> {
  const out = new Map<ArmResult, string>();
  for (const arm of ARM_NAMES) {
    const runs = results.filter((r) => r.arm === arm).sort((a, b) => a.callers - b.callers);
    runs.forEach((r, i) => out.set(r, mix(ARM_COLORS[arm], runs.length === 1 ? 0 : (0.55 * i) / (runs.length - 1))));
  }
  return out;
}

/** A run's name in legends: `istio@4`, marked when the run is void. */
export function runLabel(r: ArmResult): string {
  return r.void.void ? `${columnName(r)} (void)` : columnName(r);
}

/** Lines sampled at different x (seconds, scrapes) put on one x axis: the union, null where a line has no sample. */
function aligned(samples: readonly (readonly (readonly [number, number | null])[])[]): {
  x: number[];
  values: (number | null)[][];
} {
  const key = (t: number): number => Math.round(t * 100) / 100;
  const x = [...new Set(samples.flatMap((s) => s.map(([t]) => key(t))))].sort((a, b) => a - b);
  const index = new Map(x.map((t, i) => [t, i]));
  const values = samples.map((s) => {
    const row: (number | null)[] = x.map(() => null);
    for (const [t, v] of s) row[index.get(key(t)) as number] = v;
    return row;
  });
  return { x, values };
}

const positive = (v: number): number | null => (v > 0 ? v : null);

function is2xx(code: string): boolean {
  const c = Number(code);
  return c >= 200 && c < 300;
}

/** Requests in flight at the busiest replica's model at one scrape (the gauge `max_upstream_concurrency` peaks). */
export function modelInflight(r: ArmResult, p: ScrapePoint): number | null {
  const values: (number | null)[] = [...p.apiInflight];
  // The direct arm's Service counts exactly what each replica's API holds; in sidecar arms it also counts
  // what the sidecar rejects, so there the sidecars' own count (what they forwarded) is the figure.
  if (r.arm === 'direct') values.push(...p.serviceInflight);
  if (hasSidecar(r.arm)) values.push(...p.sidecars.map((s) => s.inflight));
  let m: number | null = null;
  for (const v of values) if (v !== null && (m === null || v > m)) m = v;
  return m;
}

function latencyChart(results: readonly ArmResult[], colors: Map<ArmResult, string>, seed: boolean): Chart {
  const samples = results.flatMap((r) => {
    const sent = r.series.filter((s) => s.sent > 0);
    return [
      sent.map((s) => [s.t, positive(s.latency.p99)] as const),
      sent.map((s) => [s.t, positive(s.latency.p50)] as const),
    ];
  });
  const { x, values } = aligned(samples);
  const lines: ChartLine[] = results.flatMap((r, i) => [
    { label: `${runLabel(r)} p99`, color: colors.get(r) as string, dash: null, values: values[2 * i] ?? [] },
    { label: `${runLabel(r)} p50`, color: colors.get(r) as string, dash: P50_DASH, values: values[2 * i + 1] ?? [] },
  ]);
  if (seed) {
    lines.push(
      { label: `book p99`, color: BOOK_COLOR, dash: null, values: x.map(() => BOOK.latencyMs.p99) },
      { label: `book p50`, color: BOOK_COLOR, dash: P50_DASH, values: x.map(() => BOOK.latencyMs.p50) },
    );
  }
  return {
    id: 'latency',
    title: 'Latency of every request by the second it was sent: p99 (solid) and p50 (dashed)',
    xLabel: 'seconds (by scheduled send)',
    yLabel: 'ms (log)',
    x,
    lines,
    xScale: 'linear',
    yScale: 'log10',
    yRange: null,
    bands: [],
    style: 'line',
    note:
      'All answers, successes and rejections alike, counted from the scheduled send (no coordinated omission).' +
      (seed ? " The book's run is the flat black pair (its whole-run p50 and p99)." : ''),
  };
}

function perSecondChart(
  results: readonly ArmResult[],
  colors: Map<ArmResult, string>,
  which: 'goodput' | 'rejections',
  seed: boolean,
): Chart {
  const samples = results.map((r) =>
    r.series.map((s) => {
      const ok = Object.entries(s.codes).reduce((a, [code, n]) => a + (is2xx(code) ? n : 0), 0);
      const other = Object.values(s.codes).reduce((a, n) => a + n, 0) - ok + s.errors;
      return [s.t, which === 'goodput' ? ok : other] as const;
    }),
  );
  const { x, values } = aligned(samples);
  const lines: ChartLine[] = results.map((r, i) => ({
    label: runLabel(r),
    color: colors.get(r) as string,
    dash: null,
    values: values[i] ?? [],
  }));
  if (which === 'goodput') {
    if (seed) {
      const rate = BOOK.statusCodes['200'] / BOOK.durationSeconds;
      lines.push({ label: 'book (whole run)', color: BOOK_COLOR, dash: P50_DASH, values: x.map(() => rate) });
    }
    return {
      id: 'goodput',
      title: 'Goodput: 2xx answers per second',
      xLabel: 'seconds (by completion)',
      yLabel: '2xx/s',
      x,
      lines,
      xScale: 'linear',
      yScale: 'linear',
      yRange: null,
      bands: [],
      style: 'line',
      note: 'Bucketed by the second each answer completed; answers arriving after the attack are the wait.',
    };
  }
  return {
    id: 'rejections',
    title: 'Rejections and failures: answers other than 2xx, and requests without an answer, per second',
    xLabel: 'seconds (by completion)',
    yLabel: 'per second',
    x,
    lines,
    xScale: 'linear',
    yScale: 'linear',
    yRange: null,
    bands: [],
    style: 'line',
    note: 'In the mesh arms these are mostly Envoy overflow answers (503 UO); each run below splits them.',
  };
}

function inflightChart(results: readonly ArmResult[], colors: Map<ArmResult, string>): Chart {
  const limited = results.filter((r) => hasSidecar(r.arm));
  const samples = [
    ...results.map((r) => r.scrapes.map((p) => [p.t, modelInflight(r, p)] as const)),
    ...limited.map((r) =>
      r.scrapes.map((p) => {
        const limits = p.sidecars.map((s) => s.limit).filter((v): v is number => v !== null);
        return [p.t, limits.length === 0 ? null : Math.max(...limits)] as const;
      }),
    ),
  ];
  const { x, values } = aligned(samples);
  const lines: ChartLine[] = [
    ...results.map((r, i) => ({
      label: runLabel(r),
      color: colors.get(r) as string,
      dash: null,
      values: values[i] ?? [],
    })),
    ...limited.map((r, i) => ({
      label: `${runLabel(r)} limit`,
      color: colors.get(r) as string,
      dash: LIMIT_DASH,
      values: values[results.length + i] ?? [],
    })),
  ];
  return {
    id: 'inflight',
    title: "In flight at the busiest replica's model (solid) and the sidecars' concurrency limit (dotted)",
    xLabel: 'seconds',
    yLabel: 'requests',
    x,
    lines,
    xScale: 'linear',
    yScale: 'linear',
    yRange: null,
    bands: [],
    style: 'step',
    note:
      "Scraped gauges, max over the replicas: the API's in-flight count (what its model holds and queues), " +
      "in direct the Service's count per replica, in sidecar arms the sidecars' (what they forwarded).",
  };
}

const BREAKER_WEIGHT = { closed: 0, 'half-open': 0.5, open: 1, unknown: null } as const;

function breakerChart(results: readonly ArmResult[], colors: Map<ArmResult, string>): Chart {
  const runs = results.filter((r) => hasSidecar(r.arm));
  const { x, values } = aligned(
    runs.map((r) =>
      r.scrapes.map((p) => {
        const w = p.sidecars.map((s) => BREAKER_WEIGHT[s.breaker]).filter((v): v is 0 | 0.5 | 1 => v !== null);
        return [p.t, w.length === 0 ? null : w.reduce<number>((a, b) => a + b, 0)] as const;
      }),
    ),
  );
  const replicas = Math.max(1, ...runs.map((r) => r.replicas));
  return {
    id: 'breakers',
    title: 'Sidecar breakers open (half-open counts ½)',
    xLabel: 'seconds',
    yLabel: 'sidecars',
    x,
    lines: runs.map((r, i) => ({
      label: runLabel(r),
      color: colors.get(r) as string,
      dash: null,
      values: values[i] ?? [],
    })),
    xScale: 'linear',
    yScale: 'linear',
    yRange: [-0.1, replicas + 0.1],
    bands: [],
    style: 'step',
    note: 'Scraped from each sidecar every 500 ms; 0 while every breaker is closed.',
  };
}

/** The outages of the fault runs on the attack's clock (one band per distinct outage, rounded to 0.1 s). */
function faultBands(results: readonly ArmResult[]): { from: number; to: number }[] {
  const r1 = (v: number): number => Math.round(v * 10) / 10;
  const seen = new Map<string, { from: number; to: number }>();
  for (const r of results) {
    const f = r.fault;
    if (f === undefined) continue;
    const band = { from: r1(f.killed_at_s), to: r1(f.returned_at_s ?? r.duration_s) };
    seen.set(`${band.from}-${band.to}`, band);
  }
  return [...seen.values()];
}

/** True when some arm ran at more than one number of callers: the callers plot has something to show. */
export function hasCallerSweep(results: readonly ArmResult[]): boolean {
  return ARM_NAMES.some((arm) => new Set(results.filter((r) => r.arm === arm).map((r) => r.callers)).size > 1);
}

/** The callers plot: goodput, accepted p50/p99, rejections and the peak at one replica's model against the callers. */
function callerCharts(results: readonly ArmResult[]): Chart[] {
  const x = [...new Set(results.map((r) => r.callers))].sort((a, b) => a - b);
  const arms = ARM_NAMES.filter((arm) => results.some((r) => r.arm === arm));
  const at = (arm: ArmName, c: number, voided: boolean): ArmResult | undefined =>
    results.find((r) => r.arm === arm && r.callers === c && r.void.void === voided);
  // Counted runs make an arm's line; its void runs, if any, a dotted line of their own.
  const lines = (pick: (r: ArmResult) => number | null, suffix = '', dash: number[] | null = null): ChartLine[] =>
    arms.flatMap((arm) =>
      [false, true].flatMap((voided) => {
        const values = x.map((c) => {
          const r = at(arm, c, voided);
          return r === undefined ? null : pick(r);
        });
        if (voided && values.every((v) => v === null)) return [];
        return [
          {
            label: `${arm}${suffix}${voided ? ' (void)' : ''}`,
            color: ARM_COLORS[arm],
            dash: voided ? VOID_DASH : dash,
            values,
          },
        ];
      }),
    );
  const voided = results.filter((r) => r.void.void).map(columnName);
  const note = voided.length === 0 ? '' : ` Void runs (${voided.join(', ')}) are dotted lines of their own.`;
  const base = { xLabel: 'callers', x, xScale: 'log2' as const, yRange: null, style: 'points' as const, bands: [] };
  return [
    {
      ...base,
      id: 'callers-goodput',
      title: 'Goodput against the number of callers',
      yLabel: '2xx/s',
      lines: lines((r) => r.goodput_rps),
      yScale: 'linear',
      note: `2xx per second of the attack, the offered rate shared evenly by the callers.${note}`,
    },
    {
      ...base,
      id: 'callers-latency',
      title: 'Accepted (2xx) latency against the number of callers: p99 (solid) and p50 (dashed)',
      yLabel: 'ms (log)',
      lines: [
        ...lines((r) => positive(r.latency_ms.success.p99), ' p99'),
        ...lines((r) => positive(r.latency_ms.success.p50), ' p50', P50_DASH),
      ],
      yScale: 'log10',
      note: `Whole-run percentiles of the successful answers.${note}`,
    },
    {
      ...base,
      id: 'callers-rejections',
      title: 'Rejections (5xx and 429 answers) against the number of callers',
      yLabel: 'answers',
      lines: lines((r) => r.latency_ms.rejection.count),
      yScale: 'linear',
      note: `Whole run.${note}`,
    },
    {
      ...base,
      id: 'callers-inflight',
      title: "Peak in flight at one replica's model against the number of callers",
      yLabel: 'requests',
      lines: lines((r) => r.max_upstream_concurrency),
      yScale: 'linear',
      note: `max_upstream_concurrency: the most requests one replica's API held at once.${note}`,
    },
  ];
}

/**
 * Every chart of report.html for these runs: latency, goodput, rejections and in flight over time (one line per
 * run), the sidecars' breakers when a sidecar arm ran, and the callers plot when an arm ran at several caller counts.
 */
export function reportCharts(results: readonly ArmResult[], preset: 'seed' | null): Chart[] {
  const colors = runColors(results);
  const seed = preset === 'seed';
  const charts = [
    latencyChart(results, colors, seed),
    perSecondChart(results, colors, 'goodput', seed),
    perSecondChart(results, colors, 'rejections', seed),
    inflightChart(results, colors),
  ];
  if (results.some((r) => hasSidecar(r.arm))) charts.push(breakerChart(results, colors));
  const outages = faultBands(results);
  if (outages.length > 0) {
    for (const c of charts) {
      c.bands = outages;
      c.note += " Shaded: while a replica's model was down (--fault).";
    }
  }
  if (hasCallerSweep(results)) charts.push(...callerCharts(results));
  return charts;
}
