/**
 * Priority classes: which class a request belongs to, how the concurrency limit is partitioned among the
 * classes, and which class a freed slot goes to. Pure functions: the admission layer holds the state.
 *
 * The model (docs/sidecar.md, "Priority shedding"): `critical` is served first, always; `default` and
 * `sheddable` each have a reserved share of the limit (Netflix concurrency-limits' partitions), and a class
 * below its share is served before a class above its share. A share nobody waits for is borrowed by
 * whoever waits, higher class first, so no slot idles while a request waits. Critical reserves nothing
 * because nothing can hold it back: a critical request is never shed while a lower class is admitted from
 * the queue (Google SRE's criticality: a lower class is shed first).
 */
import { PRIORITY_CLASSES, type PriorityClass } from '../outcomes.js';
import type { PriorityRule, Settings } from '../settings.js';

/** A class's index in {@link PRIORITY_CLASSES}: 0 critical, 1 default, 2 sheddable (lower is served first). */
export type ClassIndex = 0 | 1 | 2;

export const CRITICAL: ClassIndex = 0;
const DEFAULT: ClassIndex = 1;
const SHEDDABLE: ClassIndex = 2;

/** Every class index, highest class first. */
export const CLASS_INDICES: readonly ClassIndex[] = [CRITICAL, DEFAULT, SHEDDABLE];

const INDEX: Readonly<Record<string, ClassIndex>> = { critical: CRITICAL, default: DEFAULT, sheddable: SHEDDABLE };

/** The index of a class name. */
export function classIndex(name: PriorityClass): ClassIndex {
  return INDEX[name] as ClassIndex;
}

/** What classification reads from the settings. */
export type PriorityOptions = Settings['priority'];

/** The class of a request and whether its header held a value that is not a class. */
export interface Classified {
  readonly priority: PriorityClass;
  readonly unknown: boolean;
}

const BY_HEADER: readonly Classified[] = PRIORITY_CLASSES.map((priority) => ({ priority, unknown: false }));
const UNKNOWN: Classified = { priority: 'default', unknown: true };
const BY_DEFAULT = BY_HEADER[DEFAULT] as Classified;

/**
 * The class of a request from its priority header's value (`header`, the caller looks it up): the header when it is present (case-insensitive, surrounding blanks
 * ignored; any other value is `default`, flagged unknown), else the first path rule whose prefix the path
 * starts with, else `default`. The header wins: the rules give a path its usual class, and a caller that
 * says otherwise knows its request.
 */
export function classify(header: string | string[] | undefined, path: string, options: PriorityOptions): Classified {
  const value = options.trustHeader ? header : undefined;
  if (value !== undefined) {
    const index = typeof value === 'string' ? INDEX[value.trim().toLowerCase()] : undefined;
    return index === undefined ? UNKNOWN : (BY_HEADER[index] as Classified);
  }
  for (const rule of options.rules) if (path.startsWith(rule.pathPrefix)) return byRule(rule);
  return BY_DEFAULT;
}

function byRule(rule: PriorityRule): Classified {
  return BY_HEADER[INDEX[rule.class] as ClassIndex] as Classified;
}

/**
 * The slots of `limit` reserved for each class, by the largest-remainder method so they sum to the limit:
 * the quotas are `limit x share` for default and sheddable and the rest for nobody; each part gets the
 * integer part of its quota, and the slots left over go to the largest fractional parts (ties: the higher
 * class). Critical's entry is 0: it reserves nothing and takes any slot first. With the default shares
 * 0.5 / 0.3: limit 10 -> default 5, sheddable 3; limit 4 -> 2, 1; limit 1 -> 1, 0.
 * @throws RangeError when the limit is not an integer >= 1 or the shares are not in [0, 1] with a sum <= 1
 */
export function reservedSlots(limit: number, defaultShare: number, sheddableShare: number): [0, number, number] {
  if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`limit must be an integer >= 1, got ${limit}`);
  if (!(defaultShare >= 0 && sheddableShare >= 0 && defaultShare + sheddableShare <= 1 + 1e-9))
    throw new RangeError(`shares must be in [0, 1] with a sum <= 1, got ${defaultShare} and ${sheddableShare}`);
  // default, sheddable, then the unreserved rest: ties in the remainders go to the earlier entry
  const quotas = [limit * defaultShare, limit * sheddableShare, limit * Math.max(0, 1 - defaultShare - sheddableShare)];
  const slots = quotas.map((q) => Math.floor(q + 1e-9));
  let left = limit - slots.reduce((a, b) => a + b, 0);
  const order = [0, 1, 2].sort((a, b) => quotas[b]! - slots[b]! - (quotas[a]! - slots[a]!) || a - b);
  for (const i of order) {
    if (left <= 0) break;
    slots[i]!++;
    left--;
  }
  return [0, slots[0]!, slots[1]!];
}

/**
 * The class a freed slot goes to, or -1 when nobody waits: critical if it waits; else a class below its
 * reserved share, default first; else the highest class that waits (it borrows an idle share).
 */
export function nextClass(
  queued: readonly number[],
  inflight: readonly number[],
  reserved: readonly number[],
): ClassIndex | -1 {
  if (queued[CRITICAL]! > 0) return CRITICAL;
  if (queued[DEFAULT]! > 0 && inflight[DEFAULT]! < reserved[DEFAULT]!) return DEFAULT;
  if (queued[SHEDDABLE]! > 0 && inflight[SHEDDABLE]! < reserved[SHEDDABLE]!) return SHEDDABLE;
  if (queued[DEFAULT]! > 0) return DEFAULT;
  if (queued[SHEDDABLE]! > 0) return SHEDDABLE;
  return -1;
}

/**
 * True when a freed slot would go to class `k` before class `c` (both waiting), by {@link nextClass}'s order:
 * critical before any other; else a class below its reserved share before one at or above its share; else the
 * higher class.
 */
export function servedBefore(
  k: ClassIndex,
  c: ClassIndex,
  inflight: readonly number[],
  reserved: readonly number[],
): boolean {
  if (k === c || c === CRITICAL) return false;
  if (k === CRITICAL) return true;
  const kBelow = inflight[k]! < reserved[k]!;
  const cBelow = inflight[c]! < reserved[c]!;
  return kBelow === cBelow ? k < c : kBelow;
}

/**
 * How many queued requests would be served before one of class `c` queued now, by {@link nextClass}'s order
 * as it stands (later arrivals of a higher class may still overtake it; its timer sheds it then): critical
 * waits only for critical; default for critical, default, and, when it would be above default's share, the
 * sheddable requests that fill sheddable's share; sheddable for critical, for default unless sheddable is below its share
 * (then only for default's requests below default's share), and for sheddable.
 */
export function queuedAhead(
  c: ClassIndex,
  queued: readonly number[],
  inflight: readonly number[],
  reserved: readonly number[],
): number {
  const [qc, qd, qs] = queued as [number, number, number];
  const defaultRoom = Math.max(0, reserved[DEFAULT]! - inflight[DEFAULT]!);
  const sheddableRoom = Math.max(0, reserved[SHEDDABLE]! - inflight[SHEDDABLE]!);
  if (c === CRITICAL) return qc;
  if (c === DEFAULT) return qc + qd + (qd < defaultRoom ? 0 : Math.min(qs, sheddableRoom));
  return qc + qs + (qs < sheddableRoom ? Math.min(qd, defaultRoom) : qd);
}
