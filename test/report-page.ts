// Opens a cb-lab report.html in the real Chromium (Debian package) and reads back what it drew.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

/** The ids of every chart, in page order, of a report with a sidecar arm and an arm at several caller counts. */
export const EVERY_CHART = [
  'latency',
  'goodput',
  'rejections',
  'inflight',
  'breakers',
  'callers-goodput',
  'callers-latency',
  'callers-rejections',
  'callers-inflight',
];

/** One chart as the page drew it. */
export interface DrawnChart {
  id: string;
  /** Times uPlot painted it (0: never drawn). */
  draws: number;
  /** Colours of the lines that have at least one value. */
  colors: string[];
  /** Of those, the colours found painted inside the plot area. */
  painted: string[];
}

/** An open report: the page, what went wrong while loading it, and its charts. */
export interface OpenReport {
  page: Page;
  /** Console errors, page errors and any request not to a file: URL. */
  problems: string[];
  charts: DrawnChart[];
  close(): Promise<void>;
}

/** Reads every chart's canvas: which of its lines' colours are painted inside the plot area. */
export async function drawnCharts(page: Page): Promise<DrawnChart[]> {
  return page.evaluate(() => {
    const spec = JSON.parse(document.getElementById('cb-lab-charts')?.textContent ?? '[]') as {
      id: string;
      lines: { color: string; values: (number | null)[] }[];
    }[];
    return spec.map((c) => {
      const el = document.getElementById(c.id) as HTMLElement;
      const colors = [...new Set(c.lines.filter((l) => l.values.some((v) => v !== null)).map((l) => l.color))];
      const canvas = el.querySelector('canvas');
      const [left, top, width, height] = (el.dataset['plot'] ?? '0,0,0,0').split(',').map(Number) as [
        number,
        number,
        number,
        number,
      ];
      const painted: string[] = [];
      const ctx = canvas?.getContext('2d');
      if (ctx !== null && ctx !== undefined && width > 0 && height > 0) {
        const px = ctx.getImageData(left, top, width, height).data;
        for (const color of colors) {
          const [r, g, b] = [1, 3, 5].map((i) => parseInt(color.slice(i, i + 2), 16)) as [number, number, number];
          let n = 0;
          for (let i = 0; i < px.length; i += 4) {
            const d = Math.abs(px[i]! - r) + Math.abs(px[i + 1]! - g) + Math.abs(px[i + 2]! - b);
            if (d <= 12 && px[i + 3]! > 200) n++;
          }
          if (n >= 3) painted.push(color);
        }
      }
      return { id: c.id, draws: Number(el.dataset['draws'] ?? '0'), colors, painted };
    });
  });
}

/** Opens `file` in headless Chromium (a fresh profile each time) once every chart is drawn. */
export async function openReport(file: string): Promise<OpenReport> {
  const browser: BrowserContext = await chromium.launchPersistentContext(
    mkdtempSync(join(tmpdir(), 'cb-lab-chromium-')),
    {
      executablePath: '/usr/bin/chromium',
      headless: true,
      viewport: { width: 1400, height: 900 },
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--no-first-run',
        '--disable-component-update',
        '--disable-sync',
      ],
    },
  );
  const page = await browser.newPage();
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(m.text());
  });
  page.on('pageerror', (e) => problems.push(e.message));
  page.on('request', (r) => {
    if (!r.url().startsWith('file:')) problems.push(`network request ${r.url()}`);
  });
  try {
    await page.goto(`file://${file}`);
    // uPlot paints on the next animation frame; every chart reports its first paint in data-draws.
    await page
      .waitForFunction(
        () => [...document.querySelectorAll('figure.chart .plot')].every((e) => e.hasAttribute('data-draws')),
        null,
        {
          timeout: 10_000,
        },
      )
      .catch(() => undefined); // the assertions on `charts` say which one is missing
    return { page, problems, charts: await drawnCharts(page), close: () => browser.close() };
  } catch (err) {
    await browser.close();
    throw err;
  }
}
