/** Go's `time.Duration` text as vegeta prints it (rounded to a thousandth of the unit): `90.438ms`, `1.419s`. */
export function goDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms <= 0) return '0s';
  const trim = (v: number): string => v.toFixed(3).replace(/\.?0+$/, '');
  if (ms >= 60_000) {
    const m = Math.floor(ms / 60_000);
    return `${m}m${trim((ms - m * 60_000) / 1000)}s`;
  }
  if (ms >= 1000) return `${trim(ms / 1000)}s`;
  if (ms >= 1) return `${trim(ms)}ms`;
  if (ms >= 0.001) return `${trim(ms * 1000)}µs`;
  return `${Math.round(ms * 1e6)}ns`;
}

/** Pads a vegeta label to its column: `Requests      [total, rate, throughput]         `. */
export function vegetaLine(label: string, fields: string, values: string): string {
  return `${label.padEnd(14)}${fields.padEnd(34)}${values}`;
}
