/** One line of a chart. */
export interface ChartSeries {
  name: string;
  color: string;
  points: readonly (readonly [number, number])[];
}

/** A line chart drawn as inline SVG (no script, no network). */
export interface ChartSpec {
  id: string;
  title: string;
  xLabel: string;
  yLabel: string;
  series: readonly ChartSeries[];
  /** Logarithmic y axis (latency). */
  logY?: boolean;
  /** Step lines (states, gauges) instead of straight segments. */
  step?: boolean;
  /** Fixed y tick labels, e.g. breaker states. */
  yTicks?: readonly (readonly [number, string])[];
}

const W = 640;
const H = 260;
const M = { l: 64, r: 12, t: 28, b: 64 };

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function niceTicks(min: number, max: number, count = 5): number[] {
  const span = max - min || 1;
  const raw = span / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw;
  const out: number[] = [];
  for (let v = Math.ceil(min / step) * step; v <= max + 1e-9; v += step) out.push(Math.round(v * 1e6) / 1e6);
  return out;
}

function fmt(v: number): string {
  if (v >= 1000) return `${Math.round(v / 100) / 10}k`;
  return String(Math.round(v * 100) / 100);
}

/** Renders a chart; a chart with no points still renders its axes and says "no data". */
export function svgChart(c: ChartSpec): string {
  const all = c.series.flatMap((s) => s.points);
  const xs = all.map((p) => p[0]);
  const ys = all.map((p) => p[1]);
  const xMin = Math.min(0, ...xs);
  const xMax = Math.max(1, ...xs);
  const log = c.logY === true;
  const yPos = ys.filter((y) => y > 0);
  let yMin = log ? Math.min(...yPos, 1) : 0;
  let yMax = Math.max(log ? 10 : 1, ...ys) * (log ? 1 : 1.05);
  if (log) {
    yMin = 10 ** Math.floor(Math.log10(yMin));
    yMax = 10 ** Math.ceil(Math.log10(yMax));
  }
  if (c.yTicks !== undefined) {
    yMin = Math.min(...c.yTicks.map((t) => t[0])) - 0.2;
    yMax = Math.max(...c.yTicks.map((t) => t[0])) + 0.2;
  }
  const pw = W - M.l - M.r;
  const ph = H - M.t - M.b;
  const sx = (x: number): number => M.l + ((x - xMin) / (xMax - xMin || 1)) * pw;
  const sy = (y: number): number => {
    const f = log
      ? (Math.log10(Math.max(y, yMin)) - Math.log10(yMin)) / (Math.log10(yMax) - Math.log10(yMin) || 1)
      : (y - yMin) / (yMax - yMin || 1);
    return M.t + ph - f * ph;
  };
  const parts: string[] = [];
  parts.push(`<text x="${M.l}" y="18" class="t">${esc(c.title)}</text>`);
  const yt: readonly (readonly [number, string])[] =
    c.yTicks ??
    (log
      ? Array.from({ length: Math.round(Math.log10(yMax / yMin)) + 1 }, (_, i) => yMin * 10 ** i).map(
          (v) => [v, fmt(v)] as const,
        )
      : niceTicks(yMin, yMax).map((v) => [v, fmt(v)] as const));
  for (const [v, label] of yt) {
    const y = sy(v).toFixed(1);
    parts.push(
      `<line x1="${M.l}" x2="${W - M.r}" y1="${y}" y2="${y}" class="g"/><text x="${M.l - 6}" y="${y}" class="yl">${esc(label)}</text>`,
    );
  }
  for (const v of niceTicks(xMin, xMax, 8)) {
    const x = sx(v).toFixed(1);
    parts.push(
      `<line x1="${x}" x2="${x}" y1="${M.t}" y2="${M.t + ph}" class="g"/><text x="${x}" y="${M.t + ph + 14}" class="xl">${fmt(v)}</text>`,
    );
  }
  parts.push(`<rect x="${M.l}" y="${M.t}" width="${pw}" height="${ph}" class="f"/>`);
  parts.push(`<text x="${M.l + pw / 2}" y="${M.t + ph + 27}" class="xl">${esc(c.xLabel)}</text>`);
  parts.push(`<text transform="translate(14 ${M.t + ph / 2}) rotate(-90)" class="xl">${esc(c.yLabel)}</text>`);
  let lx = M.l;
  let ly = H - 24;
  for (const s of c.series) {
    const width = 24 + s.name.length * 6.2;
    if (lx + width > W - M.r && lx > M.l) {
      lx = M.l;
      ly += 14;
    }
    if (s.points.length > 0) {
      const d = s.points
        .map((p, i) => {
          const x = sx(p[0]).toFixed(1);
          const y = sy(p[1]).toFixed(1);
          if (i === 0) return `M${x} ${y}`;
          return c.step === true ? `H${x}V${y}` : `L${x} ${y}`;
        })
        .join('');
      parts.push(`<path d="${d}" stroke="${s.color}" class="s" data-series="${esc(s.name)}"/>`);
    }
    parts.push(
      `<rect x="${lx}" y="${ly - 9}" width="10" height="10" fill="${s.color}"/><text x="${lx + 14}" y="${ly}" class="lg">${esc(s.name)}</text>`,
    );
    lx += width;
  }
  if (all.length === 0) parts.push(`<text x="${M.l + pw / 2}" y="${M.t + ph / 2}" class="xl">no data</text>`);
  return `<svg class="chart" id="${esc(c.id)}" data-points="${all.length}" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" xmlns="http://www.w3.org/2000/svg" role="img" aria-label="${esc(c.title)}">${parts.join('')}</svg>`;
}

/** The chart stylesheet (inlined once in the page). */
export const CHART_CSS = `
svg.chart{background:#fff;border:1px solid #ddd;margin:6px}
svg.chart .t{font:600 13px sans-serif}
svg.chart .g{stroke:#eee}
svg.chart .f{fill:none;stroke:#999}
svg.chart .yl{font:10px sans-serif;text-anchor:end;dominant-baseline:middle}
svg.chart .xl{font:10px sans-serif;text-anchor:middle}
svg.chart .lg{font:11px sans-serif}
svg.chart .s{fill:none;stroke-width:1.6}
`;
