// A spike: ramp from a calm rate to several times the reference rate, hold, and fall back, to see
// how each arm sheds load and recovers. Env: BASE_URL, RATE (peak, default 3000), DURATION (hold, 20s),
// PRE_ALLOCATED_VUS, MAX_VUS, SUMMARY_JSON.
import type { Options } from 'k6/options';
import { predict, summaryOutputs, summaryTrendStats, thresholds } from './lib.ts';

const peak = Number(__ENV.RATE ?? 3000);
const hold = __ENV.DURATION ?? '20s';
const calm = Math.max(1, Math.round(peak / 10));

/** A ramping-arrival-rate scenario: calm, spike to the peak, hold, recover. */
export const options: Options = {
  discardResponseBodies: true,
  scenarios: {
    spike: {
      executor: 'ramping-arrival-rate',
      startRate: calm,
      timeUnit: '1s',
      preAllocatedVUs: Number(__ENV.PRE_ALLOCATED_VUS ?? Math.max(10, Math.ceil(peak / 10))),
      maxVUs: Number(__ENV.MAX_VUS ?? Math.max(50, peak)),
      stages: [
        { target: calm, duration: '5s' },
        { target: peak, duration: '2s' },
        { target: peak, duration: hold },
        { target: calm, duration: '2s' },
        { target: calm, duration: '10s' },
      ],
    },
  },
  thresholds,
  summaryTrendStats,
};

export default predict;
export const handleSummary = summaryOutputs;
