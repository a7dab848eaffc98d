/** The gRPC status names an error can map to (grpc-js's `status` enum has them all). */
type GrpcStatusName =
  'INVALID_ARGUMENT' | 'NOT_FOUND' | 'RESOURCE_EXHAUSTED' | 'UNIMPLEMENTED' | 'UNAVAILABLE' | 'INTERNAL';

/** The gRPC status of an HTTP status, as the registry's codes use them; anything else is INTERNAL. */
const GRPC_BY_STATUS: Readonly<Record<number, GrpcStatusName>> = {
  400: 'INVALID_ARGUMENT',
  404: 'NOT_FOUND',
  405: 'UNIMPLEMENTED',
  413: 'RESOURCE_EXHAUSTED',
  415: 'INVALID_ARGUMENT',
  503: 'UNAVAILABLE',
};

/**
 * The API's error registry: every error it answers or exits with has one stable code here, and
 * this is the only place that ties a code to an HTTP status (and through it to a gRPC status).
 * Pinned by test/errors.test.ts.
 */
export const ERRORS = {
  // Client input: 4xx, never 5xx.
  INVALID_JSON: { status: 400, summary: 'the body is not valid JSON' },
  INVALID_BODY: { status: 400, summary: 'the body is not an object with a "data" field' },
  INVALID_DATA: { status: 400, summary: '"data" is not a list of rows of numbers' },
  EMPTY_BATCH: { status: 400, summary: '"data" has no rows' },
  WRONG_FEATURE_COUNT: { status: 400, summary: 'a row does not have the number of features the model takes' },
  NON_FINITE_VALUE: { status: 400, summary: 'a value is not a finite number the model can take' },
  TOO_MANY_ROWS: { status: 413, summary: 'the batch has more rows than MAX_BATCH_ROWS' },
  BODY_TOO_LARGE: { status: 413, summary: 'the body is larger than BODY_LIMIT_BYTES' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, summary: 'the body is not application/json (UTF-8)' },
  NOT_FOUND: { status: 404, summary: 'no such route' },
  UNKNOWN_MODEL: { status: 404, summary: 'the v2 request names a model this server does not serve' },
  INVALID_TENSOR: {
    status: 400,
    summary: 'a v2 input tensor has the wrong datatype, shape or contents, or asks for an unknown output',
  },
  METHOD_NOT_ALLOWED: { status: 405, summary: 'the route exists but not for this method' },
  // Service state.
  NOT_READY: { status: 503, summary: 'the model is not loaded and warmed yet, or the server is draining' },
  INFERENCE_FAILED: { status: 500, summary: 'onnxruntime failed to run the model' },
  INTERNAL: { status: 500, summary: 'an unexpected server error' },
  // Startup (process exits; no HTTP answer).
  CONFIG_INVALID: { status: 0, summary: 'the environment holds invalid settings' },
  MODEL_NOT_FOUND: { status: 0, summary: 'no model file at MODEL_FILEPATH nor a shipped model' },
  MODEL_INVALID: { status: 0, summary: 'the model file is not an ONNX model onnxruntime can load' },
  MODEL_UNSUPPORTED: { status: 0, summary: 'the model is not a classifier this API can serve' },
  LABELS_INVALID: { status: 0, summary: 'the label file is not a JSON object of class -> name' },
  GRPC_PORT_UNAVAILABLE: { status: 0, summary: 'the gRPC server cannot listen on GRPC_PORT (taken, or not allowed)' },
} as const satisfies Record<string, { status: number; summary: string }>;

/** A stable error code from {@link ERRORS}. */
export type ErrorCode = keyof typeof ERRORS;

/** An error with a stable code; its HTTP status comes from the registry. */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  /** HTTP status of this code (0 for startup-only errors). */
  readonly status: number;
  /** gRPC status of this code (INTERNAL for startup-only errors, which no call answers). */
  readonly grpc: GrpcStatusName;

  /** @param code registry code  @param message what exactly was wrong, naming the field or file */
  constructor(
    readonly code: ErrorCode,
    message: string = ERRORS[code].summary,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.status = ERRORS[code].status;
    this.grpc = GRPC_BY_STATUS[this.status] ?? 'INTERNAL';
  }
}

/** The JSON body of every error answer: `{"error":{"code","message"}}`. */
export interface ErrorBody {
  error: { code: ErrorCode; message: string };
}

/** Builds the error body for an {@link ApiError}. */
export function errorBody(err: ApiError): ErrorBody {
  return { error: { code: err.code, message: err.message } };
}

/**
 * The error body under /v2 (the Open Inference Protocol): the protocol's `{"error": "<message>"}`, which v2
 * clients (tritonclient, KServe's, MLServer's) read as a string, with our stable code beside it.
 */
export interface V2ErrorBody {
  error: string;
  code: ErrorCode;
}

/** Builds the /v2 error body for an {@link ApiError}. */
export function v2ErrorBody(err: ApiError): V2ErrorBody {
  return { error: err.message, code: err.code };
}
