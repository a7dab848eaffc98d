import type { IncomingHttpHeaders } from 'node:http';

// What the forwarder sends and passes back: the end-to-end headers of a message (RFC 9110 §7.6.1), the
// X-Forwarded-* it adds, and the deadline header it rewrites to the time left.

/** Headers that describe one connection, not the message (RFC 9110 §7.6.1), plus ones undici manages. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'expect', // Node already answered 100-continue; undici refuses to send it
]);

/**
 * Header names a Connection header lists beyond `keep-alive`/`close` (they are hop-by-hop too), parsed once
 * per message; undefined in the common case where it lists none.
 */
function connectionTokens(connection: string | string[] | undefined): string[] | undefined {
  if (connection === undefined) return undefined;
  const value = (Array.isArray(connection) ? connection.join(',') : connection).toLowerCase();
  if (value === 'keep-alive' || value === 'close') return undefined;
  const tokens = value
    .split(',')
    .map((t) => t.trim())
    .filter((t) => t !== '' && t !== 'keep-alive' && t !== 'close');
  return tokens.length > 0 ? tokens : undefined;
}

/** A message's end-to-end headers: without hop-by-hop ones and those its Connection header lists. */
export function endToEnd(headers: IncomingHttpHeaders): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  const extra = connectionTokens(headers.connection);
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || HOP_BY_HOP.has(name) || (extra !== undefined && extra.includes(name))) continue;
    out[name] = value;
  }
  return out;
}

/** The end-to-end request headers plus X-Forwarded-For/-Proto; `host` is kept but never routes. */
export function upstreamHeaders(
  headers: IncomingHttpHeaders,
  remoteAddress: string | undefined,
): Record<string, string | string[]> {
  const out = endToEnd(headers);
  const client = remoteAddress ?? 'unknown';
  const prior = headers['x-forwarded-for'];
  out['x-forwarded-for'] =
    prior === undefined ? client : `${Array.isArray(prior) ? prior.join(', ') : prior}, ${client}`;
  out['x-forwarded-proto'] = 'http';
  return out;
}

/** Propagates the deadline: the upstream sees the milliseconds left, not the client's original budget. */
export function withBudget(
  headers: Record<string, string | string[]>,
  name: string | undefined,
  remainingMs: number,
): Record<string, string | string[]> {
  if (name !== undefined && remainingMs !== Infinity && headers[name] !== undefined)
    headers[name] = String(Math.max(0, Math.floor(remainingMs)));
  return headers;
}
