import { Agent, request } from 'node:http';

/** One request of an open-loop run and how it ended. */
export interface Shot {
  /** ms since the run started, when the request was sent */
  sentAtMs: number;
  latencyMs: number;
  /** HTTP status, or 0 when no answer came (socket error or client timeout) */
  status: number;
  /** the sidecar's `x-cb-reason`, when present */
  reason: string | undefined;
  /** why a request got no (complete) answer: ECONNRESET, CLIENT_TIMEOUT, TRUNCATED (status came, body cut) */
  error: string | undefined;
}

/** Options of {@link openLoop}. */
export interface LoadOptions {
  url: string;
  method?: 'GET' | 'POST';
  body?: string;
  /** requests per second, sent on schedule whether or not earlier ones have answered */
  rate: number;
  durationMs: number;
  /** a request not answered within this is recorded as a hang (`CLIENT_TIMEOUT`) */
  clientTimeoutMs?: number;
  headers?: Record<string, string>;
  /** called after each send with the run's elapsed ms (tests inject faults from here) */
  onTick?: (elapsedMs: number) => void;
}

/** What a run produced. */
export interface LoadResult {
  sent: number;
  answered: number;
  shots: Shot[];
  byStatus: Record<string, number>;
  byReason: Record<string, number>;
  errors: Record<string, number>;
}

/** The reference request body (vegeta/data.json). */
export const SEED_BODY = JSON.stringify({ data: [[5.1, 3.5, 1.4, 0.2]] });

/**
 * A bounded open-loop load (like vegeta): `rate` requests per second for `durationMs`, each with its own
 * client timeout so nothing can hang the test; resolves when every request has ended one way or another.
 */
export async function openLoop(o: LoadOptions): Promise<LoadResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: 512 });
  const target = new URL(o.url);
  const total = Math.max(1, Math.round((o.rate * o.durationMs) / 1000));
  const intervalMs = 1000 / o.rate;
  const shots: Shot[] = [];
  const pending: Promise<void>[] = [];
  const started = performance.now();
  const headers: Record<string, string> = { ...o.headers };
  if (o.body !== undefined) {
    headers['content-type'] = 'application/json';
    headers['content-length'] = String(Buffer.byteLength(o.body));
  }
  for (let i = 0; i < total; i++) {
    const due = started + i * intervalMs;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    const sentAt = performance.now();
    pending.push(
      new Promise<void>((resolve) => {
        let done = false;
        const finish = (status: number, reason: string | undefined, error: string | undefined): void => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          shots.push({ sentAtMs: sentAt - started, latencyMs: performance.now() - sentAt, status, reason, error });
          resolve();
        };
        const req = request(
          {
            host: target.hostname,
            port: target.port,
            path: target.pathname + target.search,
            method: o.method ?? 'GET',
            headers,
            agent,
          },
          (res) => {
            const reason = res.headers['x-cb-reason'];
            res.resume();
            const r = typeof reason === 'string' ? reason : undefined;
            res.once('end', () => finish(res.statusCode ?? 0, r, undefined));
            // An answer whose body was cut short: the status came, the rest did not.
            res.once('error', () => finish(res.statusCode ?? 0, r, 'TRUNCATED'));
            res.once('close', () => finish(res.statusCode ?? 0, r, res.complete ? undefined : 'TRUNCATED'));
          },
        );
        const timer = setTimeout(() => {
          finish(0, undefined, 'CLIENT_TIMEOUT');
          req.destroy();
        }, o.clientTimeoutMs ?? 15_000);
        req.once('error', (err: NodeJS.ErrnoException) => finish(0, undefined, err.code ?? err.message));
        req.end(o.body);
      }),
    );
    o.onTick?.(sentAt - started);
  }
  await Promise.all(pending);
  agent.destroy();
  shots.sort((a, b) => a.sentAtMs - b.sentAtMs);
  return summarize(shots);
}

/** Counts of a set of shots by status, reason and error. */
export function summarize(shots: Shot[]): LoadResult {
  const byStatus: Record<string, number> = {};
  const byReason: Record<string, number> = {};
  const errors: Record<string, number> = {};
  for (const s of shots) {
    if (s.status > 0) byStatus[s.status] = (byStatus[s.status] ?? 0) + 1;
    if (s.reason !== undefined) byReason[s.reason] = (byReason[s.reason] ?? 0) + 1;
    if (s.error !== undefined) errors[s.error] = (errors[s.error] ?? 0) + 1;
  }
  return {
    sent: shots.length,
    answered: shots.filter((s) => s.status > 0 && s.error === undefined).length,
    shots,
    byStatus,
    byReason,
    errors,
  };
}

/** Warms a freshly started process (JIT, upstream connections): `count` requests, 16 at a time. */
export async function warmUp(url: string, body = SEED_BODY, count = 200): Promise<void> {
  const one = async (): Promise<void> => {
    const res = await fetch(url, {
      method: 'POST',
      body,
      headers: { 'content-type': 'application/json' },
      signal: AbortSignal.timeout(5000),
    });
    await res.arrayBuffer();
  };
  for (let i = 0; i < count; i += 16) await Promise.all(Array.from({ length: Math.min(16, count - i) }, one));
}
