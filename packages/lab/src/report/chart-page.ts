// report.html's charts: uPlot (npm `uplot`, pinned) inlined into the page with the chart data and the few
// lines that hand one to the other, so the page loads nothing from the network and opens offline.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Chart } from './charts.js';

/** The slice of uPlot's constructor the page uses (the library runs in the page, never in Node). */
interface UPlotConstructor {
  new (opts: Record<string, unknown>, data: (number | null)[][], target: unknown): unknown;
  paths: { stepped?: (o: { align: 1 }) => unknown };
}

/** The slice of a uPlot instance the page's hooks use (canvas pixels). */
interface PlotInstance {
  bbox: { left: number; top: number; width: number; height: number };
  ctx: {
    save(): void;
    restore(): void;
    fillStyle: string;
    fillRect(x: number, y: number, w: number, h: number): void;
  };
  valToPos(value: number, scale: string, canvasPixels: boolean): number;
}

/** The slice of the page's DOM the page script uses. */
interface PageElement {
  clientWidth: number;
  dataset: Record<string, string | undefined>;
}
interface PageDocument {
  getElementById(id: string): PageElement | null;
}

/**
 * Runs in the page (serialized with `toString`, so it refers to nothing outside itself): draws each chart
 * into the element of its id, counting its paints in `data-draws` and giving its plot area (canvas pixels) in
 * `data-plot`.
 */
function drawCharts(uPlot: UPlotConstructor, charts: readonly Chart[], doc: PageDocument): void {
  for (const c of charts) {
    const el = doc.getElementById(c.id);
    if (el === null) continue;
    const stepped = c.style === 'step' && uPlot.paths.stepped !== undefined ? uPlot.paths.stepped({ align: 1 }) : null;
    // A few points (the callers plot) would sit on the plot's edges, where a marker is clipped to a quarter
    // and a value of 0 disappears into the axis: pad those charts' ranges.
    const pad = c.style === 'points';
    const padLog = (_u: unknown, min: number, max: number): [number, number] => [min / 1.4, max * 1.4];
    const padLinear = (_u: unknown, min: number, max: number): [number, number] => {
      const span = max - Math.min(0, min) || 1;
      return [Math.min(0, min) - span * 0.08, max + span * 0.08];
    };
    // (A log y axis already ends on whole decades around the data.)
    const yRange = c.yRange ?? (pad && c.yScale === 'linear' ? padLinear : undefined);
    const opts = {
      width: Math.max(480, Math.min(1100, el.clientWidth)),
      height: 320,
      title: c.title,
      scales: {
        x: { time: false, distr: c.xScale === 'log2' ? 3 : 1, log: 2, ...(pad ? { range: padLog } : {}) },
        y: { distr: c.yScale === 'log10' ? 3 : 1, log: 10, ...(yRange === undefined ? {} : { range: yRange }) },
      },
      // A padded log x axis would tick at odd multiples of its padded end: tick at the data's own x instead.
      axes: [
        { label: c.xLabel, ...(pad ? { splits: () => c.x } : {}) },
        { label: c.yLabel, size: 64 },
      ],
      series: [
        { label: c.xLabel },
        ...c.lines.map((l) => ({
          label: l.label,
          stroke: l.color,
          width: 2,
          spanGaps: true,
          points: { show: c.style === 'points', size: 7 },
          ...(l.dash === null ? {} : { dash: l.dash }),
          ...(stepped === null ? {} : { paths: stepped }),
        })),
      ],
      hooks: {
        // The shaded spans go under the grid and the lines.
        drawClear: [
          (u: PlotInstance): void => {
            u.ctx.save();
            u.ctx.fillStyle = 'rgba(214, 39, 40, 0.10)';
            for (const b of c.bands) {
              const from = u.valToPos(b.from, 'x', true);
              u.ctx.fillRect(from, u.bbox.top, u.valToPos(b.to, 'x', true) - from, u.bbox.height);
            }
            u.ctx.restore();
          },
        ],
        // For the tests, and for anyone checking the page: how often it was painted, and where the plot is.
        draw: [
          (u: PlotInstance): void => {
            el.dataset['draws'] = String(Number(el.dataset['draws'] ?? '0') + 1);
            el.dataset['plot'] = [u.bbox.left, u.bbox.top, u.bbox.width, u.bbox.height].map(Math.round).join(',');
          },
        ],
      },
    };
    new uPlot(opts, [c.x, ...c.lines.map((l) => l.values)], el);
  }
}

let assets: { script: string; css: string } | undefined;

/** uPlot's minified build and stylesheet, read once from node_modules (MIT; its header names it). */
function uplotAssets(): { script: string; css: string } {
  if (assets === undefined) {
    const require = createRequire(import.meta.url);
    assets = {
      script: readFileSync(require.resolve('uplot/dist/uPlot.iife.min.js'), 'utf8'),
      css: readFileSync(require.resolve('uplot/dist/uPlot.min.css'), 'utf8'),
    };
  }
  return assets;
}

/** JSON safe inside a `<script>` element (no `</script>` can close it early). */
function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c');
}

/** The stylesheet the charts need (uPlot's), for the page's `<style>`. */
export function chartCss(): string {
  return uplotAssets().css;
}

/** The element a chart is drawn into, with its note. */
export function chartSlot(c: Chart): string {
  const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  return `<figure class="chart"><div id="${esc(c.id)}" class="plot"></div><figcaption>${esc(c.note)}</figcaption></figure>`;
}

/** The scripts at the end of the page: uPlot, the charts' data (`#cb-lab-charts`) and the call that draws them. */
export function chartScripts(charts: readonly Chart[]): string {
  return (
    `<script>${uplotAssets().script}</script>\n` +
    `<script type="application/json" id="cb-lab-charts">${scriptJson(charts)}</script>\n` +
    `<script>(${drawCharts.toString()})(uPlot, JSON.parse(document.getElementById('cb-lab-charts').textContent), document);</script>`
  );
}
