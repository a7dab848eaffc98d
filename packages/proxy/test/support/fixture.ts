import type { Sidecar } from '../../src/server.js';
import { startSidecar } from './sidecar.js';
import { startUpstream, type TestUpstream } from '@infer-cb/testkit';

/** A test upstream plus the sidecar in front of it, torn down by the jest hooks this registers. */
export interface Fixture {
  upstream: TestUpstream;
  sidecar: Sidecar;
  /** (re)starts the sidecar with this YAML config; the previous one is closed */
  start(yaml?: string): Promise<Sidecar>;
}

/**
 * Registers hooks that give every test (`each`) or the whole file (`all`) a fresh upstream; with `all`
 * a default-config sidecar is started too, with `each` the test calls `start(yaml)`.
 */
export function useFixture(scope: 'each' | 'all'): Fixture {
  let sidecar: Sidecar | undefined;
  const f = {
    upstream: undefined as unknown as TestUpstream,
    get sidecar(): Sidecar {
      if (sidecar === undefined) throw new Error('call start() first');
      return sidecar;
    },
    async start(yaml = ''): Promise<Sidecar> {
      await sidecar?.close();
      sidecar = await startSidecar(f.upstream.origin, yaml);
      return sidecar;
    },
  };
  const setUp = async (): Promise<void> => {
    f.upstream = await startUpstream();
    if (scope === 'all') await f.start();
  };
  const tearDown = async (): Promise<void> => {
    await sidecar?.close();
    sidecar = undefined;
    await f.upstream.crash();
  };
  if (scope === 'all') {
    beforeAll(setUp);
    afterAll(tearDown);
  } else {
    beforeEach(setUp);
    afterEach(tearDown);
  }
  return f;
}
