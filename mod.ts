/**
 * clustercache for Deno: per-workload-cluster clients, informer caches, REST configs and health
 * probes for Kubernetes fleet operators, in the manner of Cluster API's `ClusterCache`, with every
 * workload cluster in its own Web Worker so one hung, slow or huge API server cannot stall the others.
 *
 * This module names `ClusterCache` and what its signatures need; `./controller` has the controller
 * loop, `./metrics` the metrics registry, `./testing` fakes and a simulated fleet. The code behind
 * them: `src/main/` (main thread, one folder per concern), `workers/` (workers), `src/shared/` (both).
 *
 * @example Read Nodes of every workload cluster as it connects
 * ```ts
 * import assert from "node:assert/strict";
 * import { KubeConfig } from "@kubernetes/client-node";
 * import { ClusterCache } from "@fleetkit/clustercache";
 * import { SimulatedFleet } from "@fleetkit/clustercache/testing";
 *
 * // A simulated management cluster with three workload clusters; in production,
 * // `management.loadFromDefault()` or `loadFromCluster()` instead.
 * await using fleet = await SimulatedFleet.start({ clusters: 3 });
 * const management = new KubeConfig();
 * management.loadFromString(fleet.managementKubeconfig());
 *
 * await using cache = await ClusterCache.setup({ management, client: { userAgent: "my-operator" } });
 * const source = cache.getClusterSource("nodes", (cluster) => [
 *   { namespace: cluster.metadata!.namespace!, name: cluster.metadata!.name! },
 * ]);
 * const seen = new Set<string>();
 * for await (const cluster of source) {
 *   // Served from the cluster's informer cache, in the cluster's own worker.
 *   const nodes = await cache.getReader(cluster).list({ apiVersion: "v1", kind: "Node" });
 *   console.log(`${cluster.name}: ${nodes.items.length} nodes`);
 *   seen.add(cluster.name);
 *   if (seen.size === 3) break; // a controller keeps going until shutdown
 * }
 * assert.equal(seen.size, 3);
 * ```
 *
 * @module
 */

export {
  type ByObject,
  type CacheIndex,
  type CacheOptions,
  type IndexExtractor,
  type ModuleFunction,
  NodeProviderIDIndex,
  type Transform,
} from "./src/shared/cache_options.ts";
export type {
  CallOptions,
  Client,
  DeleteOptions,
  ListOptions,
  ObjectRef,
  Patch,
  Reader,
  WatchEvent,
  WriteOptions,
} from "./src/shared/client_types.ts";
export {
  ClusterCache,
  type ClusterCacheApi,
  type ClusterDescription,
  type Freshness,
  type HealthCheckingState,
  type ReaderOptions,
  type StaleReader,
  type WatchHandle,
  type WatchInput,
} from "./src/main/cluster_cache.ts";
export {
  type ClusterEvent,
  ClusterSource,
  type ClusterSourceOptions,
} from "./src/main/sources/cluster_source.ts";
export {
  ClusterCacheError,
  type ClusterCacheErrorCode,
  ClusterNotConnectedError,
  isAlreadyExists,
  isConflict,
  isExpired,
  isForbidden,
  isNotFound,
  isTooManyRequests,
  isUnauthorized,
  KubernetesApiError,
} from "./src/shared/errors.ts";
export type { JsonPatchOperation, JsonValue } from "./src/shared/client_types.ts";
export type {
  KubeConfigCluster,
  KubeConfigContext,
  KubeConfigLike,
  KubeConfigUser,
} from "./src/main/kube_config_like.ts";
export type {
  KindRef,
  KubeList,
  KubeObject,
  ObjectKey,
  ObjectMeta,
  Status,
} from "./src/shared/kube_object.ts";
export { kinds } from "./src/main/kinds.ts";
export { SelectorParseError } from "./src/shared/label_selector.ts";
export type { ClusterCacheMetrics } from "./src/main/metrics/metrics.ts";
export type {
  ClientOptions,
  ClusterCacheOptions,
  HealthProbeOptions,
  SecretReader,
  WorkerPoolOptions,
} from "./src/main/options.ts";
export { type DeclarativePredicate, type Predicate, predicates } from "./src/shared/predicates.ts";
export type { InformerState, PodIdentity } from "./src/shared/protocol.ts";
export type {
  ClusterHistoryEntry,
  ClusterHistoryKind,
} from "./src/main/reconcile/cluster_history.ts";
export type { RESTConfig } from "./src/shared/rest_config.ts";
export type { ShardingOptions } from "./src/main/sharding/shard_coordinator.ts";
