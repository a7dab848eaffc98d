// The public surface of @infer-cb/proxy.
export { Sidecar, type SidecarOptions, upstreamPath, LISTENER } from './server.js';
export { loadConfig, loadSettings, parseSettings, DEFAULTS, ENV, type Config, type Settings } from './config.js';
export { Admission, type QueueOptions } from './admission.js';
export { Breaker, type BreakerOptions, type BreakerState } from './breaker.js';
export { forwarder, createPool, type ForwarderOptions, type PoolOptions } from './forwarder.js';
export { compose, type Handler, type Layer, type ProxyRequest, type ProxyResponse } from './pipeline.js';
export { fail, STATUS_BY_REASON, type Outcome } from './respond.js';
export { SidecarMetrics } from './metrics.js';
export * from './errors.js';
export { StaticLimit, type ConcurrencyLimit } from './limit/limit.js';
export { SIDECAR_NODE_OPTIONS } from './runtime.js';
