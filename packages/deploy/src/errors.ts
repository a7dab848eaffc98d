// One error type for the CLI: a stable code, a message of one line per problem, and the exit code it means.

/** Error codes of cb-deploy, with the exit code each one ends the process with. */
export const ERRORS = {
  /** Bad command line or option value. */
  DEPLOY_USAGE: 2,
  /** The cluster, Istio or an image does not meet what the arms need. */
  DEPLOY_PREFLIGHT: 3,
  /** A tool (kubectl, vegeta, ...) failed or the callers did not become ready. */
  DEPLOY_TOOL: 4,
} as const;

/** A code of {@link ERRORS}. */
export type DeployErrorCode = keyof typeof ERRORS;

/** A failure cb-deploy reports as `cb-deploy: CODE: problem` lines and a non-zero exit. */
export class DeployError extends Error {
  /** The process exit code for this error. */
  readonly exitCode: number;

  /**
   * @param code stable error code
   * @param problems one line each; every problem found, not just the first
   */
  constructor(
    readonly code: DeployErrorCode,
    readonly problems: readonly string[],
  ) {
    super(problems.join('; '));
    this.name = 'DeployError';
    this.exitCode = ERRORS[code];
  }
}
