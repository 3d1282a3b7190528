/**
 * Prometheus metrics of a ClusterCache, with Cluster API's names and labels, plus what an operator
 * needs to see the workers: round trips of calls to workers, informer lists, watch restarts and
 * errors, and worker heap sizes. A cluster's series are deleted when its Cluster is.
 *
 * @module
 */

import { Counter, Gauge, Histogram, Registry } from "prom-client";
import { formatObjectKey, type ObjectKey } from "./kube_object.ts";

const CLUSTER_LABELS = ["cluster_name", "cluster_namespace"] as const;

function labels(key: ObjectKey): { cluster_name: string; cluster_namespace: string } {
  return { cluster_name: key.name, cluster_namespace: key.namespace };
}

/**
 * A Prometheus registry: what serving `/metrics` needs. It is a `prom-client` `Registry`; cast it to
 * one to merge it with others (`Registry.merge`).
 *
 * @example Merging the cache's metrics with your own
 * ```ts
 * import assert from "node:assert/strict";
 * import { Counter, Registry } from "prom-client";
 * import { ClusterCacheMetrics, type MetricsRegistry } from "@fleetkit/clustercache";
 *
 * const mine = new Registry();
 * new Counter({ name: "my_operator_reconciles_total", help: "Reconciles.", registers: [mine] }).inc();
 * const cacheRegistry: MetricsRegistry = new ClusterCacheMetrics().registry; // cache.metrics.registry
 * const all = Registry.merge([mine, cacheRegistry as Registry]);
 * const text = await all.metrics();
 * assert.match(text, /my_operator_reconciles_total 1/);
 * assert.match(text, /# TYPE capi_cluster_cache_connection_up gauge/);
 * ```
 */
export interface MetricsRegistry {
  /** The metrics in the Prometheus text exposition format. */
  metrics(): Promise<string>;
  /** The `Content-Type` of that text. */
  readonly contentType: string;
}

/**
 * The metrics of one ClusterCache, in their own registry.
 *
 * @example Serving `/metrics` with Deno.serve
 * ```ts
 * import assert from "node:assert/strict";
 * import { KubeConfig } from "@kubernetes/client-node";
 * import { ClusterCache } from "@fleetkit/clustercache";
 * import { SimulatedFleet } from "@fleetkit/clustercache/testing";
 *
 * await using fleet = await SimulatedFleet.start({ clusters: 1 });
 * const management = new KubeConfig();
 * management.loadFromString(fleet.managementKubeconfig());
 * await using cache = await ClusterCache.setup({ management, client: { userAgent: "docs" } });
 *
 * await using server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (request) =>
 *   new URL(request.url).pathname === "/metrics"
 *     ? new Response(await cache.metrics.registry.metrics(), {
 *       headers: { "content-type": cache.metrics.registry.contentType },
 *     })
 *     : new Response("not found", { status: 404 }));
 *
 * for await (const _cluster of cache.getClusterSource("docs", (c) => [c.metadata!.name!])) break;
 * const response = await fetch(`http://127.0.0.1:${server.addr.port}/metrics`);
 * assert.match(
 *   await response.text(),
 *   /capi_cluster_cache_connection_up\{cluster_name="workload-1",cluster_namespace="default"\} 1/,
 * );
 * ```
 */
export class ClusterCacheMetrics {
  readonly #registry = new Registry();
  /** The registry holding every series below. */
  readonly registry: MetricsRegistry = this.#registry;
  readonly #healthcheck = new Gauge({
    name: "capi_cluster_cache_healthcheck",
    help: "Result of the last health check of the workload cluster (1 success, 0 failure).",
    labelNames: CLUSTER_LABELS,
    registers: [this.#registry],
  });
  readonly #healthchecks = new Counter({
    name: "capi_cluster_cache_healthchecks_total",
    help: "Health checks of workload clusters, by status.",
    labelNames: [...CLUSTER_LABELS, "status"],
    registers: [this.#registry],
  });
  readonly #connectionUp = new Gauge({
    name: "capi_cluster_cache_connection_up",
    help: "Whether the connection to the workload cluster is up (1) or down (0).",
    labelNames: CLUSTER_LABELS,
    registers: [this.#registry],
  });
  readonly #roundTrip = new Histogram({
    name: "clustercache_worker_call_duration_seconds",
    help: "Round trip of calls from the main thread to cluster workers, by operation.",
    labelNames: ["op"],
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1, 5],
    registers: [this.#registry],
  });
  readonly #informerEvents = new Counter({
    name: "clustercache_informer_events_total",
    help: "Informer lists, watch restarts and list/watch errors, by cluster and kind.",
    labelNames: [...CLUSTER_LABELS, "kind", "event"],
    registers: [this.#registry],
  });
  readonly #workerHeap = new Gauge({
    name: "clustercache_worker_heap_bytes",
    help: "V8 heap used by a cluster's worker.",
    labelNames: CLUSTER_LABELS,
    registers: [this.#registry],
  });
  readonly #inconclusive = new Counter({
    name: "clustercache_healthchecks_inconclusive_total",
    help:
      "Health checks that timed out because this process was starved of CPU (counted as neither success nor failure).",
    labelNames: CLUSTER_LABELS,
    registers: [this.#registry],
  });
  readonly #kinds = new Map<string, Set<string>>();

  /** Records a probe result. */
  probe(key: ObjectKey, ok: boolean): void {
    this.#healthcheck.set(labels(key), ok ? 1 : 0);
    this.#healthchecks.inc({ ...labels(key), status: ok ? "success" : "error" });
  }

  /** Counts a probe that could not tell (this process was starved of CPU). */
  inconclusiveProbe(key: ObjectKey): void {
    this.#inconclusive.inc(labels(key));
  }

  /** Records the connection state. */
  connection(key: ObjectKey, up: boolean): void {
    this.#connectionUp.set(labels(key), up ? 1 : 0);
  }

  /** Records a worker call's round trip. */
  roundTrip(op: string, seconds: number): void {
    this.#roundTrip.observe({ op }, seconds);
  }

  /** Counts an informer event. */
  informer(key: ObjectKey, kind: string, event: string): void {
    const id = formatObjectKey(key);
    let kinds = this.#kinds.get(id);
    if (!kinds) this.#kinds.set(id, kinds = new Set());
    kinds.add(kind);
    this.#informerEvents.inc({ ...labels(key), kind, event });
  }

  /** Records a worker's heap size. */
  workerHeap(key: ObjectKey, bytes: number): void {
    this.#workerHeap.set(labels(key), bytes);
  }

  /** Deletes every series of a cluster. */
  forget(key: ObjectKey): void {
    const l = labels(key);
    this.#healthcheck.remove(l);
    this.#connectionUp.remove(l);
    this.#workerHeap.remove(l);
    this.#inconclusive.remove(l);
    for (const status of ["success", "error"]) this.#healthchecks.remove({ ...l, status });
    for (const kind of this.#kinds.get(formatObjectKey(key)) ?? []) {
      for (const event of ["list", "watchRestart", "error"]) {
        this.#informerEvents.remove({ ...l, kind, event });
      }
    }
    this.#kinds.delete(formatObjectKey(key));
  }
}
