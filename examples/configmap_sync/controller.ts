/**
 * A small multi-cluster controller built on a ClusterCache: it keeps one ConfigMap in every connected
 * workload cluster equal to a ConfigMap of the management cluster, and puts it back when someone edits
 * or deletes the copy.
 *
 * How it uses the cache, the way a controller-runtime reconciler would:
 * - a cluster source tells it when a workload cluster connects (and disconnects);
 * - on every reconcile it `watch`es the copy in that cluster (a no-op while the connection lasts), so
 *   drift wakes it up;
 * - it reads the copy from the cluster's informer cache (`getReader`) and writes live (`getClient`);
 * - a disconnected cluster is skipped quietly: the next connect event brings it back.
 *
 * The desired content comes from outside (see `main.ts`, which follows the management ConfigMap with
 * a `@kubernetes/client-node` informer): call {@linkcode ConfigMapSyncController.setDesired}.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import {
  type ClusterCacheApi,
  ClusterNotConnectedError,
  type ClusterSource,
  isAlreadyExists,
  isConflict,
  isNotFound,
  type KubeObject,
  type ObjectKey,
  predicates,
} from "../../mod.ts";

const CONFIGMAP = { apiVersion: "v1", kind: "ConfigMap" } as const;

/** Label put on every copy; only labelled copies are ever deleted. */
export const MANAGED_BY_LABEL = "app.kubernetes.io/managed-by";
/** Value of {@linkcode MANAGED_BY_LABEL}. */
export const MANAGED_BY = "configmap-sync";

/** A ConfigMap as this controller reads and writes it. */
export interface ConfigMap extends KubeObject {
  /** String data. */
  data?: Record<string, string>;
}

/** Options of {@linkcode ConfigMapSyncController}. */
export interface ConfigMapSyncOptions {
  /** Where the copy lives in every workload cluster. The namespace must exist there. */
  target: { namespace: string; name: string };
  /** First retry delay after an error (doubles up to `maxRetryDelayMs`). Default 500 ms. */
  retryDelayMs?: number;
  /** Longest retry delay. Default 30 s. */
  maxRetryDelayMs?: number;
  /** Clusters reconciled at once. Default 4. */
  concurrency?: number;
}

/** What one reconcile did. */
export type SyncOutcome =
  | "unchanged"
  | "created"
  | "updated"
  | "deleted"
  | "not-connected"
  | "waiting-for-desired"
  | "retry";

function keyOf(cluster: ObjectKey): string {
  return `${cluster.namespace}/${cluster.name}`;
}

function sameData(a: Record<string, string> | undefined, b: Record<string, string>): boolean {
  const left = a ?? {};
  const keys = Object.keys(left);
  return keys.length === Object.keys(b).length && keys.every((k) => left[k] === b[k]);
}

/**
 * Keeps `options.target` in every connected workload cluster equal to the desired data.
 *
 * @example Unit-testing a reconcile with the fakes of `./testing`
 * ```ts
 * import assert from "node:assert/strict";
 * import { FakeClient, FakeClusterCache } from "@fleetkit/clustercache/testing";
 * import { ConfigMapSyncController } from "./controller.ts";
 *
 * const cluster = { namespace: "default", name: "workload-1" };
 * const client = new FakeClient();
 * await using controller = new ConfigMapSyncController(new FakeClusterCache(client, cluster), {
 *   target: { namespace: "default", name: "fleet-settings" },
 * });
 * controller.setDesired({ logLevel: "info" });
 * assert.equal(await controller.reconcile(cluster), "created");
 * assert.equal(await controller.reconcile(cluster), "unchanged");
 * ```
 */
export class ConfigMapSyncController implements AsyncDisposable {
  readonly #cache: ClusterCacheApi;
  readonly #target: { namespace: string; name: string };
  readonly #retryDelayMs: number;
  readonly #maxRetryDelayMs: number;
  readonly #concurrency: number;
  readonly #log = getLogger(["configmap-sync"]);
  readonly #source: ClusterSource<ObjectKey>;
  /** Clusters that connected and have not been seen disconnected since. */
  readonly #clusters = new Map<string, ObjectKey>();
  readonly #queued = new Map<string, ObjectKey>();
  readonly #running = new Set<string>();
  /** Clusters changed while being reconciled: run again afterwards. */
  readonly #dirty = new Set<string>();
  readonly #failures = new Map<string, number>();
  readonly #retryTimers = new Map<string, ReturnType<typeof setTimeout>>();
  readonly #inFlight = new Set<Promise<void>>();
  readonly #idleWaiters: (() => void)[] = [];
  /** `undefined` until known; `null` when the source ConfigMap does not exist. */
  #desired: Record<string, string> | null | undefined;
  #unsubscribe: (() => void) | undefined;
  #closed = false;

  /** Counts of reconcile outcomes, for tests and status pages. */
  readonly outcomes: Record<SyncOutcome, number> = {
    unchanged: 0,
    created: 0,
    updated: 0,
    deleted: 0,
    "not-connected": 0,
    "waiting-for-desired": 0,
    retry: 0,
  };

  /**
   * Creates the controller; nothing runs until {@linkcode ConfigMapSyncController.start}.
   *
   * @param cache The ClusterCache (or the fake from `./testing`).
   * @param options Target and retry settings.
   */
  constructor(cache: ClusterCacheApi, options: ConfigMapSyncOptions) {
    this.#cache = cache;
    this.#target = { ...options.target };
    this.#retryDelayMs = options.retryDelayMs ?? 500;
    this.#maxRetryDelayMs = options.maxRetryDelayMs ?? 30_000;
    this.#concurrency = Math.max(1, options.concurrency ?? 4);
    this.#source = cache.getClusterSource(MANAGED_BY, (cluster) => [{
      namespace: cluster.metadata?.namespace ?? "",
      name: cluster.metadata?.name ?? "",
    }]);
  }

  /** Starts consuming cluster events. */
  start(): void {
    if (this.#unsubscribe) return;
    this.#unsubscribe = this.#source.subscribe((cluster, event) => {
      // A rotation is ["disconnect", "connect"] in one event: the state after it is what counts.
      if (event.connected) this.#clusters.set(keyOf(cluster), cluster);
      else this.#clusters.delete(keyOf(cluster));
      this.enqueue(cluster);
    });
  }

  /**
   * Sets what every copy should hold; `null` means the source is gone and copies are deleted.
   * Every known cluster is reconciled again.
   */
  setDesired(data: Record<string, string> | null): void {
    this.#desired = data === null ? null : { ...data };
    for (const cluster of this.#clusters.values()) this.enqueue(cluster);
  }

  /** Asks for a reconcile of `cluster` (de-duplicated). */
  enqueue(cluster: ObjectKey): void {
    if (this.#closed) return;
    const key = keyOf(cluster);
    if (this.#running.has(key)) {
      this.#dirty.add(key);
      return;
    }
    clearTimeout(this.#retryTimers.get(key));
    this.#retryTimers.delete(key);
    this.#queued.set(key, cluster);
    this.#pump();
  }

  /** Resolves when nothing is queued, running or waiting to retry. */
  idle(): Promise<void> {
    if (this.#isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  #isIdle(): boolean {
    return this.#queued.size === 0 && this.#running.size === 0 && this.#retryTimers.size === 0;
  }

  #pump(): void {
    while (this.#running.size < this.#concurrency && this.#queued.size > 0) {
      const [key, cluster] = this.#queued.entries().next().value!;
      this.#queued.delete(key);
      this.#running.add(key);
      const run = this.#run(key, cluster).finally(() => {
        this.#inFlight.delete(run);
        this.#running.delete(key);
        if (this.#dirty.delete(key)) this.enqueue(cluster);
        this.#pump();
        if (this.#isIdle()) { for (const resolve of this.#idleWaiters.splice(0)) resolve(); }
      });
      this.#inFlight.add(run);
    }
  }

  async #run(key: string, cluster: ObjectKey): Promise<void> {
    let outcome: SyncOutcome;
    try {
      outcome = await this.reconcile(cluster);
    } catch (error) {
      outcome = "retry";
      this.#log.warn("Reconcile of {cluster} failed: {error}", {
        cluster: key,
        error: error instanceof Error ? error.message : String(error),
      });
    }
    this.outcomes[outcome]++;
    if (outcome !== "retry") {
      this.#failures.delete(key);
      return;
    }
    if (this.#closed) return;
    const failures = (this.#failures.get(key) ?? 0) + 1;
    this.#failures.set(key, failures);
    const delay = Math.min(this.#maxRetryDelayMs, this.#retryDelayMs * 2 ** (failures - 1));
    this.#retryTimers.set(
      key,
      setTimeout(() => {
        this.#retryTimers.delete(key);
        this.enqueue(cluster);
      }, delay),
    );
  }

  /**
   * One pass over one cluster: make sure the copy is watched, then create, update or delete it.
   *
   * @returns What it did; `"retry"` when it must run again soon (a conflict or a stale cache).
   * @throws For errors worth retrying with backoff (the caller logs them).
   */
  async reconcile(cluster: ObjectKey): Promise<SyncOutcome> {
    const desired = this.#desired;
    if (desired === undefined) return "waiting-for-desired";
    const target = this.#target;
    try {
      await this.#cache.watch<ConfigMap>(cluster, {
        name: `${MANAGED_BY}/${target.namespace}/${target.name}`,
        kind: CONFIGMAP,
        // Pushed down to the cluster's worker: other ConfigMaps never reach this thread.
        predicates: [
          predicates.fieldSelector(
            `metadata.namespace=${target.namespace},metadata.name=${target.name}`,
          ),
          predicates.resourceVersionChanged(),
        ],
        handler: () => this.enqueue(cluster),
      });
      const current = await this.#cache.getReader(cluster)
        .get<ConfigMap>(CONFIGMAP, target)
        .catch((error) => {
          if (isNotFound(error)) return undefined;
          throw error;
        });
      const client = this.#cache.getClient(cluster);
      if (desired === null) {
        if (!current || current.metadata?.labels?.[MANAGED_BY_LABEL] !== MANAGED_BY) {
          return "unchanged";
        }
        // The cache may be behind: delete only the version we saw labelled as ours. A copy someone
        // re-created (uid) or changed since, say unlabelled (resourceVersion), is a 409: read again.
        await client.delete(CONFIGMAP, target, {
          preconditions: {
            uid: current.metadata.uid!,
            resourceVersion: current.metadata.resourceVersion!,
          },
        }).catch((error) => {
          if (!isNotFound(error)) throw error;
        });
        return "deleted";
      }
      if (!current) {
        await client.create<ConfigMap>({
          ...CONFIGMAP,
          metadata: { ...target, labels: { [MANAGED_BY_LABEL]: MANAGED_BY } },
          data: desired,
        }, { fieldManager: MANAGED_BY });
        return "created";
      }
      if (sameData(current.data, desired)) return "unchanged";
      // `update` carries the cached resourceVersion: a stale cache fails with 409, not a lost write.
      await client.update<ConfigMap>({
        ...current,
        metadata: {
          ...current.metadata,
          labels: { ...current.metadata?.labels, [MANAGED_BY_LABEL]: MANAGED_BY },
        },
        data: desired,
      }, { fieldManager: MANAGED_BY });
      return "updated";
    } catch (error) {
      if (error instanceof ClusterNotConnectedError) return "not-connected";
      // The cache had not caught up with a write yet; the watch event that follows requeues too.
      if (isConflict(error) || isAlreadyExists(error)) return "retry";
      throw error;
    }
  }

  /** Stops: no new reconciles; waits for running ones. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#unsubscribe?.();
    this.#source.close();
    for (const timer of this.#retryTimers.values()) clearTimeout(timer);
    this.#retryTimers.clear();
    this.#queued.clear();
    await Promise.allSettled([...this.#inFlight]);
    for (const resolve of this.#idleWaiters.splice(0)) resolve();
  }

  /** Same as {@linkcode ConfigMapSyncController.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
