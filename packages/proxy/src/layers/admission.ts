import { isDeepStrictEqual } from 'node:util';
import type { Settings } from '../config.js';
import { createLimit, type ConcurrencyLimit } from '../limit/limit.js';
import {
  CircuitOpenError,
  ClientClosedError,
  DeadlineError,
  OverloadError,
  QueueTimeoutError,
  SidecarError,
  UpstreamStatusError,
} from '../errors.js';
import {
  PRIORITY_CLASSES,
  upstreamFailed,
  type AdmissionCounters,
  type ClassState,
  type PriorityClass,
  type StateDocument,
} from '../outcomes.js';
import type { Layer, ProxyRequest, Reconfigurable } from '../pipeline.js';
import {
  CLASS_INDICES,
  classIndex,
  nextClass,
  queuedAhead,
  reservedSlots,
  servedBefore,
  CRITICAL,
  type ClassIndex,
} from './priority.js';

/** What the admission layer reads from the settings: the concurrency limit, the queue and the class shares. */
export type AdmissionOptions = Pick<Settings, 'concurrency' | 'queue' | 'priority'>;

/** Queue knobs. Durations in milliseconds. */
export type QueueOptions = Settings['queue'];

/** The rejections of one class: they name it in their message (and respond.ts in `x-cb-class`). */
interface Sheds {
  readonly overload: OverloadError;
  readonly evicted: OverloadError;
  readonly queueTimeout: QueueTimeoutError;
  readonly deadline: DeadlineError;
}

// Rejections carry no per-request data: one instance each (per class) keeps shedding allocation-free.
const SHEDS: readonly Sheds[] = PRIORITY_CLASSES.map((c) => ({
  overload: new OverloadError(`concurrency limit and queue are full (class ${c})`),
  evicted: new OverloadError(`queue full: a request of a higher class took this one's place (class ${c})`),
  queueTimeout: new QueueTimeoutError(`waited in the queue longer than allowed (class ${c})`),
  deadline: new DeadlineError(`the client deadline has passed or cannot be met (class ${c})`),
}));

/** A class's counters since start, for /state. */
type ClassCounters = { -readonly [K in Exclude<keyof ClassState, 'reserved' | 'inflight' | 'queued'>]: number };

function newClassCounters(): ClassCounters {
  return { admitted: 0, admittedFromQueue: 0, overload: 0, queueTimeout: 0, deadline: 0, clientClosedWhileQueued: 0 };
}

/** A call admitted to the upstream and not finished: a node of the in-flight list, oldest first. */
class Call {
  prev: Call | undefined;
  next: Call | undefined;
  constructor(
    readonly admittedAt: number,
    /** calls in flight when this one was admitted (itself included), for the limit */
    readonly inflightAtAdmission: number,
    readonly cls: ClassIndex,
  ) {}
}

/** One queued request: a node of its class's FIFO list and the abort listener of its client. */
class Waiter {
  prev: Waiter | undefined;
  next: Waiter | undefined;
  timer: NodeJS.Timeout | undefined;
  resolve!: (call: Call) => void;
  reject!: (err: Error) => void;
  constructor(
    readonly admission: Admission,
    readonly request: ProxyRequest,
    readonly enqueuedAt: number,
    readonly cls: ClassIndex,
  ) {}
  /** The client went away while queued: drop the request, never forward it. */
  handleEvent(): void {
    this.admission.remove(this, this.request.cancellation.reason as Error);
  }
}

function onWaitExpired(waiter: Waiter, err: Error): void {
  waiter.timer = undefined;
  waiter.admission.remove(waiter, err);
}

/**
 * Admission control (bulkhead): at most `limit` requests in flight to the upstream, then a bounded queue,
 * FIFO within each priority class and served by class (priority.ts), with a controlled-delay timeout per class
 * and client deadlines; both full → immediate `OverloadError`, or the newest request of a lower class gives
 * its place up to a higher class's arrival.
 */
export class Admission implements Reconfigurable<AdmissionOptions> {
  /** requests admitted and not finished */
  inflight = 0;
  /** requests waiting in the queue */
  queued = 0;
  /** requests in flight by class (index of PRIORITY_CLASSES) */
  readonly inflightBy: [number, number, number] = [0, 0, 0];
  /** requests waiting by class */
  readonly queuedBy: [number, number, number] = [0, 0, 0];
  /** counters by class since start, for /state */
  readonly classCounters: readonly [ClassCounters, ClassCounters, ClassCounters] = [
    newClassCounters(),
    newClassCounters(),
    newClassCounters(),
  ];
  /** EWMA of upstream latency (ms): a deadline shorter than this "cannot be met" */
  serviceTimeMs = 0;
  private readonly heads: (Waiter | undefined)[] = [undefined, undefined, undefined];
  private readonly tails: (Waiter | undefined)[] = [undefined, undefined, undefined];
  private oldest: Call | undefined;
  private newest: Call | undefined;
  /** per class: when its queue was last empty */
  private readonly lastEmptyAt: [number, number, number] = [performance.now(), performance.now(), performance.now()];
  /** per class: last time an arrival was shed (queue full, or its expected wait above what it is allowed) */
  private readonly lastShedAt: [number, number, number] = [-Infinity, -Infinity, -Infinity];
  private limiter: ConcurrencyLimit;
  private options: AdmissionOptions;
  private readonly limitListeners: ((limit: number) => void)[] = [];
  private queue: QueueOptions;
  /** the reserved slots of each class for {@link reservedFor}'s limit */
  private reserved: readonly number[] = [0, 0, 0];
  private reservedFor = 0;

  constructor(options: AdmissionOptions) {
    this.options = options;
    this.queue = options.queue;
    this.limiter = createLimit(options.concurrency);
    this.watch(this.limiter);
  }

  /** The reserved slots by class for the limit in force (an adaptive limit moves them with it). */
  private reservedSlots(): readonly number[] {
    const limit = this.limiter.limit;
    if (limit !== this.reservedFor) {
      const { defaultShare, sheddableShare } = this.options.priority;
      this.reserved = reservedSlots(limit, defaultShare, sheddableShare);
      this.reservedFor = limit;
    }
    return this.reserved;
  }

  /** The concurrency limit in force: how many requests may be in flight to the upstream now. */
  get limit(): number {
    return this.limiter.limit;
  }

  /** Subscribes to changes of the limit in force (an adaptive limit's moves, a reload). */
  onLimitChange(listener: (limit: number) => void): void {
    this.limitListeners.push(listener);
  }

  /** Applies reloaded options: a new limit when `concurrency` changed, the new queue knobs; admits what they allow. */
  reconfigure(options: AdmissionOptions): void {
    const previous = this.options;
    this.options = options;
    this.queue = options.queue;
    this.reservedFor = 0; // the shares may have changed
    if (!isDeepStrictEqual(previous.concurrency, options.concurrency)) {
      this.limiter = createLimit(options.concurrency);
      this.watch(this.limiter);
      for (const listener of this.limitListeners) listener(this.limiter.limit);
    }
    this.drainQueue();
  }

  /** Nothing to release: queued requests end with their clients or the listener. */
  async close(): Promise<void> {}

  /** The admission part of the /state document. */
  snapshot(): Pick<StateDocument, 'concurrency' | 'inflight' | 'queue' | 'admission' | 'classes'> {
    const reserved = this.reservedSlots();
    const classes = Object.fromEntries(
      CLASS_INDICES.map((c) => [
        PRIORITY_CLASSES[c],
        {
          reserved: reserved[c] as number,
          inflight: this.inflightBy[c],
          queued: this.queuedBy[c],
          ...this.classCounters[c],
        },
      ]),
    ) as Record<PriorityClass, ClassState>;
    return {
      concurrency: { mode: this.options.concurrency.mode, limit: this.limiter.limit },
      inflight: this.inflight,
      queue: { depth: this.queued, size: this.queue.size },
      admission: { ...this.totals(), serviceTimeMs: Number(this.serviceTimeMs.toFixed(3)) },
      classes,
    };
  }

  /**
   * CoDel's overload state of a class's queue: it has not been empty for a whole interval, or arrivals of the
   * class were being shed during the last interval (a queue kept short by shedding is still a standing queue).
   * Its waits are then cut to the target. Per class: a standing sheddable queue does not cut critical's waits.
   * Critical's queue stands only by the first rule: it is served first, so it empties unless critical alone
   * asks for more than the limit, and one critical request shed (a burst, a full queue) must not cut every
   * critical wait to the target for an interval, which sheds the next one and keeps it so.
   */
  private overloaded(now: number, cls: ClassIndex): boolean {
    const interval = this.queue.codelIntervalMs;
    return (
      (this.queuedBy[cls] > 0 && now - this.lastEmptyAt[cls] > interval) ||
      (cls !== CRITICAL && now - this.lastShedAt[cls] < interval)
    );
  }

  /** The admission layer: admit, queue or shed, then report the call's latency to the limit. */
  readonly layer: Layer = (next) => {
    return async (request) => {
      const admitted = this.acquire(request);
      const call = admitted instanceof Call ? admitted : await admitted; // admitted at once: no extra microtask turn
      let dropped = false;
      let sampled = true;
      let headAt: number | undefined;
      try {
        const response = await next(request);
        // The breaker layer turns an upstream 5xx (a failing gRPC status) it has streamed to the client back
        // into an answer: for the limit it is still a drop (an overloaded upstream's fast 503s are not low latency).
        if (upstreamFailed(response.status, response.grpcStatus)) dropped = true;
        headAt = response.headAt;
        return response;
      } catch (err) {
        dropped = err instanceof UpstreamStatusError || (err instanceof SidecarError && err.upstreamFailure);
        // A call the open breaker refused never reached the upstream, and an abandoned one was cut short:
        // neither says anything about the upstream's latency (0.1 ms samples would poison the limit).
        sampled = !(err instanceof CircuitOpenError || err instanceof ClientClosedError);
        throw err;
      } finally {
        this.release(call, dropped, sampled, headAt);
      }
    };
  };

  private acquire(request: ProxyRequest): Call | Promise<Call> {
    const now = performance.now();
    const cls = classIndex(request.priority);
    if (request.deadline - now <= this.serviceTimeMs) {
      this.shed(cls, 'deadline');
      throw (SHEDS[cls] as Sheds).deadline;
    }
    // The queue is drained whenever a slot frees, so a request waits beside a free slot only when it yielded
    // it (below); a free slot is taken at once unless a request served before this one waits or is being shed.
    if (this.inflight < this.limiter.limit && (this.queued === 0 || !this.waitingBefore(cls)) && !this.yields(cls, now))
      return this.admit(now, cls);
    return this.enqueue(request, now, cls);
  }

  /** True when a request of class `cls` or of a class served before it waits in the queue. */
  private waitingBefore(cls: ClassIndex): boolean {
    for (const k of CLASS_INDICES)
      if (this.queuedBy[k] > 0 && (k === cls || servedBefore(k, cls, this.inflightBy, this.reservedSlots())))
        return true;
    return false;
  }

  /**
   * A free slot is not idle capacity for class `cls` while a class that would be served before it is being
   * shed (an arrival shed during the last CoDel interval): under sustained overload nobody waits (CoDel sheds
   * what would), so slots go to whoever arrives when one frees, and without this a sheddable arrival took the
   * slot a default or critical request would have had a moment later (a 5 s run at 3x capacity: every class
   * 27-36% success). The request queues instead, and is served by class when the next call finishes; only with
   * a call in flight, so that one will.
   */
  private yields(cls: ClassIndex, now: number): boolean {
    if (cls === CRITICAL || this.inflight === 0) return false;
    const interval = this.queue.codelIntervalMs;
    for (const k of CLASS_INDICES) {
      if (now - this.lastShedAt[k] < interval && servedBefore(k, cls, this.inflightBy, this.reservedSlots()))
        return true;
    }
    return false;
  }

  /** The counters of every class added up (for /state; not kept twice on the request path). */
  private totals(): AdmissionCounters {
    const sum = (k: keyof AdmissionCounters): number => this.classCounters.reduce((n, c) => n + c[k], 0);
    return {
      admitted: sum('admitted'),
      overload: sum('overload'),
      queueTimeout: sum('queueTimeout'),
      deadline: sum('deadline'),
      clientClosedWhileQueued: sum('clientClosedWhileQueued'),
    };
  }

  private shed(cls: ClassIndex, counter: 'overload' | 'queueTimeout' | 'deadline' | 'clientClosedWhileQueued'): void {
    this.classCounters[cls][counter]++;
  }

  private admit(now: number, cls: ClassIndex): Call {
    this.inflight++;
    this.inflightBy[cls]++;
    this.classCounters[cls].admitted++;
    const call = new Call(now, this.inflight, cls);
    if (this.newest === undefined) this.oldest = call;
    else {
      this.newest.next = call;
      call.prev = this.newest;
    }
    this.newest = call;
    return call;
  }

  /**
   * How long a request queued now would wait for a slot: the later of two estimates. It gets one at the
   * (excess + queued + 1)-th completion, where excess is the calls in flight above the limit (after the
   * limit was lowered: an adaptive cut, a reload).
   * - By age: calls finish about one service time after they were admitted, oldest first, so that completion
   *   is due when the matching call of the in-flight list turns one service time old. A request that must
   *   wait for more completions than there are calls in flight has only the rate figure.
   * - By rate: the excess and one more call finish at about in-flight / service time, then the queue ahead
   *   drains at limit / service time. This stands in when the calls are older than the service time (their
   *   end is overdue, so their age says nothing).
   * By rate alone, calls that started together (a burst after an idle spell, a raised limit) promised a slot
   * within milliseconds that freed only a service time later: such requests were queued, then shed when
   * their allowance ran out. Walks at most half the in-flight list, only when a request would queue.
   */
  private expectedWaitMs(now: number, cls: ClassIndex): number {
    const serviceMs = this.serviceTimeMs;
    const limit = this.limiter.limit;
    const excess = Math.max(0, this.inflight - limit);
    const waiting = queuedAhead(cls, this.queuedBy, this.inflightBy, this.reservedSlots());
    const byRate = ((excess + 1) * serviceMs) / Math.max(limit, this.inflight) + (waiting * serviceMs) / limit;
    const ahead = excess + waiting; // completions that must come first
    if (ahead >= this.inflight) return byRate;
    // The matching call, from whichever end of the list is nearer: at most half the calls in flight.
    let call: Call;
    if (2 * ahead < this.inflight) {
      call = this.oldest as Call;
      for (let i = 0; i < ahead; i++) call = call.next as Call;
    } else {
      call = this.newest as Call;
      for (let i = this.inflight - 1; i > ahead; i--) call = call.prev as Call;
    }
    return Math.max(byRate, call.admittedAt + serviceMs - now);
  }

  /**
   * Queues a request of class `cls`, or sheds it at once: when it would outwait what its class is allowed,
   * when its deadline cannot be met, or when the queue is full and holds no request of a lower class (the
   * newest request of the lowest class present gives its place up otherwise).
   */
  private enqueue(request: ProxyRequest, now: number, cls: ClassIndex): Promise<Call> {
    const sheds = SHEDS[cls] as Sheds;
    let victim: ClassIndex | undefined;
    if (this.queued >= this.queue.size) {
      victim = this.lowerClassQueued(cls);
      if (victim === undefined) {
        this.shed(cls, 'overload');
        this.lastShedAt[cls] = now;
        throw sheds.overload;
      }
    }
    if (this.queuedBy[cls] === 0) this.lastEmptyAt[cls] = now;
    const allowed = this.overloaded(now, cls) ? this.queue.codelTargetMs : this.timeoutMs(cls);
    // A request that would outwait what it is allowed is shed now, not after waiting: rejections stay fast.
    const expectedWaitMs = this.expectedWaitMs(now, cls);
    if (expectedWaitMs > allowed) {
      this.shed(cls, 'queueTimeout');
      this.lastShedAt[cls] = now;
      throw sheds.queueTimeout;
    }
    const slack = request.deadline - now - this.serviceTimeMs;
    if (slack < expectedWaitMs) {
      this.shed(cls, 'deadline');
      throw sheds.deadline;
    }
    if (victim !== undefined) {
      this.lastShedAt[victim] = now;
      this.remove(this.tails[victim] as Waiter, (SHEDS[victim] as Sheds).evicted);
    }
    const waiter = new Waiter(this, request, now, cls);
    waiter.timer = setTimeout(
      onWaitExpired,
      Math.min(allowed, slack),
      waiter,
      slack < allowed ? sheds.deadline : sheds.queueTimeout,
    );
    const promise = new Promise<Call>((resolve, reject) => {
      waiter.resolve = resolve;
      waiter.reject = reject;
    });
    const tail = this.tails[cls];
    if (tail === undefined) this.heads[cls] = waiter;
    else {
      tail.next = waiter;
      waiter.prev = tail;
    }
    this.tails[cls] = waiter;
    this.queued++;
    this.queuedBy[cls]++;
    request.cancellation.listen(waiter);
    return promise;
  }

  /**
   * The longest wait of a class while its queue is not standing: `queue.timeout`, and for critical at least
   * `priority.criticalQueueTimeout`. Critical waits for the next call to end, one gap between completions
   * (limit / service time); a queue timeout tuned shorter than that for fast rejections (the lab's 20 ms
   * against 8 slots of 200 ms, a completion every 25 ms) shed a fifth of critical at 3x capacity.
   */
  private timeoutMs(cls: ClassIndex): number {
    const timeout = this.queue.timeoutMs;
    return cls === CRITICAL ? Math.max(timeout, this.options.priority.criticalQueueTimeoutMs) : timeout;
  }

  /** The lowest class below `cls` with a request in the queue. */
  private lowerClassQueued(cls: ClassIndex): ClassIndex | undefined {
    for (let c = CLASS_INDICES.length - 1; c > cls; c--) if ((this.queuedBy[c] as number) > 0) return c as ClassIndex;
    return undefined;
  }

  /** Takes `waiter` out of the queue and rejects it with `err`. No-op when it already left. */
  remove(waiter: Waiter, err: Error): void {
    if (!this.unlink(waiter)) return;
    if (err instanceof QueueTimeoutError) this.shed(waiter.cls, 'queueTimeout');
    else if (err instanceof DeadlineError) this.shed(waiter.cls, 'deadline');
    else if (err instanceof OverloadError) this.shed(waiter.cls, 'overload');
    else this.shed(waiter.cls, 'clientClosedWhileQueued');
    waiter.reject(err);
  }

  private unlink(waiter: Waiter): boolean {
    const cls = waiter.cls;
    if (waiter.prev === undefined && this.heads[cls] !== waiter) return false;
    if (waiter.prev !== undefined) waiter.prev.next = waiter.next;
    else this.heads[cls] = waiter.next;
    if (waiter.next !== undefined) waiter.next.prev = waiter.prev;
    else this.tails[cls] = waiter.prev;
    waiter.prev = waiter.next = undefined;
    this.queued--;
    if (--this.queuedBy[cls] === 0) this.lastEmptyAt[cls] = performance.now();
    if (waiter.timer !== undefined) clearTimeout(waiter.timer);
    waiter.request.cancellation.unlisten(waiter);
    return true;
  }

  /**
   * Frees the call's slot (a stream holds it until it ends). The limit learns the time to the answer's head
   * (`headAt`), not a stream's length; the service time, which says when slots free, the whole call.
   */
  private release(call: Call, dropped: boolean, sampled: boolean, headAt: number | undefined): void {
    this.inflight--;
    this.inflightBy[call.cls]--;
    if (call.prev !== undefined) call.prev.next = call.next;
    else this.oldest = call.next;
    if (call.next !== undefined) call.next.prev = call.prev;
    else this.newest = call.prev;
    if (sampled) {
      const now = performance.now();
      const rttMs = now - call.admittedAt;
      if (!dropped) this.serviceTimeMs = this.serviceTimeMs === 0 ? rttMs : this.serviceTimeMs * 0.9 + rttMs * 0.1;
      this.limiter.onSample((headAt ?? now) - call.admittedAt, call.inflightAtAdmission, dropped);
    }
    this.drainQueue();
  }

  /**
   * Admits queued requests while the limit allows, each slot to the class priority.ts picks, shedding those
   * that waited longer than their class's standing queue allows (CoDel).
   */
  drainQueue(): void {
    while (this.queued > 0 && this.inflight < this.limiter.limit) {
      const cls = nextClass(this.queuedBy, this.inflightBy, this.reservedSlots());
      if (cls === -1) return;
      const now = performance.now();
      const waiter = this.heads[cls] as Waiter;
      if (this.overloaded(now, cls) && now - waiter.enqueuedAt > this.queue.codelTargetMs) {
        this.remove(waiter, (SHEDS[cls] as Sheds).queueTimeout);
        continue;
      }
      if (waiter.request.deadline - now <= this.serviceTimeMs) {
        this.remove(waiter, (SHEDS[cls] as Sheds).deadline);
        continue;
      }
      this.unlink(waiter);
      this.classCounters[cls].admittedFromQueue++;
      waiter.resolve(this.admit(now, cls));
    }
  }

  private watch(limit: ConcurrencyLimit): void {
    limit.onChange((value) => {
      if (limit !== this.limiter) return;
      this.drainQueue();
      for (const listener of this.limitListeners) listener(value);
    });
  }
}
