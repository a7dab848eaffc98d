// Grafana dashboards and alerts as code: the committed files match the generator, every PromQL expression is
// evaluated by a real Prometheus (Debian package) scraping a real iris-api and cb-sidecar under overload, and the
// alerting rules pass promtool's unit tests.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parse, stringify } from 'yaml';
import { PROMETHEUS_RULE_PATH, alertGroups, dashboards, expressions, generatedFiles } from '@infer-cb/dashboards';
import { onFreePort } from '@infer-cb/testkit';
import { ROOT } from './manifests-render.js';
import { startStack, type LocalStack } from './load-tools-stack.js';

const PROMETHEUS = '/usr/bin/prometheus';
const SIDECAR_NS = 'circuit-breaker-sidecar';
/** Values Grafana would substitute: the arms' default namespaces, all pods, a rate window for 2 s scrapes. */
const VARIABLES: Record<string, string> = {
  $__rate_interval: '20s',
  $istio_ns: 'circuit-breaker-istio',
  $sidecar_ns: SIDECAR_NS,
  $namespace: SIDECAR_NS,
  $pod: '.*',
};

function substitute(expr: string): string {
  return expr.replace(/\$[a-z_]+/g, (v) => VARIABLES[v] ?? v);
}

/** Istio telemetry exists only in a mesh; locally such expressions must parse and evaluate, maybe to nothing. */
function isIstio(expr: string): boolean {
  return /\b(istio|envoy)_/.test(expr);
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
        // One query, a series per arm: both namespaces matched, grouped by namespace, the namespace in the legend.
        expect(t.expr).toContain('destination_service_namespace=~"$istio_ns|$sidecar_ns"');
        expect(t.expr).toMatch(/by \((le, )?destination_service_namespace\)/);
        expect(t.legendFormat).toContain('{{destination_service_namespace}}');
      }
    // Offered load counts every answer, and latency is of every answer: neither is narrowed to 200s.
    expect(both[0]!.targets?.[0]?.expr).not.toContain('response_code');
    expect(both[3]!.targets?.every((t) => !t.expr?.includes('response_code'))).toBe(true);
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
            // one host ejected from 1 min on
            {
              series:
                'envoy_cluster_outlier_detection_ejections_active{namespace="circuit-breaker-istio",cluster_name="outbound|8000||iris-svc.circuit-breaker-istio.svc.cluster.local"}',
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

describe('dashboard PromQL against a real Prometheus', () => {
  let stack: LocalStack;
  let promUrl: string;
  let dir: string;
  let stopLoad = false;
  let load: Promise<void>;
  /** What the load saw, by status code or error name: quoted when Prometheus has nothing. */
  const seen: Record<string, number> = {};

  /**
   * Every 100 ms a burst of 16 simultaneous requests against concurrency 2 + 2 queued: a burst that arrives
   * together sheds up to 12 (on a slow machine its arrivals spread out and it sheds fewer, but some), and
   * the steady trickle keeps the rate() windows filled.
   * Cheap on purpose (160 req/s): CI runs this next to another heavy test on two cores.
   */
  async function bursts(url: string, init: RequestInit): Promise<void> {
    const deadline = Date.now() + 120_000; // bounded even if afterAll never runs
    while (!stopLoad && Date.now() < deadline) {
      const round = sleep(100);
      await Promise.all(
        Array.from({ length: 16 }, async () => {
          const key = await fetch(url, { ...init, signal: AbortSignal.timeout(5000) }).then(
            async (r) => {
              await r.arrayBuffer();
              return String(r.status);
            },
            (err: Error & { cause?: { code?: string } }) => err.cause?.code ?? err.name,
          );
          seen[key] = (seen[key] ?? 0) + 1;
        }),
      );
      await round;
    }
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'dash-prom-'));
    stack = await startStack();
    const target = (u: string): string => new URL(u).host;
    const labels = `{ namespace: ${SIDECAR_NS}, ab_arm: sidecar, app: iris-svc }`;
    writeFileSync(
      join(dir, 'prometheus.yml'),
      [
        'global: { scrape_interval: 2s, scrape_timeout: 2s, evaluation_interval: 2s }',
        'scrape_configs:',
        `  - { job_name: cb-sidecar, static_configs: [ { targets: ["${target(stack.adminUrl)}"], labels: ${labels} } ] }`,
        `  - { job_name: iris-api, static_configs: [ { targets: ["${target(stack.apiUrl)}"], labels: ${labels} } ] }`,
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
    load = bursts(`${stack.sidecarUrl}/predict`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    });
    await untilScraped();
  }, 120_000); // the stack's start (up to 2 x 20 s), Prometheus (20 s) and untilScraped (60 s) may all be slow

  /**
   * Waits until Prometheus holds several scrapes of the sidecar that include overload 503s. When it does
   * not, the error says why: what the load got, each scrape target's health and last error, and which
   * processes still run.
   */
  async function untilScraped(): Promise<void> {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const scrapes = await query('count_over_time(cb_inflight_requests[30s])').catch(() => undefined);
      const shed = await query('sum(cb_requests_total{code="503"})').catch(() => undefined);
      if (Number(scrapes?.data?.result[0]?.value[1] ?? 0) >= 4 && Number(shed?.data?.result[0]?.value[1] ?? 0) > 0)
        return;
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
            scrapes: scrapes?.data?.result,
            shed: shed?.data?.result,
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
    await stack?.stop(); // Prometheus too: the stack started it
    rmSync(dir, { recursive: true, force: true });
  });

  async function query(
    expr: string,
  ): Promise<{ status: string; data?: { result: { value: [number, string] }[] }; error?: string }> {
    const res = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(expr)}`);
    return (await res.json()) as { status: string; data?: { result: { value: [number, string] }[] }; error?: string };
  }

  it('has scraped overload 503s from the sidecar', async () => {
    const r = await query(`sum(cb_requests_total{namespace="${SIDECAR_NS}",code="503"})`);
    expect(Number(r.data?.result[0]?.value[1])).toBeGreaterThan(0);
  });

  const all = dashboards.flatMap((d) => expressions(d.build()).map((e) => [d.file, e] as const));

  it.each(all.filter(([, e]) => !isIstio(e)))('%s: sidecar-arm expression returns data: %s', async (_file, expr) => {
    const r = await query(substitute(expr));
    expect({ status: r.status, error: r.error }).toEqual({ status: 'success', error: undefined });
    const values = (r.data?.result ?? []).map((s) => Number(s.value[1]));
    expect(values.length).toBeGreaterThan(0);
    expect(values.some((v) => Number.isFinite(v))).toBe(true);
  });

  it.each(all.filter(([, e]) => isIstio(e)))('%s: Istio expression is valid PromQL: %s', async (_file, expr) => {
    const r = await query(substitute(expr));
    expect({ status: r.status, error: r.error }).toEqual({ status: 'success', error: undefined });
  });
});
