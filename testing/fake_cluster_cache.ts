/**
 * Main thread (tests): a fake ClusterCache for unit tests of controllers (Cluster API's
 * `NewFakeClusterCache`): one cluster backed by a client you give it, whose reads follow the cache's
 * rules, whose watches deliver the client's writes (and events you inject), and whose cluster-source
 * events you trigger by hand. No workers, no management cluster.
 *
 * @module
 */

import { generateClientCertificateKey } from "../src/main/reconcile/client_certificate_key.ts";
import type { CacheOptions } from "../src/shared/cache_options.ts";
import type { Client, ListOptions, Reader, WatchEvent } from "../src/shared/client_types.ts";
import type {
  ClusterCacheApi,
  Freshness,
  HealthCheckingState,
  ReaderOptions,
  StaleReader,
  WatchHandle,
  WatchInput,
} from "../src/main/cache_api.ts";
import type { ClusterSource, ClusterSourceOptions } from "../src/main/sources/cluster_source.ts";
import {
  ClusterCacheError,
  ClusterNotConnectedError,
  describeError,
} from "../src/shared/errors.ts";
import {
  formatObjectKey,
  type KindRef,
  type KubeObject,
  type ObjectKey,
} from "../src/shared/kube_object.ts";
import type { KubeConfigLike } from "../src/main/kube_config_like.ts";
import { kubeConfigFromRESTConfig } from "../src/main/management/kubeconfig.ts";
import { logger } from "../src/main/log.ts";
import { compileFilters } from "../src/shared/predicates.ts";
import type { RESTConfig } from "../src/shared/rest_config.ts";
import { type ClusterState, SourceRegistry } from "../src/main/sources/source_registry.ts";
import { type InformerState, kindKey } from "../src/shared/protocol.ts";
import { WatchDispatch } from "../src/main/watches/watch_dispatch.ts";
import { checkWatchInput } from "../src/main/watches/watch_registry.ts";
import { CachedView } from "./cached_view.ts";
import { FakeClient } from "./fake_client.ts";

/**
 * Options of {@linkcode FakeClusterCache}.
 *
 * @example A Cluster with labels, for map functions that read them
 * ```ts
 * import assert from "node:assert/strict";
 * import {
 *   FakeClient,
 *   FakeClusterCache,
 *   type FakeClusterCacheOptions,
 * } from "@fleetkit/clustercache/testing";
 *
 * const key = { namespace: "default", name: "workload-1" };
 * const options: FakeClusterCacheOptions = {
 *   watches: ["nodes"],
 *   cluster: {
 *     apiVersion: "cluster.x-k8s.io/v1beta2",
 *     kind: "Cluster",
 *     metadata: { ...key, labels: { env: "prod" } },
 *   },
 * };
 * const cache = new FakeClusterCache(new FakeClient(), key, options);
 * const envs: string[] = [];
 * const source = cache.getClusterSource("by-env", (c) => [c.metadata!.labels!.env!]);
 * source.subscribe((env) => envs.push(env));
 * assert.deepEqual(envs, ["prod"]);
 * assert.deepEqual(cache.watches, ["nodes"]);
 * source.close();
 * ```
 */
export interface FakeClusterCacheOptions {
  /** Watch names already added (watching them again is a no-op). */
  watches?: string[];
  /** Returned by `getRESTConfig` (and used by `getKubeConfig`); without it those throw. */
  restConfig?: RESTConfig;
  /** The Cluster object handed to cluster sources' map functions. Default: a bare Cluster with the key. */
  cluster?: KubeObject;
  /** The cache's options, as given to `ClusterCache.setup`: its `indexes` serve field selectors. */
  cache?: CacheOptions;
}

/** A watch of the fake: events pass its filters and reach its handler as in the cache. */
interface FakeWatch {
  kind: { apiVersion: string; kind: string };
  /** Selectors (the worker's part of the filtering in the real cache). */
  accepts: (event: WatchEvent) => boolean;
  /** The real cache's delivery: in order, one at a time, local predicates, handler errors logged. */
  dispatch: WatchDispatch;
  unsubscribe: () => void;
  /**
   * Ends it (resolves its handle's `done`); a `synced` still waiting resolves if it was stopped,
   * and fails if the cluster disconnected.
   */
  end: (why: "stopped" | "disconnected") => void;
  synced: Promise<void>;
  done: Promise<void>;
}

/**
 * One connected cluster, backed by `client`.
 *
 * @example Testing a controller that reads through the ClusterCache
 * ```ts
 * import assert from "node:assert/strict";
 * import { FakeClient, FakeClusterCache } from "@fleetkit/clustercache/testing";
 *
 * const key = { namespace: "default", name: "workload-1" };
 * const cache = new FakeClusterCache(new FakeClient(), key);
 * const nodes = await cache.getClient(key).list({ apiVersion: "v1", kind: "Node" });
 * assert.equal(nodes.items.length, 0);
 * ```
 */
export class FakeClusterCache implements ClusterCacheApi {
  readonly #client: Client;
  readonly #cached: CachedView;
  readonly #key: ObjectKey;
  readonly #options: FakeClusterCacheOptions;
  /** Names watched before the fake existed (`options.watches`): no handler behind them. */
  readonly #seeded: Set<string>;
  readonly #watches = new Map<string, FakeWatch>();
  /** The real cache's sources: the same checks, the same events. */
  readonly #sources: SourceRegistry;
  readonly #health: HealthCheckingState;
  readonly #log = logger("fake");
  #connected = true;
  readonly #informers = new Map<string, InformerState>();
  #disconnectedAt = 0;
  /** Bumped by every reconnect, as the real cache's connection id. */
  #connectionId = 1;
  #privateKey: Promise<CryptoKeyPair> | undefined;

  /**
   * Creates a fake with one connected cluster.
   *
   * @param client Serves every client call.
   * @param cluster The one connected cluster.
   * @param options Watches, REST config, Cluster object.
   */
  constructor(client: Client, cluster: ObjectKey, options: FakeClusterCacheOptions = {}) {
    this.#client = client;
    this.#cached = new CachedView(client, options.cache?.indexes ?? [], formatObjectKey(cluster));
    this.#key = cluster;
    this.#options = options;
    this.#seeded = new Set(options.watches ?? []);
    const now = Date.now();
    this.#health = { lastProbeTime: now, lastProbeSuccessTime: now, consecutiveFailures: 0 };
    this.#sources = new SourceRegistry(
      this.#log,
      () => this.#connected ? [[formatObjectKey(cluster), this.#cluster(), this.#state()]] : [],
    );
  }

  /** Names watched on the current connection. */
  get watches(): readonly string[] {
    return [...this.#seeded, ...this.#watches.keys()];
  }

  #check(cluster: ObjectKey, operation: string): void {
    if (!this.#connected || formatObjectKey(cluster) !== formatObjectKey(this.#key)) {
      throw new ClusterNotConnectedError(operation, cluster);
    }
  }

  /** {@inheritDoc ClusterCacheApi.getConnectionState} */
  getConnectionState(cluster: ObjectKey): { connected: boolean; lastConnectionError?: string } {
    return {
      connected: this.#connected && formatObjectKey(cluster) === formatObjectKey(this.#key),
    };
  }

  /** {@inheritDoc ClusterCacheApi.clusters} */
  clusters(): ObjectKey[] {
    return [{ ...this.#key }];
  }

  /** {@inheritDoc ClusterCacheApi.getClient} */
  getClient(cluster: ObjectKey): Client {
    this.#check(cluster, "error getting client");
    return this.#cached;
  }

  /** {@inheritDoc ClusterCacheApi.getReader} */
  getReader(cluster: ObjectKey): Reader;
  /** {@inheritDoc ClusterCacheApi.(getReader:2)} */
  getReader(cluster: ObjectKey, options: { allowStale: true }): StaleReader;
  /** {@inheritDoc ClusterCacheApi.(getReader:3)} */
  getReader(cluster: ObjectKey, options?: ReaderOptions): Reader;
  getReader(cluster: ObjectKey, options: ReaderOptions = {}): Reader | StaleReader {
    if (!options.allowStale) {
      this.#check(cluster, "error getting client reader");
      return this.#cached;
    }
    // The fake keeps its data when "disconnected" (trigger): stale reads go on from it.
    if (formatObjectKey(cluster) !== formatObjectKey(this.#key)) {
      throw new ClusterNotConnectedError("error getting client reader", cluster);
    }
    const cached = this.#cached;
    const freshness = (kind: KindRef) => this.getFreshness(cluster, kind);
    return {
      get: cached.get.bind(cached),
      list: async <T extends KubeObject = KubeObject>(kind: KindRef, list?: ListOptions) =>
        Object.assign(await cached.list<T>(kind, list), { freshness: freshness(kind) }),
      freshness,
    };
  }

  /** {@inheritDoc ClusterCacheApi.getFreshness} */
  getFreshness(cluster: ObjectKey, kind: KindRef): Freshness {
    const known = formatObjectKey(cluster) === formatObjectKey(this.#key);
    const state = known ? this.#informers.get(kindKey(kind)) : undefined;
    return {
      connected: known && this.#connected,
      ...(known && !this.#connected ? { disconnectedSince: this.#disconnectedAt } : {}),
      phase: state?.phase ?? (known ? "synced" : "none"),
      resourceVersion: state?.resourceVersion,
      lastHeardAt: state?.lastHeardAt ?? (known ? Date.now() : 0),
    };
  }

  /** {@inheritDoc ClusterCacheApi.getUncachedClient} */
  getUncachedClient(cluster: ObjectKey): Client {
    this.#check(cluster, "error getting uncached client");
    return this.#client;
  }

  /** {@inheritDoc ClusterCacheApi.getRESTConfig} */
  getRESTConfig(cluster: ObjectKey): RESTConfig {
    this.#check(cluster, "error getting REST config");
    if (!this.#options.restConfig) {
      throw new ClusterCacheError("Internal", "the FakeClusterCache was given no restConfig");
    }
    return structuredClone(this.#options.restConfig);
  }

  /** {@inheritDoc ClusterCacheApi.getKubeConfig} */
  getKubeConfig(cluster: ObjectKey): KubeConfigLike {
    return kubeConfigFromRESTConfig(this.getRESTConfig(cluster), formatObjectKey(cluster));
  }

  /** {@inheritDoc ClusterCacheApi.getClientCertificatePrivateKey} */
  getClientCertificatePrivateKey(cluster: ObjectKey): Promise<CryptoKeyPair | undefined> {
    this.#check(cluster, "error getting client certificate private key");
    this.#privateKey ??= generateClientCertificateKey();
    return this.#privateKey;
  }

  /**
   * {@inheritDoc ClusterCacheApi.watch}
   *
   * With a {@linkcode FakeClient}, existing objects reach the handler as adds before `synced`
   * resolves, then every write to the client; {@linkcode FakeClusterCache.inject} adds events of
   * your own. Filters apply as in the real cache. A name already watched is a no-op.
   */
  async watch<T extends KubeObject = KubeObject>(
    cluster: ObjectKey,
    input: WatchInput<T>,
  ): Promise<WatchHandle> {
    const { operation, pushdown, local } = checkWatchInput(
      cluster,
      input,
      this.getConnectionState(cluster).connected,
    );
    const existingWatch = this.#watches.get(input.name);
    if (this.#seeded.has(input.name) || existingWatch) {
      // A no-op, but not a blind one: the first watch's sync (or failure) is shared.
      return {
        synced: existingWatch?.synced ?? Promise.resolve(),
        done: existingWatch?.done ?? Promise.resolve(),
        stop: () => {},
        [Symbol.dispose]: () => {},
      };
    }
    const filter = compileFilters(pushdown);
    const ended = Promise.withResolvers<void>();
    const synced = Promise.withResolvers<void>();
    synced.promise.catch(() => {}); // a failure is the caller's to see, never an unhandled one
    const log = this.#log;
    const watch: FakeWatch = {
      kind: { apiVersion: input.kind.apiVersion, kind: input.kind.kind },
      accepts: filter,
      dispatch: new WatchDispatch(
        input.handler as (event: WatchEvent) => void | Promise<void>,
        local,
        (error) =>
          log.error("A watch handler failed", { watch: input.name, error: describeError(error) }),
        () => {}, // no window: nothing sends ahead
      ),
      unsubscribe: () => {},
      end: (why) => {
        watch.dispatch.stop();
        ended.resolve();
        if (why === "stopped") synced.resolve();
        else synced.reject(new ClusterNotConnectedError(operation, cluster));
      },
      synced: synced.promise,
      done: ended.promise,
    };
    this.#watches.set(input.name, watch);
    if (this.#client instanceof FakeClient) {
      // Subscribe before listing: a write in between arrives as an event, not lost.
      const pending: WatchEvent[] = [];
      let listed = false;
      watch.unsubscribe = this.#client.watchKind(input.kind, (event) => {
        if (listed) this.#deliver(watch, event);
        else pending.push(event);
      });
      const existing = await this.#client.list(input.kind);
      for (const object of existing.items) this.#deliver(watch, { type: "add", object });
      listed = true;
      const seen = new Set(existing.items.map((o) => o.metadata?.resourceVersion));
      for (const event of pending) {
        if (!seen.has(event.object.metadata?.resourceVersion)) this.#deliver(watch, event);
      }
    }
    watch.dispatch.whenHandled(synced.resolve); // the existing objects, as the real cache
    const stop = () => {
      watch.unsubscribe();
      if (this.#watches.get(input.name) === watch) this.#watches.delete(input.name);
      watch.end("stopped");
    };
    return { synced: synced.promise, done: watch.done, stop, [Symbol.dispose]: stop };
  }

  #deliver(watch: FakeWatch, event: WatchEvent): void {
    if (watch.accepts(event)) watch.dispatch.push([structuredClone(event)]);
  }

  /**
   * Delivers `event` to every watch of its object's kind (its `apiVersion` and `kind` say which),
   * through the watch's filters, as if the cluster had sent it.
   *
   * @returns Resolves once the handlers have run.
   */
  inject(event: WatchEvent): Promise<void> {
    const { apiVersion, kind } = event.object;
    const targets = [...this.#watches.values()].filter((w) =>
      w.kind.apiVersion === apiVersion && w.kind.kind === kind
    );
    for (const watch of targets) this.#deliver(watch, event);
    return this.settled();
  }

  /** Resolves once every event delivered so far has been handled. */
  async settled(): Promise<void> {
    await Promise.all([...this.#watches.values()].map((w) => w.dispatch.idle()));
  }

  /** {@inheritDoc ClusterCacheApi.getLastProbeSuccessTimestamp} */
  getLastProbeSuccessTimestamp(cluster: ObjectKey): number {
    return formatObjectKey(cluster) === formatObjectKey(this.#key)
      ? this.#health.lastProbeSuccessTime
      : 0;
  }

  /** {@inheritDoc ClusterCacheApi.getHealthCheckingState} */
  getHealthCheckingState(cluster: ObjectKey): HealthCheckingState {
    return formatObjectKey(cluster) === formatObjectKey(this.#key)
      ? { ...this.#health }
      : { lastProbeTime: 0, lastProbeSuccessTime: 0, consecutiveFailures: 0 };
  }

  /**
   * Stops the cache of `kind` where it is, as an informer that no longer hears from its server:
   * reads through `getClient()`/`getReader()` see what was there, writes still reach the client. A
   * {@linkcode Controller} that wrote and runs again waits for it (read-your-writes) until
   * {@linkcode FakeClusterCache.resumeCache}.
   */
  pauseCache(kind: KindRef): Promise<void> {
    return this.#cached.pause(kind);
  }

  /** Lets the cache of `kind` catch up with the client. */
  resumeCache(kind: KindRef): void {
    this.#cached.resume(kind);
  }

  /** {@inheritDoc ClusterCacheApi.getInformerStates} */
  getInformerStates(cluster: ObjectKey): InformerState[] {
    if (!this.getConnectionState(cluster).connected) return [];
    return [...this.#informers.values()].map((s) => ({ ...s }));
  }

  /**
   * Sets what a kind's informer reports (a failing kind, say), as the cluster's session would: it
   * shows in {@linkcode FakeClusterCache.getInformerStates}, and a later
   * {@linkcode FakeClusterCache.trigger} tells sources that watch for kind failures.
   *
   * @example A kind that starts failing
   * ```ts
   * import assert from "node:assert/strict";
   * import { FakeClient, FakeClusterCache } from "@fleetkit/clustercache/testing";
   *
   * const cluster = { namespace: "default", name: "workload-1" };
   * const cache = new FakeClusterCache(new FakeClient(), cluster);
   * const reasons: string[] = [];
   * const source = cache.getClusterSource("kinds", undefined, { watchForKindFailure: [50] });
   * source.subscribe((_key, event) => reasons.push(...event.reasons));
   * cache.setInformerState({
   *   kind: "v1 Pod",
   *   phase: "failing",
   *   synced: true,
   *   resourceVersion: "12",
   *   objects: 3,
   *   events: 0,
   *   lastHeardAt: Date.now(),
   *   failingSince: Date.now(),
   *   lastError: "pods is forbidden",
   * });
   * await new Promise((r) => setTimeout(r, 60));
   * cache.reconcile(); // what the cache's next reconcile of the cluster tells sources
   * assert.deepEqual(reasons, ["connect", "watch of v1 Pod failing since more than 50ms"]);
   * assert.equal(cache.getInformerStates(cluster)[0]?.phase, "failing");
   * source.close();
   * ```
   */
  setInformerState(state: InformerState): void {
    this.#informers.set(state.kind, { ...state });
  }

  /**
   * What a reconcile of the cluster tells sources now: probe-failure and kind-failure reasons, each
   * once, by Cluster API's rules (no connect or disconnect; use {@linkcode FakeClusterCache.trigger}).
   */
  reconcile(): void {
    this.#sources.reconciled(formatObjectKey(this.#key), this.#cluster(), this.#state(), []);
  }

  /** {@inheritDoc ClusterCacheApi.getClusterSource} */
  getClusterSource(
    controllerName: string,
    mapFn?: undefined,
    options?: ClusterSourceOptions,
  ): ClusterSource<ObjectKey>;
  /** {@inheritDoc ClusterCacheApi.(getClusterSource:2)} */
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
    return this.#sources.add(controllerName, givenMapFn, options);
  }

  /**
   * Delivers an event (e.g. `["disconnect"]`) to every cluster source, as a reconcile would.
   *
   * @param reasons The event's reasons.
   * @param connected The event's `connected`; by default what the last of `"connect"` and
   *   `"disconnect"` in `reasons` says (connected when neither is there).
   */
  trigger(reasons: string[], connected?: boolean): void {
    const last = reasons.findLast((r) => r === "connect" || r === "disconnect");
    const state = connected ?? last !== "disconnect";
    // A disconnect ends the connection's watches, as in the real cache: watch again on connect.
    if (reasons.includes("disconnect") || !state) this.#endWatches();
    if (state && !this.#connected) this.#connectionId++;
    if (!state && this.#connected) this.#disconnectedAt = Date.now();
    this.#connected = state;
    this.#sources.tell(formatObjectKey(this.#key), this.#cluster(), reasons, this.#state());
  }

  #endWatches(): void {
    for (const watch of this.#watches.values()) {
      watch.unsubscribe();
      watch.end("disconnected");
    }
    this.#watches.clear();
    this.#seeded.clear();
  }

  #cluster(): KubeObject {
    return this.#options.cluster ?? {
      apiVersion: "cluster.x-k8s.io/v1beta2",
      kind: "Cluster",
      metadata: { namespace: this.#key.namespace, name: this.#key.name },
    };
  }

  #state(): ClusterState {
    return {
      connectionId: this.#connected ? this.#connectionId : undefined,
      lastProbeSuccessTime: this.#health.lastProbeSuccessTime,
      failingKinds: [...this.#informers.values()].flatMap((s) =>
        s.failingSince === undefined ? [] : [{ kind: s.kind, since: s.failingSince }]
      ),
    };
  }
}
