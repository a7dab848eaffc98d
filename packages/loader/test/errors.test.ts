import { ERRORS, LoaderError, toLoaderError } from '../src/index.js';

describe('error registry', () => {
  it('pins every code to its exit code and retry class', () => {
    const table = Object.fromEntries(
      Object.entries(ERRORS).map(([code, spec]) => [code, [spec.exitCode, spec.retryable]]),
    );
    expect(table).toEqual({
      LOADER_USAGE: [2, false],
      LOADER_SOURCE_NOT_FOUND: [3, false],
      LOADER_SOURCE_REJECTED: [4, false],
      LOADER_SOURCE_UNAVAILABLE: [5, true],
      LOADER_TIMEOUT: [6, true],
      LOADER_CHECKSUM_MISMATCH: [7, false],
      LOADER_INVALID_MODEL: [8, false],
      LOADER_IO: [9, false],
      LOADER_ABORTED: [143, false],
      LOADER_INTERNAL: [1, false],
    });
  });

  it('gives every failure its own exit code', () => {
    const exitCodes = Object.values(ERRORS).map((spec) => spec.exitCode);
    expect(new Set(exitCodes).size).toBe(exitCodes.length);
    expect(exitCodes).not.toContain(0);
  });

  it('wraps unknown errors as internal and keeps loader errors as they are', () => {
    const known = new LoaderError('LOADER_IO', 'disk full');
    expect(toLoaderError(known)).toBe(known);
    const wrapped = toLoaderError(new TypeError('boom'));
    expect(wrapped.code).toBe('LOADER_INTERNAL');
    expect(wrapped.exitCode).toBe(1);
    expect(wrapped.message).toContain('boom');
  });
});
