// `--mix critical:20,default:50,sheddable:30`: the share of each priority class in the offered load. The
// builtin driver sends each request's class in the sidecar's priority header, spread evenly over the attack,
// and the recorder counts the answers by class, so the report shows what each arm did to each class.
import { PRIORITY_CLASSES, type PriorityClass } from '@infer-cb/proxy/outcomes';

/** The header the sidecar reads a request's class from (its default `sidecar.priority.header`). */
export const PRIORITY_HEADER = 'x-request-priority';

/** The classes' shares of the load in percent, in the order given; they sum to 100. */
export type Mix = readonly { readonly cls: PriorityClass; readonly percent: number }[];

/**
 * Parses `class:percent[,class:percent...]`: known classes, each once, whole percents summing to 100.
 * Returns the mix, or the problem in one line.
 */
export function parseMix(text: string): { mix: Mix } | { problem: string } {
  const mix: { cls: PriorityClass; percent: number }[] = [];
  for (const part of text.split(',')) {
    const m = /^\s*([a-z]+)\s*:\s*(\d+)\s*$/.exec(part);
    if (m === null)
      return { problem: `--mix takes class:percent pairs like critical:20,default:50,sheddable:30, got "${text}"` };
    const cls = m[1] as PriorityClass;
    if (!PRIORITY_CLASSES.includes(cls))
      return { problem: `--mix: unknown class "${m[1]}" (classes: ${PRIORITY_CLASSES.join(', ')})` };
    if (mix.some((x) => x.cls === cls)) return { problem: `--mix: class "${cls}" given twice` };
    mix.push({ cls, percent: Number(m[2]) });
  }
  const total = mix.reduce((a, b) => a + b.percent, 0);
  if (total !== 100) return { problem: `--mix: the percents must sum to 100, got ${total}` };
  return { mix: mix.filter((x) => x.percent > 0) };
}

/**
 * One cycle of classes, request by request, with each class's share exact over the cycle and spread
 * evenly within it (smooth weighted round robin, as nginx balances weighted upstreams): 20/50/30 gives a
 * 10-request cycle `default, sheddable, critical, default, ...`, never the 2 criticals back to back.
 */
export function mixCycle(mix: Mix): PriorityClass[] {
  const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));
  const step = mix.reduce((g, x) => gcd(g, x.percent), 0);
  const weights = mix.map((x) => x.percent / step);
  const total = weights.reduce((a, b) => a + b, 0);
  const current = weights.map(() => 0);
  const cycle: PriorityClass[] = [];
  for (let n = 0; n < total; n++) {
    let best = 0;
    for (let i = 0; i < weights.length; i++) {
      current[i]! += weights[i]!;
      if (current[i]! > current[best]!) best = i;
    }
    current[best]! -= total;
    cycle.push(mix[best]!.cls);
  }
  return cycle;
}

/** The mix as the flag writes it (`critical:20,default:50,sheddable:30`). */
export function mixText(mix: Mix): string {
  return mix.map((x) => `${x.cls}:${x.percent}`).join(',');
}
