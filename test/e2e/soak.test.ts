// The soak (bench/soak/soak.ts): ~45 s here; `make soak` sets SOAK_SECONDS=600 and SOAK_REPORT.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { median, runSoak, window, writeReport } from '../../bench/soak/soak.js';
import { ROOT } from './support/stack.js';

const SECONDS = Number(process.env.SOAK_SECONDS ?? '40');
// V8 grows its heap to a plateau under steady load first (about 85 s for the sidecar at ~230 req/s): growth
// is judged after that, from 20% of the run (at least 20 s).
const WARMUP_S = Math.max(20, Math.round(SECONDS * 0.2));

describe('soak through the sidecar at 80% of capacity', () => {
  it(
    'answers every request and keeps RSS (within 10%; the API also one 16 MiB heap step) and open fds of sidecar and API flat after warm-up',
    async () => {
      const r = await runSoak(SECONDS, WARMUP_S);
      if (process.env.SOAK_REPORT !== undefined) writeReport(process.env.SOAK_REPORT, r);
      const dir = join(ROOT, '.ci-results', 'reliability');
      mkdirSync(dir, { recursive: true });
      const figures = Object.fromEntries(
        (['sidecar', 'api'] as const).map((p) => {
          const w = window(r[p], r.warmupS);
          return [
            p,
            {
              rssStartKiB: median(w.start, 'rssKiB'),
              rssEndKiB: median(w.end, 'rssKiB'),
              fdsStart: median(w.start, 'fds'),
              fdsEnd: median(w.end, 'fds'),
            },
          ];
        }),
      );
      writeFileSync(
        join(dir, `soak-${SECONDS}s.json`),
        JSON.stringify(
          {
            ...r,
            sidecar: r.sidecar.map((x) => [Math.round(x.atS), Math.round(x.rssKiB / 1024), x.fds]),
            api: r.api.map((x) => [Math.round(x.atS), Math.round(x.rssKiB / 1024), x.fds]),
            figures,
            at: new Date().toISOString(),
          },
          null,
          2,
        ),
      );

      expect(r.errors).toEqual({});
      expect(r.answered).toBe(r.sent);
      // Admission may shed a little (503 overload/queue-timeout) when the shared CPU stalls; nothing else fails.
      expect(Object.keys(r.byStatus).filter((s) => s !== '200' && s !== '503')).toEqual([]);
      expect(
        Object.keys(r.byReason).filter((s) => s !== 'overload' && s !== 'queue-timeout' && s !== 'deadline'),
      ).toEqual([]);
      expect(r.byStatus['200'] ?? 0).toBeGreaterThanOrEqual(0.99 * r.sent);
      for (const p of ['sidecar', 'api'] as const) {
        const f = figures[p] as { rssStartKiB: number; rssEndKiB: number; fdsStart: number; fdsEnd: number };
        // The API's V8 heap (no heap flags) grows in steps and gives them back at the next mark-compact: a 150 s
        // run at 870 req/s went 141 -> 154 MiB at 40 s, 157 MiB by 98 s, then 131 MiB at 100 s. A 40 s run can
        // end inside such a step, so the API may grow 10% or 16 MiB, whichever is more (a leak of 1 KiB per
        // request passes 16 MiB within the ~17,000 requests after warm-up); the sidecar, whose heap is capped,
        // 10%. `make soak` (600 s) judges the plateau.
        const allowedKiB = p === 'api' ? Math.max(0.1 * f.rssStartKiB, 16 * 1024) : 0.1 * f.rssStartKiB;
        expect(f.rssEndKiB).toBeLessThanOrEqual(f.rssStartKiB + allowedKiB);
        // Connections come and go with the load (the upstream pool holds up to 64, the clients' keep-alive sockets
        // churn too: a CI run saw the sidecar's count swing 103-242 with no trend, start 203, end 206); a leak grows
        // with every request, by thousands over the ~57,000 requests of a 40 s run.
        expect(f.fdsEnd).toBeLessThanOrEqual(f.fdsStart + 128);
      }
    },
    (SECONDS + 3 * WARMUP_S + 90) * 1000,
  );
});
