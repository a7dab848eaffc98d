import { connect, type Socket } from 'node:net';

/** One raw answer: status, lower-cased headers, body, and ms from the burst's send to the last byte. */
export interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
  ms: number;
}

/**
 * Opens `n` connections first, then writes one request on each in the same tick, so all `n` requests
 * really arrive together (a client opening connections lazily spreads them over hundreds of ms).
 */
export async function burst(port: number, n: number, path = '/'): Promise<RawAnswer[]> {
  const sockets = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<Socket>((resolve, reject) => {
          const s = connect(port, '127.0.0.1', () => resolve(s));
          s.once('error', reject);
        }),
    ),
  );
  const started = performance.now();
  const answers = sockets.map(
    (s) =>
      new Promise<RawAnswer>((resolve, reject) => {
        let text = '';
        s.setEncoding('latin1');
        s.on('data', (d: string) => (text += d));
        s.once('error', reject);
        s.once('end', () => resolve(parse(text, performance.now() - started)));
      }),
  );
  for (const s of sockets) s.write(`GET ${path} HTTP/1.1\r\nHost: burst\r\nConnection: close\r\n\r\n`);
  return Promise.all(answers);
}

function parse(text: string, ms: number): RawAnswer {
  const split = text.indexOf('\r\n\r\n');
  const [statusLine = '', ...lines] = text.slice(0, split).split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { status: Number(statusLine.split(' ')[1]), headers, body: text.slice(split + 4), ms };
}
