/**
 * What controllers see of a ClusterCache (main thread): the watch input and handle, and the
 * interface the real cache and the fake one in `testing/` both implement.
 *
 * @module
 */

import type { Client, ListOptions, Reader, WatchEvent } from "../shared/client_types.ts";
import type { KindRef, KubeList, KubeObject, ObjectKey } from "../shared/kube_object.ts";
import type { Predicate } from "../shared/predicates.ts";
import type { ClusterSource, ClusterSourceOptions } from "./sources/cluster_source.ts";
import type { KubeConfigLike } from "./kube_config_like.ts";
import type { HealthCheckingState } from "./sessions/health_probe.ts";
import type { InformerState } from "../shared/protocol.ts";
import type { ClusterHistoryEntry } from "./reconcile/cluster_history.ts";

export type { HealthCheckingState };
import type { RESTConfig } from "../shared/rest_config.ts";

/**
 * How fresh a cluster's cache of one kind is.
 *
 * @example Telling a reconcile how old its data may be
 * ```ts
 * import assert from "node:assert/strict";
 * import type { Freshness } from "@fleetkit/clustercache";
 *
 * const freshness: Freshness = {
 *   connected: false,
 *   disconnectedSince: Date.now() - 30_000,
 *   phase: "synced",
 *   resourceVersion: "4711",
 *   lastHeardAt: Date.now() - 45_000,
 * };
 * const ageSeconds = (Date.now() - freshness.lastHeardAt) / 1000;
 * assert.ok(!freshness.connected && ageSeconds >= 45);
 * ```
 */
export interface Freshness {
  /** Whether the cluster is connected; `false`: what is read is its last cache. */
  connected: boolean;
  /** Since when it has been disconnected (epoch ms), while it is. */
  disconnectedSince?: number;
  /** The kind's informer (`none`: the cache holds no informer for the kind). */
  phase: InformerState["phase"] | "none";
  /** The resourceVersion the kind's cache is at. */
  resourceVersion: string | undefined;
  /** When the kind's informer last heard from the server (epoch ms; 0: never). */
  lastHeardAt: number;
}

/**
 * Everything the cache knows of one cluster, for operators (the status page, `describe`-like
 * tools): never a credential.
 *
 * @example Printing a fleet
 * ```ts
 * import type { ClusterDescription } from "@fleetkit/clustercache";
 *
 * function line(d: ClusterDescription): string {
 *   const blind = d.kinds.filter((k) => k.phase === "failing").map((k) => k.kind);
 *   return `${d.cluster.name}: ${d.connected ? "connected" : "down"}, ${d.placement ?? "-"}` +
 *     (blind.length ? `, failing: ${blind.join(", ")}` : "");
 * }
 * ```
 */
export interface ClusterDescription {
  /** The cluster. */
  cluster: ObjectKey;
  /** Whether it is connected. */
  connected: boolean;
  /** Why the last connection attempt failed, while it stands. */
  lastConnectionError?: string;
  /** Its health-checking state. */
  health: HealthCheckingState;
  /** Where its session runs, while connected. */
  placement?: "dedicated" | "pooled";
  /** With sharding: whether this replica serves it, and which replica should. */
  shard?: { servedHere: boolean; owner: string | undefined };
  /** Its kinds' informers, as last reported. */
  kinds: InformerState[];
  /** What happened to it lately, oldest first. */
  history: ClusterHistoryEntry[];
}

/** Options of {@linkcode ClusterCacheApi.getReader}. */
export interface ReaderOptions {
  /**
   * Read a disconnected cluster's last cache rather than fail with `ClusterNotConnectedError`
   * (Cluster API's behaviour, the default). Asking keeps the cluster's cache when it disconnects.
   */
  allowStale?: boolean;
}

/**
 * Cached reads that go on from a disconnected cluster's last cache, each list saying how fresh it
 * is (`freshness`).
 */
export interface StaleReader extends Reader {
  /** Lists objects of a kind, with how fresh the list is. */
  list<T extends KubeObject = KubeObject>(
    kind: KindRef,
    options?: ListOptions,
  ): Promise<KubeList<T> & { freshness: Freshness }>;
  /** How fresh the cluster's cache of `kind` is now. */
  freshness(kind: KindRef): Freshness;
}

/**
 * What {@linkcode ClusterCache.watch} needs.
 *
 * @example Hearing about ConfigMaps of one namespace in a workload cluster
 * ```ts
 * import assert from "node:assert/strict";
 * import { KubeConfig } from "@kubernetes/client-node";
 * import { ClusterCache, predicates, type WatchEvent, type WatchInput } from "@fleetkit/clustercache";
 * import { SimulatedFleet } from "@fleetkit/clustercache/testing";
 *
 * await using fleet = await SimulatedFleet.start({ clusters: 1 });
 * const management = new KubeConfig();
 * management.loadFromString(fleet.managementKubeconfig());
 * await using cache = await ClusterCache.setup({ management, client: { userAgent: "docs" } });
 *
 * const seen: string[] = [];
 * const created = Promise.withResolvers<void>();
 * const input: WatchInput = {
 *   name: "configmaps-in-apps", // a second watch() with this name on the same connection is a no-op
 *   kind: { apiVersion: "v1", kind: "ConfigMap" },
 *   predicates: [predicates.fieldSelector("metadata.namespace=apps")], // filtered in the worker
 *   handler: (event: WatchEvent) => {
 *     seen.push(`${event.type} ${event.object.metadata?.name}`);
 *     if (event.type === "add") created.resolve();
 *   },
 * };
 * for await (const cluster of cache.getClusterSource("docs", (c) => [{
 *   namespace: c.metadata!.namespace!,
 *   name: c.metadata!.name!,
 * }])) {
 *   const handle = await cache.watch(cluster, input); // the handler is registered
 *   await handle.synced; // the informer has synced
 *   const client = cache.getClient(cluster);
 *   await client.create({ apiVersion: "v1", kind: "Namespace", metadata: { name: "apps" } });
 *   await client.create({
 *     apiVersion: "v1",
 *     kind: "ConfigMap",
 *     metadata: { namespace: "apps", name: "settings" },
 *   });
 *   await created.promise;
 *   break;
 * }
 * assert.deepEqual(seen, ["add settings"]);
 * ```
 */
export interface WatchInput<T extends KubeObject = KubeObject> {
  /** Identifies the watch: a name already watched on the current connection is a no-op. */
  name: string;
  /** The kind to watch. */
  kind: KindRef;
  /**
   * Receives events, in order. A returned promise holds back later events of this watch until it
   * settles; errors are logged, never thrown back.
   */
  handler: (event: WatchEvent<T>) => void | Promise<void>;
  /** Filters; declarative ones run in the worker (see {@linkcode predicates}). */
  predicates?: Predicate<T>[];
  /**
   * Cancels waiting for the kind's informer to sync (`synced` then fails); once it has synced,
   * the handler's own pace is not cancelled by it: stop the watch for that.
   */
  signal?: AbortSignal;
}

/**
 * A watch added by {@linkcode ClusterCache.watch}: its sync, and how to stop it. Disposable, so
 * `using` stops it at the end of a scope. A reconnect ends every watch of the old connection.
 *
 * @example Waiting for the initial objects, stopping later
 * ```ts
 * import assert from "node:assert/strict";
 * import type { WatchHandle } from "@fleetkit/clustercache";
 * import { FakeClient, FakeClusterCache } from "@fleetkit/clustercache/testing";
 *
 * const cluster = { namespace: "default", name: "workload-1" };
 * const cache = new FakeClusterCache(new FakeClient(), cluster); // or a ClusterCache
 * const handle: WatchHandle = await cache.watch(cluster, {
 *   name: "nodes",
 *   kind: { apiVersion: "v1", kind: "Node" },
 *   handler: () => {},
 * });
 * await handle.synced; // every existing Node has reached the handler as an add
 * handle.stop(); // no more events; the name may be watched again
 * await handle.done;
 * assert.deepEqual(cache.watches, []);
 * ```
 */
export interface WatchHandle extends Disposable {
  /**
   * Resolves once the kind's informer has synced and the handler has finished with every existing
   * object, told as an `add` (an async handler's promise included); rejects when the kind cannot
   * sync (the watch is then removed: watch again) or the connection goes first. Only the
   * informer's sync is timed (`initialSyncTimeoutMs`): a slow handler does not fail the watch. A
   * watch stopped before it synced resolves it.
   */
  readonly synced: Promise<void>;
  /**
   * Resolves when the watch has ended, for whatever reason: stopped, failed to sync, or its
   * connection gone (a disconnect, the Cluster deleted, the cache closed). Never rejects.
   */
  readonly done: Promise<void>;
  /** Stops the handler and ends the watch in the worker. Safe to call twice. */
  stop(): void;
}

/**
 * What controllers use of a ClusterCache; {@linkcode ClusterCache} and the fake from `./testing`
 * both implement it, so controllers can be tested without workers or a management cluster.
 *
 * @example A reconcile function written against the interface, tested with the fake
 * ```ts
 * import assert from "node:assert/strict";
 * import { type ClusterCacheApi, ClusterNotConnectedError, type ObjectKey } from "@fleetkit/clustercache";
 * import { FakeClient, FakeClusterCache } from "@fleetkit/clustercache/testing";
 *
 * async function countNodes(cache: ClusterCacheApi, cluster: ObjectKey): Promise<number | undefined> {
 *   try {
 *     const nodes = await cache.getReader(cluster).list({ apiVersion: "v1", kind: "Node" });
 *     return nodes.items.length;
 *   } catch (error) {
 *     if (error instanceof ClusterNotConnectedError) return undefined; // the connect event comes later
 *     throw error;
 *   }
 * }
 *
 * const cluster = { namespace: "default", name: "workload-1" };
 * const client = new FakeClient({
 *   objects: [{ apiVersion: "v1", kind: "Node", metadata: { name: "node-1" } }],
 * });
 * const cache: ClusterCacheApi = new FakeClusterCache(client, cluster);
 * assert.equal(await countNodes(cache, cluster), 1);
 * assert.equal(await countNodes(cache, { namespace: "default", name: "workload-2" }), undefined);
 * ```
 */
export interface ClusterCacheApi {
  /** A client whose reads come from the cluster's cache. @throws {ClusterNotConnectedError} */
  getClient(cluster: ObjectKey): Client;
  /** The cached reads only. @throws {ClusterNotConnectedError} */
  getReader(cluster: ObjectKey): Reader;
  /**
   * Cached reads that, while the cluster is disconnected, go on from its last cache (kept for
   * `staleCacheMs` for clusters such a reader was asked for) and say how fresh they are.
   *
   * @throws {ClusterNotConnectedError} When the cluster is neither connected nor has a last cache.
   */
  getReader(cluster: ObjectKey, options: { allowStale: true }): StaleReader;
  /** Cached reads, stale ones allowed or not. */
  getReader(cluster: ObjectKey, options?: ReaderOptions): Reader;
  /**
   * How fresh the cluster's cache of `kind` is: connected or not, its informer's state and
   * resourceVersion, when it last heard from the server (as its session last reported).
   */
  getFreshness(cluster: ObjectKey, kind: KindRef): Freshness;
  /** A client whose every call goes live. @throws {ClusterNotConnectedError} */
  getUncachedClient(cluster: ObjectKey): Client;
  /** The cluster's REST config (with credentials: never log it). @throws {ClusterNotConnectedError} */
  getRESTConfig(cluster: ObjectKey): RESTConfig;
  /** A client-node `KubeConfig` for the cluster. @throws {ClusterNotConnectedError} */
  getKubeConfig(cluster: ObjectKey): KubeConfigLike;
  /** The cluster's RSA-2048 key pair for client certificates; `undefined` before its first connect. */
  getClientCertificatePrivateKey(cluster: ObjectKey): Promise<CryptoKeyPair | undefined>;
  /**
   * Adds a watch on the current connection; resolves once its handler is registered (its sync is
   * `handle.synced`). @throws {ClusterNotConnectedError}
   */
  watch<T extends KubeObject = KubeObject>(
    cluster: ObjectKey,
    input: WatchInput<T>,
  ): Promise<WatchHandle>;
  /** When the health probe last succeeded (epoch ms; 0 = never). */
  getLastProbeSuccessTimestamp(cluster: ObjectKey): number;
  /** The health-checking state (zeros when the cluster is unknown). */
  getHealthCheckingState(cluster: ObjectKey): HealthCheckingState;
  /**
   * The state of each kind's informer on the cluster's connection, as its session last reported it
   * (every few seconds; none while disconnected): a kind can be failing while the cluster and its
   * other kinds are healthy.
   */
  getInformerStates(cluster: ObjectKey): InformerState[];
  /** Whether the cluster is connected, and why the last attempt failed. */
  getConnectionState(cluster: ObjectKey): { connected: boolean; lastConnectionError?: string };
  /** Keys of the clusters the cache tracks (connected or not). */
  clusters(): ObjectKey[];
  /**
   * A source of reconcile requests on connect, disconnect and probe failures: the Cluster's own
   * key by default, or what `mapFn` makes of the Cluster.
   */
  getClusterSource(
    controllerName: string,
    mapFn?: undefined,
    options?: ClusterSourceOptions,
  ): ClusterSource<ObjectKey>;
  /** {@inheritDoc ClusterCacheApi.(getClusterSource:1)} */
  getClusterSource<R>(
    controllerName: string,
    mapFn: (cluster: KubeObject) => R[],
    options?: ClusterSourceOptions,
  ): ClusterSource<R>;
}
