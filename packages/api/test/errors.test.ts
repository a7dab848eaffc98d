import { ApiError, ERRORS, errorBody, v2ErrorBody } from '../src/errors.js';

describe('error registry', () => {
  it('pins every code to its HTTP status', () => {
    const statuses = Object.fromEntries(Object.entries(ERRORS).map(([code, e]) => [code, e.status]));
    expect(statuses).toEqual({
      INVALID_JSON: 400,
      INVALID_BODY: 400,
      INVALID_DATA: 400,
      EMPTY_BATCH: 400,
      WRONG_FEATURE_COUNT: 400,
      NON_FINITE_VALUE: 400,
      TOO_MANY_ROWS: 413,
      BODY_TOO_LARGE: 413,
      UNSUPPORTED_MEDIA_TYPE: 415,
      NOT_FOUND: 404,
      UNKNOWN_MODEL: 404,
      INVALID_TENSOR: 400,
      METHOD_NOT_ALLOWED: 405,
      NOT_READY: 503,
      INFERENCE_FAILED: 500,
      INTERNAL: 500,
      CONFIG_INVALID: 0,
      MODEL_NOT_FOUND: 0,
      MODEL_INVALID: 0,
      MODEL_UNSUPPORTED: 0,
      LABELS_INVALID: 0,
      GRPC_PORT_UNAVAILABLE: 0,
    });
  });

  it('pins every answerable code to its gRPC status (startup codes answer no call)', () => {
    const grpc = Object.fromEntries(
      Object.entries(ERRORS)
        .filter(([, e]) => e.status > 0)
        .map(([code]) => [code, new ApiError(code as keyof typeof ERRORS).grpc]),
    );
    expect(grpc).toEqual({
      INVALID_JSON: 'INVALID_ARGUMENT',
      INVALID_BODY: 'INVALID_ARGUMENT',
      INVALID_DATA: 'INVALID_ARGUMENT',
      EMPTY_BATCH: 'INVALID_ARGUMENT',
      WRONG_FEATURE_COUNT: 'INVALID_ARGUMENT',
      NON_FINITE_VALUE: 'INVALID_ARGUMENT',
      TOO_MANY_ROWS: 'RESOURCE_EXHAUSTED',
      BODY_TOO_LARGE: 'RESOURCE_EXHAUSTED',
      UNSUPPORTED_MEDIA_TYPE: 'INVALID_ARGUMENT',
      NOT_FOUND: 'NOT_FOUND',
      UNKNOWN_MODEL: 'NOT_FOUND',
      INVALID_TENSOR: 'INVALID_ARGUMENT',
      METHOD_NOT_ALLOWED: 'UNIMPLEMENTED',
      NOT_READY: 'UNAVAILABLE',
      INFERENCE_FAILED: 'INTERNAL',
      INTERNAL: 'INTERNAL',
    });
  });

  it('gives a /v2 error the protocol\'s {"error": "<message>"} with our code beside it', () => {
    expect(v2ErrorBody(new ApiError('UNKNOWN_MODEL', 'model "x" is not served'))).toEqual({
      error: 'model "x" is not served',
      code: 'UNKNOWN_MODEL',
    });
  });

  it('gives an ApiError the status of its code and a {"error":{"code","message"}} body', () => {
    const err = new ApiError('TOO_MANY_ROWS', '"data" has 2000 rows');
    expect(err.status).toBe(413);
    expect(errorBody(err)).toEqual({ error: { code: 'TOO_MANY_ROWS', message: '"data" has 2000 rows' } });
  });

  it('defaults the message to the registry summary', () => {
    expect(new ApiError('NOT_FOUND').message).toBe(ERRORS.NOT_FOUND.summary);
  });
});
