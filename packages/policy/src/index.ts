// The public surface of @infer-cb/policy: one mesh policy in, the Envoy bootstraps Istio would push and the
// cb-sidecar config per replica out (docs/istio-arm.md).
export {
  readMeshPolicy,
  parseMeshPolicy,
  type MeshPolicy,
  type TrafficPolicy,
  type ConnectionPoolSettings,
  type OutlierDetection,
  type HttpRetry,
  type SimpleLb,
} from './policy.js';
export { callerBootstrap, type CallerOptions } from './caller.js';
export { inboundBootstrap, type InboundOptions } from './inbound.js';
export {
  envoyArgs,
  httpListener,
  loadAssignment,
  ACCESS_LOG_FORMAT,
  type EnvoyBootstrap,
  type EnvoyRunOptions,
  type EnvoyOptions,
  type Address,
  type AccessLog,
} from './envoy.js';
export {
  sidecarConfig,
  deriveSidecarLimits,
  explainAsComments,
  DEFAULT_HANDOFF_MS,
  type SidecarConfigOptions,
  type SidecarConfigDocument,
  type SidecarDerivation,
  type ModelCapacity,
  type ExplicitNumbers,
} from './sidecar-config.js';
export { withSheddingPods } from './shedding-pods.js';
export { PROFILES, PROFILE_FACTS, type Profile, type ProfileFacts } from './profiles.js';
export { PolicyError, POLICY_ERROR_CODES, type PolicyErrorCode } from './errors.js';
export { runCli, USAGE, type CliResult } from './cli.js';
