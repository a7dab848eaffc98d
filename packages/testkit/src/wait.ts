/** Resolves after `ms`. */
export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Polls `check` until it holds, every `intervalMs`; a check that throws counts as not yet (a server that is
 * not up). Resolves `true`, or throws after `timeoutMs` with the check and its last error: tests on a
 * loaded machine wait for a condition instead of sleeping a fixed time.
 */
export async function eventually(
  check: () => boolean | Promise<boolean>,
  timeoutMs = 5000,
  intervalMs = 10,
): Promise<true> {
  const until = performance.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      if (await check()) return true;
    } catch (err) {
      last = err;
    }
    if (performance.now() > until) {
      const why = last === undefined ? '' : `; last error: ${last instanceof Error ? last.message : String(last)}`;
      throw new Error(`condition not met within ${timeoutMs} ms: ${check.toString()}${why}`);
    }
    await sleep(intervalMs);
  }
}
