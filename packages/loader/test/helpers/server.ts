import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One scripted answer: a status with body and headers, a hang, or a body cut short. */
export type Step =
  | { readonly status: number; readonly body?: Uint8Array | string; readonly headers?: Record<string, string> }
  | { readonly hang: true }
  | { readonly truncate: Uint8Array; readonly after: number };

/** A request the server saw. */
export interface Seen {
  readonly path: string;
  readonly atMs: number;
}

/** A real HTTP server on 127.0.0.1:0 answering each path with its script, in order (the last step repeats). */
export interface ScriptedServer {
  readonly origin: string;
  readonly seen: Seen[];
  count(path: string): number;
  close(): Promise<void>;
}

/** Starts a scripted server; every test closes it in afterEach. */
export async function startServer(scripts: Record<string, readonly Step[]>): Promise<ScriptedServer> {
  const seen: Seen[] = [];
  const served = new Map<string, number>();
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = req.url ?? '/';
    seen.push({ path, atMs: performance.now() });
    const script = scripts[path];
    if (script === undefined || script.length === 0) {
      res.writeHead(404).end('no script');
      return;
    }
    const index = served.get(path) ?? 0;
    served.set(path, index + 1);
    const step = script[Math.min(index, script.length - 1)]!;
    if ('hang' in step) return;
    if ('truncate' in step) {
      res.writeHead(200, { 'content-length': String(step.truncate.byteLength) });
      res.write(step.truncate.subarray(0, step.after), () => res.destroy());
      return;
    }
    res.writeHead(step.status, step.headers).end(step.body ?? '');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    seen,
    count: (path) => seen.filter((s) => s.path === path).length,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
