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
    if (value === undefined || oneHop(name, extra)) continue;
    if (name.charCodeAt(0) === 58 /* : */) continue; // HTTP/2 pseudo-headers belong to one hop
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
  // An HTTP/2 request names its authority in :authority, not Host.
  if (out.host === undefined && headers[':authority'] !== undefined) out.host = headers[':authority'];
  const client = remoteAddress ?? 'unknown';
  const prior = headers['x-forwarded-for'];
  out['x-forwarded-for'] =
    prior === undefined ? client : `${Array.isArray(prior) ? prior.join(', ') : prior}, ${client}`;
  out['x-forwarded-proto'] = 'http';
  return out;
}

/**
 * Propagates the deadline: the upstream sees the milliseconds left, not the client's original budget; a gRPC
 * call's `grpc-timeout` too (in milliseconds, `<n>m`).
 */
export function withBudget(
  headers: Record<string, string | string[]>,
  name: string | undefined,
  remainingMs: number,
  grpc = false,
): Record<string, string | string[]> {
  if (remainingMs === Infinity) return headers;
  const left = Math.max(0, Math.floor(remainingMs));
  if (name !== undefined && headers[name] !== undefined) headers[name] = String(left);
  if (grpc && headers['grpc-timeout'] !== undefined) headers['grpc-timeout'] = `${left}m`;
  return headers;
}

/** gRPC's timeout units (`grpc-timeout: <1-8 digits><unit>`), in milliseconds. */
const GRPC_TIMEOUT_UNITS: Readonly<Record<string, number>> = {
  H: 3_600_000,
  M: 60_000,
  S: 1000,
  m: 1,
  u: 1e-3,
  n: 1e-6,
};

/** A `grpc-timeout` value in milliseconds; NaN when it is not one (gRPC over HTTP/2: `\d{1,8}[HMSmun]`). */
export function grpcTimeoutMs(value: string): number {
  if (!/^\d{1,8}[HMSmun]$/.test(value)) return NaN;
  return Number(value.slice(0, -1)) * (GRPC_TIMEOUT_UNITS[value.slice(-1)] as number);
}

// The same rules over HTTP/1.1's raw header lists (flat name, value pairs as received), for the HTTP/1.1
// engine: no header object per message, the names' case and the repeated headers kept as they came.

/** Names a Connection header lists in a raw list (lower case), undefined when it lists none beyond keep-alive/close. */
function rawConnectionTokens(raw: readonly string[]): string[] | undefined {
  let tokens: string[] | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (name.length !== 10 || name.toLowerCase() !== 'connection') continue;
    const listed = connectionTokens(raw[i + 1] as string);
    if (listed !== undefined) (tokens ??= []).push(...listed);
  }
  return tokens;
}

/** True for a header (lower-case name) that belongs to one hop: hop-by-hop, or listed by the Connection header. */
function oneHop(lower: string, listed: readonly string[] | undefined): boolean {
  return HOP_BY_HOP.has(lower) || (listed !== undefined && listed.includes(lower));
}

/**
 * A raw header list's end-to-end part: hop-by-hop headers, those its Connection header lists, and
 * `content-length` (the framing is each hop's own) dropped. `out.length` receives the content-length (-1: none).
 */
export function endToEndRaw(raw: readonly string[], out: string[]): number {
  const extra = rawConnectionTokens(raw);
  let length = -1;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    const lower = name.toLowerCase();
    if (lower === 'content-length') {
      length = Number(raw[i + 1]);
      continue;
    }
    if (oneHop(lower, extra)) continue;
    out.push(name, raw[i + 1] as string);
  }
  return length;
}

/**
 * The raw request headers sent upstream: end-to-end only (without content-length, which the client sets from
 * the body), X-Forwarded-For appended with the client's address (repeated ones joined), X-Forwarded-Proto,
 * the deadline header and a gRPC call's `grpc-timeout` rewritten to the milliseconds left. One pass.
 */
export function upstreamRawHeaders(
  raw: readonly string[],
  remoteAddress: string | undefined,
  deadlineHeader: string | undefined,
  remainingMs: number,
  grpc: boolean,
): string[] {
  const extra = rawConnectionTokens(raw);
  const left = remainingMs === Infinity ? undefined : String(Math.max(0, Math.floor(remainingMs)));
  const out: string[] = [];
  let forwardedFor: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    const lower = name.toLowerCase();
    let value = raw[i + 1] as string;
    if (lower === 'content-length' || oneHop(lower, extra)) continue;
    if (lower === 'x-forwarded-for') {
      forwardedFor = forwardedFor === undefined ? value : `${forwardedFor}, ${value}`;
      continue;
    }
    if (lower === 'x-forwarded-proto') continue;
    if (left !== undefined) {
      if (lower === deadlineHeader) value = left;
      else if (grpc && lower === 'grpc-timeout') value = `${left}m`;
    }
    out.push(name, value);
  }
  const client = remoteAddress ?? 'unknown';
  out.push('x-forwarded-for', forwardedFor === undefined ? client : `${forwardedFor}, ${client}`);
  out.push('x-forwarded-proto', 'http');
  return out;
}
