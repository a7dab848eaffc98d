import { performance } from 'node:perf_hooks';
import type { ResultRecorder } from './results.js';

/**
 * The live progress line of an arm (arm, elapsed, sent, 2xx, 503, errors): rewritten in place every
 * 250 ms on a TTY, one line every 2 s otherwise (logs stay readable).
 */
export class Progress {
  private timer: NodeJS.Timeout | undefined;
  private t0 = 0;
  private readonly tty: boolean;

  constructor(
    private readonly arm: string,
    private readonly rec: ResultRecorder,
    private readonly stream: NodeJS.WritableStream & { isTTY?: boolean },
    private readonly durationSeconds: number,
  ) {
    this.tty = stream.isTTY === true;
  }

  /** The current line. */
  line(): string {
    const elapsed = (performance.now() - this.t0) / 1000;
    const r = this.rec;
    return `[${this.arm}] ${elapsed.toFixed(1)}s/${this.durationSeconds}s sent ${Math.max(r.scheduled, r.requests)}  2xx ${r.successes}  503 ${r.count(503)}  errors ${r.errors}`;
  }

  start(): void {
    this.t0 = performance.now();
    const every = this.tty ? 250 : 2000;
    this.timer = setInterval(() => this.print(), every);
  }

  private print(): void {
    if (this.tty) this.stream.write(`\r\x1b[2K${this.line()}`);
    else this.stream.write(`${this.line()}\n`);
  }

  /** Prints the final line and stops (nothing when it never started: the attack failed first). */
  stop(): void {
    if (this.timer === undefined) return;
    clearInterval(this.timer);
    this.print();
    if (this.tty) this.stream.write('\n');
  }
}
