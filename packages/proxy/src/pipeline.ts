import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import type { Http1Request, Http1Response } from './http1/server.js';
import type { PriorityClass } from './outcomes.js';

/** The client's protocol on the listener: HTTP/1.1, or HTTP/2 over cleartext (prior knowledge). */
export type ClientProtocol = 'http1' | 'h2';

/** A client's request as the listener's server of its protocol parsed it. */
export type ClientRequest = Http1Request | Http2ServerRequest;

/** The answer to a client, on the listener's server of its protocol. */
export type ClientResponse = Http1Response | Http2ServerResponse;

/**
 * The stage that currently owns a request (its queue slot, then its upstream call) and must stop when it is
 * cancelled.
 */
export interface CancelListener {
  handleEvent(): void;
}

/**
 * Cancels one request: what an AbortController does on this path, without an EventTarget per request.
 * A request is owned by one stage at a time (waiting in the queue, then calling the upstream), so there is
 * one listener slot; the stage that takes the request over replaces it.
 */
export class Cancellation {
  /** why the request was cancelled; undefined while it is not */
  reason: Error | undefined = undefined;
  private listener: CancelListener | undefined = undefined;

  /** Cancels once (later calls are ignored) and tells the current listener. */
  cancel(reason: Error): void {
    if (this.reason !== undefined) return;
    this.reason = reason;
    const listener = this.listener;
    this.listener = undefined;
    listener?.handleEvent();
  }

  /** Makes `listener` the stage to tell on cancellation. */
  listen(listener: CancelListener): void {
    this.listener = listener;
  }

  /** Removes `listener` if it is still the current one. */
  unlisten(listener: CancelListener): void {
    if (this.listener === listener) this.listener = undefined;
  }
}

/**
 * One request travelling through the layers. Created once per request by the intake; layers read it and
 * the forwarder streams it. `cancellation` stops whatever the request is doing (client gone, timeout).
 */
export interface ProxyRequest {
  readonly req: ClientRequest;
  readonly res: ClientResponse;
  /** Cancelled with a `ClientClosedError` when the client goes away, or by the forwarder's upstream timeout. */
  readonly cancellation: Cancellation;
  /** Request path and query to send upstream (never the client's absolute-form authority). */
  readonly path: string;
  /** `performance.now()` when the request arrived. */
  readonly arrivedAt: number;
  /** `performance.now()` by which the client wants its answer; `Infinity` without a deadline header. */
  readonly deadline: number;
  /** The priority class: from the priority header, else the path rules, else `default`. */
  readonly priority: PriorityClass;
  /** the client's protocol */
  readonly protocol: ClientProtocol;
  /** a gRPC call (`content-type: application/grpc*`): the sidecar's own answers carry a grpc-status */
  readonly grpc: boolean;
}

/** What a handler reports once the upstream's answer has been streamed to the client. */
export interface ProxyResponse {
  readonly status: number;
  /** a gRPC answer's grpc-status (trailers, or headers of a trailers-only answer) */
  readonly grpcStatus?: number;
  /** `performance.now()` when the answer's head arrived: the latency the limit learns from (not a stream's length) */
  readonly headAt?: number;
}

/** A step of the request path. */
export type Handler = (request: ProxyRequest) => Promise<ProxyResponse>;

/** Wraps a handler with one concern (admission, breaker, ...). */
export type Layer = (next: Handler) => Handler;

/**
 * A part of the request path that takes its options from the settings: the sections it reads, so the
 * whole settings object fits and a reload is one loop over the parts.
 */
export interface Reconfigurable<Options> {
  /** Applies reloaded options; a part whose sections did not change keeps its state. */
  reconfigure(options: Options): void;
  /** Stops timers and closes connections at shutdown. */
  close(): Promise<void>;
}

/**
 * Composes layers outermost first: `compose(a, b)(h)` runs `a`, then `b`, then `h`.
 * @throws TypeError when a layer is not a function
 */
export function compose(...layers: Layer[]): Layer {
  for (const [i, layer] of layers.entries()) {
    if (typeof layer !== 'function') throw new TypeError(`compose: layer ${i} is not a function`);
  }
  return (handler: Handler): Handler => {
    let h = handler;
    for (let i = layers.length - 1; i >= 0; i--) h = (layers[i] as Layer)(h);
    return h;
  };
}
