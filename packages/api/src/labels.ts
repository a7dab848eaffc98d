import { readFile } from 'node:fs/promises';
import { ApiError } from './errors.js';

/** Class names by probability column, and where they came from. */
export interface ClassNames {
  readonly names: readonly string[];
  /** `file`: the label file matched the model's classes; `model`: the model's own labels are used. */
  readonly source: 'file' | 'model';
}

/**
 * Reads a label file (`{"<class label>": "<name>"}`, as the seed's label.json) and maps each of the
 * model's classes to its name. A file that does not name exactly the model's classes is not used:
 * the model's own class labels become the names, so another model never gets iris names.
 * @throws {ApiError} LABELS_INVALID when the file exists but is not a JSON object of strings
 */
export async function loadClassNames(filepath: string, classLabels: readonly (number | string)[]): Promise<ClassNames> {
  const own: ClassNames = { names: classLabels.map(String), source: 'model' };
  let text: string;
  try {
    text = await readFile(filepath, 'utf8');
  } catch {
    return own;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new ApiError('LABELS_INVALID', `${filepath}: not JSON (${(err as Error).message})`, { cause: err });
  }
  if (
    typeof parsed !== 'object' ||
    parsed === null ||
    Array.isArray(parsed) ||
    !Object.values(parsed).every((v) => typeof v === 'string')
  ) {
    throw new ApiError('LABELS_INVALID', `${filepath}: expected a JSON object of class label -> name strings`);
  }
  const byLabel = parsed as Record<string, string>;
  const keys = Object.keys(byLabel);
  const matches = keys.length === classLabels.length && classLabels.every((c) => Object.hasOwn(byLabel, String(c)));
  return matches ? { names: classLabels.map((c) => byLabel[String(c)]!), source: 'file' } : own;
}
