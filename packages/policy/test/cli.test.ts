import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { runCli } from '../src/index.js';

const BOOK = fileURLToPath(new URL('../fixtures/book-destinationrule.yaml', import.meta.url));
const MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'cb-policy-cli-'));

describe('cb-policy', () => {
  it('envoy caller: YAML of the bootstrap on stdout, notes on what is not modelled on stderr', () => {
    const r = runCli([
      'envoy',
      'caller',
      '--policy',
      BOOK,
      '--profile',
      'book',
      '--service',
      'iris-svc',
      '--endpoint',
      '127.0.0.1:9001',
      '--endpoint',
      '127.0.0.1:9002',
      '--listen',
      '127.0.0.1:0',
      '--access-log',
      '-',
    ]);
    expect(r.code).toBe(0);
    const b = parse(r.stdout) as { static_resources: { clusters: { name: string; lb_policy: string }[] } };
    expect(b.static_resources.clusters[0]).toMatchObject({
      name: 'outbound|8000|svc|iris-svc',
      lb_policy: 'ROUND_ROBIN',
    });
    expect(r.stdout).toMatch(
      /^# Envoy bootstrap written by cb-policy: the caller of iris-svc, profile book \(Istio 1\.9\)/,
    );
    expect(r.stderr).toMatch(/cb-policy: note: .*consecutiveErrors: ignored/);
  });

  it('envoy inbound: defaults to the current profile and Istio ports', () => {
    const r = runCli(['envoy', 'inbound', '--policy', BOOK, '--app', '127.0.0.1:8000']);
    expect(r.code).toBe(0);
    const b = parse(r.stdout) as { admin: { address: { socket_address: { port_value: number } } } };
    expect(b.admin.address.socket_address.port_value).toBe(15000);
    expect(r.stdout).toContain('inbound|8000||');
    expect(r.stdout).toContain('reset-before-request');
  });

  it('limits: the arithmetic as comments above the config', () => {
    const r = runCli(['limits', '--policy', BOOK, '--replicas', '3', '--capacity', '8x200ms']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^# limit = slots \+ handoff slots = 8 \+ /m);
    const doc = parse(r.stdout) as { sidecar: { concurrency: { max: number } } };
    expect(doc.sidecar.concurrency.max).toBe(9);
  });

  it('sidecar: only the config', () => {
    const r = runCli(['sidecar', '--policy', BOOK, '--replicas', '3', '--callers', '2', '--mode', 'adaptive']);
    expect(r.code).toBe(0);
    expect(r.stdout).not.toMatch(/^# mesh:/m);
    expect((parse(r.stdout) as { sidecar: { concurrency: { mode: string } } }).sidecar.concurrency.mode).toBe(
      'adaptive',
    );
  });

  it("sidecar --overrides: merges a file's sidecar section over the derived config, checked like the rest", () => {
    const over = join(dir, 'over.yaml');
    writeFileSync(
      over,
      'sidecar:\n  priority: { rules: [{ pathPrefix: /metrics, class: critical }] }\n  queue: { timeout: 7ms }\n',
    );
    const r = runCli(['sidecar', '--policy', BOOK, '--replicas', '3', '--overrides', over]);
    expect(r.code).toBe(0);
    const doc = parse(r.stdout) as { sidecar: { priority: unknown; queue: { timeout: string }; concurrency: object } };
    expect(doc.sidecar.priority).toEqual({ rules: [{ pathPrefix: '/metrics', class: 'critical' }] });
    expect(doc.sidecar.queue.timeout).toBe('7ms');
    expect(doc.sidecar.concurrency).toBeDefined();
    const bad = join(dir, 'over-bad.yaml');
    writeFileSync(bad, 'sidecar: { priority: { rules: [{ pathPrefix: /x, class: vip }] }, foo: 1 }\n');
    const refused = runCli(['sidecar', '--policy', BOOK, '--replicas', '3', '--overrides', bad]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/--overrides .*over-bad\.yaml: sidecar\.foo: unknown key/);
    expect(refused.stderr.trimEnd().split('\n')).toHaveLength(1);
    const notSidecar = join(dir, 'over-tp.yaml');
    writeFileSync(notSidecar, 'trafficPolicy: {}\n');
    expect(runCli(['sidecar', '--policy', BOOK, '--replicas', '3', '--overrides', notSidecar]).stderr).toMatch(
      /must be a mapping with one key, sidecar/,
    );
  });

  it('check: says the policy is valid', () => {
    expect(runCli(['check', '--policy', BOOK]).stdout).toMatch(/valid/);
  });

  it.each(
    (
      [
        [[], /a command is required/],
        [['envoy', 'outbound', '--policy', BOOK], /unknown command "envoy outbound"/],
        [['envoy', 'caller', '--policy', BOOK, '--service', 'iris-svc'], /--endpoint HOST:PORT is required/],
        [
          ['envoy', 'caller', '--policy', BOOK, '--service', 'x', '--endpoint', 'nohost'],
          /--endpoint: "nohost" is not HOST:PORT/,
        ],
        [
          ['envoy', 'inbound', '--policy', BOOK, '--app', '1.2.3.4:1', '--profile', 'istio'],
          /--profile: must be one of book, current/,
        ],
        [['sidecar', '--policy', BOOK], /--replicas N is required/],
        [
          ['sidecar', '--policy', BOOK, '--replicas', '3', '--capacity', 'fast'],
          /--capacity: "fast" is not SLOTSxSERVICE_TIME/,
        ],
        [['sidecar', '--policy', BOOK, '--replicas', '3', '--app', '1.2.3.4:5'], /sidecar: --app does not apply/],
        [['check', '--polcy', BOOK], /Unknown option '--polcy'/],
        [['check'], /--policy FILE is required/],
      ] as [string[], RegExp][]
    ).map(([argv, m]) => [argv.join(' ').replace(BOOK, 'book.yaml') || '(nothing)', argv, m] as const),
  )('exits 2 with one line for: %s', (_label, argv, message) => {
    const r = runCli(argv);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(message);
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
  });

  it('puts every problem of a bad policy on its one line', () => {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'trafficPolicy: { connectionPool: { tcp: { maxConnections: many, connectTimeout: soon } } }\n');
    const r = runCli(['check', '--policy', bad]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /^cb-policy: 2 problems: .*maxConnections: must be integer.*; .*connectTimeout: "soon" is not a duration/,
    );
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
  });

  it('the built binary exits 2 on bad input and 0 with --help', () => {
    const bad = spawnSync(process.execPath, [MAIN, 'check', '--policy', join(dir, 'missing.yaml')], {
      encoding: 'utf8',
    });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/^cb-policy: .*missing\.yaml: ENOENT/);
    const help = spawnSync(process.execPath, [MAIN, '--help'], { encoding: 'utf8' });
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/^usage:/);
  });
});
