import type { Response } from 'express';
import { ApiError, errorBody, v2ErrorBody, type ErrorCode } from './errors.js';

/** The errors body-parser raises carry a `type`; each maps to one of our stable codes. */
const BODY_PARSER_CODES: Readonly<Record<string, ErrorCode>> = {
  'entity.parse.failed': 'INVALID_JSON',
  'entity.too.large': 'BODY_TOO_LARGE',
  'encoding.unsupported': 'UNSUPPORTED_MEDIA_TYPE',
  'charset.unsupported': 'UNSUPPORTED_MEDIA_TYPE',
  'request.aborted': 'INVALID_BODY',
  'request.size.invalid': 'INVALID_BODY',
};

interface HttpErrorLike {
  type?: unknown;
  status?: unknown;
  limit?: unknown;
  message?: unknown;
}

function describe(code: ErrorCode, err: HttpErrorLike): string {
  const detail = String(err.message ?? '');
  switch (code) {
    case 'INVALID_JSON':
      return `the body is not valid JSON: ${detail}`;
    case 'BODY_TOO_LARGE':
      return `the body is larger than the limit of ${String(err.limit)} bytes`;
    case 'UNSUPPORTED_MEDIA_TYPE':
      return `unsupported body encoding: ${detail}`;
    default:
      return detail;
  }
}

/** Turns anything thrown while handling a request into an {@link ApiError}: the one place that decides a status. */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  const http = (typeof err === 'object' && err !== null ? err : {}) as HttpErrorLike;
  const code = typeof http.type === 'string' ? BODY_PARSER_CODES[http.type] : undefined;
  if (code) return new ApiError(code, describe(code, http), { cause: err });
  if (typeof http.status === 'number' && http.status >= 400 && http.status < 500) {
    return new ApiError('INVALID_BODY', String(http.message ?? 'bad request'), { cause: err });
  }
  return new ApiError('INTERNAL', 'internal error', { cause: err });
}

/** True for the Open Inference Protocol's paths, whose errors take the protocol's shape. */
function isV2Path(path: string): boolean {
  return path === '/v2' || path.startsWith('/v2/');
}

/**
 * Sends the error with the code's status: `{"error":{"code","message"}}`, or under /v2 the protocol's
 * `{"error":"<message>","code"}`. The one place that decides an error answer's shape.
 */
export function sendError(res: Response, err: ApiError): void {
  res.status(err.status).json(isV2Path(res.req.path) ? v2ErrorBody(err) : errorBody(err));
}
