import { gcsHost, GCS_HOST, HttpClient, parseRetryAfterMs, resolveSource, statusError } from '../src/index.js';

describe('gcsHost', () => {
  it('uses storage.googleapis.com unless STORAGE_EMULATOR_HOST is set', () => {
    expect(gcsHost({})).toBe(GCS_HOST);
    expect(gcsHost({ STORAGE_EMULATOR_HOST: '' })).toBe(GCS_HOST);
  });

  it('accepts the emulator host with or without a scheme', () => {
    expect(gcsHost({ STORAGE_EMULATOR_HOST: 'localhost:4443' })).toBe('http://localhost:4443');
    expect(gcsHost({ STORAGE_EMULATOR_HOST: 'https://gcs.test:4443/' })).toBe('https://gcs.test:4443');
  });
});

describe('resolveSource', () => {
  const http = new HttpClient();

  it('maps gs://bucket/object to the JSON API media URL with the object name encoded', () => {
    const source = resolveSource(new URL('gs://ml_system_model_repository/iris/iris svc.onnx'), { http, env: {} });
    expect(source.label).toBe(
      'gs://ml_system_model_repository/iris/iris svc.onnx (GET https://storage.googleapis.com/storage/v1/b/ml_system_model_repository/o/iris%2Firis%20svc.onnx?alt=media)',
    );
  });

  it('names http sources by their request', () => {
    expect(resolveSource(new URL('http://models.test/a.onnx'), { http, env: {} }).label).toBe(
      'GET http://models.test/a.onnx',
    );
  });
});

describe('statusError', () => {
  it('retries 5xx and 429 and carries Retry-After', () => {
    expect(statusError('GET x', 503, '2')).toMatchObject({
      code: 'LOADER_SOURCE_UNAVAILABLE',
      retryable: true,
      retryAfterMs: 2000,
    });
    expect(statusError('GET x', 429, undefined)).toMatchObject({
      code: 'LOADER_SOURCE_UNAVAILABLE',
      retryAfterMs: undefined,
    });
  });

  it('never retries 4xx other than 429', () => {
    expect(statusError('GET x', 404, undefined)).toMatchObject({ code: 'LOADER_SOURCE_NOT_FOUND', retryable: false });
    expect(statusError('GET x', 410, undefined)).toMatchObject({ code: 'LOADER_SOURCE_NOT_FOUND', retryable: false });
    for (const status of [400, 401, 403, 408]) {
      expect(statusError('GET x', status, '1')).toMatchObject({ code: 'LOADER_SOURCE_REJECTED', retryable: false });
    }
  });
});

describe('parseRetryAfterMs', () => {
  const now = Date.parse('2026-01-01T00:00:00Z');

  it('reads delay-seconds and HTTP-dates', () => {
    expect(parseRetryAfterMs('120', now)).toBe(120_000);
    expect(parseRetryAfterMs('Thu, 01 Jan 2026 00:00:05 GMT', now)).toBe(5000);
    expect(parseRetryAfterMs('Wed, 31 Dec 2025 23:00:00 GMT', now)).toBe(0);
  });

  it('ignores absent and malformed values', () => {
    expect(parseRetryAfterMs(undefined, now)).toBeUndefined();
    expect(parseRetryAfterMs('soon', now)).toBeUndefined();
    expect(parseRetryAfterMs('-1', now)).toBeUndefined();
  });
});
