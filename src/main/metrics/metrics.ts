/**
 * Prometheus metrics of a ClusterCache, with Cluster API's names and labels, plus what an operator
 * needs to see the workers: round trips of calls to workers, informer lists, watch restarts and
 * errors, and worker heap sizes. A cluster's series are deleted when its Cluster is.
 *
 * @module
 */

import type { ObjectKey } from "../../shared/kube_object.ts";
import { MetricsRegistry } from "./metrics_registry.ts";
import { REQUEST_LATENCY_BUCKETS, type WorkerStats } from "../../shared/protocol.ts";

const CLUSTER_LABELS = ["cluster_name", "cluster_namespace"] as const;

function labels(key: ObjectKey): { cluster_name: string; cluster_namespace: string } {
  return { cluster_name: key.name, cluster_namespace: key.namespace };
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
  /** The registry holding every series below; give it to controllers for their `workqueue_*`. */
  readonly registry: MetricsRegistry = new MetricsRegistry();
  readonly #healthcheck = this.registry.gauge(
    "capi_cluster_cache_healthcheck",
    "Result of the last health check of the workload cluster (1 success, 0 failure).",
    CLUSTER_LABELS,
  );
  readonly #healthchecks = this.registry.counter(
    "capi_cluster_cache_healthchecks_total",
    "Health checks of workload clusters, by status.",
    [...CLUSTER_LABELS, "status"],
  );
  readonly #owned = this.registry.gauge(
    "clustercache_cluster_owned",
    "Whether this replica serves the cluster (1) or another replica does (0), with sharding.",
    CLUSTER_LABELS,
  );
  readonly #ownedClusters = this.registry.gauge(
    "clustercache_owned_clusters",
    "Clusters this replica serves, with sharding.",
    [],
  );
  readonly #dedicated = this.registry.gauge(
    "clustercache_cluster_dedicated_worker",
    "Whether the cluster's session has a worker of its own (1) or shares a pooled one (0).",
    CLUSTER_LABELS,
  );
  readonly #moves = this.registry.counter(
    "clustercache_worker_moves_total",
    "Clusters moved between pooled and dedicated workers, by direction ('promote', 'demote').",
    ["direction"],
  );
  readonly #connectionUp = this.registry.gauge(
    "capi_cluster_cache_connection_up",
    "Whether the connection to the workload cluster is up (1) or down (0).",
    CLUSTER_LABELS,
  );
  readonly #roundTrip = this.registry.histogram(
    "clustercache_worker_call_duration_seconds",
    "Round trip of calls from the main thread to cluster workers, by operation.",
    ["op"],
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1, 5],
  );
  readonly #informerEvents = this.registry.counter(
    "clustercache_informer_events_total",
    "Informer lists, watch restarts and list/watch errors, by cluster and kind.",
    [...CLUSTER_LABELS, "kind", "event"],
  );
  readonly #workerHeap = this.registry.gauge(
    "clustercache_worker_heap_bytes",
    "V8 heap used by a worker: a cluster's own, or a pool's, shared by its clusters.",
    ["worker"],
  );
  readonly #connectionErrors = this.registry.counter(
    "clustercache_connection_errors_total",
    "Failed connection attempts, by cluster and ClusterCacheError code (UntrustedCertificate: the server's certificate does not lead to the kubeconfig's CA; InvalidKubeconfig: among others, a server in a denied network).",
    [...CLUSTER_LABELS, "code"],
  );
  readonly #inconclusive = this.registry.counter(
    "clustercache_healthchecks_inconclusive_total",
    "Health checks that timed out because this process was starved of CPU (counted as neither success nor failure).",
    CLUSTER_LABELS,
  );
  readonly #requests = this.registry.counter(
    "rest_client_requests_total",
    "Requests to workload cluster API servers, by cluster, HTTP method and status code ('<error>': no answer).",
    [...CLUSTER_LABELS, "code", "method"],
  );
  readonly #retries = this.registry.counter(
    "rest_client_request_retries_total",
    "Requests to workload cluster API servers sent again because the server answered 429 or 5xx with Retry-After, by cluster, HTTP method and that code.",
    [...CLUSTER_LABELS, "code", "method"],
  );
  readonly #requestLatency = this.registry.histogram(
    "rest_client_request_duration_seconds",
    "Time to the response headers of requests to workload cluster API servers, by cluster and HTTP method.",
    [...CLUSTER_LABELS, "verb"],
    REQUEST_LATENCY_BUCKETS,
  );
  readonly #relists = this.registry.counter(
    "clustercache_informer_relists_total",
    "Informer lists after the first: the cache was replaced because its watch could not resume.",
    [...CLUSTER_LABELS, "kind"],
  );
  readonly #lastSynced = this.registry.gauge(
    "clustercache_informer_last_synced_resource_version",
    "The resourceVersion an informer's cache last synced to (read as a number; absent when not numeric).",
    [...CLUSTER_LABELS, "kind"],
  );
  readonly #informerSynced = this.registry.gauge(
    "clustercache_informer_synced",
    "Whether a kind's informer is synced and not failing (1), or syncing or failing (0): one failing kind leaves the cluster and its other kinds healthy.",
    [...CLUSTER_LABELS, "kind"],
  );
  readonly #informerAge = this.registry.gauge(
    "clustercache_informer_last_event_age_seconds",
    "Seconds since a kind's informer last heard from the server (a list, an opened watch, an event or a bookmark).",
    [...CLUSTER_LABELS, "kind"],
  );
  /** When each informer last heard from its server, by cluster key and kind: ages are read at scrape time. */
  readonly #heardAt = new Map<string, { labels: Record<string, string>; at: number }>();
  /** Series to delete when a cluster goes (its informer series: `informersGone`). */
  readonly #perCluster = [
    this.#connectionErrors,
    this.#requests,
    this.#retries,
    this.#requestLatency,
    this.#relists,
    this.#lastSynced,
    this.#healthcheck,
    this.#healthchecks,
    this.#connectionUp,
    this.#owned,
    this.#dedicated,
    this.#informerEvents,
    this.#inconclusive,
  ];

  constructor() {
    this.registry.onCollect(() => {
      const now = Date.now();
      for (const { labels, at } of this.#heardAt.values()) {
        // -1: the informer never heard from its server (it has been failing from the start).
        this.#informerAge.set(labels, at > 0 ? Math.max(0, (now - at) / 1000) : -1);
      }
    });
  }

  /** Records a probe result. */
  probe(key: ObjectKey, ok: boolean): void {
    this.#healthcheck.set(labels(key), ok ? 1 : 0);
    this.#healthchecks.inc({ ...labels(key), status: ok ? "success" : "error" });
  }

  /** Counts a failed connection attempt by its error code. */
  connectionError(key: ObjectKey, code: string): void {
    this.#connectionErrors.inc({ ...labels(key), code });
  }

  /** Counts a probe that could not tell (this process was starved of CPU). */
  inconclusiveProbe(key: ObjectKey): void {
    this.#inconclusive.inc(labels(key));
  }

  /**
   * Records which replica serves a cluster (sharding): 1 for this one, 0 for another, and how many
   * this replica serves.
   */
  ownership(key: ObjectKey, owned: boolean, ownedCount: number): void {
    this.#owned.set(labels(key), owned ? 1 : 0);
    this.#ownedClusters.set({}, ownedCount);
  }

  /** Records where a cluster's session runs. */
  placement(key: ObjectKey, dedicated: boolean): void {
    this.#dedicated.set(labels(key), dedicated ? 1 : 0);
  }

  /** Counts a cluster moved to a worker of its own (`promote`) or back into the pool (`demote`). */
  moved(direction: "promote" | "demote"): void {
    this.#moves.inc({ direction });
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
    this.#informerEvents.inc({ ...labels(key), kind, event });
  }

  /**
   * Adds what a worker counted since its last report.
   *
   * @ignore
   */
  workerStats(key: ObjectKey, stats: WorkerStats): void {
    const cluster = labels(key);
    for (const { method, code, count } of stats.requests) {
      this.#requests.inc({ ...cluster, code, method }, count);
    }
    for (const { method, code, count } of stats.retries) {
      this.#retries.inc({ ...cluster, code, method }, count);
    }
    for (const { verb, counts, sum } of stats.latency) {
      this.#requestLatency.merge({ ...cluster, verb }, counts, sum);
    }
    for (const { kind, relists, resourceVersion, phase, lastHeardAt } of stats.informers) {
      if (relists > 0) this.#relists.inc({ ...cluster, kind }, relists);
      this.#informerSynced.set({ ...cluster, kind }, phase === "synced" ? 1 : 0);
      this.#heardAt.set(`${cluster.cluster_namespace}/${cluster.cluster_name} ${kind}`, {
        labels: { ...cluster, kind },
        at: lastHeardAt,
      });
      const version = Number(resourceVersion);
      if (resourceVersion && Number.isSafeInteger(version)) {
        this.#lastSynced.set({ ...cluster, kind }, version);
      }
    }
  }

  /**
   * Records a worker's heap size, by worker (a pooled worker's heap is its clusters' together: per
   * cluster, it would be counted once for each).
   */
  workerHeap(worker: string, bytes: number): void {
    this.#workerHeap.set({ worker }, bytes);
  }

  /** Deletes a terminated worker's series. */
  forgetWorker(worker: string): void {
    this.#workerHeap.remove({ worker });
  }

  /** Deletes the informer series of a cluster whose connection ended (a new one starts its own). */
  informersGone(key: ObjectKey): void {
    const prefix = `${key.namespace}/${key.name} `;
    for (const id of this.#heardAt.keys()) if (id.startsWith(prefix)) this.#heardAt.delete(id);
    this.#informerSynced.remove(labels(key));
    this.#informerAge.remove(labels(key));
  }

  /** Deletes every series of a cluster. */
  forget(key: ObjectKey): void {
    this.informersGone(key);
    for (const family of this.#perCluster) family.remove(labels(key));
  }
}
