import { Agent, request } from 'undici';
import type { Config } from '../../src/config.js';
import { parseSettings } from '../../src/config.js';
import { Sidecar } from '../../src/server.js';

/** Starts an in-process sidecar on 127.0.0.1 port 0 in front of `upstream`, configured by YAML text. */
export async function startSidecar(upstream: string, yaml = ''): Promise<Sidecar> {
  const config: Config = {
    listen: { host: '127.0.0.1', port: 0 },
    upstream,
    adminPort: 0,
    configPath: undefined,
    checkOnly: false,
    logLevel: 'silent',
    settings: parseSettings(yaml, 'test'),
  };
  return Sidecar.start(config);
}

/** A client with no connection limit and no keep-alive: the test decides concurrency, nothing lingers. */
export const client = new Agent({ connections: null, pipelining: 0 });

/** One finished exchange as the client saw it. */
export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  ms: number;
}

/** Sends one request and reads the whole answer. */
export async function send(
  port: number,
  path = '/',
  options: { method?: string; headers?: Record<string, string>; body?: string | Buffer } = {},
): Promise<Answer> {
  const started = performance.now();
  const res = await request(`http://127.0.0.1:${port}${path}`, {
    dispatcher: client,
    method: (options.method ?? 'GET') as 'GET',
    headers: options.headers,
    body: options.body,
  });
  const body = await res.body.text();
  return { status: res.statusCode, headers: res.headers, body, ms: performance.now() - started };
}

/** Reads the admin server's metrics text. */
export async function metricsText(sidecar: Sidecar): Promise<string> {
  return (await send(sidecar.adminPort, '/metrics')).body;
}
