import cluster from 'node:cluster';
import { AggregatorRegistry, type Registry } from 'prom-client';

const REQUEST = 'iris-api:cluster-metrics-request';
const RESPONSE = 'iris-api:cluster-metrics-response';
/** A scrape must not hang on a dead worker; fall back to this worker's own metrics after this long. */
const CLUSTER_METRICS_TIMEOUT_MS = 2000;

interface Message {
  type?: unknown;
  id?: unknown;
  text?: unknown;
}

/**
 * In the cluster primary: answers workers' requests for the metrics of all workers, aggregated
 * by prom-client's AggregatorRegistry (counters and histograms summed).
 */
export function serveClusterMetrics(): void {
  const aggregator = new AggregatorRegistry();
  cluster.on('message', (worker, message: Message) => {
    if (message?.type !== REQUEST) return;
    aggregator.clusterMetrics().then(
      (text) => worker.send({ type: RESPONSE, id: message.id, text }),
      () => worker.send({ type: RESPONSE, id: message.id }),
    );
  });
}

/**
 * In a cluster worker: makes `registry` answer the primary's aggregation and returns a function
 * producing the whole cluster's metrics (this worker's alone if the primary does not answer).
 */
export function clusterMetricsText(registry: Registry): () => Promise<string> {
  AggregatorRegistry.setRegistries([registry]);
  new AggregatorRegistry(); // registers the worker's listener for the primary's collection requests
  const pending = new Map<number, (text: string | undefined) => void>();
  let nextId = 0;
  process.on('message', (message: Message) => {
    if (message?.type !== RESPONSE || typeof message.id !== 'number') return;
    pending.get(message.id)?.(typeof message.text === 'string' ? message.text : undefined);
  });
  return () =>
    new Promise<string | undefined>((resolve) => {
      const id = nextId++;
      const timer = setTimeout(() => done(undefined), CLUSTER_METRICS_TIMEOUT_MS);
      function done(text: string | undefined): void {
        clearTimeout(timer);
        pending.delete(id);
        resolve(text);
      }
      pending.set(id, done);
      process.send?.({ type: REQUEST, id });
    }).then((text) => text ?? registry.metrics());
}
