import { parseSettings } from '../src/config.js';
import { useFixture } from './support/fixture.js';
import { send } from './support/sidecar.js';

const fx = useFixture('each');

describe('reload', () => {
  it('applies new queue, limit and timeout settings in place', async () => {
    const sidecar = await fx.start(
      'trafficPolicy: { connectionPool: { tcp: { maxConnections: 2 }, http: { http1MaxPendingRequests: 3 } } }',
    );
    sidecar.reload(
      parseSettings(`
trafficPolicy: { connectionPool: { tcp: { maxConnections: 5 }, http: { http1MaxPendingRequests: 9 } } }
sidecar: { upstream: { timeout: 100ms } }
`),
    );
    expect(sidecar.state()).toMatchObject({ concurrency: { limit: 5 }, queue: { size: 9 } });
    fx.upstream.handler = () => {}; // hangs: only the new 100 ms timeout can end it
    const answer = await send(sidecar.port, '/hang');
    expect(answer.status).toBe(504);
    expect(answer.ms).toBeLessThan(2000);
  });

  it('restarts an open breaker closed when the breaker settings change', async () => {
    fx.upstream.handler = (_req, res) => {
      res.statusCode = 500;
      res.end();
    };
    const sidecar = await fx.start(
      'trafficPolicy: { outlierDetection: { consecutive5xxErrors: 1 } }\nsidecar: { breaker: { resetTimeout: 30s } }',
    );
    await send(sidecar.port, '/fail');
    expect(sidecar.state().breaker).toMatchObject({ state: 'open' });
    sidecar.reload(
      parseSettings(
        'trafficPolicy: { outlierDetection: { consecutive5xxErrors: 3 } }\nsidecar: { breaker: { resetTimeout: 30s } }',
      ),
    );
    expect(sidecar.state().breaker).toMatchObject({ state: 'closed' });
    expect((await send(sidecar.port, '/again')).status).toBe(500); // forwarded again
  });
});
