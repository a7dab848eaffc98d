import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * One request travelling through the layers. Created once per request by the server; layers read it and
 * the forwarder streams it. `controller` aborts everything the request started (client gone, timeout).
 */
export interface ProxyRequest {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  /** Aborted with a `ClientClosedError` when the client goes away, or by the forwarder's upstream timeout. */
  readonly controller: AbortController;
  /** Request path and query to send upstream (never the client's absolute-form authority). */
  readonly path: string;
  /** `performance.now()` when the request arrived. */
  readonly arrivedAt: number;
  /** `performance.now()` by which the client wants its answer; `Infinity` without a deadline header. */
  readonly deadline: number;
  /** Requests in flight to the upstream when this one was admitted (itself included); set by admission. */
  inflightAtAdmission: number;
}

/** What a handler reports once the upstream's answer has been streamed to the client. */
export interface ProxyResponse {
  readonly status: number;
}

/** A step of the request path. */
export type Handler = (request: ProxyRequest) => Promise<ProxyResponse>;

/** Wraps a handler with one concern (admission, breaker, ...). */
export type Layer = (next: Handler) => Handler;

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
