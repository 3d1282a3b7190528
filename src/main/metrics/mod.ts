/**
 * Prometheus metrics: the cache's own ({@linkcode ClusterCacheMetrics}, what `cache.metrics`
 * holds), and the small registry they live in, for a `/metrics` endpoint and metrics of your own.
 * Import it from `@fleetkit/clustercache/metrics`.
 *
 * @example A `/metrics` endpoint with the cache's metrics and one of your own
 * ```ts
 * import assert from "node:assert/strict";
 * import { ClusterCacheMetrics } from "@fleetkit/clustercache/metrics";
 *
 * const metrics = new ClusterCacheMetrics(); // a ClusterCache has one: cache.metrics
 * const reconciles = metrics.registry.counter("my_reconciles_total", "Reconciles.", ["result"]);
 * reconciles.inc({ result: "success" });
 * const handler = async () =>
 *   new Response(await metrics.registry.metrics(), {
 *     headers: { "content-type": metrics.registry.contentType },
 *   });
 * assert.match(await (await handler()).text(), /my_reconciles_total\{result="success"\} 1/);
 * ```
 *
 * @module
 */

export { ClusterCacheMetrics } from "./metrics.ts";
export {
  CounterFamily,
  GaugeFamily,
  HistogramFamily,
  type Labels,
  MetricsRegistry,
  ScalarFamily,
} from "./metrics_registry.ts";
