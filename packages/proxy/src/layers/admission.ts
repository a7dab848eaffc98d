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
import type { StateDocument } from '../outcomes.js';
import type { Layer, ProxyRequest, Reconfigurable } from '../pipeline.js';

/** What the admission layer reads from the settings: the concurrency limit and the queue. */
export type AdmissionOptions = Pick<Settings, 'concurrency' | 'queue'>;

/** Queue knobs. Durations in milliseconds. */
export type QueueOptions = Settings['queue'];

// Rejections carry no per-request data: one instance each keeps shedding allocation-free.
const OVERLOAD = new OverloadError('concurrency limit and queue are full');
const QUEUE_TIMEOUT = new QueueTimeoutError('waited in the queue longer than allowed');
const DEADLINE = new DeadlineError('the client deadline has passed or cannot be met');

/** A call admitted to the upstream and not finished: a node of the in-flight list, oldest first. */
class Call {
  prev: Call | undefined;
  next: Call | undefined;
  constructor(
    readonly admittedAt: number,
    /** calls in flight when this one was admitted (itself included), for the limit */
    readonly inflightAtAdmission: number,
  ) {}
}

/** One queued request: a node of the FIFO list and the abort listener of its client. */
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
 * Admission control (bulkhead): at most `limit` requests in flight to the upstream, then a bounded FIFO
 * queue with a controlled-delay timeout and client deadlines; both full → immediate `OverloadError`.
 */
export class Admission implements Reconfigurable<AdmissionOptions> {
  /** requests admitted and not finished */
  inflight = 0;
  /** requests waiting in the queue */
  queued = 0;
  /** counters since start, for /state */
  readonly counters = { admitted: 0, overload: 0, queueTimeout: 0, deadline: 0, clientClosedWhileQueued: 0 };
  /** EWMA of upstream latency (ms): a deadline shorter than this "cannot be met" */
  serviceTimeMs = 0;
  private head: Waiter | undefined;
  private tail: Waiter | undefined;
  private oldest: Call | undefined;
  private newest: Call | undefined;
  private lastEmptyAt = performance.now();
  /** last time an arrival was shed (queue full, or its expected wait above what it is allowed) */
  private lastShedAt = -Infinity;
  private limiter: ConcurrencyLimit;
  private options: AdmissionOptions;
  private readonly limitListeners: ((limit: number) => void)[] = [];
  private queue: QueueOptions;

  constructor(options: AdmissionOptions) {
    this.options = options;
    this.queue = options.queue;
    this.limiter = createLimit(options.concurrency);
    this.watch(this.limiter);
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
  snapshot(): Pick<StateDocument, 'concurrency' | 'inflight' | 'queue' | 'admission'> {
    return {
      concurrency: { mode: this.options.concurrency.mode, limit: this.limiter.limit },
      inflight: this.inflight,
      queue: { depth: this.queued, size: this.queue.size },
      admission: { ...this.counters, serviceTimeMs: Number(this.serviceTimeMs.toFixed(3)) },
    };
  }

  /**
   * CoDel's overload state: the queue has not been empty for a whole interval, or arrivals were being shed
   * during the last interval (a queue kept short by shedding is still a standing queue). Waits are then
   * cut to the target.
   */
  overloaded(now: number): boolean {
    const interval = this.queue.codelIntervalMs;
    return (this.queued > 0 && now - this.lastEmptyAt > interval) || now - this.lastShedAt < interval;
  }

  /** The admission layer: admit, queue or shed, then report the call's latency to the limit. */
  readonly layer: Layer = (next) => {
    return async (request) => {
      const admitted = this.acquire(request);
      const call = admitted instanceof Call ? admitted : await admitted; // admitted at once: no extra microtask turn
      let dropped = false;
      let sampled = true;
      try {
        const response = await next(request);
        // The breaker layer turns an upstream 5xx it has streamed to the client back into an answer:
        // for the limit it is still a drop (an overloaded upstream's fast 503s are not low latency).
        if (response.status >= 500) dropped = true;
        return response;
      } catch (err) {
        dropped = err instanceof UpstreamStatusError || (err instanceof SidecarError && err.upstreamFailure);
        // A call the open breaker refused never reached the upstream, and an abandoned one was cut short:
        // neither says anything about the upstream's latency (0.1 ms samples would poison the limit).
        sampled = !(err instanceof CircuitOpenError || err instanceof ClientClosedError);
        throw err;
      } finally {
        this.release(call, dropped, sampled);
      }
    };
  };

  private acquire(request: ProxyRequest): Call | Promise<Call> {
    const now = performance.now();
    if (request.deadline - now <= this.serviceTimeMs) {
      this.counters.deadline++;
      throw DEADLINE;
    }
    if (this.inflight < this.limiter.limit && this.queued === 0) return this.admit(now);
    if (this.queued >= this.queue.size) {
      this.counters.overload++;
      this.lastShedAt = now;
      throw OVERLOAD;
    }
    return this.enqueue(request, now);
  }

  private admit(now: number): Call {
    this.inflight++;
    this.counters.admitted++;
    const call = new Call(now, this.inflight);
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
  private expectedWaitMs(now: number): number {
    const serviceMs = this.serviceTimeMs;
    const limit = this.limiter.limit;
    const excess = Math.max(0, this.inflight - limit);
    const byRate = ((excess + 1) * serviceMs) / Math.max(limit, this.inflight) + (this.queued * serviceMs) / limit;
    const ahead = excess + this.queued; // completions that must come first
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

  private enqueue(request: ProxyRequest, now: number): Promise<Call> {
    if (this.queued === 0) this.lastEmptyAt = now;
    const allowed = this.overloaded(now) ? this.queue.codelTargetMs : this.queue.timeoutMs;
    // A request that would outwait what it is allowed is shed now, not after waiting: rejections stay fast.
    const expectedWaitMs = this.expectedWaitMs(now);
    if (expectedWaitMs > allowed) {
      this.counters.queueTimeout++;
      this.lastShedAt = now;
      throw QUEUE_TIMEOUT;
    }
    const slack = request.deadline - now - this.serviceTimeMs;
    if (slack < expectedWaitMs) {
      this.counters.deadline++;
      throw DEADLINE;
    }
    const waiter = new Waiter(this, request, now);
    waiter.timer = setTimeout(
      onWaitExpired,
      Math.min(allowed, slack),
      waiter,
      slack < allowed ? DEADLINE : QUEUE_TIMEOUT,
    );
    const promise = new Promise<Call>((resolve, reject) => {
      waiter.resolve = resolve;
      waiter.reject = reject;
    });
    if (this.tail === undefined) this.head = waiter;
    else {
      this.tail.next = waiter;
      waiter.prev = this.tail;
    }
    this.tail = waiter;
    this.queued++;
    request.cancellation.listen(waiter);
    return promise;
  }

  /** Takes `waiter` out of the queue and rejects it with `err`. No-op when it already left. */
  remove(waiter: Waiter, err: Error): void {
    if (!this.unlink(waiter)) return;
    if (err === QUEUE_TIMEOUT) this.counters.queueTimeout++;
    else if (err === DEADLINE) this.counters.deadline++;
    else this.counters.clientClosedWhileQueued++;
    waiter.reject(err);
  }

  private unlink(waiter: Waiter): boolean {
    if (waiter.prev === undefined && this.head !== waiter) return false;
    if (waiter.prev !== undefined) waiter.prev.next = waiter.next;
    else this.head = waiter.next;
    if (waiter.next !== undefined) waiter.next.prev = waiter.prev;
    else this.tail = waiter.prev;
    waiter.prev = waiter.next = undefined;
    this.queued--;
    if (this.queued === 0) this.lastEmptyAt = performance.now();
    if (waiter.timer !== undefined) clearTimeout(waiter.timer);
    waiter.request.cancellation.unlisten(waiter);
    return true;
  }

  private release(call: Call, dropped: boolean, sampled: boolean): void {
    this.inflight--;
    if (call.prev !== undefined) call.prev.next = call.next;
    else this.oldest = call.next;
    if (call.next !== undefined) call.next.prev = call.prev;
    else this.newest = call.prev;
    if (sampled) {
      const rttMs = performance.now() - call.admittedAt;
      if (!dropped) this.serviceTimeMs = this.serviceTimeMs === 0 ? rttMs : this.serviceTimeMs * 0.9 + rttMs * 0.1;
      this.limiter.onSample(rttMs, call.inflightAtAdmission, dropped);
    }
    this.drainQueue();
  }

  /** Admits queued requests while the limit allows, shedding those that waited too long (CoDel). */
  drainQueue(): void {
    while (this.head !== undefined && this.inflight < this.limiter.limit) {
      const now = performance.now();
      const waiter = this.head;
      const overloaded = this.overloaded(now);
      if (overloaded && now - waiter.enqueuedAt > this.queue.codelTargetMs) {
        this.remove(waiter, QUEUE_TIMEOUT);
        continue;
      }
      if (waiter.request.deadline - now <= this.serviceTimeMs) {
        this.remove(waiter, DEADLINE);
        continue;
      }
      this.unlink(waiter);
      waiter.resolve(this.admit(now));
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
