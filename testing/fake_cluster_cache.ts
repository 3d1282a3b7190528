/**
 * A fake ClusterCache for unit tests of controllers (Cluster API's `NewFakeClusterCache`): one
 * connected cluster backed by a client you give it, pre-seeded watches, and cluster-source events you
 * trigger by hand. No workers, no management cluster.
 *
 * @module
 */

import type { HealthCheckingState } from "../src/accessor.ts";
import type { Client, Reader } from "../src/client_types.ts";
import type { ClusterCacheApi, WatchHandle, WatchInput } from "../src/cluster_cache.ts";
import { clusterKeyOf, ClusterSource, type ClusterSourceOptions } from "../src/cluster_source.ts";
import { ClusterCacheError, ClusterNotConnectedError } from "../src/errors.ts";
import { formatObjectKey, type KubeObject, type ObjectKey } from "../src/kube_object.ts";
import type { KubeConfigLike } from "../src/kube_config_like.ts";
import { kubeConfigFromRESTConfig } from "../src/kubeconfig.ts";
import { splitPredicates } from "../src/predicates.ts";
import type { RESTConfig } from "../src/rest_config.ts";

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
}

interface SourceEntry {
  source: ClusterSource<unknown>;
  mapFn: (cluster: KubeObject) => unknown[];
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
  readonly #key: ObjectKey;
  readonly #options: FakeClusterCacheOptions;
  readonly #watches: Set<string>;
  readonly #sources: SourceEntry[] = [];
  readonly #health: HealthCheckingState;
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
    this.#key = cluster;
    this.#options = options;
    this.#watches = new Set(options.watches ?? []);
    const now = Date.now();
    this.#health = { lastProbeTime: now, lastProbeSuccessTime: now, consecutiveFailures: 0 };
  }

  /** Names watched so far. */
  get watches(): readonly string[] {
    return [...this.#watches];
  }

  #check(cluster: ObjectKey, operation: string): void {
    if (formatObjectKey(cluster) !== formatObjectKey(this.#key)) {
      throw new ClusterNotConnectedError(operation, cluster);
    }
  }

  /** {@inheritDoc ClusterCacheApi.getClient} */
  getClient(cluster: ObjectKey): Client {
    this.#check(cluster, "error getting client");
    return this.#client;
  }

  /** {@inheritDoc ClusterCacheApi.getReader} */
  getReader(cluster: ObjectKey): Reader {
    this.#check(cluster, "error getting client reader");
    return this.#client;
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
    this.#privateKey ??= crypto.subtle.generateKey(
      {
        name: "RSASSA-PKCS1-v1_5",
        modulusLength: 2048,
        publicExponent: new Uint8Array([1, 0, 1]),
        hash: "SHA-256",
      },
      true,
      ["sign", "verify"],
    );
    return this.#privateKey;
  }

  /** Records the watch name (no events are delivered); its handle's `stop` forgets the name. */
  watch<T extends KubeObject = KubeObject>(
    cluster: ObjectKey,
    input: WatchInput<T>,
  ): Promise<WatchHandle> {
    try {
      this.#check(
        cluster,
        `error creating watch ${input.name} for ${input.kind.apiVersion} ${input.kind.kind}`,
      );
    } catch (error) {
      return Promise.reject(error);
    }
    if (!input.name) return Promise.reject(new TypeError("watch name cannot be empty"));
    try {
      splitPredicates(input.predicates); // malformed selectors fail here, as in ClusterCache
    } catch (error) {
      return Promise.reject(error);
    }
    const synced = Promise.resolve();
    if (this.#watches.has(input.name)) {
      return Promise.resolve({ synced, stop: () => {}, [Symbol.dispose]: () => {} });
    }
    this.#watches.add(input.name);
    const stop = () => void this.#watches.delete(input.name);
    return Promise.resolve({ synced, stop, [Symbol.dispose]: stop });
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
    const mapFn = givenMapFn ?? (clusterKeyOf as unknown as (cluster: KubeObject) => R[]);
    const source: ClusterSource<R> = new ClusterSource<R>(controllerName, options, {
      onClose: () => {
        const at = this.#sources.findIndex((e) => e.source === source);
        if (at >= 0) this.#sources.splice(at, 1);
      },
    });
    const entry = { source: source as ClusterSource<unknown>, mapFn };
    this.#sources.push(entry);
    // Like ClusterCache: the (always connected) cluster's connect reaches a new source at once.
    this.#deliver(entry, ["connect"], Date.now());
    return source;
  }

  /**
   * Delivers an event (e.g. `["disconnect"]`) to every cluster source, as a reconcile would.
   *
   * @param reasons The event's reasons.
   * @param connected The event's `connected`; by default what the last of `"connect"` and
   *   `"disconnect"` in `reasons` says (connected when neither is there).
   */
  trigger(reasons: string[], connected?: boolean): void {
    const time = Date.now();
    const last = reasons.findLast((r) => r === "connect" || r === "disconnect");
    const state = connected ?? last !== "disconnect";
    for (const entry of [...this.#sources]) this.#deliver(entry, reasons, time, state);
  }

  #deliver(entry: SourceEntry, reasons: string[], time: number, connected = true): void {
    const cluster = this.#options.cluster ?? {
      apiVersion: "cluster.x-k8s.io/v1beta2",
      kind: "Cluster",
      metadata: { namespace: this.#key.namespace, name: this.#key.name },
    };
    entry.source.deliver(formatObjectKey(this.#key), entry.mapFn(cluster), {
      cluster: this.#key,
      reasons,
      connected,
      time,
    });
  }
}
