// The A/B dashboard: Istio-only breaking (arm A) against cb-sidecar (arm B: the static or the adaptive arm).
// The first row puts both arms on one axis (a series per namespace); each row below answers one question, arm A on
// the left, arm B on the right, with the causes only each arm's own metrics show.
//
// Every panel that reads Istio's telemetry (istio_requests_total, istio_request_duration_*) also reads the same
// quantity from the calling Envoys' own cluster stats (legend "(Envoy)"), so both arms can be read where Istio's
// telemetry is off, and in the lab, whose stock Envoys have none (docs/deploy.md "Dashboards").
import type * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import { CustomVariableBuilder, DashboardBuilder, RowBuilder } from '@grafana/grafana-foundation-sdk/dashboard';
import { datasourceVariable, stat, timeseries } from './panels.js';
import type { Query, Size } from './panels.js';
import { clientSeen, clientSeenDuration, envoyStat, sidecar, type EnvoyCluster, type Match } from './selectors.js';

const W = '$__rate_interval';
const half = { w: 12, h: 8 };
const A = '$istio_ns';
const B = '$sidecar_ns';
/** Both arms' namespaces, as a regex: one query, one series per arm. */
const BOTH = `${A}|${B}`;
const BY_ARM = 'destination_service_namespace';
const quarter: Size = { w: 6, h: 8 };
const QUANTILES = [0.5, 0.99];

function successRate(ns: string): Query {
  return {
    expr: `sum(rate(${clientSeen(ns, ',response_code="200"')}[${W}])) / sum(rate(${clientSeen(ns)}[${W}]))`,
    legend: 'seen by the client Envoy',
  };
}

/** p50 and p99 at the calling Envoy, of 200s (`success`) or of every answer (rejections included). */
function clientLatency(ns: string, which: 'success' | 'all'): Query[] {
  const extra = which === 'success' ? ',response_code="200"' : '';
  return QUANTILES.map((q) => ({
    expr: `histogram_quantile(${q}, sum by (le) (rate(${clientSeenDuration(ns, extra)}[${W}]))) / 1000`,
    legend: `p${q * 100} ${which === 'success' ? '200s' : 'all answers'}`,
  }));
}

/** One series per arm: `sum by (namespace)` of the calling Envoys' view. */
function perArm(extra: string): string {
  return `sum by (${BY_ARM}) (rate(${clientSeen(BOTH, extra, '=~')}[${W}]))`;
}

function answersByCode(ns: string): Query {
  return { expr: `sum by (response_code) (rate(${clientSeen(ns)}[${W}]))`, legend: '{{response_code}}' };
}

// The same quantities from the calling Envoys' own stats of the iris-svc cluster. Envoy counts its own answers
// there too: an overflow 503 (UO) is in upstream_rq_503 and upstream_rq_completed. A retried attempt's answer is
// not (Envoy charges it to `retry.upstream_rq_<code>`), so these count what the callers received.

/** `sum by (by) (rate(metric{...}))` over the callers' Envoys of `ns`, in either naming. */
function envoyRate(metric: string, ns: string, opts: { code?: string; by?: 'namespace' | 'code'; match?: Match } = {}) {
  return envoyStat(
    (select, tags) => {
      const by = opts.by === 'code' ? ` by (${tags.code})` : opts.by === 'namespace' ? ' by (namespace)' : '';
      const extra = opts.code !== undefined ? `,${tags.code}=~"${opts.code}"` : '';
      return `sum${by} (rate(${select(metric, extra)}[${W}]))`;
    },
    ns,
    { match: opts.match },
  );
}

/** Envoy's answers per second from iris-svc in one arm, or per arm (`BOTH`), optionally of some statuses. */
function envoyAnswers(ns: string, code?: string): string {
  return ns === BOTH
    ? envoyRate('envoy_cluster_upstream_rq', ns, { code, by: 'namespace', match: '=~' })
    : envoyRate('envoy_cluster_upstream_rq', ns, { code });
}

function envoySuccessRate(ns: string): Query {
  return {
    expr: envoyStat(
      (select, tags) =>
        `sum(rate(${select('envoy_cluster_upstream_rq', `,${tags.code}="200"`)}[${W}])) / sum(rate(${select('envoy_cluster_upstream_rq_completed')}[${W}]))`,
      ns,
    ),
    legend: "the client Envoy's own stats",
  };
}

function envoyAnswersByCode(ns: string): Query {
  // One of the two labels exists, so the legend shows the status in either naming.
  // Istio's naming also files upstream_rq_5xx under this name (label response_code_class): keep codes only.
  return {
    expr: envoyRate('envoy_cluster_upstream_rq', ns, { by: 'code', code: '.+' }),
    legend: '{{response_code}}{{envoy_response_code}} (Envoy)',
  };
}

/**
 * p50 and p99 of `upstream_rq_time` at the calling Envoys: the time to the answers that came from the model
 * pods. Envoy does not time its own overflow answers, so unlike Istio's duration these leave fast UO 503s out.
 */
function envoyLatency(ns: string, perArmSeries = false): Query[] {
  const by = perArmSeries ? 'le, namespace' : 'le';
  return QUANTILES.map((q) => ({
    expr: `histogram_quantile(${q}, ${envoyStat(
      (select) => `sum by (${by}) (rate(${select('envoy_cluster_upstream_rq_time_bucket')}[${W}]))`,
      ns,
      { match: perArmSeries ? '=~' : '=' },
    )}) / 1000`,
    legend: perArmSeries
      ? `p${q * 100} {{namespace}} (Envoy, the pods' answers)`
      : `p${q * 100} the pods' answers (Envoy)`,
  }));
}

/** A sum or max over one Envoy gauge or counter of arm `ns`'s Envoys, at the callers or at the model pods. */
function envoyGauge(agg: 'sum' | 'max', metric: string, ns: string, cluster: EnvoyCluster = 'outbound'): string {
  return envoyStat((select) => `${agg}(${select(metric)})`, ns, { cluster });
}

/** Builds the A/B dashboard (uid circuit-breaker-ab). */
export function abDashboard(): dashboard.Dashboard {
  const sidecarSuccess: Query = {
    expr: `sum(rate(${sidecar('cb_requests_total', B, ',outcome="forwarded",code="200"')}[${W}])) / sum(rate(${sidecar('cb_requests_total', B)}[${W}]))`,
    legend: 'seen by cb-sidecar',
  };
  const sidecarLatency: Query[] = QUANTILES.map((q) => ({
    expr: `histogram_quantile(${q}, sum by (le) (rate(${sidecar('cb_request_duration_seconds_bucket', B)}[${W}])))`,
    legend: `p${q * 100} cb-sidecar, all answers`,
  }));
  const overflow = (ns: string, cluster: EnvoyCluster = 'outbound'): string =>
    envoyStat((select) => `sum(rate(${select('envoy_cluster_upstream_rq_pending_overflow')}[${W}]))`, ns, { cluster });

  return new DashboardBuilder('Circuit breaker A/B: Istio vs cb-sidecar')
    .uid('circuit-breaker-ab')
    .description(
      "Arm A (Istio DestinationRule limits) and arm B (cb-sidecar) under the same load, side by side. Series marked (Envoy) read the calling Envoys' own stats and need no Istio telemetry.",
    )
    .tags(['circuit-breaker', 'istio', 'cb-sidecar', 'ab-test'])
    .refresh('5s')
    .time({ from: 'now-15m', to: 'now' })
    .withVariable(datasourceVariable())
    .withVariable(
      new CustomVariableBuilder('istio_ns').label('Arm A namespace (Istio)').values('circuit-breaker-istio'),
    )
    .withVariable(
      new CustomVariableBuilder('sidecar_ns')
        .label('Arm B namespace (cb-sidecar)')
        .values('circuit-breaker-sidecar,circuit-breaker-sidecar-adaptive'),
    )

    .withRow(new RowBuilder('Both arms on one axis'))
    .withPanel(
      timeseries(
        'A and B · offered load',
        "Requests per second the callers sent, as their Envoys saw them (Envoy's own 503s included): the same in both arms when the comparison is fair.",
        'reqps',
        [
          { expr: perArm(''), legend: `{{${BY_ARM}}}` },
          {
            expr: envoyRate('envoy_cluster_upstream_rq_completed', BOTH, { by: 'namespace', match: '=~' }),
            legend: '{{namespace}} (Envoy)',
          },
        ],
        quarter,
      ),
    )
    .withPanel(
      timeseries(
        'A and B · goodput',
        '200 answers per second.',
        'reqps',
        [
          { expr: perArm(',response_code="200"'), legend: `{{${BY_ARM}}}` },
          { expr: envoyAnswers(BOTH, '200'), legend: '{{namespace}} (Envoy)' },
        ],
        quarter,
      ),
    )
    .withPanel(
      timeseries(
        'A and B · rejected',
        "5xx answers per second, whoever made them (the calling Envoy, the model pod's Envoy, cb-sidecar or the API).",
        'reqps',
        [
          { expr: perArm(',response_code=~"5.."'), legend: `{{${BY_ARM}}}` },
          { expr: envoyAnswers(BOTH, '5..'), legend: '{{namespace}} (Envoy)' },
        ],
        quarter,
      ),
    )
    .withPanel(
      timeseries(
        'A and B · latency of every answer',
        "p50 and p99 of all answers at the calling Envoy, rejections included: a fast 503 counts as fast. (Envoy): the time to the model pods' answers only; Envoy does not time its own overflow 503s.",
        's',
        [
          ...QUANTILES.map((q) => ({
            expr: `histogram_quantile(${q}, sum by (le, ${BY_ARM}) (rate(${clientSeenDuration(BOTH, '', '=~')}[${W}]))) / 1000`,
            legend: `p${q * 100} {{${BY_ARM}}}`,
          })),
          ...envoyLatency(BOTH, true),
        ],
        quarter,
      ),
    )

    .withRow(new RowBuilder('How many requests succeed?'))
    .withPanel(
      timeseries(
        'A · Istio: success rate',
        'Share of 200 answers among all answers the client received.',
        'percentunit',
        [successRate(A), envoySuccessRate(A)],
        half,
      ),
    )
    .withPanel(
      timeseries(
        'B · cb-sidecar: success rate',
        'Share of 200 answers: seen by the client Envoy (same point as arm A) and by the sidecar.',
        'percentunit',
        [successRate(B), envoySuccessRate(B), sidecarSuccess],
        half,
      ),
    )
    .withPanel(
      timeseries(
        'A · Istio: answers by status',
        'Answers per second by HTTP status, at the client Envoy.',
        'reqps',
        [answersByCode(A), envoyAnswersByCode(A)],
        half,
      ),
    )
    .withPanel(
      timeseries(
        'B · cb-sidecar: answers by status',
        'Answers per second by HTTP status, at the client Envoy and at the sidecar.',
        'reqps',
        [
          answersByCode(B),
          envoyAnswersByCode(B),
          { expr: `sum by (code) (rate(${sidecar('cb_requests_total', B)}[${W}]))`, legend: 'sidecar {{code}}' },
        ],
        half,
      ),
    )

    .withRow(new RowBuilder('Why are requests rejected?'))
    .withPanel(
      timeseries(
        'A · Istio: 503 by cause',
        "UO = Envoy overflow (connection pool / pending limit); other flags: UH no healthy host, URX retries exhausted, UF connect failure. (Envoy): the callers' pending overflow (their UO), their other 503s (the pods' own, or UH/UF), and the overflow of the model pods' inbound Envoys, which apply the DestinationRule's pool per replica.",
        'reqps',
        [
          { expr: `sum(rate(${clientSeen(A, ',response_flags="UO"')}[${W}]))`, legend: 'UO (overflow)' },
          {
            expr: `sum by (response_flags) (rate(${clientSeen(A, ',response_code="503",response_flags!="UO"')}[${W}]))`,
            legend: '{{response_flags}}',
          },
          { expr: overflow(A), legend: 'callers: pending overflow (Envoy)' },
          {
            expr: envoyStat(
              (select, tags) =>
                `sum(rate(${select('envoy_cluster_upstream_rq', `,${tags.code}="503"`)}[${W}])) - sum(rate(${select('envoy_cluster_upstream_rq_pending_overflow')}[${W}]))`,
              A,
            ),
            legend: 'callers: other 503s (Envoy)',
          },
          { expr: overflow(A, 'inbound'), legend: "model pods' Envoys: pending overflow (Envoy)" },
        ],
        half,
      ),
    )
    .withPanel(
      timeseries(
        'B · cb-sidecar: 5xx by cause',
        'x-cb-reason of every answer the sidecar made (overload, queue-timeout, circuit-open, ...) and 5xx forwarded from the API; Envoy overflow should stay 0.',
        'reqps',
        [
          {
            expr: `sum by (outcome) (rate(${sidecar('cb_requests_total', B, ',code=~"5.."')}[${W}]))`,
            legend: '{{outcome}}',
          },
          {
            expr: `sum(rate(${clientSeen(B, ',response_flags="UO"')}[${W}]))`,
            legend: 'UO (Envoy overflow, should stay 0)',
          },
          { expr: overflow(B), legend: 'callers: pending overflow (Envoy, should stay 0)' },
        ],
        half,
      ),
    )

    .withRow(new RowBuilder('How fast are the answers?'))
    .withPanel(
      timeseries(
        'A · Istio: latency',
        "p50 and p99 at the calling Envoy: of every answer (rejections included) and of 200s; (Envoy): of the model pods' answers.",
        's',
        [...clientLatency(A, 'all'), ...clientLatency(A, 'success'), ...envoyLatency(A)],
        half,
      ),
    )
    .withPanel(
      timeseries(
        'B · cb-sidecar: latency',
        "p50 and p99 at the calling Envoy (every answer, and 200s; (Envoy): the model pods' answers), and at the sidecar (every answer it gave).",
        's',
        [...clientLatency(B, 'all'), ...clientLatency(B, 'success'), ...envoyLatency(B), ...sidecarLatency],
        half,
      ),
    )

    .withRow(new RowBuilder('How much is let in, against which limit?'))
    .withPanel(
      timeseries(
        'A · Istio: active and pending requests',
        'Requests open and waiting in the calling Envoys for iris-svc; DestinationRule limits are static (100 pending).',
        'short',
        [
          { expr: envoyGauge('sum', 'envoy_cluster_upstream_rq_active', A), legend: 'active' },
          { expr: envoyGauge('sum', 'envoy_cluster_upstream_rq_pending_active', A), legend: 'pending' },
          {
            expr: envoyGauge('max', 'envoy_cluster_circuit_breakers_default_rq_pending_open', A),
            legend: 'pending limit reached (1)',
          },
        ],
        half,
      ),
    )
    .withPanel(
      timeseries(
        'B · cb-sidecar: in-flight vs limit',
        'Requests in flight, queued, and the (adaptive) concurrency limit, summed over pods.',
        'short',
        [
          { expr: `sum(${sidecar('cb_inflight_requests', B)})`, legend: 'in flight' },
          { expr: `sum(${sidecar('cb_queue_depth', B)})`, legend: 'queued' },
          { expr: `sum(${sidecar('cb_concurrency_limit', B)})`, legend: 'limit' },
        ],
        half,
      ),
    )

    .withRow(new RowBuilder('Is the breaker open?'))
    .withPanel(
      timeseries(
        'A · Istio: outlier ejections',
        "Hosts ejected by outlierDetection (Istio's breaker), summed over the calling Envoys.",
        'short',
        [{ expr: envoyGauge('sum', 'envoy_cluster_outlier_detection_ejections_active', A), legend: 'ejected hosts' }],
        half,
      ),
    )
    .withPanel(
      stat(
        'B · cb-sidecar: breaker state',
        'Pods whose breaker is closed, open or half-open.',
        'short',
        [{ expr: `sum by (state) (${sidecar('cb_breaker_state', B)})`, legend: '{{state}}' }],
        half,
      ),
    )
    .build();
}
