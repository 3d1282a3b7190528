/**
 * A small multi-cluster controller built on a ClusterCache: it keeps one ConfigMap in every connected
 * workload cluster equal to a ConfigMap of the management cluster, and puts it back when someone edits
 * or deletes the copy.
 *
 * How it uses the cache, the way a controller-runtime reconciler would:
 * - a {@linkcode Controller} runs the loop: a cluster source queues a cluster when it connects, the
 *   queue never reconciles one cluster twice at once, and conflicts are retried with backoff;
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

import {
  type ClusterCacheApi,
  ClusterNotConnectedError,
  isAlreadyExists,
  isConflict,
  isNotFound,
  kinds,
  type KubeObject,
  type ObjectKey,
  predicates,
} from "../../mod.ts";
import { Controller } from "../../src/main/controller/mod.ts";

const CONFIGMAP = kinds.ConfigMap;

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
  readonly #controller: Controller<ObjectKey>;
  /** `undefined` until known; `null` when the source ConfigMap does not exist. */
  #desired: Record<string, string> | null | undefined;

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
   * @param options Target and concurrency.
   */
  constructor(cache: ClusterCacheApi, options: ConfigMapSyncOptions) {
    this.#cache = cache;
    this.#target = { ...options.target };
    this.#controller = new Controller<ObjectKey>({
      name: MANAGED_BY,
      concurrency: options.concurrency ?? 4,
      reconcile: async (cluster) => {
        const outcome = await this.reconcile(cluster);
        this.outcomes[outcome]++;
        // The queue retries with backoff; the watch event that follows a write requeues too.
        if (outcome === "retry") throw new Error("the cache was behind a write; retrying");
      },
    });
    this.#controller.watchClusters(cache.getClusterSource(MANAGED_BY));
  }

  /** Starts reconciling. */
  start(): void {
    this.#controller.start();
  }

  /**
   * Sets what every copy should hold; `null` means the source is gone and copies are deleted.
   * Every known cluster is reconciled again.
   */
  setDesired(data: Record<string, string> | null): void {
    this.#desired = data === null ? null : { ...data };
    for (const cluster of this.#cache.clusters()) this.#controller.enqueue(cluster);
  }

  /** Resolves when nothing is queued, running or waiting to retry. */
  idle(): Promise<void> {
    return this.#controller.idle();
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
      await this.#controller.watch<ConfigMap>(this.#cache, cluster, {
        name: `${MANAGED_BY}/${target.namespace}/${target.name}`,
        kind: CONFIGMAP,
        // Pushed down to the cluster's worker: other ConfigMaps never reach this thread.
        predicates: [
          predicates.fieldSelector(
            `metadata.namespace=${target.namespace},metadata.name=${target.name}`,
          ),
          predicates.resourceVersionChanged(),
        ],
        map: () => cluster,
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
  close(): Promise<void> {
    return this.#controller.stop();
  }

  /** Same as {@linkcode ConfigMapSyncController.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
