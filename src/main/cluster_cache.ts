/**
 * The `ClusterCache`: one reconciler over the management cluster's Clusters that connects, probes and
 * disconnects workload clusters (one worker each) by Cluster API's rules, and the facade controllers
 * use to get clients, REST configs, watches and cluster sources.
 *
 * @module
 */

import {
  ClusterAccessor,
  type ConnectContext,
  type HealthCheckingState,
  type HealthCheckResult,
} from "./accessor.ts";
import { checkKind, type ClientHost, WorkerClient } from "./client.ts";
import type { Client, Reader, WatchEvent } from "../shared/client_types.ts";
import { infrastructureReady, passesWatchFilter } from "./cluster_object.ts";
import {
  type ClusterEvent,
  clusterKeyOf,
  ClusterSource,
  type ClusterSourceOptions,
} from "./cluster_source.ts";
import { AimdLimit } from "./aimd_limit.ts";
import { ClusterCacheError, ClusterNotConnectedError } from "../shared/errors.ts";
import { formatObjectKey, type KubeObject, type ObjectKey } from "../shared/kube_object.ts";
import type { KubeConfigLike } from "./kube_config_like.ts";
import { kubeConfigFromRESTConfig } from "./kubeconfig.ts";
import { forwardWorkerLog, logger } from "./log.ts";
import { LoopLagMonitor } from "./loop_lag.ts";
import { ShardCoordinator } from "./shard_coordinator.ts";
import { ManagementCluster } from "./management.ts";
import { ClusterCacheMetrics } from "./metrics.ts";
import { type ClusterCacheOptions, type ResolvedOptions, resolveOptions } from "./options.ts";
import { splitPredicates } from "../shared/predicates.ts";
import type { RESTConfig } from "../shared/rest_config.ts";
import { minDurationOrDefault, shouldRequeue } from "./requeue.ts";
import { shouldSendEvent, type Transition } from "./source_events.ts";
import { WorkQueue } from "./work_queue.ts";
import type { Placement, WorkerHandleHooks, WorkerPermissions } from "./worker_handle.ts";
import { WorkerPool } from "./worker_pool.ts";
import { handOver, type MovingWatch, warmUp } from "./session_move.ts";
import { workerPermissions } from "./worker_permissions.ts";
import { WatchDispatch } from "./watch_dispatch.ts";
import { checkClusterKey, parseClusterKey } from "./cluster_key.ts";
import type { ClusterCacheApi, WatchHandle, WatchInput } from "./cache_api.ts";

export type { ClusterCacheApi, WatchHandle, WatchInput } from "./cache_api.ts";
export { WATCH_BACKLOG_HIGH } from "./watch_dispatch.ts";
import type { PressureReport } from "../shared/protocol.ts";

interface SourceEntry {
  source: ClusterSource<unknown>;
  mapFn: (cluster: KubeObject) => unknown[];
  /** The connection (id) of each cluster this source was last told about. */
  announced: Map<string, number>;
}

/** Why a cluster has a worker of its own for good (a promoted one moves back once calm). */
const CRASHED_POOLED_WORKER = "it crashed or hung its pooled worker";

interface WatchRegistration extends MovingWatch {
  connectionId: number;
  cluster: string;
  dispatch: WatchDispatch;
  /** Settles when the watch has synced (or failed to). */
  synced: Promise<void>;
}

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
  readonly #workerLog = logger("worker");
  readonly #accessors = new Map<string, ClusterAccessor>();
  readonly #sources: SourceEntry[] = [];
  readonly #watches = new Map<number, WatchRegistration>();
  readonly #lifetime = new AbortController();
  readonly #queue: WorkQueue;
  // Connects start workers (CPU) and handshake with API servers: admitted at the rate that succeeds.
  readonly #admission = new AimdLimit({
    initial: 2 * (navigator.hardwareConcurrency || 2),
    min: 1,
    max: 64,
  });
  // Probes out at once: Cluster API's clustercache controller runs at most 100 reconciles at once;
  // fewer while probes time out, so an overloaded machine or API server gets less to do, not more.
  readonly #probes = new AimdLimit({ initial: 100, min: 1, max: 100 });
  // Tells probes that time out because this process is starved from probes of a dead cluster.
  readonly #lag = new LoopLagMonitor();
  #management: ManagementCluster | undefined;
  #shards: ShardCoordinator | undefined;
  /** Clusters let go because another replica serves them; their sources hear `disconnect`. */
  readonly #handedOff = new Set<string>();
  #nextWatchId = 1;
  #closed: Promise<void> | undefined;
  readonly #pool: WorkerPool;
  /** Clusters being moved to another worker. */
  readonly #moving = new Set<string>();

  private constructor(options: ResolvedOptions) {
    this.#options = options;
    this.#pool = new WorkerPool(options.workers, (message) => this.#log.warn(message));
    this.#queue = new WorkQueue(
      (key) => this.#reconcile(key),
      (key, error) => {
        this.#log.error("Reconcile failed", {
          cluster: key,
          error: (error as Error)?.message ?? String(error),
        });
        return options.defaultRequeueAfterMs;
      },
    );
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
    const cache = new ClusterCache(resolveOptions(options));
    const warning = cache.#options.workerPermissionsWarning;
    if (warning) cache.#log.warn(warning);
    cache.#lag.start();
    try {
      cache.#management = await ManagementCluster.start(
        cache.#options,
        (key) => cache.#queue.add(key),
        (rest) => cache.#permissions(rest),
      );
    } catch (error) {
      await cache.close();
      throw error;
    }
    const sharding = cache.#options.sharding;
    if (sharding) {
      const shards = new ShardCoordinator(sharding, cache.#management.leases());
      shards.onChange(() => cache.#shardsChanged());
      cache.#shards = shards;
      shards.start();
    }
    for (const key of cache.#management.clusterKeys()) cache.#queue.add(key);
    return cache;
  }

  /**
   * What this replica serves changed: let go of clusters handed to another replica at once (before
   * the coordinator releases their Lease), then reconcile every cluster.
   */
  #shardsChanged(): void {
    const shards = this.#shards;
    const management = this.#management;
    if (!shards || !management) return;
    for (const [key, accessor] of this.#accessors) {
      if (!shards.owns(key) && accessor.connected) {
        this.#log.info("Another replica serves this cluster now; disconnecting", { cluster: key });
        this.#disconnect(accessor);
        this.#handedOff.add(key);
      }
    }
    const keys = management.clusterKeys();
    const owned = keys.filter((key) => shards.owns(key)).length;
    for (const key of keys) {
      this.metrics.ownership(parseClusterKey(key), shards.owns(key), owned);
      this.#queue.add(key);
    }
  }

  // ------------------------------------------------------------------------- public API

  #accessorFor(cluster: ObjectKey, operation: string): ClusterAccessor {
    const accessor = this.#accessors.get(checkClusterKey(cluster));
    if (!accessor) throw new ClusterNotConnectedError(operation, cluster);
    return accessor;
  }

  #host(cluster: ObjectKey): ClientHost {
    const key = checkClusterKey(cluster);
    return {
      options: this.#options,
      connection: (operation) => {
        const accessor = this.#accessors.get(key);
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
   */
  getReader(cluster: ObjectKey): Reader {
    this.#accessorFor(cluster, "error getting client reader").require(
      "error getting client reader",
    );
    const client = new WorkerClient(this.#host(cluster), true);
    return { get: client.get.bind(client), list: client.list.bind(client) };
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
    const accessor = this.#accessors.get(checkClusterKey(cluster));
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
   * kind's informer has synced and the handler has been given every existing object as an `add`
   * (it waits up to `initialSyncTimeoutMs`). A second `watch()` with a name already watched on this
   * connection registers nothing and shares the first one's `synced`: if that fails, both learn it,
   * and the name is free again. A reconnect forgets all watches: watch again on the connect event.
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
      return Promise.resolve(this.#addWatch(cluster, input));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  #addWatch<T extends KubeObject>(cluster: ObjectKey, input: WatchInput<T>): WatchHandle {
    const key = checkClusterKey(cluster);
    checkKind(input?.kind);
    const operation =
      `error creating watch ${input.name} for ${input.kind.apiVersion} ${input.kind.kind}`;
    const accessor = this.#accessors.get(key);
    if (!accessor) throw new ClusterNotConnectedError(operation, cluster);
    if (typeof input.name !== "string" || input.name === "") {
      throw new TypeError("watch name cannot be empty");
    }
    if (typeof input.handler !== "function") {
      throw new TypeError("watch handler must be a function");
    }
    const { pushdown, local } = splitPredicates(input.predicates);
    const connection = accessor.require(operation);
    const existing = connection.watches.get(input.name);
    // A name already watched is a no-op, but not a blind one: its sync (or failure) is shared.
    if (existing) return { synced: existing.synced, stop: () => {}, [Symbol.dispose]: () => {} };
    const watchId = this.#nextWatchId++;
    const log = this.#log;
    const registration: WatchRegistration = {
      watchId,
      kind: input.kind,
      filters: pushdown,
      worker: connection.worker,
      get paused() {
        return this.dispatch.paused;
      },
      connectionId: connection.id,
      cluster: key,
      synced: Promise.resolve(),
      isSynced: false,
      start: () => {},
      dispatch: new WatchDispatch(
        input.handler as (event: WatchEvent) => void | Promise<void>,
        local as ((event: WatchEvent) => boolean)[],
        (error) =>
          log.error("A watch handler failed", {
            cluster: key,
            watch: input.name,
            error: String(error),
          }),
        (paused) => {
          log.debug(paused ? "A watch handler is behind; pausing" : "Resuming a watch", {
            cluster: key,
            watch: input.name,
          });
          registration.worker.flow(watchId, paused);
        },
      ),
    };
    this.#watches.set(watchId, registration);
    // Settled by the session serving the watch when it answers: a watch moved to another worker
    // before it synced is synced by its new session.
    const { promise: synced, resolve, reject } = Promise.withResolvers<void>();
    registration.start = (worker) => {
      registration.worker = worker;
      worker.call(
        { op: "watch", watchId, kind: input.kind, filters: pushdown },
        {
          timeoutMs: this.#options.initialSyncTimeoutMs + this.#options.client.timeoutMs + 1_000,
          signal: input.signal,
          operation,
        },
      ).then(() => {
        if (registration.worker !== worker) return;
        registration.isSynced = true;
        resolve();
      }, (error) => {
        if (registration.worker === worker) reject(error);
      });
    };
    registration.start(connection.worker);
    registration.synced = synced.catch(() => {});
    const entry = { synced };
    connection.watches.set(input.name, entry);
    let stopped = false;
    const stop = () => {
      if (stopped) return;
      stopped = true;
      const current = this.#accessors.get(key)?.connection;
      for (const c of [connection, current]) {
        if (c?.id === connection.id && c.watches.get(input.name) === entry) {
          c.watches.delete(input.name);
        }
      }
      this.#watches.delete(watchId);
      if (registration.worker.alive) {
        void registration.worker.call({ op: "unwatch", watchId }, { timeoutMs: 5_000, operation })
          .catch(() => {});
      }
    };
    // A failed sync unregisters the name, so the next watch() tries again. (This also handles the
    // rejection for callers that never await `synced`.)
    synced.catch(stop);
    return { synced, stop, [Symbol.dispose]: stop };
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
    return this.#accessors.get(checkClusterKey(cluster))?.health.lastProbeSuccessTime ?? 0;
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
    const health = this.#accessors.get(checkClusterKey(cluster))?.health;
    return health
      ? { ...health }
      : { lastProbeTime: 0, lastProbeSuccessTime: 0, consecutiveFailures: 0 };
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
    const accessor = this.#accessors.get(checkClusterKey(cluster));
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
    return [...this.#accessors.keys()].map(parseClusterKey);
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
    const mapFn = givenMapFn ?? (clusterKeyOf as unknown as (cluster: KubeObject) => R[]);
    if (typeof controllerName !== "string" || controllerName === "") {
      throw new TypeError("controllerName cannot be empty");
    }
    if (typeof mapFn !== "function") throw new TypeError("mapFn must be a function");
    for (const d of options.watchForProbeFailure ?? []) {
      if (typeof d !== "number" || !Number.isFinite(d) || d <= 0) {
        throw new RangeError(`watchForProbeFailure durations must be positive, got ${String(d)}`);
      }
    }
    const log = this.#log;
    const source: ClusterSource<R> = new ClusterSource<R>(controllerName, options, {
      onDrop: (dropped) =>
        log.warn("A cluster source's queue is full; dropped the oldest request", {
          controllerName,
          dropped,
        }),
      onSubscriberError: (error) =>
        log.error("A cluster source subscriber threw", { controllerName, error: String(error) }),
      // A closed source is forgotten: its mapFn no longer runs on every reconcile.
      onClose: () => {
        const at = this.#sources.findIndex((e) => e.source === source);
        if (at >= 0) this.#sources.splice(at, 1);
      },
    });
    if (this.#closed) {
      source.close(); // nothing will ever come: its iteration ends at once
      return source;
    }
    const entry: SourceEntry = {
      source: source as ClusterSource<unknown>,
      mapFn: mapFn as (cluster: KubeObject) => unknown[],
      announced: new Map(),
    };
    this.#sources.push(entry);
    // Clusters connected before the source existed get their connect event now: no other will come.
    const now = Date.now();
    for (const [key, accessor] of this.#accessors) {
      const cluster = accessor.connected ? this.#management?.cluster(key) : undefined;
      if (cluster) this.#deliver(entry, key, cluster, ["connect"], now, accessor);
    }
    return source;
  }

  // ------------------------------------------------------------------------- reconciler

  #permissions(rest: RESTConfig, placement: Placement = "dedicated"): WorkerPermissions {
    return workerPermissions(
      rest,
      this.#options,
      placement === "pooled" && this.#pool.mode === "pooled",
    );
  }

  #hooks(key: string, accessor: ClusterAccessor): WorkerHandleHooks {
    const cluster = accessor.key;
    return {
      onEvents: (watchId, events, from) => {
        const registration = this.#watches.get(watchId);
        if (registration?.worker === from) registration.dispatch.push(events);
      },
      onLog: (level, message, properties) =>
        forwardWorkerLog(this.#workerLog, level, message, { ...properties, cluster: key }),
      onInformer: (kind, event) => this.metrics.informer(cluster, kind, event),
      onStats: (stats) => this.metrics.workerStats(cluster, stats),
      onFailure: (error, culprit) => {
        this.#log.error("A cluster's worker failed", { cluster: key, error: error.message });
        if (culprit && this.#pool.mode === "pooled" && accessor.placement === "pooled") {
          // It would take its neighbours down again: it gets a worker of its own.
          accessor.placement = "dedicated";
          accessor.placementReason = CRASHED_POOLED_WORKER;
        }
        this.#queue.add(key);
      },
      onPressure: (pressure) => this.#pressure(key, accessor, pressure),
      onRoundTrip: (op, seconds) => this.metrics.roundTrip(op, seconds),
    };
  }

  #connectContext(key: string, accessor: ClusterAccessor): ConnectContext {
    return {
      options: this.#options,
      readSecret: (signal) =>
        this.#management!.secret({
          namespace: accessor.key.namespace,
          name: `${accessor.key.name}-kubeconfig`,
        }, signal),
      hooks: (a) => this.#hooks(key, a),
      permissions: (rest, placement) => this.#permissions(rest, placement),
      pool: this.#pool,
      signal: this.#lifetime.signal,
      admission: this.#admission,
    };
  }

  /** @returns Whether it was connected. */
  #disconnect(accessor: ClusterAccessor): boolean {
    const id = accessor.connection?.id;
    if (!accessor.disconnect()) return false;
    this.metrics.connection(accessor.key, false);
    this.#forgetWatches(id);
    return true;
  }

  #cleanup(key: string, why: string): void {
    const accessor = this.#accessors.get(key);
    if (accessor) {
      this.#log.info("Forgetting cluster", { cluster: key, reason: why });
      this.#disconnect(accessor);
      accessor.dropSpare();
      this.#accessors.delete(key);
    }
    for (const { source, announced } of this.#sources) {
      source.forget(key);
      announced.delete(key);
    }
    this.metrics.forget(parseClusterKey(key));
  }

  #clusterFilter(cluster: KubeObject, key: string): boolean {
    if (!this.#options.clusterFilter) return true;
    try {
      return this.#options.clusterFilter(cluster) !== false;
    } catch (error) {
      this.#log.error("clusterFilter threw; treating the Cluster as filtered in", {
        cluster: key,
        error: String(error),
      });
      return true;
    }
  }

  async #reconcile(key: string): Promise<number | undefined> {
    const management = this.#management;
    if (!management || this.#lifetime.signal.aborted) return undefined;
    const cluster = management.cluster(key);
    if (!cluster) {
      this.#cleanup(key, "the Cluster was deleted");
      return undefined;
    }
    if (
      !passesWatchFilter(cluster, this.#options.watchFilterValue) ||
      !this.#clusterFilter(cluster, key)
    ) {
      this.#cleanup(key, "the Cluster is filtered out");
      return undefined;
    }
    let accessor = this.#accessors.get(key);
    if (!accessor) {
      accessor = new ClusterAccessor(parseClusterKey(key));
      this.#accessors.set(key, accessor);
    }
    if (!infrastructureReady(cluster)) {
      this.#log.debug("Infrastructure is not ready; not connecting", { cluster: key });
      return undefined;
    }
    const options = this.#options;
    const requeues: number[] = [];
    const transitions: Transition[] = [];
    if (this.#shards && !this.#shards.owns(key)) {
      // Another replica serves it (or this one could not renew its Lease in time): stay away.
      if (this.#disconnect(accessor)) this.#handedOff.add(key);
      if (this.#handedOff.delete(key)) transitions.push("disconnect");
      return this.#finish(key, cluster, accessor, transitions, requeues);
    }

    if (accessor.connection && !accessor.connection.worker.alive) {
      this.#crashed(accessor, transitions);
    }
    const secretKey = {
      namespace: accessor.key.namespace,
      name: `${accessor.key.name}-kubeconfig`,
    };
    const readSecret = (live: boolean) =>
      management.secret(
        secretKey,
        AbortSignal.any([this.#lifetime.signal, AbortSignal.timeout(options.client.timeoutMs)]),
        live,
      ).catch(() => undefined);
    // A rotated kubeconfig is picked up without waiting for a failed probe (only what is mirrored:
    // no live read per reconcile).
    if (accessor.connection) {
      const change = await accessor.kubeconfigChange(await readSecret(false));
      await this.#applyKubeconfigChange(key, accessor, change, transitions, requeues);
    }
    if (!accessor.connected) {
      const wait = shouldRequeue(
        Date.now(),
        accessor.lastConnectionCreationErrorTime,
        options.connectionCreationRetryIntervalMs,
      );
      // A Secret that changed since the attempt that failed is worth trying at once.
      let fixed = false;
      if (wait.requeue && accessor.failedSecretVersion !== null) {
        const current = (await readSecret(false))?.metadata?.resourceVersion;
        fixed = current !== undefined && current !== accessor.failedSecretVersion;
      }
      if (wait.requeue && !fixed) {
        requeues.push(wait.afterMs);
      } else {
        try {
          await accessor.connect(this.#connectContext(key, accessor));
          if (this.#shards && !this.#shards.owns(key)) {
            // Handed to another replica while connecting: never serve it, not even for a moment.
            this.#disconnect(accessor);
            return this.#finish(key, cluster, accessor, transitions, requeues);
          }
          transitions.push("connect");
          this.metrics.connection(accessor.key, true);
          this.metrics.placement(
            accessor.key,
            accessor.connection?.worker.placement === "dedicated",
          );
          this.#log.info("Connected to workload cluster", { cluster: key });
        } catch (error) {
          this.metrics.connection(accessor.key, false);
          this.#log.warn("Connecting to workload cluster failed", {
            cluster: key,
            error: (error as Error).message,
          });
          requeues.push(options.connectionCreationRetryIntervalMs);
        }
      }
    }
    if (accessor.connected && !this.#lifetime.signal.aborted) {
      const wait = shouldRequeue(
        Date.now(),
        accessor.health.lastProbeTime,
        options.healthProbe.intervalMs,
      );
      if (wait.requeue) {
        requeues.push(wait.afterMs);
      } else {
        const slot = await this.#probes.acquire(this.#lifetime.signal).catch(() => undefined);
        if (!slot) return this.#finish(key, cluster, accessor, transitions, requeues); // closed
        let result: HealthCheckResult;
        try {
          result = await accessor.healthCheck(options, (since) => this.#lag.maxLagSince(since));
        } catch (error) {
          slot.release("neutral");
          throw error;
        }
        slot.release(
          result.verdict === "success" ? "success" : result.overload ? "overload" : "neutral",
        );
        if (result.verdict === "crashed") {
          this.#crashed(accessor, transitions);
          requeues.push(1);
          return this.#finish(key, cluster, accessor, transitions, requeues);
        }
        if (result.verdict === "inconclusive") {
          this.metrics.inconclusiveProbe(accessor.key);
          this.#log.debug("Health probe inconclusive: this process was starved of CPU", {
            cluster: key,
          });
        } else this.metrics.probe(accessor.key, result.verdict === "success");
        if (result.heapUsedBytes !== undefined) {
          this.metrics.workerHeap(accessor.key, result.heapUsedBytes);
        }
        let unauthorized = result.verdict === "unauthorized";
        if (unauthorized) {
          // A 401 may only mean the credentials were rotated under us: read the Secret (live,
          // whatever its resourceVersion says) before counting it.
          const change = await accessor.kubeconfigChange(await readSecret(true), true);
          if (
            change.kind !== "none" &&
            await this.#applyKubeconfigChange(key, accessor, change, transitions, requeues)
          ) {
            accessor.forgiveLastFailure();
            unauthorized = false;
          }
        }
        const tooManyFailures =
          accessor.health.consecutiveFailures >= options.healthProbe.failureThreshold;
        if (unauthorized || tooManyFailures) {
          this.#log.warn("Disconnecting from workload cluster", {
            cluster: key,
            reason: unauthorized ? "unauthorized" : "too many failed health probes",
            consecutiveFailures: accessor.health.consecutiveFailures,
          });
          this.#disconnect(accessor);
          transitions.push("disconnect");
        }
        requeues.push(
          unauthorized
            ? 1
            : tooManyFailures
            ? options.connectionCreationRetryIntervalMs
            : options.healthProbe.intervalMs,
        );
      }
    }
    return this.#finish(key, cluster, accessor, transitions, requeues);
  }

  /**
   * Acts on a changed kubeconfig Secret of a connected cluster: a rotated token goes to the worker
   * in place (no events, no relist); anything else connects anew and swaps (make before break),
   * keeping the old connection when the new one cannot connect (retried after the interval).
   *
   * @returns Whether the change was applied (the token updated, or the connection replaced).
   */
  async #applyKubeconfigChange(
    key: string,
    accessor: ClusterAccessor,
    change: Awaited<ReturnType<ClusterAccessor["kubeconfigChange"]>>,
    transitions: Transition[],
    requeues: number[],
  ): Promise<boolean> {
    const options = this.#options;
    if (change.kind === "token") {
      try {
        await accessor.updateToken(change.token, options.client.timeoutMs);
        this.#log.info("The kubeconfig Secret's token was rotated; updated in place", {
          cluster: key,
        });
        return true;
      } catch (error) {
        this.#log.warn("Updating the rotated token failed; the next probe decides", {
          cluster: key,
          error: (error as Error).message,
        });
        return false;
      }
    }
    if (change.kind !== "other") return false;
    const wait = shouldRequeue(
      Date.now(),
      accessor.lastConnectionCreationErrorTime,
      options.connectionCreationRetryIntervalMs,
    );
    if (wait.requeue) {
      requeues.push(wait.afterMs);
      accessor.connection!.secretVersion = undefined; // look again next time
      return false;
    }
    this.#log.info("The kubeconfig Secret changed; connecting anew before letting go", {
      cluster: key,
    });
    try {
      const replaced = await accessor.swap(this.#connectContext(key, accessor));
      this.#forgetWatches(replaced);
      transitions.push("disconnect", "connect");
      this.metrics.connection(accessor.key, true);
      return true;
    } catch (error) {
      this.#log.warn("The changed kubeconfig does not connect; keeping the old connection", {
        cluster: key,
        error: (error as Error).message,
      });
      if (accessor.connection) accessor.connection.secretVersion = undefined;
      requeues.push(options.connectionCreationRetryIntervalMs);
      return false;
    }
  }

  /** A pooled cluster's load is too much for its neighbours (promote), or a promoted one calmed down. */
  #pressure(key: string, accessor: ClusterAccessor, pressure: PressureReport): void {
    if (this.#pool.mode !== "pooled" || this.#lifetime.signal.aborted) return;
    const worker = accessor.connection?.worker;
    if (!worker?.alive) return;
    if (pressure.level === "high" && worker.placement === "pooled") {
      accessor.placement = "dedicated";
      accessor.placementReason = pressure.reason;
      void this.#move(key, accessor, "dedicated", pressure.reason);
    } else if (
      pressure.level === "calm" && worker.placement === "dedicated" &&
      accessor.placementReason !== undefined && accessor.placement === "dedicated" &&
      accessor.placementReason !== CRASHED_POOLED_WORKER
    ) {
      accessor.placement = "pooled";
      accessor.placementReason = undefined;
      void this.#move(key, accessor, "pooled", pressure.reason);
    }
  }

  /**
   * Moves a connected cluster to a worker of its own or into the pool, make-before-break (see
   * `session_move.ts`): its cached reads and watches go on without a gap, a lost or a repeated
   * event. A move that cannot be made leaves the cluster where it is.
   */
  async #move(key: string, accessor: ClusterAccessor, placement: Placement, why: string) {
    if (this.#moving.has(key)) return;
    this.#moving.add(key);
    const started = performance.now();
    const options = this.#options;
    const timeouts = {
      syncMs: options.initialSyncTimeoutMs + options.client.timeoutMs,
      callMs: options.client.timeoutMs,
    };
    try {
      const old = accessor.connection;
      if (!old) return;
      this.#log.info(
        placement === "dedicated"
          ? "Moving a cluster to a worker of its own"
          : "Moving a calm cluster back into the pool",
        { cluster: key, reason: why },
      );
      let next;
      try {
        next = await accessor.prepare(this.#connectContext(key, accessor), placement);
        await warmUp(old.worker, next.worker, timeouts);
      } catch (error) {
        next?.worker.terminate("the move was abandoned");
        this.#log.warn("Moving the cluster failed; it stays where it is", {
          cluster: key,
          error: (error as Error).message,
        });
        return;
      }
      if (accessor.connection !== old || !old.worker.alive || this.#lifetime.signal.aborted) {
        next.worker.terminate("the move was abandoned");
        return;
      }
      accessor.adopt(next);
      const moving = [...this.#watches.values()].filter((w) => w.worker === old.worker);
      let exact = 0;
      for (const watch of moving) {
        if (this.#watches.get(watch.watchId) !== watch) continue; // stopped meanwhile
        if (!watch.isSynced) {
          // Its handler has heard nothing yet: the new session starts it afresh.
          void old.worker.call({ op: "unwatch", watchId: watch.watchId }, {
            timeoutMs: timeouts.callMs,
            operation: "error moving a watch",
          }).catch(() => {});
          watch.start(next.worker);
          exact++;
        } else if (await handOver(watch, next.worker, timeouts)) exact++;
      }
      this.metrics.moved(placement === "dedicated" ? "promote" : "demote");
      this.metrics.placement(accessor.key, placement === "dedicated");
      this.#log.info("Moved the cluster", {
        cluster: key,
        placement,
        watches: moving.length,
        restartedWatches: moving.length - exact,
        seconds: Number(((performance.now() - started) / 1000).toFixed(2)),
      });
      // Writes in flight finish where they started; reads still waiting are asked again of the
      // new session (see client.ts).
      await old.worker.drained(options.client.timeoutMs, ["get", "list", "watch"]);
      old.worker.terminate(`cluster ${key} moved to another worker`, true);
    } finally {
      this.#moving.delete(key);
    }
  }

  #forgetWatches(connectionId: number | undefined): void {
    if (connectionId === undefined) return;
    for (const [watchId, registration] of this.#watches) {
      if (registration.connectionId === connectionId) this.#watches.delete(watchId);
    }
  }

  /**
   * A crashed worker is one failed probe that no later probe can fix: disconnect (and reconnect). A
   * pooled neighbour of the cluster that crashed it is not to blame: no failure is counted.
   */
  #crashed(accessor: ClusterAccessor, transitions: Transition[]): void {
    const worker = accessor.connection?.worker;
    if (!worker || worker.culprit || worker.placement === "dedicated") {
      accessor.recordFailedProbe();
      this.metrics.probe(accessor.key, false);
    }
    this.#disconnect(accessor);
    transitions.push("disconnect");
  }

  #finish(
    key: string,
    cluster: KubeObject,
    accessor: ClusterAccessor,
    transitions: Transition[],
    requeues: number[],
  ): number | undefined {
    if (this.#lifetime.signal.aborted) {
      this.#disconnect(accessor);
      return undefined;
    }
    this.#sendEvents(key, cluster, accessor, transitions);
    return minDurationOrDefault(requeues, this.#options.defaultRequeueAfterMs);
  }

  #sendEvents(
    key: string,
    cluster: KubeObject,
    accessor: ClusterAccessor,
    transitions: Transition[],
  ): void {
    const now = Date.now();
    const connectionId = accessor.connection?.id;
    for (const entry of [...this.#sources]) { // a subscriber may close a source
      // A source created after this connection was made has heard of it already.
      const heard = connectionId !== undefined && entry.announced.get(key) === connectionId;
      const reasons = shouldSendEvent(
        {
          now,
          lastEventSent: entry.source.lastEventSent(key),
          lastProbeSuccess: accessor.health.lastProbeSuccessTime,
          transitions: heard ? transitions.filter((t) => t !== "connect") : transitions,
        },
        entry.source.probeFailureDurations,
      );
      if (reasons.length > 0) this.#deliver(entry, key, cluster, reasons, now, accessor);
    }
  }

  #deliver(
    entry: SourceEntry,
    key: string,
    cluster: KubeObject,
    reasons: string[],
    now: number,
    accessor: ClusterAccessor,
  ): void {
    const { source, mapFn } = entry;
    const connectionId = accessor.connection?.id;
    if (connectionId === undefined) entry.announced.delete(key);
    else entry.announced.set(key, connectionId);
    let requests: unknown[];
    try {
      requests = mapFn(cluster);
    } catch (error) {
      this.#log.error("A cluster source's mapFn threw", {
        cluster: key,
        controller: source.controllerName,
        error: String(error),
      });
      return;
    }
    const event: ClusterEvent = {
      cluster: parseClusterKey(key),
      reasons,
      connected: accessor.connected,
      time: now,
    };
    this.#log.debug("Sending cluster event", {
      cluster: key,
      controller: source.controllerName,
      reasons,
    });
    source.deliver(key, Array.isArray(requests) ? requests : [], event);
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
    this.#closed ??= (async () => {
      // Release this replica's Leases first, so the others take over without waiting them out.
      await this.#shards?.stop().catch(() => {});
      this.#lifetime.abort(new ClusterCacheError("Closed", "the ClusterCache was closed"));
      this.#lag.stop();
      this.#management?.close();
      await this.#queue.stop();
      for (const accessor of this.#accessors.values()) {
        this.#disconnect(accessor);
        accessor.dropSpare();
      }
      this.#accessors.clear();
      this.#watches.clear();
      for (const { source } of [...this.#sources]) source.close();
    })();
    return this.#closed;
  }

  /** Same as {@linkcode ClusterCache.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
