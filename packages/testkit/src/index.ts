// The public surface of @infer-cb/testkit, the one test kit of the repository: the proxy's tests, the
// end-to-end tests and the benches all use it, and none of them reaches into another package's insides.
export {
  TestUpstream,
  startUpstream,
  slow,
  PREDICTION,
  type FaultMode,
  type UpstreamHandler,
  type UpstreamOptions,
  type UpstreamStats,
} from './upstream.js';
export {
  startProcess,
  stopAll,
  killAll,
  runToExit,
  TestProcess,
  type ProcessSpec,
  type ExitStatus,
  type Line,
} from './processes.js';
export {
  startSidecar,
  runSidecarCli,
  startApi,
  startUpstreamProcess,
  writeConfig,
  findExecutable,
  SIDECAR_BIN,
  API_BIN,
  UPSTREAM_BIN,
  type SidecarSpec,
  type SidecarProcess,
  type ApiProcess,
  type ApiSpec,
  type UpstreamProcess,
} from './programs.js';
export { onFreePort, candidatePort, isAddressInUse } from './ports.js';
export { eventually, sleep } from './wait.js';
export { percentile, median } from './stats.js';
export {
  raw,
  rawInTurns,
  RawConnection,
  idleConnections,
  Attacker,
  burst,
  type RawAnswer,
  type BurstAnswer,
} from './raw.js';
export { openLoop, summarize, warmUp, SEED_BODY, type Shot, type LoadOptions, type LoadResult } from './load.js';
export {
  vegetaAttack,
  scratch,
  machineLoad,
  buildSidecarAt,
  REPO_ROOT,
  type VegetaRecord,
  type VegetaAttack,
  type VegetaTarget,
} from './bench.js';
export { tokensClient, grpc, type GrpcMethods } from './grpc.js';
export {
  h2Raw,
  h2Frame,
  settingsFrame,
  headerBlock,
  H2_PREFACE,
  H2_ERROR,
  FRAME,
  FLAG,
  type H2RawAnswer,
  type ServerFrame,
} from './h2-frames.js';
export { startEnvoy, envoyBinary, validateBootstrap, stat, type TestEnvoy } from './envoy.js';
export {
  oipClient,
  oipServiceClient,
  oipProtoFields,
  startMlserver,
  modelInferRequest,
  v2RestBody,
  OIP_PROTO,
  MLSERVER_DIR,
  VENV_PYTHON,
  IRIS_ROW,
  type OipClient,
  type OipAnswer,
  type MlserverProcess,
  type MlserverSpec,
} from './oip.js';
