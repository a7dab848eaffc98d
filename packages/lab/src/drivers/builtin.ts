import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { AttackSpec, Driver } from './driver.js';
import type { OpenLoopParams } from './open-loop.js';
import { FIELDS, type WorkerMessage } from './worker-protocol.js';
import { PRIORITY_CLASSES } from '@infer-cb/proxy/outcomes';

export { errorText, statusText } from './open-loop.js';

/** The request body every driver sends: the seed's `vegeta/data.json`. */
export function readSeedBody(repoRoot: string): string {
  return readFileSync(join(repoRoot, 'vegeta', 'data.json'), 'utf8');
}

/**
 * Young generation of the driver's worker (MB). V8's default (tens of MB) made each scavenge take 3-7 ms
 * at 400 req/s, a stall every request in flight waited out; a small one collects often in < 1 ms.
 */
const WORKER_YOUNG_GENERATION_MB = 3;

/**
 * The builtin load generator: open model (constant arrival rate), each request's latency measured from
 * its *scheduled* send time so a slow server cannot slow the clock down (no coordinated omission).
 * In-flight requests are bounded (`maxInflight`: beyond it a request is recorded as an error, not
 * delayed) and every request is aborted at `timeoutMs` after its scheduled time. The loop runs in a
 * worker thread (`builtin-worker.js`, see `open-loop.ts`) and reports in batches every 100 ms.
 */
export class BuiltinDriver implements Driver {
  readonly name = 'builtin';

  async attack(spec: AttackSpec): Promise<string[]> {
    const url = new URL(spec.baseUrl);
    if (url.hostname !== '127.0.0.1')
      throw new RangeError(`the builtin driver targets 127.0.0.1 only, got ${url.hostname}`);
    const params: OpenLoopParams = {
      baseUrl: spec.baseUrl,
      rate: spec.rate,
      durationSeconds: spec.durationSeconds,
      timeoutMs: spec.timeoutMs,
      maxInflight: spec.maxInflight,
      body: spec.request?.body ?? readSeedBody(spec.repoRoot),
      path: spec.request?.path ?? '/predict',
      ...(spec.mix === undefined ? {} : { mix: [...spec.mix] }),
    };
    const rec = spec.recorder;
    let scheduled = 0;
    const worker = new Worker(new URL('./builtin-worker.js', import.meta.url), {
      workerData: params,
      resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_GENERATION_MB },
    });
    const onAbort = (): void => worker.postMessage({ type: 'abort' });
    spec.signal?.addEventListener('abort', onAbort, { once: true });
    if (spec.signal?.aborted === true) onAbort();
    try {
      await new Promise<void>((resolve, reject) => {
        worker.on('message', (m: WorkerMessage) => {
          if (m.type === 'batch') {
            for (const lag of m.lags) rec.sendLag(lag);
            const r = m.records;
            for (let i = 0; i + FIELDS <= r.length; i += FIELDS) {
              const error = r[i + 5] as number;
              const reason = r[i + 6] as number;
              if (reason >= 0) rec.reason(m.strings[reason] as string);
              rec.record(
                r[i] as number,
                r[i + 1] as number,
                r[i + 2] as number,
                r[i + 3] as number,
                r[i + 4] as number,
                error >= 0 ? m.strings[error] : undefined,
              );
              const cls = r[i + 7] as number;
              if (cls >= 0) rec.classAnswer(PRIORITY_CLASSES[cls] as string, r[i + 2] as number, r[i + 1] as number);
            }
            // Several callers may share the recorder: add this worker's progress, not its total.
            rec.scheduled += m.scheduled - scheduled;
            scheduled = m.scheduled;
          } else if (m.type === 'started') {
            spec.onStart?.();
          } else if (m.type === 'done') {
            rec.driverRuntime = m.runtime;
            resolve();
          } else {
            reject(new Error(`builtin driver: ${m.message}`));
          }
        });
        worker.once('error', reject);
        worker.once('exit', (code) =>
          reject(new Error(`builtin driver: worker exited (${code}) before the attack ended`)),
        );
      });
    } finally {
      spec.signal?.removeEventListener('abort', onAbort);
      await worker.terminate();
    }
    return [];
  }
}
