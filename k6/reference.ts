// The reference load: a constant arrival rate (1000 req/s for 10 s by default) of POST /predict,
// the k6 twin of `vegeta attack -duration=10s -rate=1000 -targets=vegeta/post-target`.
// Env: BASE_URL, RATE, DURATION, PRE_ALLOCATED_VUS, MAX_VUS, SUMMARY_JSON.
import type { Options } from 'k6/options';
import { predict, referenceScenarios, summaryOutputs, summaryTrendStats, thresholds } from './lib.ts';

const rate = Number(__ENV.RATE ?? 1000);

/** One constant-arrival-rate scenario; VUs sized for ~100 ms answers at the target rate. */
export const options: Options = {
  discardResponseBodies: true,
  scenarios: referenceScenarios(rate),
  thresholds,
  summaryTrendStats,
};

export default predict;
export const handleSummary = summaryOutputs;
