// Ports that cannot race. Our own servers listen on port 0 and report the port they got (the upstream, the
// sidecar, the API: see programs.ts); nothing binds a port to find it free and releases it for a child to
// bind a moment later, which another process may take in between. A program that cannot report its port
// (HAProxy) is started on a chosen port and started again on another one when that port is taken.

/**
 * A port to try for a program that must be told its port: random, below Linux's ephemeral range
 * (32768-60999), so no outgoing connection and no port-0 server can hold it.
 */
export function candidatePort(): number {
  return 20_000 + Math.floor(Math.random() * 12_000);
}

/** True when `err` says the port was taken (Node's EADDRINUSE, or a program's own words for it: grpcio's too). */
export function isAddressInUse(err: unknown): boolean {
  const text = err instanceof Error ? `${(err as NodeJS.ErrnoException).code ?? ''} ${err.message}` : String(err);
  return /EADDRINUSE|address already in use|cannot bind socket|failed to bind to address/i.test(text);
}

/**
 * Runs `start` with a candidate port, and again with another one while it fails because the port is taken
 * (at most `attempts` times); any other failure is thrown at once.
 */
export async function onFreePort<T>(start: (port: number) => Promise<T>, attempts = 8): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await start(candidatePort());
    } catch (err) {
      if (i >= attempts || !isAddressInUse(err)) throw err;
    }
  }
}
