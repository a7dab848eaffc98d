// The public surface of @infer-cb/proxy.
export { Sidecar, type SidecarOptions, LISTENER } from './server.js';
export { upstreamPath } from './intake.js';
export {
  loadConfig,
  loadSettings,
  parseSettings,
  DEFAULTS,
  ENV,
  USAGE,
  PROCESS_OPTIONS,
  LOG_LEVELS,
  SETTINGS,
  type Config,
  type Settings,
  type LogLevel,
} from './config.js';
export { compose, type Handler, type Layer, type ProxyRequest, type ProxyResponse } from './pipeline.js';
export { Admission, type AdmissionOptions, type QueueOptions } from './layers/admission.js';
export { Breaker, type BreakerOptions } from './layers/breaker.js';
export {
  Forwarder,
  forwarder,
  createPool,
  loadUndici,
  type ForwarderOptions,
  type PoolOptions,
} from './layers/forwarder.js';
export { StaticLimit, createLimit, type ConcurrencyLimit } from './limit/limit.js';
export { AdaptiveLimit, type AdaptiveLimitOptions } from './limit/adaptive-limit.js';
export * from './outcomes.js';
export * from './errors.js';
export { Responder, CLIENT_CLOSED_STATUS } from './respond.js';
export { SidecarMetrics, type RequestOutcome, type AdminEndpoint } from './metrics.js';
export { SIDECAR_NODE_OPTIONS } from './heap-flags.js';
export { durationToMs } from '@infer-cb/common';
