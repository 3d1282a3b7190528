/**
 * The `ClusterCache` facade (main thread): what controllers call to get clients, REST configs,
 * watches and cluster sources, served from the state its {@linkcode Reconciler} keeps in step with
 * the management cluster's Clusters.
 *
 * @module
 */

import type { ClusterAccessor } from "./reconcile/accessor.ts";
import { type ClientHost, WorkerClient } from "./client.ts";
import type { Client, ListOptions, Reader } from "../shared/client_types.ts";
import type { ClusterSource, ClusterSourceOptions } from "./sources/cluster_source.ts";
import { ClusterNotConnectedError } from "../shared/errors.ts";
import {
  formatObjectKey,
  type KindRef,
  type KubeObject,
  type ObjectKey,
} from "../shared/kube_object.ts";
import type { KubeConfigLike } from "./kube_config_like.ts";
import { kubeConfigFromRESTConfig } from "./management/kubeconfig.ts";
import { logger } from "./log.ts";
import { ShardCoordinator } from "./sharding/shard_coordinator.ts";
import { ManagementCluster } from "./management/management_cluster.ts";
import { ClusterCacheMetrics } from "./metrics/metrics.ts";
import { type ClusterCacheOptions, type ResolvedOptions, resolveOptions } from "./options.ts";
import { workerOptionsFlag } from "./sessions/worker_options_flag.ts";
import type { RESTConfig } from "../shared/rest_config.ts";
import { type InformerState, kindKey } from "../shared/protocol.ts";
import { Reconciler } from "./reconcile/reconciler.ts";
import { checkClusterKey, parseClusterKey } from "./management/cluster_key.ts";
import type {
  ClusterCacheApi,
  ClusterDescription,
  Freshness,
  HealthCheckingState,
  ReaderOptions,
  StaleReader,
  WatchHandle,
  WatchInput,
} from "./cache_api.ts";

export type {
  ClusterCacheApi,
  ClusterDescription,
  Freshness,
  HealthCheckingState,
  ReaderOptions,
  StaleReader,
  WatchHandle,
  WatchInput,
} from "./cache_api.ts";
export { WATCH_WINDOW } from "./watches/watch_dispatch.ts";

/**
 * Per-workload-cluster clients, caches, REST configs and health probes, each cluster in its own Web
 * Worker, kept in step with the management cluster's `Cluster` objects.
 *
 * @example Set up, react to connects, read from each workload cluster
 * ```ts
 * import assert from "node:assert/strict";
 * import { KubeConfig } from "@kubernetes/client-node";
 * import { ClusterCache, ClusterNotConnectedError } from "@fleetkit/clustercache";
 * import { SimulatedFleet } from "@fleetkit/clustercache/testing";
 *
 * // In production: management.loadFromDefault() or loadFromCluster().
 * await using fleet = await SimulatedFleet.start({ clusters: 2 });
 * const management = new KubeConfig();
 * management.loadFromString(fleet.managementKubeconfig());
 * await using cache = await ClusterCache.setup({ management, client: { userAgent: "my-operator" } });
 *
 * const source = cache.getClusterSource("my-controller", (cluster) => [
 *   { namespace: cluster.metadata!.namespace!, name: cluster.metadata!.name! },
 * ]);
 * const nodes = new Map<string, number>();
 * for await (const cluster of source) {
 *   try {
 *     const list = await cache.getClient(cluster).list({ apiVersion: "v1", kind: "Node" });
 *     nodes.set(cluster.name, list.items.length);
 *   } catch (error) {
 *     if (!(error instanceof ClusterNotConnectedError)) throw error; // wait for the connect event
 *   }
 *   if (nodes.size === 2) break; // a controller would keep going
 * }
 * assert.deepEqual(Object.fromEntries(nodes), { "workload-1": 1, "workload-2": 1 });
 * ```
 */
export class ClusterCache implements ClusterCacheApi, AsyncDisposable {
  /** The Prometheus metrics of this cache; `metrics.registry` renders them for `/metrics`. */
  readonly metrics: ClusterCacheMetrics = new ClusterCacheMetrics();
  readonly #options: ResolvedOptions;
  readonly #log = logger("reconciler");
  readonly #reconciler: Reconciler;
  #closed: Promise<void> | undefined;

  private constructor(options: ResolvedOptions) {
    this.#options = options;
    this.#reconciler = new Reconciler(options, this.metrics);
  }

  /**
   * Validates options, connects to the management cluster, waits until its Clusters are read, and
   * starts reconciling them.
   *
   * @throws {TypeError} For missing required options.
   * @throws {RangeError} For out-of-range options.
   * @throws {ClusterCacheError} When the management cluster cannot be read.
   *
   * @example Starting a cache over a management cluster
   * ```ts
   * import assert from "node:assert/strict";
   * import { KubeConfig } from "@kubernetes/client-node";
   * import { ClusterCache } from "@fleetkit/clustercache";
   * import { SimulatedFleet } from "@fleetkit/clustercache/testing";
   *
   * await using fleet = await SimulatedFleet.start({ clusters: 1 });
   * const management = new KubeConfig();
   * // In production: management.loadFromDefault() (or loadFromCluster() in a Pod).
   * management.loadFromString(fleet.managementKubeconfig());
   * await using cache = await ClusterCache.setup({ management, client: { userAgent: "docs" } });
   * const cluster = { namespace: "default", name: "workload-1" };
   * for await (const _ of cache.getClusterSource("docs", (c) => [c])) break; // connected
   * assert.deepEqual(cache.clusters(), [cluster]);
   * // Examples elsewhere do all of this in one line: connectedCache() from the testing module.
   * ```
   */
  static async setup(options: ClusterCacheOptions): Promise<ClusterCache> {
    const cache = new ClusterCache(resolveOptions(options, workerOptionsFlag));
    const reconciler = cache.#reconciler;
    const warning = cache.#options.workerPermissionsWarning;
    if (warning) cache.#log.warn(warning);
    reconciler.start();
    let management: ManagementCluster;
    try {
      management = await ManagementCluster.start(
        cache.#options,
        (key) => reconciler.enqueue(key),
        (rest) => reconciler.permissions(rest),
        reconciler.mainLagSince,
      );
    } catch (error) {
      await cache.close();
      throw error;
    }
    const sharding = cache.#options.sharding;
    reconciler.serve(
      management,
      sharding ? new ShardCoordinator(sharding, management.leases()) : undefined,
    );
    return cache;
  }

  // ------------------------------------------------------------------------- public API

  #accessorFor(cluster: ObjectKey, operation: string): ClusterAccessor {
    const accessor = this.#reconciler.accessor(checkClusterKey(cluster));
    if (!accessor) throw new ClusterNotConnectedError(operation, cluster);
    return accessor;
  }

  #host(cluster: ObjectKey): ClientHost {
    const key = checkClusterKey(cluster);
    return {
      cluster: key,
      options: this.#options,
      connection: (operation) => {
        const accessor = this.#reconciler.accessor(key);
        if (!accessor) throw new ClusterNotConnectedError(operation, cluster);
        return accessor.require(operation);
      },
    };
  }

  /**
   * {@inheritDoc ClusterCacheApi.getClient}
   *
   * @example Cached reads, live writes
   * ```ts
   * import assert from "node:assert/strict";
   * import { connectedCache } from "@fleetkit/clustercache/testing";
   *
   * await using docs = await connectedCache();
   * const { cache, cluster } = docs;
   * const client = cache.getClient(cluster);
   * const ConfigMap = { apiVersion: "v1", kind: "ConfigMap" };
   * await client.create({ ...ConfigMap, metadata: { namespace: "default", name: "settings" } });
   * const list = await client.list(ConfigMap, { namespace: "default" }); // from the worker's cache
   * assert.ok(Array.isArray(list.items));
   * ```
   */
  getClient(cluster: ObjectKey): Client {
    this.#accessorFor(cluster, "error getting client").require("error getting client");
    return new WorkerClient(this.#host(cluster), true);
  }

  /**
   * {@inheritDoc ClusterCacheApi.getReader}
   *
   * @example Reading Nodes from the cache
   * ```ts
   * import assert from "node:assert/strict";
   * import { connectedCache } from "@fleetkit/clustercache/testing";
   *
   * await using docs = await connectedCache();
   * const { cache, cluster } = docs;
   * const nodes = await cache.getReader(cluster).list({ apiVersion: "v1", kind: "Node" });
   * assert.equal(nodes.items.length, 1);
   * ```
   *
   * @example Reading on from the last cache while a cluster is down
   * ```ts
   * import assert from "node:assert/strict";
   * import { connectedCache } from "@fleetkit/clustercache/testing";
   *
   * await using docs = await connectedCache();
   * const { cache, cluster } = docs;
   * const reader = cache.getReader(cluster, { allowStale: true }); // asked: its cache is kept
   * const nodes = await reader.list({ apiVersion: "v1", kind: "Node" });
   * assert.equal(nodes.freshness.connected, true);
   * // Were the cluster disconnected now, the same call would answer from its last cache, with
   * // `freshness.connected === false` and `disconnectedSince` set.
   * ```
   */
  getReader(cluster: ObjectKey): Reader;
  getReader(cluster: ObjectKey, options: { allowStale: true }): StaleReader;
  getReader(cluster: ObjectKey, options?: ReaderOptions): Reader;
  getReader(cluster: ObjectKey, options: ReaderOptions = {}): Reader | StaleReader {
    if (!options.allowStale) {
      this.#accessorFor(cluster, "error getting client reader").require(
        "error getting client reader",
      );
      const client = new WorkerClient(this.#host(cluster), true);
      return { get: client.get.bind(client), list: client.list.bind(client) };
    }
    const key = checkClusterKey(cluster);
    const accessor = this.#reconciler.accessor(key);
    if (accessor) accessor.staleReadsAskedAt = Date.now();
    if (!accessor?.connected && !accessor?.retained()) {
      throw new ClusterNotConnectedError("error getting client reader", cluster);
    }
    // Each call reads where the data is then: the connection, else the last cache kept for it.
    const client = new WorkerClient({
      cluster: key,
      options: this.#options,
      connection: (operation) => {
        const current = this.#reconciler.accessor(key);
        const target = current?.connection ?? current?.retained();
        if (!target) throw new ClusterNotConnectedError(operation, cluster);
        return target;
      },
    }, true);
    const freshness = (kind: KindRef) => this.getFreshness(cluster, kind);
    return {
      get: client.get.bind(client),
      list: async <T extends KubeObject = KubeObject>(kind: KindRef, list?: ListOptions) => {
        const answer = await client.list<T>(kind, list);
        const now = freshness(kind);
        // The list's own version is the freshest word on where the cache was.
        const version = answer.metadata?.resourceVersion ?? now.resourceVersion;
        return Object.assign(answer, { freshness: { ...now, resourceVersion: version } });
      },
      freshness,
    };
  }

  /**
   * {@inheritDoc ClusterCacheApi.getFreshness}
   *
   * @example How old is what the cache holds of Pods
   * ```ts
   * import assert from "node:assert/strict";
   * import { connectedCache } from "@fleetkit/clustercache/testing";
   *
   * await using docs = await connectedCache();
   * const { cache, cluster } = docs;
   * const Pod = { apiVersion: "v1", kind: "Pod" };
   * assert.equal(cache.getFreshness(cluster, Pod).phase, "none"); // nothing read yet
   * await cache.getReader(cluster).list(Pod);
   * assert.equal(cache.getFreshness(cluster, Pod).connected, true);
   * ```
   */
  getFreshness(cluster: ObjectKey, kind: KindRef): Freshness {
    const accessor = this.#reconciler.accessor(checkClusterKey(cluster));
    const connection = accessor?.connection;
    const retained = connection ? undefined : accessor?.retained();
    const state = (connection?.informers ?? retained?.informers)?.get(kindKey(kind));
    return {
      connected: connection !== undefined,
      ...(retained ? { disconnectedSince: retained.since } : {}),
      phase: state?.phase ?? "none",
      resourceVersion: state?.resourceVersion,
      lastHeardAt: state?.lastHeardAt ?? 0,
    };
  }

  /**
   * {@inheritDoc ClusterCacheApi.getUncachedClient}
   *
   * @example Reading what the server holds right now
   * ```ts
   * import assert from "node:assert/strict";
   * import { connectedCache } from "@fleetkit/clustercache/testing";
   *
   * await using docs = await connectedCache();
   * const { cache, cluster } = docs;
   * // Live reads cost a request each; use them where a cache that is a moment behind is not good enough.
   * const live = cache.getUncachedClient(cluster);
   * const ns = await live.get({ apiVersion: "v1", kind: "Namespace" }, { name: "kube-system" });
   * assert.equal(ns.metadata?.name, "kube-system");
   * ```
   */
  getUncachedClient(cluster: ObjectKey): Client {
    this.#accessorFor(cluster, "error getting uncached client").require(
      "error getting uncached client",
    );
    return new WorkerClient(this.#host(cluster), false);
  }

  /**
   * {@inheritDoc ClusterCacheApi.getRESTConfig}
   *
   * @example Where the cluster is and how the cache talks to it
   * ```ts
   * import assert from "node:assert/strict";
   * import { connectedCache } from "@fleetkit/clustercache/testing";
   *
   * await using docs = await connectedCache();
   * const { cache, cluster, fleet } = docs;
   * const rest = cache.getRESTConfig(cluster); // holds credentials: never log it
   * assert.equal(rest.server, fleet.cluster("workload-1").url);
   * assert.equal(rest.userAgent, "docs");
   * ```
   */
  getRESTConfig(cluster: ObjectKey): RESTConfig {
    const connection = this.#accessorFor(cluster, "error getting REST config").require(
      "error getting REST config",
    );
    return structuredClone(connection.rest);
  }

  /**
   * {@inheritDoc ClusterCacheApi.getKubeConfig}
   *
   * @example Handing the cluster to client-node
   * ```ts
   * import assert from "node:assert/strict";
   * import { KubeConfig } from "@kubernetes/client-node";
   * import { connectedCache } from "@fleetkit/clustercache/testing";
   *
   * await using docs = await connectedCache();
   * const { cache, cluster, fleet } = docs;
   * const kubeconfig = cache.getKubeConfig(cluster); // a client-node KubeConfig
   * const context = kubeconfig.getContextObject(kubeconfig.getCurrentContext())!;
   * assert.equal(kubeconfig.getCluster(context.cluster)?.server, fleet.cluster("workload-1").url);
   * ```
   */
  getKubeConfig(cluster: ObjectKey): KubeConfigLike {
    const connection = this.#accessorFor(cluster, "error getting kubeconfig").require(
      "error getting kubeconfig",
    );
    return kubeConfigFromRESTConfig(connection.rest, formatObjectKey(cluster));
  }

  /**
   * {@inheritDoc ClusterCacheApi.getClientCertificatePrivateKey}
   *
   * Generated on first request once the cluster has connected (not eagerly at connect, which would
   * cost ~140 ms of CPU per cluster at start-up), kept across reconnects, dropped with the Cluster.
   *
   * @throws {Error} "error getting client certificate private key: private key was not generated yet"
   *   when the cluster is unknown.
   *
   * @example Signing a certificate request for the cluster
   * ```ts
   * import assert from "node:assert/strict";
   * import { connectedCache } from "@fleetkit/clustercache/testing";
   *
   * await using docs = await connectedCache();
   * const { cache, cluster } = docs;
   * const keys = await cache.getClientCertificatePrivateKey(cluster);
   * assert.equal(keys?.privateKey.algorithm.name, "RSASSA-PKCS1-v1_5");
   * assert.equal(keys, await cache.getClientCertificatePrivateKey(cluster), "the same pair every time");
   * ```
   */
  async getClientCertificatePrivateKey(cluster: ObjectKey): Promise<CryptoKeyPair | undefined> {
    const accessor = this.#reconciler.accessor(checkClusterKey(cluster));
    if (!accessor) {
      throw new Error(
        "error getting client certificate private key: private key was not generated yet",
      );
    }
    return await accessor.privateKey();
  }

  /**
   * {@inheritDoc ClusterCacheApi.watch}
   *
   * Resolves once the handler is registered, like Go's `Watch`; `handle.synced` resolves once the
   * kind's informer has synced (within `initialSyncTimeoutMs`) and the handler has finished with
   * every existing object, told as an `add` (at its own pace). A second `watch()` with a name
   * already watched on this connection registers nothing and shares the first one's `synced`: if
   * that fails, both learn it, and the name is free again. A reconnect forgets all watches: watch
   * again on the connect event.
   *
   * @throws {ClusterNotConnectedError} "error creating watch <name> for <kind>: connection to the
   *   workload cluster is down".
   * @throws {TypeError} For an empty name, a bad kind, handler or predicate.
   *
   * @example Watching Pods, again on every connect
   * ```ts
   * import assert from "node:assert/strict";
   * import { connectedCache } from "@fleetkit/clustercache/testing";
   *
   * await using docs = await connectedCache();
   * const { cache, cluster } = docs;
   * const pods: string[] = [];
   * await (await cache.watch(cluster, {
   *   name: "pods",
   *   kind: { apiVersion: "v1", kind: "Pod" },
   *   handler: (event) => {
   *     if (event.type === "add") pods.push(event.object.metadata!.name!);
   *   },
   * })).synced;
   * // Resolved after the informer synced: existing Pods have been delivered as adds.
   * assert.ok(pods.length > 0);
   * ```
   */
  watch<T extends KubeObject = KubeObject>(
    cluster: ObjectKey,
    input: WatchInput<T>,
  ): Promise<WatchHandle> {
    try {
      const key = checkClusterKey(cluster);
      const connection = this.#reconciler.accessor(key)?.connection;
      return Promise.resolve(this.#reconciler.watches.add(cluster, key, connection, input));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * {@inheritDoc ClusterCacheApi.getLastProbeSuccessTimestamp}
   *
   * @example How fresh is what we know about the cluster
   * ```ts
   * import assert from "node:assert/strict";
   * import { connectedCache } from "@fleetkit/clustercache/testing";
   *
   * await using docs = await connectedCache();
   * const { cache, cluster } = docs;
   * const last = cache.getLastProbeSuccessTimestamp(cluster);
   * assert.ok(last > 0 && last <= Date.now());
   * ```
   */
  getLastProbeSuccessTimestamp(cluster: ObjectKey): number {
    return this.#reconciler.accessor(checkClusterKey(cluster))?.health.lastProbeSuccessTime ??
      0;
  }

  /**
   * {@inheritDoc ClusterCacheApi.getHealthCheckingState}
   *
   * @example Health on a status page
   * ```ts
   * import assert from "node:assert/strict";
   * import { connectedCache } from "@fleetkit/clustercache/testing";
   *
   * await using docs = await connectedCache();
   * const { cache, cluster } = docs;
   * const state = cache.getHealthCheckingState(cluster);
   * assert.equal(state.consecutiveFailures, 0);
   * assert.ok(state.lastProbeSuccessTime > 0);
   * ```
   */
  getHealthCheckingState(cluster: ObjectKey): HealthCheckingState {
    const health = this.#reconciler.accessor(checkClusterKey(cluster))?.health;
    return health
      ? { ...health }
      : { lastProbeTime: 0, lastProbeSuccessTime: 0, consecutiveFailures: 0 };
  }

  /**
   * {@inheritDoc ClusterCacheApi.getInformerStates}
   *
   * @example Which kinds a cluster's cache can be trusted for
   * ```ts
   * import assert from "node:assert/strict";
   * import { connectedCache } from "@fleetkit/clustercache/testing";
   *
   * await using docs = await connectedCache();
   * const { cache, cluster } = docs;
   * await cache.getReader(cluster).list({ apiVersion: "v1", kind: "Node" }); // starts the informer
   * const blind = cache.getInformerStates(cluster).filter((s) => s.phase === "failing");
   * assert.deepEqual(blind, []);
   * ```
   */
  getInformerStates(cluster: ObjectKey): InformerState[] {
    return this.#reconciler.accessor(checkClusterKey(cluster))?.informerStates() ?? [];
  }

  /**
   * Everything the cache knows of a cluster (see {@linkcode ClusterDescription}): what the status
   * page (`@fleetkit/clustercache/status`) shows. `undefined` for a cluster the cache does not track.
   *
   * @example What happened to a cluster lately
   * ```ts
   * import assert from "node:assert/strict";
   * import { connectedCache } from "@fleetkit/clustercache/testing";
   *
   * await using docs = await connectedCache();
   * const { cache, cluster } = docs;
   * const described = cache.describeCluster(cluster)!;
   * assert.equal(described.connected, true);
   * assert.equal(described.history.at(-1)?.kind, "connected");
   * ```
   */
  describeCluster(cluster: ObjectKey): ClusterDescription | undefined {
    const key = checkClusterKey(cluster);
    const accessor = this.#reconciler.accessor(key);
    if (!accessor) return undefined;
    const placement = accessor.connection?.session.placement;
    const shard = this.#reconciler.shardOf(key);
    return {
      cluster: parseClusterKey(key),
      connected: accessor.connected,
      ...(accessor.lastConnectionError
        ? { lastConnectionError: accessor.lastConnectionError }
        : {}),
      health: { ...accessor.health },
      ...(placement ? { placement } : {}),
      ...(shard ? { shard } : {}),
      kinds: accessor.informerStates(),
      history: this.#reconciler.history.of(key),
    };
  }

  /**
   * Whether the cluster is connected, and why the last connection attempt failed (if it did): for
   * dashboards and the demo; controllers should use cluster sources instead of polling this.
   *
   * @example A cluster that cannot be reached
   * ```ts
   * import assert from "node:assert/strict";
   * import { connectedCache } from "@fleetkit/clustercache/testing";
   *
   * await using docs = await connectedCache();
   * const { cache, cluster, fleet } = docs;
   * await fleet.cluster("workload-1").stop(); // connection refused from now on
   * // (A cache connected before keeps the connection until its probes fail; this one checks a new name.)
   * assert.deepEqual(cache.getConnectionState({ namespace: "default", name: "nope" }), {
   *   connected: false,
   * });
   * assert.equal(cache.getConnectionState(cluster).connected, true);
   * ```
   */
  getConnectionState(cluster: ObjectKey): { connected: boolean; lastConnectionError?: string } {
    const accessor = this.#reconciler.accessor(checkClusterKey(cluster));
    return {
      connected: accessor?.connected ?? false,
      ...(accessor?.lastConnectionError
        ? { lastConnectionError: accessor.lastConnectionError }
        : {}),
    };
  }

  /**
   * Keys of the clusters the cache currently tracks: those it has reconciled (connected or not) and
   * not yet forgotten.
   *
   * @example Which clusters the cache serves
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
   * for await (const _ of cache.getClusterSource("docs", (c) => [c])) break; // connected
   * assert.deepEqual(cache.clusters(), [{ namespace: "default", name: "workload-1" }]);
   * ```
   */
  clusters(): ObjectKey[] {
    return this.#reconciler.clusterKeys().map(parseClusterKey);
  }

  /**
   * {@inheritDoc ClusterCacheApi.getClusterSource}
   *
   * Every call adds a new source (even with a repeated name); a closed one is removed. After each
   * reconcile a source gets at most one event per cluster, for the reasons `"connect"` and
   * `"disconnect"` (both, in the order they happened, when a reconcile did both: use the event's
   * `connected`) and, per duration `d` of `watchForProbeFailure`, "health probe didn't succeed since
   * more than d". Clusters already connected when the source is created get one `"connect"` event
   * at once. A source created after `close()` is closed.
   *
   * @example Hearing about hung clusters
   * ```ts
   * import assert from "node:assert/strict";
   * import { connectedCache } from "@fleetkit/clustercache/testing";
   *
   * await using docs = await connectedCache();
   * const { cache, cluster } = docs;
   * const events: string[] = [];
   * const source = cache.getClusterSource("health", (c) => [c.metadata!.name!], {
   *   watchForProbeFailure: [60_000],
   * });
   * source.subscribe((name, event) => events.push(`${name}: ${event.reasons.join(", ")}`));
   * assert.deepEqual(events, ["workload-1: connect"]); // it was connected before the source existed
   * source.close();
   * ```
   */
  getClusterSource(
    controllerName: string,
    mapFn?: undefined,
    options?: ClusterSourceOptions,
  ): ClusterSource<ObjectKey>;
  getClusterSource<R>(
    controllerName: string,
    mapFn: (cluster: KubeObject) => R[],
    options?: ClusterSourceOptions,
  ): ClusterSource<R>;
  getClusterSource<R>(
    controllerName: string,
    givenMapFn?: (cluster: KubeObject) => R[],
    options: ClusterSourceOptions = {},
  ): ClusterSource<R> {
    return this.#reconciler.sources.add(controllerName, givenMapFn, options);
  }

  // ------------------------------------------------------------------------- lifecycle

  /**
   * Stops everything: the reconciler, every worker (aborting their requests), the management
   * connection, timers, and cluster sources (their iterators end). Safe to call twice.
   *
   * @example Shutting down
   * ```ts
   * import assert from "node:assert/strict";
   * import { connectedCache } from "@fleetkit/clustercache/testing";
   *
   * await using docs = await connectedCache();
   * const { cache, cluster } = docs;
   * const source = cache.getClusterSource("loop", (c) => [c]);
   * const loop = (async () => {
   *   for await (const _request of source) {
   *     // reconcile
   *   }
   * })();
   * await cache.close(); // `await using` would also do it
   * await loop; // the source's iterator ended
   * assert.equal(cache.getConnectionState(cluster).connected, false);
   * ```
   */
  close(): Promise<void> {
    this.#closed ??= this.#reconciler.stop();
    return this.#closed;
  }

  /** Same as {@linkcode ClusterCache.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
