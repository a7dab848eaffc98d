import { parseBatch } from '../src/batch.js';
import type { ApiError } from '../src/errors.js';

function codeOf(body: unknown, features = 4, maxRows = 3): string {
  try {
    parseBatch(body, features, maxRows);
  } catch (err) {
    return (err as ApiError).code;
  }
  return 'OK';
}

describe('parseBatch', () => {
  it('packs rows row-major into a Float32Array', () => {
    const batch = parseBatch(
      {
        data: [
          [1, 2],
          [3, 4.5],
        ],
      },
      2,
      10,
    );
    expect(batch.rows).toBe(2);
    expect(Array.from(batch.features)).toEqual([1, 2, 3, 4.5]);
  });

  it.each([
    ['a list instead of an object', [[1, 2, 3, 4]], 'INVALID_BODY'],
    ['null', null, 'INVALID_BODY'],
    ['an object without data', { rows: [[1, 2, 3, 4]] }, 'INVALID_BODY'],
    ['data that is not a list', { data: 'x' }, 'INVALID_DATA'],
    ['a row that is not a list', { data: [1, 2] }, 'INVALID_DATA'],
    ['a string value', { data: [[1, '2', 3, 4]] }, 'INVALID_DATA'],
    ['a null value', { data: [[1, null, 3, 4]] }, 'INVALID_DATA'],
    ['an empty batch', { data: [] }, 'EMPTY_BATCH'],
    ['too few features', { data: [[1, 2, 3]] }, 'WRONG_FEATURE_COUNT'],
    ['too many features', { data: [[1, 2, 3, 4, 5]] }, 'WRONG_FEATURE_COUNT'],
    ['an infinite value (1e999 parses to Infinity)', JSON.parse('{"data":[[1e999,2,3,4]]}'), 'NON_FINITE_VALUE'],
    ['a value beyond float32', { data: [[1e39, 2, 3, 4]] }, 'NON_FINITE_VALUE'],
    [
      'more rows than allowed',
      {
        data: [
          [1, 2, 3, 4],
          [1, 2, 3, 4],
          [1, 2, 3, 4],
          [1, 2, 3, 4],
        ],
      },
      'TOO_MANY_ROWS',
    ],
  ])('rejects %s', (_name, body, code) => {
    expect(codeOf(body)).toBe(code);
  });

  it('names the offending row and column', () => {
    expect(() =>
      parseBatch(
        {
          data: [
            [1, 2, 3, 4],
            [1, 2, 'x', 4],
          ],
        },
        4,
        10,
      ),
    ).toThrow('data[1][2] must be a number');
  });
});
