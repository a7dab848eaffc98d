import { DEFAULTS, ENV, LOG_FORMATS, LOG_LEVELS } from './config.js';

/** What `iris-api --help` prints: the environment variables the API reads (docs/api.md "Environment"). */
export const USAGE = `Usage: iris-api [--help]

Serves an ONNX classifier over HTTP (the iris model by default). It takes no flags: it is configured by
these environment variables, each validated at startup (all problems listed, exit 2):

  ${ENV.port.padEnd(20)} TCP port, 0 = any free port (default ${DEFAULTS.port})
  ${ENV.host.padEnd(20)} listen address (default ${DEFAULTS.host})
  ${ENV.modelFilepath.padEnd(20)} ONNX classifier to serve (default: the shipped iris_svc.onnx)
  ${ENV.labelFilepath.padEnd(20)} JSON {"<class label>": "<name>"} (default: the shipped label.json)
  ${ENV.workers.padEnd(20)} node:cluster worker processes, 1-64 (default ${DEFAULTS.workers})
  ${ENV.logLevel.padEnd(20)} ${LOG_LEVELS.join(', ')} (default ${DEFAULTS.logLevel})
  ${ENV.logFormat.padEnd(20)} ${LOG_FORMATS.join(' or ')} (default ${DEFAULTS.logFormat})
  ${ENV.maxBatchRows.padEnd(20)} most rows per request (default ${DEFAULTS.maxBatchRows})
  ${ENV.bodyLimitBytes.padEnd(20)} largest request body in bytes (default ${DEFAULTS.bodyLimitBytes})
  ${ENV.shutdownTimeoutMs.padEnd(20)} how long SIGTERM/SIGINT waits for requests in flight, ms (default ${DEFAULTS.shutdownTimeoutMs})
  ${ENV.inferenceConcurrency.padEnd(20)} most inferences at once, the rest wait in order; 0 = no limit (default ${DEFAULTS.inferenceConcurrency})
  ${ENV.inferenceMinMs.padEnd(20)} each inference holds its slot at least this long, ms: serve like a heavier model (default ${DEFAULTS.inferenceMinMs})
  ${ENV.modelName.padEnd(20)} the model's name in the Open Inference Protocol v2, /v2/models/{name} (default ${DEFAULTS.modelName})
  ${ENV.grpcPort.padEnd(20)} also serve the v2 gRPC service (inference.GRPCInferenceService) on this port, 0 = any free port (default: off)

Example: PORT=8000 HOST=127.0.0.1 iris-api
Endpoints, metrics and exit codes: docs/api.md
`;

/** What the command line asks for: the usage, nothing (serve), or an error line for stderr. */
export function parseCommandLine(args: readonly string[]): { help: true } | { help: false; error?: string } {
  if (args.some((a) => a === '--help' || a === '-h')) return { help: true };
  const first = args[0];
  if (first === undefined) return { help: false };
  const what = first.startsWith('-') ? 'unknown flag' : 'unexpected argument';
  return {
    help: false,
    error: `iris-api: ${what} ${JSON.stringify(first)}: it takes no flags, only environment variables (see iris-api --help)`,
  };
}
