/**
 * A controller loop over a ClusterCache, in the manner of controller-runtime's: one reconcile at a
 * time per request, retries with backoff, graceful stop; and client-go's rate limiters it retries
 * with. Import it from `@fleetkit/clustercache/controller`.
 *
 * @example Reconcile each workload cluster as it connects
 * ```ts
 * import assert from "node:assert/strict";
 * import type { ObjectKey } from "@fleetkit/clustercache";
 * import { Controller } from "@fleetkit/clustercache/controller";
 * import { FakeClient, FakeClusterCache } from "@fleetkit/clustercache/testing";
 *
 * const cluster = { namespace: "default", name: "workload-1" };
 * const cache = new FakeClusterCache(new FakeClient(), cluster); // or a ClusterCache
 * const seen: string[] = [];
 * await using controller = new Controller<ObjectKey>({
 *   name: "nodes",
 *   reconcile: async (request) => {
 *     const nodes = await cache.getReader(request).list({ apiVersion: "v1", kind: "Node" });
 *     seen.push(`${request.name}: ${nodes.items.length} nodes`);
 *   },
 * });
 * controller.watchClusters(cache.getClusterSource("nodes"));
 * controller.start();
 * await controller.idle();
 * assert.deepEqual(seen, ["workload-1: 0 nodes"]);
 * ```
 *
 * @module
 */

export {
  Controller,
  type ControllerOptions,
  type ControllerWatchInput,
  type ReconcileContext,
  type ReconcileResult,
  type StopOptions,
} from "./controller.ts";
export {
  BucketRateLimiter,
  defaultControllerRateLimiter,
  ExponentialFailureRateLimiter,
  MaxOfRateLimiter,
  type RateLimiter,
} from "./rate_limiter.ts";
