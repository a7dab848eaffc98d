// The byte-exact HTTP/1.1 requests the differential test (../http1-differential.test.ts) sends to node:http and
// to the sidecar: valid ones in their less common shapes, malformed and ambiguous ones, and the request
// smuggling patterns of the published research (Kettle's "HTTP Desync Attacks", the Transfer-Encoding
// obfuscations). Each case pins what node:http does; the sidecar must do the same unless `sidecar` says
// otherwise, and why.

/**
 * What one side did with a case, as the test's `summary()` writes it: `accept N` (N complete requests reached
 * the handler, each answered 2xx; `accept N (M answered)` when fewer answers came back), `refuse S` (answered
 * S, nothing reached), `refuse (close)` (closed without an answer), `accept N + refuse S` (a refusal after N),
 * `pending` (no answer, the connection open: it waits for bytes that never come), `+ open` (accepted, yet the
 * connection stayed open after `Connection: close`).
 */
export type Summary = string;

/** A deliberate difference: what the sidecar does instead of node:http's answer. */
export interface SidecarDifference {
  /** the sidecar's summary */
  summary: Summary;
  /** the targets the upstream sees, where the sidecar rewrites them (absolute-form: the path) */
  targets?: string[];
  why: string;
}

/** One differential case. */
export interface Case {
  name: string;
  /** written in turns: each after the server answered the one before (see testkit's rawInTurns) */
  turns: (string | Buffer)[];
  /** what node:http does */
  node: Summary;
  sidecar?: SidecarDifference;
}

/** A request head: the request line, `host`, the header lines given, the blank line. */
function head(line: string, ...headers: string[]): string {
  return [line, 'host: diff', ...headers, '', ''].join('\r\n');
}

/** A head that asks for the connection to close after its answer: the case ends with the server's close. */
function last(line: string, ...headers: string[]): string {
  return head(line, ...headers, 'connection: close');
}

/** A POST of `body` with the framing headers given (Content-Length and Transfer-Encoding variants). */
function post(path: string, framing: string[], body: string): string {
  return last(`POST ${path} HTTP/1.1`, ...framing) + body;
}

const CHUNKED = ['transfer-encoding: chunked'];
/** `hello world` in two chunks */
const HELLO_CHUNKS = '5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n';
/** A request hidden in a body: if either side ever lets it through, it arrives as `/smuggled`. */
export const SMUGGLED_TARGET = '/smuggled';
const SMUGGLED = `GET ${SMUGGLED_TARGET} HTTP/1.1\r\nhost: diff\r\n\r\n`;
/** Header lines that fill a head past the listener's 16 KiB (LISTENER.maxHeaderSize). */
const BLOAT = Array.from({ length: 20 }, (_, i) => `x-bloat-${i}: ${'b'.repeat(1000)}`);
const ALL_BYTES = Buffer.from(Array.from({ length: 256 }, (_, i) => i));

// One case a line: the tables read as a list of what goes in and what node:http does with it.

// prettier-ignore
const valid: Case[] = [
  { name: 'GET in origin-form', turns: [last('GET /v/get HTTP/1.1')], node: 'accept 1' },
  { name: 'GET with a query string', turns: [last('GET /v/query?a=1&b=%20x&c HTTP/1.1')], node: 'accept 1' },
  { name: 'HEAD', turns: [last('HEAD /v/head HTTP/1.1')], node: 'accept 1' },
  { name: 'DELETE', turns: [last('DELETE /v/delete HTTP/1.1')], node: 'accept 1' },
  { name: 'OPTIONS on a path', turns: [last('OPTIONS /v/options HTTP/1.1')], node: 'accept 1' },
  { name: 'QUERY, a method llhttp knows, with a body', turns: [post('/v/query-method', ['content-length: 5'], 'hello').replace('POST', 'QUERY')], node: 'accept 1' },
  { name: 'PROPFIND, a WebDAV method', turns: [last('PROPFIND /v/propfind HTTP/1.1')], node: 'accept 1' },
  { name: 'POST with Content-Length', turns: [post('/v/cl', ['content-length: 5'], 'hello')], node: 'accept 1' },
  { name: 'POST with Content-Length: 0', turns: [post('/v/cl0', ['content-length: 0'], '')], node: 'accept 1' },
  { name: 'PUT with every byte value in its body', turns: [Buffer.concat([Buffer.from(last('PUT /v/bytes HTTP/1.1', 'content-length: 256')), ALL_BYTES])], node: 'accept 1' },
  { name: 'GET with a body by Content-Length', turns: [last('GET /v/get-body HTTP/1.1', 'content-length: 5') + 'hello'], node: 'accept 1' },
  { name: 'POST chunked, two chunks', turns: [post('/v/chunked', CHUNKED, HELLO_CHUNKS)], node: 'accept 1' },
  { name: 'POST chunked, upper-case hex size', turns: [post('/v/hex', CHUNKED, `1A\r\n${'z'.repeat(26)}\r\n0\r\n\r\n`)], node: 'accept 1' },
  { name: 'POST chunked with chunk extensions', turns: [post('/v/ext', CHUNKED, '5;name=value\r\nhello\r\n6;flag\r\n world\r\n0;last=1\r\n\r\n')], node: 'accept 1' },
  { name: 'POST chunked with a quoted chunk extension', turns: [post('/v/ext-quoted', CHUNKED, '5;name="a b;c"\r\nhello\r\n0\r\n\r\n')], node: 'accept 1' },
  { name: 'POST chunked with trailers', turns: [post('/v/trailers', [...CHUNKED, 'trailer: x-checksum'], '5\r\nhello\r\n0\r\nx-checksum: abc\r\n\r\n')], node: 'accept 1' },
  { name: 'POST chunked, empty body', turns: [post('/v/chunked-empty', CHUNKED, '0\r\n\r\n')], node: 'accept 1' },
  { name: 'Transfer-Encoding: Chunked (upper case)', turns: [post('/v/te-case', ['transfer-encoding: Chunked'], HELLO_CHUNKS)], node: 'accept 1' },
  { name: 'Transfer-Encoding:<tab>chunked (a tab is whitespace)', turns: [post('/v/te-tab', ['transfer-encoding:\tchunked'], HELLO_CHUNKS)], node: 'accept 1' },
  { name: 'Transfer-Encoding: gzip, chunked (chunked last)', turns: [post('/v/te-gzip', ['transfer-encoding: gzip, chunked'], HELLO_CHUNKS)], node: 'accept 1' },
  { name: 'Content-Length with spaces around it', turns: [post('/v/cl-ows', ['content-length:  5 '], 'hello')], node: 'accept 1' },
  { name: 'Content-Length with leading zeros', turns: [post('/v/cl-zeros', ['content-length: 005'], 'hello')], node: 'accept 1' },
  { name: 'HTTP/1.0 without Host, closed after', turns: ['GET /v/http10 HTTP/1.0\r\n\r\n'], node: 'accept 1' },
  { name: 'HTTP/1.0 POST with Content-Length', turns: ['POST /v/http10-post HTTP/1.0\r\ncontent-length: 5\r\n\r\nhello'], node: 'accept 1' },
  { name: 'HTTP/1.0 keep-alive, then a second HTTP/1.0 request on the connection', turns: ['GET /v/ka-1 HTTP/1.0\r\nconnection: keep-alive\r\n\r\n', 'GET /v/ka-2 HTTP/1.0\r\n\r\n'], node: 'accept 2' },
  { name: 'pipelined GET pair in one write', turns: [head('GET /v/pipe-1 HTTP/1.1') + last('GET /v/pipe-2 HTTP/1.1')], node: 'accept 2' },
  { name: 'pipelined POST (Content-Length) and GET in one write', turns: [head('POST /v/pipe-post HTTP/1.1', 'content-length: 5') + 'hello' + last('GET /v/pipe-get HTTP/1.1')], node: 'accept 2' },
  { name: 'pipelined chunked POST and GET in one write', turns: [head('POST /v/pipe-chunked HTTP/1.1', ...CHUNKED) + HELLO_CHUNKS + last('GET /v/pipe-after HTTP/1.1')], node: 'accept 2' },
  { name: 'three pipelined requests in one write', turns: [head('GET /v/three-1 HTTP/1.1') + head('DELETE /v/three-2 HTTP/1.1') + last('GET /v/three-3 HTTP/1.1')], node: 'accept 3' },
  { name: 'bytes past Content-Length are the next request, not part of the body', turns: [head('POST /v/cl-short HTTP/1.1', 'content-length: 2') + 'ok' + last('GET /v/cl-next HTTP/1.1')], node: 'accept 2' },
  { name: 'an empty line before the request line (RFC 9112 §2.2 lets a server ignore it)', turns: ['\r\n' + last('GET /v/leading-crlf HTTP/1.1')], node: 'accept 1' },
  { name: 'a head of 40 header lines', turns: [last('GET /v/long-head HTTP/1.1', ...Array.from({ length: 40 }, (_, i) => `x-line-${i}: value ${i}`))], node: 'accept 1' },
  { name: 'a head of 12 KiB, under the 16 KiB limit', turns: [last('GET /v/12k HTTP/1.1', ...BLOAT.slice(0, 12))], node: 'accept 1' },
  { name: 'a header value with an inner tab', turns: [last('GET /v/tab HTTP/1.1', 'x-tab: a\tb')], node: 'accept 1' },
  { name: 'a header value with obs-text bytes (0x80-0xff)', turns: [Buffer.from(last('GET /v/obs-text HTTP/1.1', 'x-latin1: caf\xe9 \xff'), 'latin1')], node: 'accept 1' },
  { name: 'an empty header value', turns: [last('GET /v/empty HTTP/1.1', 'x-empty:')], node: 'accept 1' },
  { name: 'a header value with whitespace around it', turns: [last('GET /v/ows HTTP/1.1', 'x-ows: \t value \t')], node: 'accept 1' },
  { name: 'a header name of every tchar symbol', turns: [last('GET /v/tchar HTTP/1.1', "x-!#$%&'*+.^_`|~: 1")], node: 'accept 1' },
  { name: 'Expect: 100-continue, the body after the 100', turns: [head('POST /v/continue HTTP/1.1', 'content-length: 5', 'expect: 100-continue', 'connection: close'), 'hello'], node: 'accept 1' },
  { name: 'Expect: 100-continue with the body sent at once', turns: [post('/v/continue-now', ['content-length: 5', 'expect: 100-continue'], 'hello')], node: 'accept 1' },
];

// Accepted by node:http, though a stricter server might refuse them: both sides must still agree.
// prettier-ignore
const lenient: Case[] = [
  { name: 'two Host headers (node:http does not check)', turns: [last('GET /l/two-hosts HTTP/1.1', 'host: other')], node: 'accept 1' },
  { name: 'a target with a fragment (sent on as it came)', turns: [last('GET /l/frag#part HTTP/1.1')], node: 'accept 1' },
  { name: 'a target that starts with //', turns: [last('GET //l/double HTTP/1.1')], node: 'accept 1' },
  { name: 'a percent-encoded NUL in the target', turns: [last('GET /l/pct%00 HTTP/1.1')], node: 'accept 1' },
  // llhttp skips the extra space; node:http takes a request line without a version as HTTP/0.9 (headers and
  // all), and HTTP/2.0 and HTTP/0.9 as versions it answers with HTTP/1.1 and a close.
  { name: 'a request line with two spaces', turns: [last('GET  /l/two-spaces HTTP/1.1')], node: 'accept 1' },
  { name: 'a request line without a version', turns: ['GET /l/no-version\r\nhost: diff\r\n\r\n'], node: 'accept 1' },
  { name: 'HTTP/2.0 in the request line', turns: ['GET /l/h2 HTTP/2.0\r\nhost: diff\r\n\r\n'], node: 'accept 1' },
  { name: 'HTTP/0.9 in the request line', turns: ['GET /l/h09 HTTP/0.9\r\nhost: diff\r\n\r\n'], node: 'accept 1' },
];

/** The sidecar's own answers where node:http has none, each with its reason. */
const deliberate: Case[] = [
  {
    name: 'absolute-form target',
    turns: [last('GET http://diff/d/absolute?q=1 HTTP/1.1')],
    node: 'accept 1',
    sidecar: {
      summary: 'accept 1',
      targets: ['/d/absolute?q=1'],
      why: 'the sidecar sends an absolute-form target upstream as its path: neither Host nor target picks the destination',
    },
  },
  {
    name: 'absolute-form target with a port, POST with a body',
    turns: [post('http://elsewhere:8080/d/absolute-post', ['content-length: 5'], 'hello')],
    node: 'accept 1',
    sidecar: { summary: 'accept 1', targets: ['/d/absolute-post'], why: 'reduced to the path, as above' },
  },
  {
    name: 'absolute-form target with userinfo',
    turns: [last('GET http://user:pass@diff/d/userinfo HTTP/1.1')],
    node: 'accept 1',
    sidecar: { summary: 'accept 1', targets: ['/d/userinfo'], why: 'reduced to the path; the userinfo goes nowhere' },
  },
  {
    name: 'HTTP/1.1 without Host',
    turns: ['GET /d/no-host HTTP/1.1\r\nconnection: close\r\n\r\n'],
    node: 'accept 1', // requireHostHeader: false, as the sidecar's listener is configured
    sidecar: {
      summary: 'refuse 400',
      why: 'intake answers a missing Host with its own 400 and error body (RFC 9112 §3.2)',
    },
  },
  {
    name: 'Upgrade: websocket',
    turns: [last('GET /d/upgrade HTTP/1.1', 'connection: upgrade', 'upgrade: websocket')],
    node: 'accept 1', // without an 'upgrade' listener node:http hands it over as an ordinary request
    sidecar: { summary: 'refuse 501', why: 'the sidecar refuses protocol upgrades (CB_UPGRADE_REFUSED)' },
  },
  {
    name: 'CONNECT',
    turns: ['CONNECT diff:443 HTTP/1.1\r\nhost: diff:443\r\n\r\n'],
    node: 'refuse (close)', // without a 'connect' listener node:http closes the connection
    sidecar: { summary: 'refuse 405', why: 'the sidecar answers CONNECT with 405 and Allow: it is no forward proxy' },
  },
  {
    name: 'OPTIONS * (asterisk-form)',
    turns: [last('OPTIONS * HTTP/1.1')],
    node: 'accept 1',
    sidecar: { summary: 'refuse 400', why: 'a target that is not a path has nothing to send upstream (CB_BAD_TARGET)' },
  },
];

// Body framing: Content-Length, Transfer-Encoding and chunked coding, and the smuggling patterns on them.
// prettier-ignore
const framing: Case[] = [
  { name: 'Content-Length and Transfer-Encoding (CL.TE)', turns: [post('/f/cl-te', ['content-length: 30', ...CHUNKED], `0\r\n\r\n${SMUGGLED}`)], node: 'refuse 400' },
  { name: 'Transfer-Encoding and Content-Length (TE.CL)', turns: [post('/f/te-cl', [...CHUNKED, 'content-length: 4'], `5c\r\n${SMUGGLED}\r\n0\r\n\r\n`)], node: 'refuse 400' },
  { name: 'duplicate Content-Length, equal', turns: [post('/f/cl-dup-equal', ['content-length: 5', 'content-length: 5'], 'hello')], node: 'refuse 400' },
  { name: 'duplicate Content-Length, different', turns: [post('/f/cl-dup', ['content-length: 0', `content-length: ${SMUGGLED.length}`], SMUGGLED)], node: 'refuse 400' },
  { name: 'Content-Length as a list (5, 5)', turns: [post('/f/cl-list', ['content-length: 5, 5'], 'hello')], node: 'refuse 400' },
  { name: 'Content-Length with a plus sign', turns: [post('/f/cl-plus', ['content-length: +5'], 'hello')], node: 'refuse 400' },
  { name: 'Content-Length negative', turns: [post('/f/cl-minus', ['content-length: -5'], 'hello')], node: 'refuse 400' },
  { name: 'Content-Length with a space inside', turns: [post('/f/cl-space', ['content-length: 1 0'], 'helloworld')], node: 'refuse 400' },
  { name: 'Content-Length in hex', turns: [post('/f/cl-hex', ['content-length: 0x5'], 'hello')], node: 'refuse 400' },
  { name: 'Content-Length past 2^64', turns: [post('/f/cl-overflow', ['content-length: 18446744073709551621'], 'hello')], node: 'refuse 400' },
  { name: 'Content-Length empty', turns: [post('/f/cl-empty', ['content-length:'], '')], node: 'refuse 400' },
  { name: 'Transfer-Encoding: chunked, identity', turns: [post('/f/te-identity', ['transfer-encoding: chunked, identity'], `0\r\n\r\n${SMUGGLED}`)], node: 'refuse 400' },
  { name: 'Transfer-Encoding: identity', turns: [post('/f/te-only-identity', ['transfer-encoding: identity'], 'hello')], node: 'refuse 400' },
  { name: 'Transfer-Encoding: xchunked', turns: [post('/f/te-xchunked', ['transfer-encoding: xchunked'], HELLO_CHUNKS)], node: 'refuse 400' },
  { name: 'Transfer-Encoding: chunked, gzip (chunked not last)', turns: [post('/f/te-not-last', ['transfer-encoding: chunked, gzip'], HELLO_CHUNKS)], node: 'refuse 400' },
  { name: 'Transfer-Encoding: "chunked" (quoted)', turns: [post('/f/te-quoted', ['transfer-encoding: "chunked"'], HELLO_CHUNKS)], node: 'refuse 400' },
  { name: 'Transfer-Encoding: chunked on two lines (chunked twice)', turns: [post('/f/te-twice', [...CHUNKED, ...CHUNKED], HELLO_CHUNKS)], node: 'refuse 400' },
  { name: 'Transfer-Encoding: chunked with trailing whitespace', turns: [post('/f/te-trailing', ['transfer-encoding: chunked \t'], HELLO_CHUNKS)], node: 'refuse 400' },
  { name: 'Transfer-Encoding: chunked, then Transfer-Encoding: x', turns: [post('/f/te-then-x', [...CHUNKED, 'transfer-encoding: x'], HELLO_CHUNKS)], node: 'refuse 400' },
  { name: 'Transfer-Encoding : chunked (space before the colon)', turns: [post('/f/te-space-colon', ['transfer-encoding : chunked'], HELLO_CHUNKS)], node: 'refuse 400' },
  { name: 'Transfer-Encoding:<vertical tab>chunked', turns: [post('/f/te-vtab', ['transfer-encoding:\x0bchunked'], HELLO_CHUNKS)], node: 'refuse 400' },
  { name: 'Transfer-Encoding folded onto a continuation line (obs-fold)', turns: [post('/f/te-fold', ['transfer-encoding:', ' chunked'], HELLO_CHUNKS)], node: 'refuse 400' },
  { name: 'X-Ignore then Transfer-Encoding on a continuation line', turns: [post('/f/te-fold-smuggle', ['content-length: 5', 'x-ignore: a', ' transfer-encoding: chunked'], 'hello')], node: 'refuse 400' },
  { name: 'a chunk size with an invalid character', turns: [post('/f/chunk-char', CHUNKED, '5x\r\nhello\r\n0\r\n\r\n')], node: 'refuse 400' },
  { name: 'a negative chunk size', turns: [post('/f/chunk-minus', CHUNKED, '-5\r\nhello\r\n0\r\n\r\n')], node: 'refuse 400' },
  { name: 'a chunk size past 2^64', turns: [post('/f/chunk-overflow', CHUNKED, '10000000000000005\r\nhello\r\n0\r\n\r\n')], node: 'refuse 400' },
  { name: 'a chunk size followed by a space', turns: [post('/f/chunk-space', CHUNKED, '5 \r\nhello\r\n0\r\n\r\n')], node: 'refuse 400' },
  { name: 'chunk data without its CRLF', turns: [post('/f/chunk-no-crlf', CHUNKED, '5\r\nhelloXX0\r\n\r\n')], node: 'refuse 400' },
  { name: 'chunk lines ended by bare LF', turns: [post('/f/chunk-lf', CHUNKED, '5\nhello\n0\n\n')], node: 'refuse 400' },
  { name: 'a chunk extension with a control character', turns: [post('/f/chunk-ext-ctl', CHUNKED, '5;a=\x01\r\nhello\r\n0\r\n\r\n')], node: 'refuse 400' },
  { name: 'a trailer line without a colon', turns: [post('/f/trailer-bad', CHUNKED, '5\r\nhello\r\n0\r\nx-bad trailer\r\n\r\n')], node: 'refuse 400' },
  { name: 'Content-Length in the trailers', turns: [post('/f/trailer-cl', CHUNKED, '5\r\nhello\r\n0\r\ncontent-length: 5\r\n\r\n')], node: 'refuse 400' },
  { name: 'a chunked body without its last chunk (bounded wait)', turns: [post('/f/chunk-unfinished', CHUNKED, '5\r\nhello\r\n')], node: 'pending' },
  { name: 'Content-Length longer than the body (bounded wait)', turns: [post('/f/cl-long', ['content-length: 50'], 'hello')], node: 'pending' },
];

// prettier-ignore
const requestLines: Case[] = [
  { name: 'HTTP/1.2 in the request line', turns: ['GET /r/h12 HTTP/1.2\r\nhost: diff\r\n\r\n'], node: 'refuse 400' },
  { name: 'HTTP/3.0 in the request line', turns: ['GET /r/h3 HTTP/3.0\r\nhost: diff\r\n\r\n'], node: 'refuse 400' },
  { name: 'a lower-case protocol name', turns: ['GET /r/lower-proto http/1.1\r\nhost: diff\r\n\r\n'], node: 'refuse 400' },
  { name: 'a space after the version', turns: [last('GET /r/trailing-space HTTP/1.1 ')], node: 'refuse 400' },
  { name: 'a tab between method and target', turns: [last('GET\t/r/tab-sep HTTP/1.1')], node: 'refuse 400' },
  { name: 'a lower-case method', turns: ['get /r/lower HTTP/1.1\r\nhost: diff\r\n\r\n'], node: 'refuse 400' },
  { name: 'an unknown method', turns: ['FOO /r/foo HTTP/1.1\r\nhost: diff\r\n\r\n'], node: 'refuse 400' },
  { name: 'a method with an invalid character', turns: ['G@T /r/at HTTP/1.1\r\nhost: diff\r\n\r\n'], node: 'refuse 400' },
  { name: 'authority-form target on GET', turns: [last('GET diff:80 HTTP/1.1')], node: 'refuse 400' },
  { name: 'a target that starts with ?', turns: [last('GET ?q=1 HTTP/1.1')], node: 'refuse 400' },
  { name: 'a control character in the target', turns: ['GET /r/ctl\x01 HTTP/1.1\r\nhost: diff\r\n\r\n'], node: 'refuse 400' },
  { name: 'DEL in the target', turns: ['GET /r/del\x7f HTTP/1.1\r\nhost: diff\r\n\r\n'], node: 'refuse 400' },
  { name: 'a tab in the target', turns: ['GET /r/tab\tx HTTP/1.1\r\nhost: diff\r\n\r\n'], node: 'refuse 400' },
  { name: 'a byte over 0x7f in the target', turns: [Buffer.from('GET /r/high\xff HTTP/1.1\r\nhost: diff\r\n\r\n', 'latin1')], node: 'refuse 400' },
  { name: 'bare LF line ends throughout', turns: ['GET /r/lf HTTP/1.1\nhost: diff\nconnection: close\n\n'], node: 'refuse 400' },
  { name: 'a bare LF after the request line only', turns: ['GET /r/lf-line HTTP/1.1\nhost: diff\r\nconnection: close\r\n\r\n'], node: 'refuse 400' },
  { name: 'bare CR line ends', turns: ['GET /r/cr HTTP/1.1\rhost: diff\rconnection: close\r\r'], node: 'refuse 400' },
];

// prettier-ignore
const headerLines: Case[] = [
  { name: 'whitespace before the first header line', turns: ['GET /h/ws-first HTTP/1.1\r\n host: diff\r\nconnection: close\r\n\r\n'], node: 'refuse 400' },
  { name: 'an ordinary header folded onto a continuation line (obs-fold)', turns: [last('GET /h/fold HTTP/1.1', 'x-folded: a', ' b')], node: 'refuse 400' },
  { name: 'a space before the colon', turns: [last('GET /h/space-colon HTTP/1.1', 'x-a : b')], node: 'refuse 400' },
  { name: 'a header name with @', turns: [last('GET /h/name-at HTTP/1.1', 'x@y: 1')], node: 'refuse 400' },
  { name: 'a header name with a space inside', turns: [last('GET /h/name-space HTTP/1.1', 'x y: 1')], node: 'refuse 400' },
  { name: 'a header with an empty name', turns: [last('GET /h/name-empty HTTP/1.1', ': 1')], node: 'refuse 400' },
  { name: 'a header line without a colon', turns: [last('GET /h/no-colon HTTP/1.1', 'x-no-colon')], node: 'refuse 400' },
  { name: 'NUL in a header value', turns: [last('GET /h/nul HTTP/1.1', 'x-nul: a\x00b')], node: 'refuse 400' },
  { name: 'a bare CR in a header value', turns: [last('GET /h/value-cr HTTP/1.1', 'x-cr: a\rb')], node: 'refuse 400' },
  { name: 'DEL in a header value', turns: [last('GET /h/value-del HTTP/1.1', 'x-del: a\x7fb')], node: 'refuse 400' },
  { name: 'Expect with a value other than 100-continue', turns: [post('/h/expect', ['content-length: 5', 'expect: 200-ok'], 'hello')], node: 'refuse 417' },
  // 431, not 400: the one refusal both sides must answer with the same code (a client shortens its head).
  { name: 'a head just under the limit (a 16,200-byte value)', turns: [last('GET /h/just-under HTTP/1.1', `x-big: ${'b'.repeat(16_200)}`)], node: 'accept 1' },
  { name: 'a head just over the limit (a 16,400-byte value)', turns: [last('GET /h/just-over HTTP/1.1', `x-big: ${'b'.repeat(16_400)}`)], node: 'refuse 431' },
  { name: 'a head of one 17 KiB header', turns: [last('GET /h/big-header HTTP/1.1', `x-big: ${'b'.repeat(17 * 1024)}`)], node: 'refuse 431' },
  { name: 'a head over 16 KiB in many lines', turns: [last('GET /h/big-head HTTP/1.1', ...BLOAT)], node: 'refuse 431' },
];

// What follows a request on its connection.
// prettier-ignore
const connections: Case[] = [
  // node:http's handler gets the first request, then the parser refuses the bytes after `Connection: close`
  // (HPE_CLOSED_CONNECTION) and the refusal closes the connection before the first one is answered.
  { name: 'a second request after Connection: close, in the same write', turns: [last('GET /c/after-close HTTP/1.1') + head(`GET ${SMUGGLED_TARGET} HTTP/1.1`)], node: 'accept 1 (0 answered) + refuse 400' },
  { name: 'a valid request, then garbage on the same connection', turns: [head('GET /c/then-garbage HTTP/1.1'), 'NOT HTTP AT ALL\r\n\r\n'], node: 'accept 1 + refuse 400' },
  { name: 'a valid request, then a CL.TE request on the same connection', turns: [head('GET /c/then-cl-te HTTP/1.1'), post('/c/cl-te', ['content-length: 30', ...CHUNKED], `0\r\n\r\n${SMUGGLED}`)], node: 'accept 1 + refuse 400' },
];

/** Every case, by category. */
export const CORPUS: Case[] = [
  ...valid,
  ...lenient,
  ...deliberate,
  ...framing,
  ...requestLines,
  ...headerLines,
  ...connections,
];
