#!/usr/bin/env node
/* global performance, setTimeout -- Node 24 globals */
// Open-loop gRPC load for bench/overhead/h2.mjs: unary ModelInfer (one iris row) at RATE calls/s for SECONDS over
// one grpc-js channel (one HTTP/2 connection, as a gRPC client has), then one JSON line with the counts and the
// latency percentiles of the calls that succeeded. Calls are sent on schedule whether or not earlier ones have
// answered (open loop: a slow proxy shows as latency, not as a lower rate).
//   node bench/overhead/grpc-load.mjs <host:port> <rate> <seconds>
import { modelInferRequest, oipClient, percentile } from '@infer-cb/testkit';

const [target, rateText, secondsText] = process.argv.slice(2);
const rate = Number(rateText);
const seconds = Number(secondsText);
if (target === undefined || !(rate > 0) || !(seconds > 0)) {
  process.stderr.write('usage: grpc-load.mjs <host:port> <rate> <seconds>\n');
  process.exit(2);
}
const client = oipClient(target);
const request = modelInferRequest('iris');
const latencies = [];
let sent = 0;
let failed = 0;
const codes = {};
const start = performance.now();
const total = Math.round(rate * seconds);
await new Promise((resolve) => {
  let settled = 0;
  const fire = () => {
    const now = performance.now();
    const due = Math.min(total, Math.floor(((now - start) / 1000) * rate) + 1);
    while (sent < due) {
      sent++;
      const t0 = performance.now();
      client
        .call('ModelInfer', request, { deadlineMs: 10_000 })
        .then(
          () => latencies.push(performance.now() - t0),
          (err) => {
            failed++;
            codes[err.code] = (codes[err.code] ?? 0) + 1;
          },
        )
        .finally(() => {
          if (++settled === total) resolve();
        });
    }
    if (sent < total) setTimeout(fire, 1);
  };
  fire();
});
client.close();
latencies.sort((a, b) => a - b);
process.stdout.write(
  `${JSON.stringify({ sent, ok: latencies.length, failed, codes, p50: percentile(latencies, 50), p99: percentile(latencies, 99), seconds: (performance.now() - start) / 1000 })}\n`,
);
