/**
 * The error registry of @infer-cb/policy: one class, a stable `code` per kind of failure, and every problem
 * found listed at once (a policy file with three mistakes is reported with three lines, not one per run).
 */

/** Stable codes, pinned by a test. */
export const POLICY_ERROR_CODES = [
  /** A mesh policy file is not valid: YAML, unknown keys, wrong types, values out of range, missing documents. */
  'POLICY_INVALID',
  /** A policy file could not be read. */
  'POLICY_UNREADABLE',
  /** The options given to a builder (endpoints, ports, replicas, model) are not valid. */
  'POLICY_BAD_OPTIONS',
  /** The command line of cb-policy is not valid. */
  'POLICY_USAGE',
] as const;

/** One of {@link POLICY_ERROR_CODES}. */
export type PolicyErrorCode = (typeof POLICY_ERROR_CODES)[number];

/** Every failure of this package; `problems` has one line per problem found. */
export class PolicyError extends Error {
  override readonly name = 'PolicyError';
  constructor(
    readonly code: PolicyErrorCode,
    readonly problems: readonly string[],
  ) {
    super(problems.length === 1 ? (problems[0] as string) : `${problems.length} problems: ${problems.join('; ')}`);
  }
}

/**
 * Throws one {@link PolicyError} listing `problems`, if there are any.
 * @throws PolicyError with `code` when `problems` is not empty
 */
export function failOn(code: PolicyErrorCode, problems: readonly string[]): void {
  if (problems.length > 0) throw new PolicyError(code, problems);
}
