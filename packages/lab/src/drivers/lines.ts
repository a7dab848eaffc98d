import { closeSync, openSync, readSync, statSync } from 'node:fs';

/** Splits a byte stream into lines, keeping a partial last line until it is completed. */
export class LineSplitter {
  private rest = '';
  /** Feeds a chunk; returns the complete lines in it. */
  push(chunk: string): string[] {
    const text = this.rest + chunk;
    const lines = text.split('\n');
    this.rest = lines.pop() ?? '';
    return lines;
  }
  /** The unterminated tail at the end of the stream. */
  flush(): string[] {
    const last = this.rest;
    this.rest = '';
    return last === '' ? [] : [last];
  }
}

/** Follows a file another process appends to (like `tail -f`), returning the new complete lines. */
export class FileFollower {
  private offset = 0;
  private readonly split = new LineSplitter();
  constructor(private readonly file: string) {}

  /** Reads what was appended since the last call. */
  read(): string[] {
    let size: number;
    try {
      size = statSync(this.file).size;
    } catch {
      return [];
    }
    if (size <= this.offset) return [];
    const fd = openSync(this.file, 'r');
    try {
      const buf = Buffer.alloc(size - this.offset);
      const n = readSync(fd, buf, 0, buf.length, this.offset);
      this.offset += n;
      return this.split.push(buf.subarray(0, n).toString('utf8'));
    } finally {
      closeSync(fd);
    }
  }

  /** Reads the rest, including an unterminated last line. */
  finish(): string[] {
    return [...this.read(), ...this.split.flush()];
  }
}

/** Feeds lines to `parse`, remembering the first line it could not parse (reported once the tool ends). */
export class LineSink {
  /** The first parse failure, if any. */
  error: unknown;
  constructor(private readonly parse: (line: string) => void) {}
  /** Parses each line; a bad line does not stop the others. */
  eat(lines: readonly string[]): void {
    for (const l of lines) {
      try {
        this.parse(l);
      } catch (err) {
        this.error ??= err;
      }
    }
  }
}
