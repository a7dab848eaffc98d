// Grafana dashboards and alerts as code: the committed files match the generator; every PromQL expression is
// evaluated by a real Prometheus (Debian package) scraping a real iris-api and cb-sidecar under overload and real
// Envoys that name and filter their stats as an Istio sidecar does (with the monitoring component's
// proxyStatsMatcher); the alerting rules pass promtool's unit tests. test/dashboards-lab.test.ts runs the same
// queries against the lab's stock Envoys.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parse, stringify } from 'yaml';
import { PROMETHEUS_RULE_PATH, alertGroups, dashboards, expressions, generatedFiles } from '@infer-cb/dashboards';
import {
  callerBootstrap,
  inboundBootstrap,
  parseMeshPolicy,
  type Address,
  type EnvoyBootstrap,
} from '@infer-cb/policy';
import { onFreePort, startEnvoy, type TestEnvoy } from '@infer-cb/testkit';
import { istioTelemetryOnly, panelQueries, readsEnvoyStats, substitute } from './dashboard-queries.js';
import { withIstioStats, type ProxyStatsMatcher } from './istio-envoy-stats.js';
import { ROOT } from './manifests-render.js';
import { startStack, type LocalStack } from './load-tools-stack.js';

const PROMETHEUS = '/usr/bin/prometheus';
const ISTIO_NS = 'circuit-breaker-istio';
const SIDECAR_NS = 'circuit-breaker-sidecar';
/** Values Grafana would substitute: the arms' default namespaces, all pods, a rate window for 2 s scrapes. */
const VARIABLES: Record<string, string> = {
  $__rate_interval: '20s',
  $istio_ns: ISTIO_NS,
  $sidecar_ns: SIDECAR_NS,
  $namespace: SIDECAR_NS,
  $pod: '.*',
};

/** The proxyStatsMatcher the monitoring component puts on the pods of `file` (a patch in the component). */
function componentMatcher(file: 'envoy-stats-callers.yaml' | 'envoy-stats-model.yaml'): ProxyStatsMatcher {
  const patch = parse(readFileSync(join(ROOT, 'manifests/components/monitoring', file), 'utf8')) as {
    spec: { template: { metadata: { annotations: Record<string, string> } } };
  };
  const config = parse(patch.spec.template.metadata.annotations['proxy.istio.io/config'] ?? '') as {
    proxyStatsMatcher: ProxyStatsMatcher;
  };
  return config.proxyStatsMatcher;
}

describe('generated dashboards', () => {
  it.each(generatedFiles().map((f) => [f.path, f.text]))('commits %s exactly as generated', (path, text) => {
    expect(readFileSync(join(ROOT, path), 'utf8')).toBe(text);
  });

  it('overlays both arms on one axis: offered load, goodput, rejections, latency of every answer', () => {
    const ab = dashboards.find((d) => d.file === 'circuit-breaker-ab.json')!.build();
    const panels = (ab.panels ?? []) as { title?: string; targets?: { expr?: string; legendFormat?: string }[] }[];
    const both = panels.filter((p) => p.title?.startsWith('A and B · '));
    expect(both.map((p) => p.title)).toEqual([
      'A and B · offered load',
      'A and B · goodput',
      'A and B · rejected',
      'A and B · latency of every answer',
    ]);
    for (const p of both)
      for (const t of p.targets ?? []) {
        // One query, a series per arm: both namespaces matched, grouped by namespace, the namespace in the legend;
        // Istio's telemetry names the callee's namespace, Envoy's stats the namespace of the calling pod.
        const by = istioTelemetryOnly(t.expr!) ? 'destination_service_namespace' : 'namespace';
        expect(t.expr).toContain(`${by}=~"$istio_ns|$sidecar_ns"`);
        expect(t.expr).toMatch(new RegExp(`by \\((le, )?${by}\\)`));
        expect(t.legendFormat).toContain(`{{${by}}}`);
      }
    // Offered load counts every answer, and latency is of every answer: neither is narrowed to 200s.
    expect(both[0]!.targets?.every((t) => !/response_code/.test(t.expr!))).toBe(true);
    expect(both[3]!.targets?.every((t) => !/response_code/.test(t.expr!))).toBe(true);
  });

  it("reads every Istio-telemetry quantity from Envoy's own stats too, in the same panel", () => {
    const byPanel = new Map<string, string[]>();
    for (const q of panelQueries())
      byPanel.set(`${q.file}: ${q.title}`, [...(byPanel.get(`${q.file}: ${q.title}`) ?? []), q.expr]);
    const withoutTwin = [...byPanel]
      .filter(([, exprs]) => exprs.some(istioTelemetryOnly) && !exprs.some(readsEnvoyStats))
      .map(([panel]) => panel);
    expect(withoutTwin).toEqual([]);
    expect([...byPanel.values()].filter((exprs) => exprs.some(istioTelemetryOnly)).length).toBeGreaterThanOrEqual(10);
  });

  it("reads Envoy's stats in both namings, Istio's sidecar's and a stock Envoy's, whichever exists", () => {
    for (const { expr } of panelQueries().filter((q) => readsEnvoyStats(q.expr))) {
      expect(expr).toMatch(/[{,]cluster_name=~/);
      expect(expr).toContain('envoy_cluster_name=~');
      expect(expr).toContain(' or ');
    }
  });

  it('asks the callers and the model pods for the same Envoy stats', () => {
    expect(componentMatcher('envoy-stats-callers.yaml')).toEqual(componentMatcher('envoy-stats-model.yaml'));
  });

  it('shows both arms side by side and covers every question of the A/B comparison', () => {
    const ab = dashboards.find((d) => d.file === 'circuit-breaker-ab.json')!.build();
    const exprs = expressions(ab);
    expect(exprs.some((e) => e.includes('response_flags="UO"'))).toBe(true);
    expect(exprs.some((e) => e.includes('sum by (outcome) (rate(cb_requests_total'))).toBe(true);
    for (const m of [
      'cb_inflight_requests',
      'cb_concurrency_limit',
      'cb_breaker_state',
      'histogram_quantile(0.99',
      'histogram_quantile(0.5',
    ]) {
      expect(exprs.some((e) => e.includes(m))).toBe(true);
    }
    expect(exprs.some((e) => e.includes('$istio_ns'))).toBe(true);
    expect(exprs.some((e) => e.includes('$sidecar_ns'))).toBe(true);
  });

  it('lays the A/B panels out in pairs: arm A on the left, arm B on the right of the same row', () => {
    const ab = dashboards.find((d) => d.file === 'circuit-breaker-ab.json')!.build();
    const panels = (ab.panels ?? []) as { type: string; title?: string; gridPos?: { x: number; y: number } }[];
    const a = panels.filter((p) => p.title?.startsWith('A · '));
    const b = panels.filter((p) => p.title?.startsWith('B · '));
    expect(a.length).toBe(b.length);
    expect(a.length).toBeGreaterThanOrEqual(5);
    a.forEach((left, i) => {
      expect(left.gridPos?.x).toBe(0);
      expect(b[i]?.gridPos).toEqual({ ...left.gridPos, x: 12 });
    });
  });
});

describe('alerting rules (promtool, Debian prometheus package)', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'alerts-'));
    const rule = parse(readFileSync(join(ROOT, PROMETHEUS_RULE_PATH), 'utf8')) as { spec: { groups: unknown[] } };
    writeFileSync(join(dir, 'rules.yaml'), stringify({ groups: rule.spec.groups }));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('alerts on an open breaker and on shedding, in both arms', () => {
    expect(alertGroups().flatMap((g) => g.rules.map((r) => r.alert))).toEqual([
      'CbSidecarBreakerOpen',
      'CbSidecarShedding',
      'EnvoyOutlierEjection',
      'EnvoyOverflowShedding',
    ]);
  });

  it('passes promtool check rules', () => {
    const r = spawnSync('promtool', ['check', 'rules', join(dir, 'rules.yaml')], { encoding: 'utf8' });
    expect({ code: r.status, out: r.stdout + r.stderr }).toEqual({
      code: 0,
      out: expect.stringContaining('SUCCESS: 4 rules found'),
    });
  });

  it('fires each alert on the series that mean it, and not on healthy ones (promtool test rules)', () => {
    const sidecar = 'namespace="circuit-breaker-sidecar",pod="iris-svc-0"';
    const toIris = (flags: string): string =>
      `istio_requests_total{reporter="source",destination_service_namespace="circuit-breaker-istio",destination_service_name="iris-svc",response_code="${flags === 'UO' ? 503 : 200}",response_flags="${flags}"}`;
    const tests = {
      rule_files: ['rules.yaml'],
      evaluation_interval: '30s',
      tests: [
        {
          interval: '30s',
          input_series: [
            // pod 0: the breaker opens at 1 min and stays open; pod 1 stays closed.
            { series: `cb_breaker_state{${sidecar},state="open"}`, values: '0 0 1x10' },
            {
              series: 'cb_breaker_state{namespace="circuit-breaker-sidecar",pod="iris-svc-1",state="open"}',
              values: '0x12',
            },
            // 10% shed (overload) for 10 minutes in the sidecar arm: 90 forwarded, 10 shed per 30 s.
            { series: `cb_requests_total{${sidecar},outcome="forwarded",code="200"}`, values: '0+90x20' },
            { series: `cb_requests_total{${sidecar},outcome="overload",code="503"}`, values: '0+10x20' },
            // 2% Envoy overflow in the istio arm: below the threshold.
            { series: toIris(''), values: '0+98x20' },
            { series: toIris('UO'), values: '0+2x20' },
            // one host ejected from 1 min on, seen by an Istio sidecar and by a stock Envoy (the lab's names)
            {
              series:
                'envoy_cluster_outlier_detection_ejections_active{namespace="circuit-breaker-istio",cluster_name="outbound|8000||iris-svc.circuit-breaker-istio.svc.cluster.local"}',
              values: '0 0 1x10',
            },
            {
              series:
                'envoy_cluster_outlier_detection_ejections_active{namespace="cb-lab",envoy_cluster_name="outbound|8000||iris-svc"}',
              values: '0 0 1x10',
            },
          ],
          alert_rule_test: [
            { eval_time: '1m', alertname: 'CbSidecarBreakerOpen', exp_alerts: [] },
            {
              eval_time: '3m',
              alertname: 'CbSidecarBreakerOpen',
              exp_alerts: [
                {
                  exp_labels: { severity: 'warning', namespace: 'circuit-breaker-sidecar', pod: 'iris-svc-0' },
                  exp_annotations: {
                    summary: 'cb-sidecar breaker open in circuit-breaker-sidecar/iris-svc-0',
                    description: alertGroups()[0]!.rules[0]!.annotations.description,
                  },
                },
              ],
            },
            { eval_time: '4m', alertname: 'CbSidecarShedding', exp_alerts: [] },
            {
              eval_time: '10m',
              alertname: 'CbSidecarShedding',
              exp_alerts: [
                {
                  exp_labels: { severity: 'warning', namespace: 'circuit-breaker-sidecar' },
                  exp_annotations: {
                    summary: 'cb-sidecar sheds 10% of requests in circuit-breaker-sidecar',
                    description: alertGroups()[0]!.rules[1]!.annotations.description,
                  },
                },
              ],
            },
            { eval_time: '10m', alertname: 'EnvoyOverflowShedding', exp_alerts: [] },
            {
              eval_time: '3m',
              alertname: 'EnvoyOutlierEjection',
              exp_alerts: [
                {
                  exp_labels: { severity: 'warning', namespace: 'cb-lab' },
                  exp_annotations: {
                    summary: 'calling Envoys in cb-lab eject model pods',
                    description: alertGroups()[1]!.rules[0]!.annotations.description,
                  },
                },
                {
                  exp_labels: { severity: 'warning', namespace: 'circuit-breaker-istio' },
                  exp_annotations: {
                    summary: 'calling Envoys in circuit-breaker-istio eject model pods',
                    description: alertGroups()[1]!.rules[0]!.annotations.description,
                  },
                },
              ],
            },
          ],
        },
      ],
    };
    writeFileSync(join(dir, 'tests.yaml'), stringify(tests));
    const r = spawnSync('promtool', ['test', 'rules', 'tests.yaml'], { cwd: dir, encoding: 'utf8' });
    expect({ code: r.status, out: r.stdout + r.stderr }).toEqual({ code: 0, out: expect.stringContaining('SUCCESS') });
  });

  it('fires on Envoy overflow above the threshold (the check can fail)', () => {
    const series = (flags: string, per30s: number): { series: string; values: string } => ({
      series: `istio_requests_total{reporter="source",destination_service_namespace="circuit-breaker-istio",destination_service_name="iris-svc",response_code="503",response_flags="${flags}"}`,
      values: `0+${per30s}x20`,
    });
    const tests = {
      rule_files: ['rules.yaml'],
      tests: [
        {
          interval: '30s',
          input_series: [series('-', 80), series('UO', 20)],
          alert_rule_test: [{ eval_time: '10m', alertname: 'EnvoyOverflowShedding', exp_alerts: [] }],
        },
      ],
    };
    writeFileSync(join(dir, 'fails.yaml'), stringify(tests));
    // 20% overflow does fire, so expecting no alert fails: promtool exits 1.
    expect(spawnSync('promtool', ['test', 'rules', 'fails.yaml'], { cwd: dir, encoding: 'utf8' }).status).toBe(1);
  });
});

describe('dashboard PromQL against a real Prometheus, Istio-named Envoys and cb-sidecar', () => {
  let stack: LocalStack;
  let promUrl: string;
  let dir: string;
  let stopLoad = false;
  let load: Promise<void>;
  /** What the load saw, by arm and status code or error name: quoted when Prometheus has nothing. */
  const seen: Record<string, number> = {};

  /**
   * Every 100 ms a burst of 8 simultaneous requests to each arm's caller Envoy: in arm A the Envoy's pool of
   * 2 connections + 2 pending answers the rest 503 UO; in arm B the sidecar (concurrency 2 + 2 queued) sheds them.
   * On a slow machine a burst's arrivals spread out and fewer are shed, but some are, and the steady trickle keeps
   * the rate() windows filled. Cheap on purpose (160 req/s): CI runs this next to another heavy test on two cores.
   */
  async function bursts(arms: Record<string, string>, init: RequestInit): Promise<void> {
    const deadline = Date.now() + 120_000; // bounded even if afterAll never runs
    while (!stopLoad && Date.now() < deadline) {
      const round = sleep(100);
      await Promise.all(
        Object.entries(arms).flatMap(([arm, url]) =>
          Array.from({ length: 8 }, async () => {
            const key = await fetch(url, { ...init, signal: AbortSignal.timeout(5000) }).then(
              async (r) => {
                await r.arrayBuffer();
                return String(r.status);
              },
              (err: Error & { cause?: { code?: string } }) => err.cause?.code ?? err.name,
            );
            seen[`${arm} ${key}`] = (seen[`${arm} ${key}`] ?? 0) + 1;
          }),
        ),
      );
      await round;
    }
  }

  const envoys: TestEnvoy[] = [];
  /** Starts a real Envoy on `bootstrap` with the stats an Istio sidecar would name and keep. */
  async function envoy(bootstrap: EnvoyBootstrap, matcher: ProxyStatsMatcher): Promise<TestEnvoy> {
    const started = await startEnvoy(() => withIstioStats(bootstrap, matcher));
    envoys.push(started);
    return started;
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'dash-prom-'));
    stack = await startStack();
    const address = (u: string): Address => ({ address: '127.0.0.1', port: Number(new URL(u).port) });
    const any: Address = { address: '127.0.0.1', port: 0 };
    const profile = 'current';
    // Arm A: the DestinationRule's pool, small enough for bursts to overflow, in the caller's Envoy and in the model
    // pod's inbound one; arm B: no limits in the mesh, cb-sidecar behind it.
    const dr = parseMeshPolicy(`apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: iris-svc }
spec:
  host: iris-svc
  trafficPolicy:
    connectionPool: { tcp: { maxConnections: 2 }, http: { http1MaxPendingRequests: 2 } }
    outlierDetection: { consecutive5xxErrors: 5, interval: 10s, baseEjectionTime: 30s, maxEjectionPercent: 100 }
`);
    const none = parseMeshPolicy(
      'apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: { name: iris-svc }\nspec: { host: iris-svc }\n',
    );
    const callers = componentMatcher('envoy-stats-callers.yaml');
    const inbound = await envoy(
      inboundBootstrap(dr, { profile, app: address(stack.apiUrl), listen: any, admin: any }),
      componentMatcher('envoy-stats-model.yaml'),
    );
    const fqdn = (ns: string): string => `iris-svc.${ns}.svc.cluster.local`;
    const callerA = await envoy(
      callerBootstrap(dr, {
        profile,
        service: fqdn(ISTIO_NS),
        endpoints: [address(inbound.url)],
        listen: any,
        admin: any,
      }),
      callers,
    );
    const callerB = await envoy(
      callerBootstrap(none, {
        profile,
        service: fqdn(SIDECAR_NS),
        endpoints: [address(stack.sidecarUrl)],
        listen: any,
        admin: any,
      }),
      callers,
    );

    const target = (u: string): string => new URL(u).host;
    const group = (u: string, ns: string, pod: string): string =>
      `{ targets: ["${target(u)}"], labels: { namespace: ${ns}, pod: ${pod} } }`;
    const labels = `{ namespace: ${SIDECAR_NS}, ab_arm: sidecar, app: iris-svc }`;
    writeFileSync(
      join(dir, 'prometheus.yml'),
      [
        'global: { scrape_interval: 2s, scrape_timeout: 2s, evaluation_interval: 2s }',
        'scrape_configs:',
        `  - { job_name: cb-sidecar, static_configs: [ { targets: ["${target(stack.adminUrl)}"], labels: ${labels} } ] }`,
        `  - { job_name: iris-api, static_configs: [ { targets: ["${target(stack.apiUrl)}"], labels: ${labels} } ] }`,
        `  - job_name: envoy-stats`,
        `    metrics_path: /stats/prometheus`,
        `    static_configs:`,
        `      - ${group(callerA.adminUrl, ISTIO_NS, 'client-0')}`,
        `      - ${group(inbound.adminUrl, ISTIO_NS, 'iris-svc-0')}`,
        `      - ${group(callerB.adminUrl, SIDECAR_NS, 'client-0')}`,
        '',
      ].join('\n'),
    );
    // Prometheus is told its port: a chosen one, and another while that one is taken.
    promUrl = await onFreePort(async (port) => {
      const url = `http://127.0.0.1:${port}`;
      await stack.start({
        name: 'prometheus',
        command: PROMETHEUS,
        readyUrl: `${url}/-/ready`,
        readyTimeoutMs: 20_000,
        args: [
          `--config.file=${join(dir, 'prometheus.yml')}`,
          `--storage.tsdb.path=${join(dir, 'data')}`,
          `--web.listen-address=127.0.0.1:${port}`,
          '--log.level=warn',
        ],
      });
      return url;
    });
    const body = readFileSync(join(ROOT, 'vegeta/data.json'), 'utf8');
    load = bursts(
      { A: `${callerA.url}/predict`, B: `${callerB.url}/predict` },
      { method: 'POST', headers: { 'content-type': 'application/json' }, body },
    );
    await untilScraped();
  }, 120_000); // the stack's start (up to 2 x 20 s), Prometheus (20 s) and untilScraped (60 s) may all be slow

  /**
   * Waits until Prometheus holds several scrapes of the sidecar that include overload 503s, and two of Envoy's
   * histogram flushes (every 5 s) from both callers. When it does not, the error says why: what the load got, each
   * scrape target's health and last error, and which processes still run.
   */
  async function untilScraped(): Promise<void> {
    const deadline = Date.now() + 60_000;
    const value = async (expr: string): Promise<number> =>
      Number((await query(expr).catch(() => undefined))?.data?.result[0]?.value[1] ?? 0);
    for (;;) {
      const scrapes = await value('count_over_time(cb_inflight_requests[30s])');
      const shed = await value('sum(cb_requests_total{code="503"})');
      const timed = await value(
        'count(rate(envoy_cluster_upstream_rq_time_count{cluster_name=~"outbound.*"}[20s]) > 0)',
      );
      if (scrapes >= 4 && shed > 0 && timed >= 2) return;
      if (Date.now() > deadline) {
        const targets = (await fetch(`${promUrl}/api/v1/targets`).then(
          (r) => r.json(),
          (err: Error) => err.message,
        )) as
          | {
              data?: {
                activeTargets?: { scrapePool: string; health: string; lastError: string; lastScrapeDuration: number }[];
              };
            }
          | string;
        const health =
          typeof targets === 'string'
            ? targets
            : (targets.data?.activeTargets ?? []).map((t) => ({
                job: t.scrapePool,
                health: t.health,
                lastError: t.lastError,
                lastScrapeDuration: t.lastScrapeDuration,
              }));
        const processes = stack.running();
        throw new Error(
          `Prometheus has no overload data after 60 s: ${JSON.stringify({
            scrapes,
            shed,
            timed,
            load: seen,
            targets: health,
            running: processes,
          })}`,
        );
      }
      await sleep(500);
    }
  }

  afterAll(async () => {
    stopLoad = true;
    await load;
    await Promise.all(envoys.map((e) => e.stop()));
    await stack?.stop(); // Prometheus too: the stack started it
    rmSync(dir, { recursive: true, force: true });
  });

  async function query(expr: string): Promise<{
    status: string;
    data?: { result: { metric: Record<string, string>; value: [number, string] }[] };
    error?: string;
  }> {
    const res = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(expr)}`);
    return (await res.json()) as {
      status: string;
      data?: { result: { metric: Record<string, string>; value: [number, string] }[] };
      error?: string;
    };
  }

  it('has scraped overload 503s from the sidecar and Envoy overflows from arm A', async () => {
    const shed = await query(`sum(cb_requests_total{namespace="${SIDECAR_NS}",code="503"})`);
    expect(Number(shed.data?.result[0]?.value[1])).toBeGreaterThan(0);
    const overflow = await query(`sum(envoy_cluster_upstream_rq_pending_overflow{namespace="${ISTIO_NS}"})`);
    expect(Number(overflow.data?.result[0]?.value[1])).toBeGreaterThan(0);
  });

  it("names the Envoys' stats as an Istio sidecar does: cluster_name and response_code, nothing of Envoy's own tags", async () => {
    const clusters = await query(
      'count by (cluster_name) ({__name__=~"envoy_cluster_.+",cluster_name=~"(out|in)bound.*"})',
    );
    expect(clusters.data?.result.map((r) => r.metric['cluster_name']).sort()).toEqual([
      expect.stringMatching(/^inbound\|\d+\|\|$/),
      `outbound|8000||${'iris-svc.'}${ISTIO_NS}.svc.cluster.local`,
      `outbound|8000||iris-svc.${SIDECAR_NS}.svc.cluster.local`,
    ]);
    const stock = await query(
      'count({__name__=~"envoy_.+",envoy_cluster_name!=""} or {__name__=~"envoy_.+",envoy_response_code!=""})',
    );
    expect(stock.data?.result).toEqual([]);
  });

  const all = panelQueries();

  it.each(all.filter((q) => !istioTelemetryOnly(q.expr)).map((q) => [q.file, q.title, q.expr]))(
    '%s: %s: returns data: %s',
    async (_file, _title, expr) => {
      const r = await query(substitute(expr, VARIABLES));
      expect({ status: r.status, error: r.error }).toEqual({ status: 'success', error: undefined });
      const values = (r.data?.result ?? []).map((s) => Number(s.value[1]));
      expect(values.length).toBeGreaterThan(0);
      expect(values.some((v) => Number.isFinite(v))).toBe(true);
    },
  );

  it.each(all.filter((q) => istioTelemetryOnly(q.expr)).map((q) => [q.file, q.title, q.expr]))(
    "%s: %s: Istio telemetry, valid PromQL, nothing without Istio's stats filter: %s",
    async (_file, _title, expr) => {
      const r = await query(substitute(expr, VARIABLES));
      expect({ status: r.status, error: r.error, result: r.data?.result }).toEqual({
        status: 'success',
        error: undefined,
        result: [],
      });
    },
  );

  it('evaluates every alert expression', async () => {
    for (const rule of alertGroups().flatMap((g) => g.rules)) {
      const r = await query(rule.expr);
      expect({ alert: rule.alert, status: r.status, error: r.error }).toEqual({
        alert: rule.alert,
        status: 'success',
        error: undefined,
      });
    }
  });
});
