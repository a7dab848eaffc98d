import { ApiError, ERRORS, errorBody } from '../src/errors.js';

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
      METHOD_NOT_ALLOWED: 405,
      NOT_READY: 503,
      INFERENCE_FAILED: 500,
      INTERNAL: 500,
      CONFIG_INVALID: 0,
      MODEL_NOT_FOUND: 0,
      MODEL_INVALID: 0,
      MODEL_UNSUPPORTED: 0,
      LABELS_INVALID: 0,
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
