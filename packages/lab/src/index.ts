// The public surface of @infer-cb/lab: the supervisor and the Service (HAProxy) config (reused by the
// end-to-end suite), the drivers and the lab runner.
export { Supervisor, Child, freePort, freePorts, waitForReady, type SpawnSpec, type ExitStatus } from './processes.js';
export {
  haproxyConfig,
  parseServiceStats,
  SERVICE_STATS_PATH,
  type ServiceStats,
  type BackendStats,
} from './service.js';
export { BuiltinDriver } from './drivers/builtin.js';
export { VegetaDriver } from './drivers/vegeta.js';
export { K6Driver } from './drivers/k6.js';
export type { AttackSpec, Driver } from './drivers/driver.js';
export { ResultRecorder, type LatencySummary } from './results.js';
export { runLab, type LabOptions, type LabSummary } from './lab.js';
export { parseLabArgs, type LabFlags } from './args.js';
export { LabError, LAB_ERROR_CODES, type LabErrorCode } from './errors.js';
export { startTopology, stopTopology, ARM_NAMES, type ArmName, type Topology } from './topology.js';
export { CpuQuota, type CpuQuotaOptions } from './cpu-quota.js';
export { probeCapacity, type CapacityProbe } from './probe.js';
export {
  MODEL_SERVERS,
  PROTOCOLS,
  OIP_MODEL,
  labRequest,
  mlserverPaths,
  writeMlserverRepository,
  type ModelServer,
  type Protocol,
  type LabRequest,
} from './model-server.js';
