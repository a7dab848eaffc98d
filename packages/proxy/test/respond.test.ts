import { raw } from '@infer-cb/testkit';
import { REASONS, REQUEST_OUTCOMES } from '../src/outcomes.js';
import { useFixture } from './support/fixture.js';
import { metricsText, send } from './support/sidecar.js';

const fx = useFixture('each');

/** Sends raw bytes and returns everything the sidecar wrote back before closing. */
async function rawText(port: number, text: string): Promise<string> {
  return (await raw(port, [text])).text;
}

/** The `cb_requests_total` / `cb_admin_requests_total` samples of a metrics text, as `labels value`. */
function samples(text: string, metric: string): string[] {
  return [...text.matchAll(new RegExp(`^${metric}\\{([^}]*)\\} (\\d+)`, 'gm'))].map((m) => `${m[1]} ${m[2]}`);
}

describe('every answer is counted', () => {
  it('counts the answers made before the pipeline (4xx and 501) by outcome and status', async () => {
    const sidecar = await fx.start();
    const { port } = sidecar;
    await rawText(port, 'OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    await rawText(port, 'CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n\r\n');
    await rawText(port, 'GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n');
    await rawText(port, 'F@O / HTTP/1.1\r\nHost: x\r\n\r\n');
    const large = await rawText(port, `GET / HTTP/1.1\r\nHost: x\r\nx-bloat: ${'a'.repeat(32 * 1024)}\r\n\r\n`);
    const deadline = await send(port, '/d', { headers: { 'x-request-timeout-ms': 'soon' } });
    expect(large).toMatch(/^HTTP\/1\.1 431/);
    expect(large).toContain('"code":"CB_HEADERS_TOO_LARGE"');
    expect(deadline.status).toBe(400);
    expect(samples(await metricsText(sidecar), 'cb_requests_total').sort()).toEqual([
      'outcome="bad-request",code="400",class="default" 2',
      'outcome="bad-target",code="400",class="default" 1',
      'outcome="headers-too-large",code="431",class="default" 1',
      'outcome="method-not-allowed",code="405",class="default" 1',
      'outcome="upgrade-refused",code="501",class="default" 1',
    ]);
    expect(fx.upstream.received).toBe(0);
  });

  it('counts admin answers in a metric of their own, apart from the requests', async () => {
    const sidecar = await fx.start();
    const admin = sidecar.adminPort;
    await send(admin, '/healthz');
    await send(admin, '/healthz');
    await send(admin, '/state');
    await send(admin, '/nope');
    const posted = await send(admin, '/state', { method: 'POST' });
    expect(posted.status).toBe(405);
    expect(JSON.parse(posted.body).error.code).toBe('CB_METHOD_NOT_ALLOWED');
    const text = await metricsText(sidecar); // this scrape is counted once it has been answered
    expect(samples(text, 'cb_admin_requests_total').sort()).toEqual([
      'endpoint="healthz",code="200" 2',
      'endpoint="other",code="404" 1',
      'endpoint="state",code="200" 1',
      'endpoint="state",code="405" 1',
    ]);
    expect(samples(text, 'cb_requests_total')).toEqual([]);
    expect(samples(await metricsText(sidecar), 'cb_admin_requests_total')).toContain('endpoint="metrics",code="200" 1');
  });

  it('labels requests only with the outcomes of the table', async () => {
    const sidecar = await fx.start();
    await send(sidecar.port, '/ok');
    const outcomes = samples(await metricsText(sidecar), 'cb_requests_total').map(
      (s) => /outcome="([^"]+)"/.exec(s)?.[1],
    );
    for (const outcome of outcomes) expect(REQUEST_OUTCOMES).toContain(outcome);
    expect(REQUEST_OUTCOMES).toEqual(expect.arrayContaining(['forwarded', 'client-closed', ...REASONS]));
  });
});
