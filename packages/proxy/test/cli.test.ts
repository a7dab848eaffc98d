import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  runSidecarCli as runCli,
  sleep,
  slow,
  startSidecar,
  startUpstream,
  type SidecarProcess,
  type TestUpstream,
} from '@infer-cb/testkit';
import { send } from './support/sidecar.js';

let upstream: TestUpstream;
let child: SidecarProcess | undefined;

/** The CLI as a real child process on port 0, logging at debug (its limit changes too). */
function startChild(upstreamOrigin: string, configPath: string): Promise<SidecarProcess> {
  return startSidecar({ upstream: upstreamOrigin, configPath, logLevel: 'debug', heapFlags: false });
}
const dir = mkdtempSync(join(tmpdir(), 'cb-cli-'));
let n = 0;
function configFile(text: string): string {
  const file = join(dir, `cb-${n++}.yaml`);
  writeFileSync(file, text);
  return file;
}

beforeEach(async () => {
  upstream = await startUpstream();
});
afterEach(async () => {
  await child?.proc.stop(0, 'SIGKILL');
  child = undefined;
  await upstream.crash();
});

describe('cb-sidecar CLI', () => {
  it('--version prints the version; one port for both listeners is a problem', async () => {
    const v = await runCli(['--version']);
    expect(v.code).toBe(0);
    expect(v.stdout).toMatch(/^cb-sidecar \d+\.\d+\.\d+\n$/);
    const same = await runCli(['--check-config', '--listen', '127.0.0.1:8080', '--admin-port', '8080']);
    expect(same.code).toBe(2);
    expect(same.stderr).toMatch(/--admin-port\/CB_ADMIN_PORT 8080 is the proxy listener's port too/);
  });

  it('--check-config exits 0 on a valid file', async () => {
    const file = configFile('trafficPolicy: { connectionPool: { tcp: { maxConnections: 4 } } }\n');
    const r = await runCli(['--check-config', '--config', file]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/configuration OK/);
  });

  it('--check-config exits 2 and prints every problem', async () => {
    const file = configFile('sidecar: { queue: { timout: 1s }, upstream: { timeout: fast } }\n');
    const r = await runCli(['--check-config', '--config', file, '--upstream', 'ftp://x']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/timout: unknown key; did you mean "timeout"\?/);
    expect(r.stderr).toMatch(/upstream\.timeout: "fast" is not a duration/);
    expect(r.stderr).toMatch(/only http:\/\/ upstreams are supported/);
    // The problems, then one line pointing at --help (not the whole usage text).
    expect(r.stderr.trimEnd().split('\n').at(-1)).toBe('(cb-sidecar --help lists the flags)');
    expect(r.stderr).not.toMatch(/^usage/im);
  });

  it('refuses to start with an invalid config, exit 2', async () => {
    const r = await runCli(['--listen', '127.0.0.1:0', '--admin-port', '0'], {
      CB_CONFIG: configFile('sidecar: { breaker: { volumeThreshold: -1 } }\n'),
    });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/volumeThreshold: -1 is out of range/);
  });

  it('refuses to start with an unknown CB_LOG_LEVEL, exit 2', async () => {
    const r = await runCli(['--check-config'], { CB_LOG_LEVEL: 'verbose' });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/CB_LOG_LEVEL: "verbose" is not a log level/);
  });

  it('reloads a valid config on SIGHUP and keeps the old one when the new file is invalid', async () => {
    const file = configFile('trafficPolicy: { connectionPool: { tcp: { maxConnections: 2 } } }\n');
    child = await startChild(upstream.origin, file);
    const limit = async () =>
      (JSON.parse((await send(child!.adminPort, '/state')).body) as { concurrency: { limit: number } }).concurrency
        .limit;
    expect(await limit()).toBe(2);

    writeFileSync(file, 'trafficPolicy: { connectionPool: { tcp: { maxConnections: 7 } } }\n');
    child.proc.signal('SIGHUP');
    const reloaded = await child.proc.waitForLog(/config reloaded: concurrency changed/);
    expect(reloaded.changed).toEqual(['concurrency']);
    expect(await limit()).toBe(7);

    writeFileSync(file, 'trafficPolicy: { connectionPool: { tcp: { maxConections: 1 } } }\n');
    child.proc.signal('SIGHUP');
    const rejected = await child.proc.waitForLog(/config reload rejected/);
    expect(String((rejected.problems as string[])[0])).toMatch(/did you mean "maxConnections"/);
    expect(await limit()).toBe(7);
    expect((await send(child.port, '/still-serving')).status).toBe(200);
  });

  it('drains on SIGTERM: readiness fails at once, in-flight requests all finish, exit 0 before the grace period', async () => {
    upstream.handler = slow(400);
    const file = configFile('sidecar: { drain: { delay: 500ms, grace: 5s } }\n');
    child = await startChild(upstream.origin, file);
    const port = child.port;
    expect((await send(child.adminPort, '/readyz')).status).toBe(200);
    const inflight = Array.from({ length: 10 }, (_, i) => send(port, `/in-flight-${i}`));
    await sleep(50);
    const sentAt = performance.now();
    child.proc.signal('SIGTERM');
    await child.proc.waitForLog(/^draining/);
    // during drain.delay the listener still serves new requests (endpoints are still updating)
    const duringDelay = send(port, '/during-delay');
    const ready = await send(child.adminPort, '/readyz');
    expect(ready.status).toBe(503);
    expect(JSON.parse(ready.body)).toEqual({ status: 'draining' });
    const answers = await Promise.all([...inflight, duringDelay]);
    expect(answers.map((a) => a.status)).toEqual(Array(11).fill(200));
    const { code } = await child.proc.exited;
    expect(code).toBe(0);
    expect(performance.now() - sentAt).toBeLessThan(5000);
    expect(upstream.received).toBe(11);
    await expect(send(port, '/after')).rejects.toThrow();
  });
});
