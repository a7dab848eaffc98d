import { Pool } from 'undici';
import { UpstreamProtocolError } from '../src/errors.js';
import { forwarder } from '../src/layers/forwarder.js';
import { Cancellation, type ProxyRequest } from '../src/pipeline.js';

function fakeRequest(path: string): ProxyRequest {
  return {
    req: { headers: {}, method: 'GET', socket: { remoteAddress: '127.0.0.1' } },
    res: {},
    cancellation: new Cancellation(),
    path,
    arrivedAt: performance.now(),
    deadline: Infinity,
    priority: 'default',
  } as unknown as ProxyRequest;
}

describe('forwarder', () => {
  it.each([
    ['a closed pool', true, '/'],
    ['a target undici rejects', false, 'not-a-path'],
  ])('settles at once, not at its 10 s timeout, when undici refuses the request (%s)', async (_name, closed, path) => {
    const pool = new Pool('http://127.0.0.1:9');
    if (closed) await pool.close();
    const forward = forwarder({ undici: () => pool }, { timeoutMs: 10_000 });
    const started = performance.now();
    await expect(forward(fakeRequest(path))).rejects.toBeInstanceOf(UpstreamProtocolError);
    expect(performance.now() - started).toBeLessThan(1000);
    if (!closed) await pool.close();
  });
});
