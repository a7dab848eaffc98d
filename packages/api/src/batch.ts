import { ApiError } from './errors.js';

/** Largest finite float32; larger doubles would become Infinity in the model's input tensor. */
export const FLOAT32_MAX = 3.4028234663852886e38;

/** A validated request batch, packed row-major for the input tensor. */
export interface Batch {
  readonly features: Float32Array;
  readonly rows: number;
}

/**
 * Validates a `{"data": [[f, ...], ...]}` body and packs it into a Float32Array.
 * @throws {ApiError} INVALID_BODY, INVALID_DATA, EMPTY_BATCH, TOO_MANY_ROWS, WRONG_FEATURE_COUNT or
 *   NON_FINITE_VALUE, with a message naming the offending row and column
 */
export function parseBatch(body: unknown, featureCount: number, maxBatchRows: number): Batch {
  if (typeof body !== 'object' || body === null || Array.isArray(body) || !('data' in body)) {
    throw new ApiError('INVALID_BODY', 'expected a JSON object {"data": [[...features], ...]}');
  }
  const data = body.data;
  if (!Array.isArray(data)) throw new ApiError('INVALID_DATA', '"data" must be a list of rows, each a list of numbers');
  const rows = data.length;
  if (rows === 0) throw new ApiError('EMPTY_BATCH', '"data" has no rows');
  if (rows > maxBatchRows)
    throw new ApiError('TOO_MANY_ROWS', `"data" has ${rows} rows; at most ${maxBatchRows} are allowed`);
  const features = new Float32Array(rows * featureCount);
  for (let r = 0; r < rows; r++) {
    const row: unknown = data[r];
    if (!Array.isArray(row)) throw new ApiError('INVALID_DATA', `data[${r}] must be a list of numbers`);
    if (row.length !== featureCount) {
      throw new ApiError(
        'WRONG_FEATURE_COUNT',
        `data[${r}] has ${row.length} values; the model takes ${featureCount} features`,
      );
    }
    for (let c = 0; c < featureCount; c++) {
      const value: unknown = row[c];
      if (typeof value !== 'number') throw new ApiError('INVALID_DATA', `data[${r}][${c}] must be a number`);
      if (!Number.isFinite(value) || Math.abs(value) > FLOAT32_MAX) {
        throw new ApiError('NON_FINITE_VALUE', `data[${r}][${c}] is not a finite float32 number`);
      }
      features[r * featureCount + c] = value;
    }
  }
  return { features, rows };
}
