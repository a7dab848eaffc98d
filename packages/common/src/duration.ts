/** Istio-style durations ("100ms", "1s", "1m30s", "1.5h"), as in DestinationRule fields. */

const MS_PER: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1, us: 0.001, µs: 0.001, ns: 0.000001 };
const TOKEN = /(\d+(?:\.\d*)?|\.\d+)(h|ms|m|s|us|µs|ns)/y;

/** JSON-schema pattern accepted for duration strings (checked before parsing). */
export const DURATION_PATTERN = '^((\\d+(\\.\\d*)?|\\.\\d+)(h|ms|m|s|us|µs|ns))+$';

/**
 * Converts a duration string to milliseconds.
 * @returns milliseconds (fractions kept), or NaN when `text` is not a duration
 */
export function durationToMs(text: string): number {
  if (text.length === 0) return Number.NaN;
  TOKEN.lastIndex = 0;
  let total = 0;
  while (TOKEN.lastIndex < text.length) {
    const m = TOKEN.exec(text);
    if (m === null) return Number.NaN;
    total += Number(m[1]) * (MS_PER[m[2] as string] as number);
  }
  return total;
}
