import { createRequire } from 'node:module';

// Node's own HTTP/1.1 parser (llhttp, the native binding node:http parses every request and response with),
// used directly on `net` sockets by the sidecar's HTTP/1.1 engine: the same strictness as node:http (the
// hostile-client and smuggling suites were written against it) without node:http's streams per message.
// It is reached through `_http_common`, a module Node ships and lists in `require('node:module').builtinModules`
// but does not document; `assertParser()` checks its shape at startup so a Node that changed it fails in one line.

/** The llhttp binding's parser (see Node's src/node_http_parser.cc). */
export interface NativeParser {
  /** `type` REQUEST or RESPONSE; `maxHeaderSize` in bytes (0: Node's default); `lenient` a sum of kLenient* (0: strict) */
  initialize(type: number, resource: object, maxHeaderSize: number, lenient: number): void;
  /** Parses `data`; the number of bytes parsed, or an Error with `code` (HPE_*) and `bytesParsed`. */
  execute(data: Buffer): number | ParseError;
  /** Signals the end of input (a close-delimited body ends here); undefined or an Error. */
  finish(): undefined | ParseError;
  /** Drops the parser's state for reuse by another connection. */
  remove(): void;
  free(): void;
  close(): void;
  pause(): void;
  resume(): void;
  [callback: number]: unknown;
}

/** What `execute` and `finish` return when the input is not valid HTTP/1.1. */
export interface ParseError extends Error {
  code: string;
  reason?: string;
  bytesParsed: number;
}

interface ParserClass {
  new (): NativeParser;
  readonly REQUEST: number;
  readonly RESPONSE: number;
  readonly kOnMessageBegin: number;
  readonly kOnHeaders: number;
  readonly kOnHeadersComplete: number;
  readonly kOnBody: number;
  readonly kOnMessageComplete: number;
  readonly kOnExecute: number;
  readonly kLenientNone: number;
}

const common = createRequire(import.meta.url)('_http_common') as {
  HTTPParser?: ParserClass;
  methods?: readonly string[];
};

/**
 * Throws a one-line error when this Node does not offer the parser in the shape the engine uses (the bins
 * call it at startup).
 */
export function assertParser(): void {
  const P = common.HTTPParser;
  const ok =
    typeof P === 'function' &&
    typeof P.REQUEST === 'number' &&
    typeof P.kOnHeadersComplete === 'number' &&
    typeof P.prototype.execute === 'function' &&
    Array.isArray(common.methods);
  if (!ok)
    throw new Error(
      `this Node (${process.versions.node}) does not offer the HTTP parser binding cb-sidecar's HTTP/1.1 engine uses ` +
        "(require('_http_common').HTTPParser); Node 22 and 24 do",
    );
}

assertParser();

/** The parser class (Node's HTTPParser). */
export const HTTPParser = common.HTTPParser as ParserClass;

export const REQUEST = HTTPParser.REQUEST;
export const RESPONSE = HTTPParser.RESPONSE;
export const kOnHeaders = HTTPParser.kOnHeaders | 0;
export const kOnHeadersComplete = HTTPParser.kOnHeadersComplete | 0;
export const kOnBody = HTTPParser.kOnBody | 0;
export const kOnMessageComplete = HTTPParser.kOnMessageComplete | 0;
export const kOnExecute = HTTPParser.kOnExecute | 0;

/** `kOnHeaders(rawHeaders, url)`: a piece of a long head (see {@link OnHeadersComplete}). */
export type OnHeaders = (rawHeaders: string[], url: string) => void;

/**
 * `onHeadersComplete(versionMajor, versionMinor, rawHeaders, method, url, statusCode, statusMessage, upgrade,
 * shouldKeepAlive)`; return 1 to tell the parser the message has no body (a response to HEAD), 0 otherwise.
 * `rawHeaders` is flat: name, value, name, value... as received. A head of more than 32 header lines is
 * delivered in pieces instead: `kOnHeaders(rawHeaders, url)` once per 32 lines (url in pieces too), then this
 * callback with `rawHeaders` and `url` undefined; the receiver joins the pieces.
 */
export type OnHeadersComplete = (
  versionMajor: number,
  versionMinor: number,
  rawHeaders: string[] | undefined,
  method: number | undefined,
  url: string | undefined,
  statusCode: number | undefined,
  statusMessage: string | undefined,
  upgrade: boolean,
  shouldKeepAlive: boolean,
) => number | void;

/** A resource object the binding wants for async_hooks; one shared, stateless. */
export const RESOURCE = Object.freeze({});

/** A new strict parser of `type` with `maxHeaderSize` (bytes). */
export function newParser(type: number, maxHeaderSize: number): NativeParser {
  const parser = new HTTPParser();
  parser.initialize(type, RESOURCE, maxHeaderSize, HTTPParser.kLenientNone);
  return parser;
}

/**
 * Method names by llhttp's method index (what `onHeadersComplete` reports). `_http_common.methods` names the
 * HTTP methods but is not indexed like llhttp (QUERY is 46 there, after the RTSP methods), so the index of each
 * name is asked of the parser itself, once, at load.
 */
function methodIndex(): readonly string[] {
  const names: string[] = [];
  const parser = newParser(REQUEST, 0);
  let index: number;
  parser[kOnHeadersComplete] = (_major: number, _minor: number, _headers: unknown, method: number) => {
    index = method;
    return 1;
  };
  for (const name of common.methods as readonly string[]) {
    index = -1;
    parser.execute(Buffer.from(`${name} ${name === 'CONNECT' ? 'a:1' : '/'} HTTP/1.1\r\n\r\n`, 'latin1'));
    if (index >= 0) names[index] = name;
    parser.remove();
    parser.initialize(REQUEST, RESOURCE, 0, HTTPParser.kLenientNone);
  }
  parser.free();
  return names;
}

export const METHODS = methodIndex();
