// Soak: a bounded open-loop load at 80% of the measured capacity through the built sidecar in front of the
// built API, sampling both processes' RSS (/proc/<pid>/status VmRSS) and open fds (/proc/<pid>/fd).
// Run by test/e2e/soak.test.ts: ~45 s in `make test`, SOAK_SECONDS=600 in `make soak`.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import {
  openLoop,
  percentile,
  SEED_BODY,
  startApi,
  startSidecar,
  warmUp,
  type ApiProcess,
  type SidecarProcess,
} from '@infer-cb/testkit';

/** One sample of a process. */
export interface ProcSample {
  atS: number;
  rssKiB: number;
  fds: number;
}

/** What a soak run measured. */
export interface SoakResult {
  capacityRps: number;
  rateRps: number;
  durationS: number;
  warmupS: number;
  sent: number;
  answered: number;
  byStatus: Record<string, number>;
  /** the sidecar's own answers by `x-cb-reason` */
  byReason: Record<string, number>;
  errors: Record<string, number>;
  p50Ms: number;
  p99Ms: number;
  sidecar: ProcSample[];
  api: ProcSample[];
}

/** RSS in KiB and open fds of a live process. */
export function sample(pid: number, atS: number): ProcSample {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rss = /VmRSS:\s+(\d+) kB/.exec(status);
  return { atS, rssKiB: Number(rss?.[1] ?? 0), fds: readdirSync(`/proc/${pid}/fd`).length };
}

/** Requests per second the sidecar path sustains with `concurrency` closed-loop clients for `ms`. */
async function capacity(url: string, concurrency: number, ms: number): Promise<number> {
  const end = performance.now() + ms;
  let done = 0;
  const client = async (): Promise<void> => {
    while (performance.now() < end) {
      const res = await fetch(url, {
        method: 'POST',
        body: SEED_BODY,
        headers: { 'content-type': 'application/json' },
      });
      await res.arrayBuffer();
      if (res.status === 200) done++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, client));
  return done / (ms / 1000);
}

/** Median of the RSS or fd figures of samples. */
export function median(samples: ProcSample[], key: 'rssKiB' | 'fds'): number {
  return percentile(
    samples.map((s) => s[key]),
    50,
  );
}

/**
 * Runs the soak at `share` of the measured capacity, in 5 s open-loop slices so memory stays flat however
 * long it runs. Warm-up lasts at least `warmupS` and until both processes' RSS has been steady (within 3%)
 * for 10 s, at most 3 x `warmupS`: V8 sizes its heap to the load first. Then `durationS - warmupS` more
 * seconds are measured; the result holds the actual warm-up and duration.
 */
export async function runSoak(durationS: number, warmupS: number, share = 0.8, sampleEveryS = 2): Promise<SoakResult> {
  let started = performance.now();
  const elapsedS = (): number => (performance.now() - started) / 1000;
  let api: ApiProcess | undefined;
  let sidecar: SidecarProcess | undefined;
  try {
    api = await startApi();
    sidecar = await startSidecar({ upstream: api.origin, yaml: 'sidecar:\n  drain: { delay: 0ms, grace: 5s }\n' });
    // A process that dies mid-soak is the finding: stop at once and say which, how, and what it last wrote.
    let died: string | undefined;
    for (const [name, child] of [
      ['iris-api', api.proc],
      ['cb-sidecar', sidecar.proc],
    ] as const) {
      void child.exited.then((st) => {
        died ??=
          `${name} exited (code ${st.code}, signal ${st.signal}) during the soak at ${elapsedS().toFixed(0)} s; ` +
          `stderr: ${child.stderr() || '-'}; log tail: ${child.stdout().slice(-2000) || '-'}`;
      });
    }
    const url = `${sidecar.url}/predict`;
    await warmUp(url, SEED_BODY, 500);
    const capacityRps = await capacity(url, 16, 5000);
    const rateRps = Math.max(10, Math.floor(capacityRps * share));
    const result: SoakResult = {
      capacityRps,
      rateRps,
      durationS,
      warmupS,
      sent: 0,
      answered: 0,
      byStatus: {},
      byReason: {},
      errors: {},
      p50Ms: 0,
      p99Ms: 0,
      sidecar: [],
      api: [],
    };
    const p50s: number[] = [];
    const p99s: number[] = [];
    started = performance.now();
    const sampler = setInterval(() => {
      try {
        const sc = sample((sidecar as SidecarProcess).proc.pid, elapsedS());
        const ap = sample((api as ApiProcess).proc.pid, elapsedS());
        result.sidecar.push(sc);
        result.api.push(ap);
      } catch {
        /* a process just exited: `died` says which */
      }
    }, sampleEveryS * 1000);
    try {
      let endS = Infinity;
      while (elapsedS() < endS) {
        if (died !== undefined) throw new Error(died);
        if (
          endS === Infinity &&
          elapsedS() >= warmupS &&
          (elapsedS() >= 3 * warmupS || (steady(result.sidecar) && steady(result.api)))
        ) {
          result.warmupS = Math.round(elapsedS());
          endS = result.warmupS + durationS - warmupS;
          result.durationS = endS;
        }
        const sliceMs = Math.min(5000, (Math.min(endS, elapsedS() + 5) - elapsedS()) * 1000);
        if (sliceMs < 100) break;
        const slice = await openLoop({ url, method: 'POST', body: SEED_BODY, rate: rateRps, durationMs: sliceMs });
        result.sent += slice.sent;
        result.answered += slice.answered;
        for (const [k, v] of Object.entries(slice.byStatus)) result.byStatus[k] = (result.byStatus[k] ?? 0) + v;
        for (const [k, v] of Object.entries(slice.byReason)) result.byReason[k] = (result.byReason[k] ?? 0) + v;
        for (const [k, v] of Object.entries(slice.errors)) result.errors[k] = (result.errors[k] ?? 0) + v;
        const lat = slice.shots.map((s) => s.latencyMs);
        p50s.push(percentile(lat, 50));
        p99s.push(percentile(lat, 99));
      }
    } finally {
      clearInterval(sampler);
    }
    if (died !== undefined) throw new Error(died);
    result.p50Ms = percentile(p50s, 50);
    result.p99Ms = percentile(p99s, 50);
    return result;
  } finally {
    await Promise.all([sidecar?.proc.stop(3000), api?.proc.stop(3000)]);
  }
}

/** True when the last 10 s of samples (every 2 s) lie within 3% of each other. */
function steady(samples: ProcSample[]): boolean {
  const last = samples.slice(-6).map((x) => x.rssKiB);
  return last.length === 6 && Math.max(...last) <= 1.03 * Math.min(...last);
}

/**
 * Samples after warm-up: the first and the last third, whose medians are compared. RSS (GC) and fds (one
 * connection per request in flight) swing with the moment's load; a leak moves the whole last third.
 */
export function window(samples: ProcSample[], warmupS: number): { start: ProcSample[]; end: ProcSample[] } {
  const after = samples.filter((s) => s.atS >= warmupS);
  const third = Math.max(1, Math.floor(after.length / 3));
  return { start: after.slice(0, third), end: after.slice(-third) };
}

/** Writes the soak result as Markdown. */
export function writeReport(path: string, r: SoakResult): void {
  const row = (name: string, samples: ProcSample[]): string => {
    const w = window(samples, r.warmupS);
    const rs = median(w.start, 'rssKiB') / 1024;
    const re = median(w.end, 'rssKiB') / 1024;
    return `| ${name} | ${rs.toFixed(1)} | ${re.toFixed(1)} | ${(((re - rs) / rs) * 100).toFixed(1)}% | ${median(w.start, 'fds')} | ${median(w.end, 'fds')} |`;
  };
  const text = [
    '# Soak: open-loop load at 80% of capacity through cb-sidecar',
    '',
    `Run ${new Date().toISOString()} by \`make soak\` (bench/soak/soak.ts via test/e2e/soak.test.ts) on a shared 2-core machine.`,
    `Capacity measured first (16 closed-loop clients, 5 s): ${r.capacityRps.toFixed(0)} req/s; soak rate ${r.rateRps} req/s for ${r.durationS.toFixed(0)} s;`,
    `the first ${r.warmupS} s were warm-up (at least 20% of the run, then until RSS was steady for 10 s). RSS and fds sampled every 2 s from /proc; start/end = median of the first/last third of the samples after warm-up.`,
    '',
    `Requests: ${r.sent} sent, ${r.answered} answered; by status ${JSON.stringify(r.byStatus)}; sidecar answers by reason ${JSON.stringify(r.byReason)}; without an answer ${JSON.stringify(r.errors)}.`,
    `Latency (median of 5 s slices): p50 ${r.p50Ms.toFixed(1)} ms, p99 ${r.p99Ms.toFixed(1)} ms.`,
    '',
    '| process | RSS start (MiB) | RSS end (MiB) | growth | fds start | fds end |',
    '|---|---:|---:|---:|---:|---:|',
    row('cb-sidecar', r.sidecar),
    row('iris-api', r.api),
    '',
  ].join('\n');
  writeFileSync(path, text);
}
