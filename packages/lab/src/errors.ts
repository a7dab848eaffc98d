/** Stable error codes of cb-lab; the CLI prints `<code>: <message>` and exits with `exitCode`. */
export const LAB_ERROR_CODES = {
  LAB_BAD_FLAGS: 'bad command-line flags',
  LAB_TOOL_MISSING: 'a load tool (vegeta, k6) or system binary is not installed',
  LAB_TOOL_FAILED: 'a load tool exited with an error',
  LAB_CHILD_EXITED: 'a child process exited before it became ready',
  LAB_READY_TIMEOUT: 'a child process did not become ready in time',
  LAB_FILE_MISSING: 'a file the lab needs is missing',
} as const;

/** One of the stable cb-lab error codes. */
export type LabErrorCode = keyof typeof LAB_ERROR_CODES;

/** An error the CLI reports as one clear line; bad flags exit 2, everything else exits 1. */
export class LabError extends Error {
  override readonly name = 'LabError';
  /** @param code stable code from {@link LAB_ERROR_CODES} */
  constructor(
    readonly code: LabErrorCode,
    message: string,
  ) {
    super(message);
  }
  /** Process exit status for this error. */
  get exitCode(): number {
    return this.code === 'LAB_BAD_FLAGS' ? 2 : 1;
  }
}
