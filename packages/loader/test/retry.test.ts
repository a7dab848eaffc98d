import { backoffDelayMs, LoaderError, retry, type RetryNotice, type RetryPolicy } from '../src/index.js';

const POLICY: RetryPolicy = { retries: 3, timeoutMs: 1000, backoffMs: 100, maxBackoffMs: 1000 };
const unavailable = (retryAfterMs?: number): LoaderError =>
  new LoaderError('LOADER_SOURCE_UNAVAILABLE', 'HTTP 503', retryAfterMs === undefined ? {} : { retryAfterMs });

describe('backoffDelayMs', () => {
  it('draws full jitter below an exponential ceiling', () => {
    expect([0, 1, 2, 3].map((n) => backoffDelayMs(POLICY, n, undefined, () => 0.999999))).toEqual([99, 199, 399, 799]);
    expect(backoffDelayMs(POLICY, 2, undefined, () => 0)).toBe(0);
    expect(backoffDelayMs(POLICY, 1, undefined, () => 0.5)).toBe(100);
  });

  it('never exceeds the cap however many retries came before', () => {
    expect(backoffDelayMs(POLICY, 20, undefined, () => 0.999999)).toBe(999);
  });

  it('uses Retry-After instead of jitter, capped', () => {
    expect(backoffDelayMs(POLICY, 0, 700, () => 0)).toBe(700);
    expect(backoffDelayMs(POLICY, 0, 60_000, () => 0)).toBe(1000);
  });
});

describe('retry', () => {
  const fast: RetryPolicy = { retries: 2, timeoutMs: 1000, backoffMs: 1, maxBackoffMs: 5 };

  it('returns the first success', async () => {
    let calls = 0;
    const value = await retry(
      async () => {
        calls++;
        if (calls < 3) throw unavailable();
        return 'ok';
      },
      fast,
      { label: 'test' },
    );
    expect(value).toBe('ok');
    expect(calls).toBe(3);
  });

  it('does not retry an error that is not retryable', async () => {
    let calls = 0;
    const attempt = async (): Promise<never> => {
      calls++;
      throw new LoaderError('LOADER_SOURCE_NOT_FOUND', 'HTTP 404');
    };
    await expect(retry(attempt, fast, { label: 'test' })).rejects.toMatchObject({
      code: 'LOADER_SOURCE_NOT_FOUND',
      message: 'HTTP 404',
    });
    expect(calls).toBe(1);
  });

  it('announces each retry with its attempt number and delay', async () => {
    const notices: RetryNotice[] = [];
    await expect(
      retry(
        async () => {
          throw unavailable(3);
        },
        fast,
        { label: 'test', onRetry: (n) => notices.push(n) },
      ),
    ).rejects.toMatchObject({
      code: 'LOADER_SOURCE_UNAVAILABLE',
      message: 'HTTP 503 (gave up after 3 attempts)',
    });
    expect(notices.map((n) => [n.attempt, n.attempts, n.delayMs])).toEqual([
      [1, 3, 3],
      [2, 3, 3],
    ]);
  });

  it('aborts an attempt that outlives the timeout and classifies it as a timeout', async () => {
    const reasons: unknown[] = [];
    const attempt = (signal: AbortSignal): Promise<never> =>
      new Promise((_, reject) =>
        signal.addEventListener('abort', () => {
          reasons.push(signal.reason);
          reject(new Error('socket closed'));
        }),
      );
    await expect(retry(attempt, { ...fast, timeoutMs: 20, retries: 1 }, { label: 'GET x' })).rejects.toMatchObject({
      code: 'LOADER_TIMEOUT',
      message: 'GET x: no complete answer within 20ms (gave up after 2 attempts)',
    });
    expect(reasons).toHaveLength(2);
  });

  it('stops during the wait between attempts when the outer signal aborts', async () => {
    const controller = new AbortController();
    const slow: RetryPolicy = { retries: 5, timeoutMs: 1000, backoffMs: 60_000, maxBackoffMs: 60_000 };
    const pending = retry(
      async () => {
        throw unavailable(60_000);
      },
      slow,
      { label: 'test', signal: controller.signal },
    );
    setTimeout(() => controller.abort(), 20);
    await expect(pending).rejects.toMatchObject({ code: 'LOADER_ABORTED' });
  });
});
