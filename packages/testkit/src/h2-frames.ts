// Hand-built HTTP/2 frames for hostile-client tests: what a well-behaved client library will not send (rapid
// reset, CONTINUATION and SETTINGS floods, oversized header blocks), written straight to a TCP socket, and
// what the server sent back, frame by frame.
import { connect } from 'node:net';

/** The client connection preface (RFC 9113 §3.4). */
export const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/** Frame types (RFC 9113 §6). */
export const FRAME = {
  DATA: 0,
  HEADERS: 1,
  RST_STREAM: 3,
  SETTINGS: 4,
  PING: 6,
  GOAWAY: 7,
  WINDOW_UPDATE: 8,
  CONTINUATION: 9,
} as const;

/** Frame flags. */
export const FLAG = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4 } as const;

/** One frame: 9-byte header (length, type, flags, stream id) and payload. */
export function h2Frame(type: number, flags: number, streamId: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(streamId & 0x7fffffff, 5);
  return Buffer.concat([head, payload]);
}

/** A SETTINGS frame with `entries` (id, value) pairs. */
export function settingsFrame(entries: readonly (readonly [number, number])[] = []): Buffer {
  const payload = Buffer.alloc(entries.length * 6);
  entries.forEach(([id, value], i) => {
    payload.writeUInt16BE(id, i * 6);
    payload.writeUInt32BE(value, i * 6 + 2);
  });
  return h2Frame(FRAME.SETTINGS, 0, 0, payload);
}

/** An HPACK string literal without Huffman coding (lengths up to 2^21). */
function hpackString(text: string | Buffer): Buffer {
  const bytes = typeof text === 'string' ? Buffer.from(text, 'latin1') : text;
  return Buffer.concat([hpackInteger(bytes.length, 7, 0), bytes]);
}

function hpackInteger(value: number, prefixBits: number, firstByteFlags: number): Buffer {
  const max = (1 << prefixBits) - 1;
  if (value < max) return Buffer.from([firstByteFlags | value]);
  const out = [firstByteFlags | max];
  let rest = value - max;
  while (rest >= 128) {
    out.push((rest % 128) + 128);
    rest = Math.floor(rest / 128);
  }
  out.push(rest);
  return Buffer.from(out);
}

/**
 * An HPACK header block for a GET of `path` (static-table :method GET and :scheme http, literal :path and
 * :authority, never indexed) plus literal `extra` headers.
 */
export function headerBlock(path = '/', extra: readonly (readonly [string, string | Buffer])[] = []): Buffer {
  const parts = [
    Buffer.from([0x82, 0x86]), // :method GET, :scheme http
    Buffer.from([0x04]), // :path, literal without indexing, name index 4
    hpackString(path),
    Buffer.from([0x01]), // :authority, name index 1
    hpackString('127.0.0.1'),
  ];
  for (const [name, value] of extra) parts.push(Buffer.from([0x00]), hpackString(name), hpackString(value));
  return Buffer.concat(parts);
}

/** A frame the server sent. */
export interface ServerFrame {
  type: number;
  flags: number;
  streamId: number;
  /** GOAWAY and RST_STREAM: the error code */
  errorCode?: number;
}

/** What came back on a raw HTTP/2 connection. */
export interface H2RawAnswer {
  frames: ServerFrame[];
  /** the GOAWAY's error code, when the server sent one */
  goaway: number | undefined;
  /** HEADERS frames the server sent (answers begun) */
  answers: number;
  /** RST_STREAM frames the server sent */
  resets: number;
  /** true when the server closed the connection before `waitMs` ran out */
  closed: boolean;
  /** bytes the client managed to write before the server closed */
  written: number;
}

/**
 * Connects to 127.0.0.1:`port`, writes the preface, an empty SETTINGS frame and then `frames` (each a buffer;
 * written without waiting for the server, as an attacker does), and collects the server's frames until it
 * closes the connection or `waitMs` passes.
 */
export function h2Raw(port: number, frames: readonly Buffer[], waitMs = 2000): Promise<H2RawAnswer> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    let input = Buffer.alloc(0);
    const out: ServerFrame[] = [];
    let written = 0;
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    const done = (closed: boolean): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      const goaway = out.find((f) => f.type === FRAME.GOAWAY)?.errorCode;
      resolve({
        frames: out,
        goaway,
        answers: out.filter((f) => f.type === FRAME.HEADERS).length,
        resets: out.filter((f) => f.type === FRAME.RST_STREAM).length,
        closed,
        written,
      });
    };
    socket.on('data', (chunk: Buffer) => {
      input = Buffer.concat([input, chunk]);
      while (input.length >= 9) {
        const length = input.readUIntBE(0, 3);
        if (input.length < 9 + length) break;
        const frame: ServerFrame = {
          type: input[3] as number,
          flags: input[4] as number,
          streamId: input.readUInt32BE(5),
        };
        if (frame.type === FRAME.GOAWAY) frame.errorCode = input.readUInt32BE(9 + 4);
        if (frame.type === FRAME.RST_STREAM) frame.errorCode = input.readUInt32BE(9);
        out.push(frame);
        input = input.subarray(9 + length);
      }
    });
    socket.once('close', () => done(true));
    socket.once('error', () => done(true));
    socket.once('connect', () => {
      const write = (b: Buffer): void => {
        if (socket.destroyed) return;
        socket.write(b);
        written += b.length;
      };
      write(H2_PREFACE);
      write(settingsFrame());
      for (const frame of frames) write(frame);
      timer = setTimeout(() => done(false), waitMs);
    });
  });
}

/** HTTP/2 error codes (RFC 9113 §7) the hostile tests expect. */
export const H2_ERROR = {
  NO_ERROR: 0,
  PROTOCOL_ERROR: 1,
  INTERNAL_ERROR: 2,
  FLOW_CONTROL_ERROR: 3,
  REFUSED_STREAM: 7,
  CANCEL: 8,
  COMPRESSION_ERROR: 9,
  ENHANCE_YOUR_CALM: 11,
} as const;
