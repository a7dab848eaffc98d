import { request as httpRequest } from 'node:http';
import { raw } from '@infer-cb/testkit';
import { useFixture } from './support/fixture.js';
import { send } from './support/sidecar.js';

const fx = useFixture('all');

/** Sends raw bytes and returns everything the sidecar wrote back before closing or after `waitMs`. */
async function rawText(port: number, text: string, waitMs = 500): Promise<string> {
  return (await raw(port, [text], waitMs)).text;
}

describe('forwarder pass-through', () => {
  it('preserves method, path, query and streams a large request body to the upstream', async () => {
    fx.upstream.handler = async (req, res) => {
      let bytes = 0;
      for await (const chunk of req) bytes += (chunk as Buffer).length;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ method: req.method, url: req.url, bytes }));
    };
    const body = Buffer.alloc(3 * 1024 * 1024, 'x');
    const answer = await send(fx.sidecar.port, '/predict/x?a=1&b=two%20words', { method: 'PUT', body });
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body)).toEqual({ method: 'PUT', url: '/predict/x?a=1&b=two%20words', bytes: body.length });
  });

  it('streams a large response body back intact', async () => {
    const chunk = Buffer.alloc(64 * 1024, 'y');
    fx.upstream.handler = (_req, res) => {
      for (let i = 0; i < 64; i++) res.write(chunk);
      res.end();
    };
    const answer = await send(fx.sidecar.port, '/big');
    expect(answer.body.length).toBe(64 * chunk.length);
  });

  it('delivers the first chunk of a streamed answer before the upstream finishes', async () => {
    let finish: () => void = () => {};
    fx.upstream.handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('first;');
      finish = () => res.end('last');
    };
    const first = await new Promise<string>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port: fx.sidecar.port, path: '/stream' }, (res) => {
        res.once('data', (d: Buffer) => {
          resolve(d.toString());
          finish();
          res.resume();
        });
      });
      req.on('error', reject);
      req.end();
    });
    expect(first).toBe('first;');
  });

  it('passes end-to-end headers both ways and strips hop-by-hop ones, including those named in Connection', async () => {
    fx.upstream.handler = (req, res) => {
      res.setHeader('x-seen', JSON.stringify(req.headers));
      res.setHeader('set-cookie', ['a=1', 'b=2']);
      res.setHeader('x-private', 'hop');
      res.setHeader('connection', 'x-private');
      res.setHeader('keep-alive', 'timeout=5');
      res.end('ok');
    };
    const out = await rawText(
      fx.sidecar.port,
      'GET /h HTTP/1.1\r\nHost: x\r\nx-custom: v1\r\nx-drop-me: secret\r\nConnection: close, x-drop-me\r\nTE: trailers\r\nX-Forwarded-For: 10.0.0.1\r\n\r\n',
    );
    const head = out.slice(0, out.indexOf('\r\n\r\n')).toLowerCase();
    const seen = JSON.parse(/^x-seen: (.*)$/m.exec(head)?.[1] ?? '{}') as Record<string, string>;
    expect(seen['x-custom']).toBe('v1');
    expect(seen['x-drop-me']).toBeUndefined();
    expect(seen.te).toBeUndefined();
    expect(seen['x-forwarded-for']).toBe('10.0.0.1, 127.0.0.1');
    expect(seen['x-forwarded-proto']).toBe('http');
    expect(head).toContain('set-cookie: a=1\r\nset-cookie: b=2');
    expect(head).not.toContain('x-private');
    expect(head).not.toContain('keep-alive: timeout=5');
  });

  it.each([200, 201, 204, 301, 404, 418, 429])('passes the upstream status %i through unchanged', async (status) => {
    fx.upstream.handler = (_req, res) => {
      res.statusCode = status;
      if (status === 301) res.setHeader('location', '/elsewhere');
      res.end(status === 204 ? undefined : `status ${status}`);
    };
    const answer = await send(fx.sidecar.port, '/s');
    expect(answer.status).toBe(status);
    expect(answer.headers['x-cb-reason']).toBeUndefined();
  });

  it('passes an upstream 500 through with its own body (not a sidecar answer)', async () => {
    fx.upstream.handler = (_req, res) => {
      res.statusCode = 500;
      res.end('model exploded');
    };
    const answer = await send(fx.sidecar.port, '/fail');
    expect(answer.status).toBe(500);
    expect(answer.body).toBe('model exploded');
    expect(answer.headers['x-cb-reason']).toBeUndefined();
  });

  it('never lets an absolute-form target or the Host header choose the destination', async () => {
    fx.upstream.handler = (req, res) => void res.end(`${req.headers.host} ${req.url}`);
    const before = fx.upstream.received;
    const out = await rawText(
      fx.sidecar.port,
      'GET http://169.254.169.254/latest/meta-data?x=1 HTTP/1.1\r\nHost: evil.example:80\r\nConnection: close\r\n\r\n',
    );
    expect(out).toMatch(/^HTTP\/1\.1 200/);
    expect(out).toContain('evil.example:80 /latest/meta-data?x=1');
    expect(fx.upstream.received).toBe(before + 1);
  });

  it('refuses CONNECT with 405 and a JSON error', async () => {
    const out = await rawText(fx.sidecar.port, 'CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n\r\n');
    expect(out).toMatch(/^HTTP\/1\.1 405/);
    expect(out).toContain('"code":"CB_METHOD_NOT_ALLOWED"');
  });

  it('refuses a protocol upgrade with 501 and never forwards it', async () => {
    const before = fx.upstream.received;
    const out = await rawText(
      fx.sidecar.port,
      'GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
    );
    expect(out).toMatch(/^HTTP\/1\.1 501/);
    expect(out).toContain('"code":"CB_UPGRADE_REFUSED"');
    expect(fx.upstream.received).toBe(before);
  });

  it('answers 400 with the error body to an HTTP/1.1 request without Host, and a malformed one in plain words', async () => {
    const before = fx.upstream.received;
    const noHost = await rawText(fx.sidecar.port, 'GET /x HTTP/1.1\r\nConnection: close\r\n\r\n');
    expect(noHost).toMatch(/^HTTP\/1\.1 400/);
    expect(noHost).toContain('"code":"CB_BAD_REQUEST"');
    expect(noHost).toContain('Host header');
    const badMethod = await rawText(fx.sidecar.port, 'F@O / HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(badMethod).toMatch(/^HTTP\/1\.1 400/);
    expect(badMethod).toContain('"code":"CB_BAD_REQUEST"');
    expect(badMethod).toContain('not an HTTP method');
    expect(fx.upstream.received).toBe(before);
  });

  it('answers 400 to a request target that is not a path', async () => {
    const out = await rawText(fx.sidecar.port, 'OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect(out).toMatch(/^HTTP\/1\.1 400/);
    expect(out).toContain('"code":"CB_BAD_TARGET"');
  });
});
