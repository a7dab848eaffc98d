import { STATUS_CODES } from 'node:http';

/** The part of a `net.Socket` an answer needs. */
export interface RawSocket {
  readonly destroyed: boolean;
  end(data: string): void;
  on?(event: 'error', listener: (err: Error) => void): unknown;
  destroy?(): void;
}

/**
 * Writes one complete HTTP/1.1 answer on a raw socket and ends the connection: what a server can still say
 * about a request Node handed over as a socket (CONNECT, Upgrade, a request it could not parse). A socket
 * already gone is left alone; a socket error while writing only destroys it.
 * @param headers the answer's headers (`connection: close` is added when missing)
 */
export function writeRawAnswer(socket: RawSocket, status: number, headers: Record<string, string>, body: string): void {
  if (socket.destroyed) return;
  socket.on?.('error', () => socket.destroy?.());
  const lines = [`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Unknown'}`];
  for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
  if (!Object.keys(headers).some((name) => name.toLowerCase() === 'connection')) lines.push('connection: close');
  socket.end(`${lines.join('\r\n')}\r\n\r\n${body}`);
}
